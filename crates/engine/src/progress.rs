//! Progress events of a backup, per mailbox and overall. The job calls a sink the caller
//! supplies (the CLI draws bars, the desktop app forwards events to the UI). Events carry ids
//! and numbers only.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use strongroom_graph::{Governor, GovernorConfig, Lane};

/// One progress event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "event")]
pub enum ProgressEvent {
    /// Accounts are being listed.
    Discovering,
    /// A mailbox started: `items` is what the tenant reports it holds (an upper bound of
    /// the work on a first backup).
    MailboxStarted {
        user_id: String,
        items: u64,
    },
    /// Items of a mailbox were processed (downloaded or found unchanged).
    MailboxProgress {
        user_id: String,
        items: u64,
        bytes: u64,
        /// Time this mailbox's requests have waited on throttling in this run so far
        /// (Retry-After fences and backoffs, measured by the Graph governor), in ms.
        throttle_wait_ms: u64,
    },
    MailboxFinished {
        user_id: String,
        ok: bool,
    },
    /// Overall totals, sent after every change of a mailbox's counters.
    Overall(Overall),
}

/// Overall totals with rate and ETA.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overall {
    pub items: u64,
    pub items_total: u64,
    pub bytes: u64,
    pub bytes_per_second: f64,
    pub items_per_second: f64,
    /// Seconds to go at the current item rate, when the total is known.
    pub eta_seconds: Option<f64>,
    /// Mailboxes with a request waiting on a `Retry-After` fence or a retry backoff right now.
    pub throttled_mailboxes: u64,
    /// Time the run's mailboxes have waited on throttling so far (Retry-After fences and
    /// backoffs, measured by the Graph governor; summed over mailboxes), in milliseconds.
    pub throttle_wait_ms: u64,
}

/// Where events go.
pub type ProgressSink = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// A sink that drops everything.
pub fn silent() -> ProgressSink {
    Arc::new(|_| {})
}

/// Shared counters behind the overall events.
pub(crate) struct Meter {
    sink: ProgressSink,
    started: Instant,
    items: AtomicU64,
    items_total: AtomicU64,
    bytes: AtomicU64,
    /// Where throttle waits are measured.
    governor: Governor,
    /// Each started mailbox's lane and its throttle clock when it started.
    mailboxes: Mutex<BTreeMap<String, (Lane, Duration)>>,
}

impl Meter {
    pub fn new(sink: ProgressSink, governor: Governor) -> Meter {
        Meter {
            sink,
            started: Instant::now(),
            items: AtomicU64::new(0),
            items_total: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            governor,
            mailboxes: Mutex::default(),
        }
    }

    /// A meter for jobs that make no Graph requests (export): its throttle waits stay zero.
    pub fn without_graph(sink: ProgressSink) -> Meter {
        Meter::new(sink, Governor::new(GovernorConfig::default()))
    }

    /// Starts measuring a mailbox's throttle waits.
    pub fn start_mailbox(&self, user_id: &str) {
        let lane = Lane::mailbox(user_id);
        let base = self.governor.throttle_wait(&lane);
        self.mailboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user_id.to_owned(), (lane, base));
    }

    /// Milliseconds a mailbox's requests have waited on throttling since it started.
    pub fn throttle_wait_ms(&self, user_id: &str) -> u64 {
        let mailboxes = self.mailboxes.lock().unwrap_or_else(|e| e.into_inner());
        mailboxes
            .get(user_id)
            .map_or(0, |(lane, base)| self.waited_ms(lane, *base))
    }

    fn waited_ms(&self, lane: &Lane, base: Duration) -> u64 {
        let waited = self.governor.throttle_wait(lane).saturating_sub(base);
        u64::try_from(waited.as_millis()).unwrap_or(u64::MAX)
    }

    pub fn emit(&self, event: ProgressEvent) {
        (self.sink)(&event);
    }

    pub fn expect_items(&self, n: u64) {
        self.items_total.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add(&self, user_id: &str, items: u64, bytes: u64) {
        self.items.fetch_add(items, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.emit(ProgressEvent::MailboxProgress {
            user_id: user_id.to_owned(),
            items,
            bytes,
            throttle_wait_ms: self.throttle_wait_ms(user_id),
        });
        self.emit(ProgressEvent::Overall(self.overall()));
    }

    pub fn overall(&self) -> Overall {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let items = self.items.load(Ordering::Relaxed);
        let items_total = self.items_total.load(Ordering::Relaxed).max(items);
        let items_per_second = items as f64 / secs;
        let (mut throttled, mut waited) = (0, 0);
        for (lane, base) in self
            .mailboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            throttled += u64::from(self.governor.is_throttled(lane));
            waited += self.waited_ms(lane, *base);
        }
        Overall {
            items,
            items_total,
            bytes: self.bytes.load(Ordering::Relaxed),
            bytes_per_second: self.bytes.load(Ordering::Relaxed) as f64 / secs,
            items_per_second,
            eta_seconds: (items_per_second > 0.0)
                .then(|| (items_total - items) as f64 / items_per_second),
            throttled_mailboxes: throttled,
            throttle_wait_ms: waited,
        }
    }
}

//! Progress events of a backup, per mailbox and overall. The job calls a sink the caller
//! supplies (the CLI draws bars, the desktop app forwards events to the UI). Events carry ids
//! and numbers only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

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
    /// Mailboxes whose requests are held back by a `Retry-After` right now.
    pub throttled_mailboxes: u64,
    /// Total time requests spent waiting on throttling so far (sampled), in milliseconds.
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
    throttled: AtomicU64,
    throttle_wait_ms: AtomicU64,
}

impl Meter {
    pub fn new(sink: ProgressSink) -> Meter {
        Meter {
            sink,
            started: Instant::now(),
            items: AtomicU64::new(0),
            items_total: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            throttle_wait_ms: AtomicU64::new(0),
        }
    }

    pub fn emit(&self, event: ProgressEvent) {
        (self.sink)(&event);
    }

    pub fn expect_items(&self, n: u64) {
        self.items_total.fetch_add(n, Ordering::Relaxed);
    }

    pub fn throttled(&self, mailboxes: u64, waited_ms: u64) {
        self.throttled.store(mailboxes, Ordering::Relaxed);
        self.throttle_wait_ms
            .fetch_add(waited_ms, Ordering::Relaxed);
    }

    pub fn add(&self, user_id: &str, items: u64, bytes: u64) {
        self.items.fetch_add(items, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.emit(ProgressEvent::MailboxProgress {
            user_id: user_id.to_owned(),
            items,
            bytes,
        });
        self.emit(ProgressEvent::Overall(self.overall()));
    }

    pub fn overall(&self) -> Overall {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let items = self.items.load(Ordering::Relaxed);
        let items_total = self.items_total.load(Ordering::Relaxed).max(items);
        let items_per_second = items as f64 / secs;
        Overall {
            items,
            items_total,
            bytes: self.bytes.load(Ordering::Relaxed),
            bytes_per_second: self.bytes.load(Ordering::Relaxed) as f64 / secs,
            items_per_second,
            eta_seconds: (items_per_second > 0.0)
                .then(|| (items_total - items) as f64 / items_per_second),
            throttled_mailboxes: self.throttled.load(Ordering::Relaxed),
            throttle_wait_ms: self.throttle_wait_ms.load(Ordering::Relaxed),
        }
    }
}

//! Request counters: what a test or benchmark needs to check that a client stayed within
//! Microsoft's limits (requests per mailbox and endpoint, throttled responses, peak concurrency).

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct MailboxCounters {
    pub requests: u64,
    /// Requests by endpoint name, e.g. `messages.delta`, `message.value`.
    pub endpoints: BTreeMap<String, u64>,
    /// 429 responses from the throttle (not injected faults).
    pub throttled: u64,
    /// Of those, refusals for the concurrency limit rather than the request budget.
    pub over_concurrency: u64,
    /// Highest number of requests in flight at once for this mailbox (all apps).
    pub max_concurrency: usize,
}

/// A copy of all counters; `emu.counters()` and `GET /_emulator/counters` return this.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Every Graph request, including `$batch` items.
    pub requests: u64,
    pub throttled: u64,
    /// Of the 429s, refusals for the concurrency limit rather than the request budget.
    pub over_concurrency: u64,
    /// Injected faults.
    pub faults: u64,
    /// Requests by endpoint name across the tenant.
    pub endpoints: BTreeMap<String, u64>,
    /// Keyed by user id.
    pub mailboxes: BTreeMap<String, MailboxCounters>,
}

#[derive(Debug, Default)]
pub struct Counters {
    inner: Mutex<CounterSnapshot>,
    in_flight: Mutex<BTreeMap<String, usize>>,
}

impl Counters {
    fn with<R>(&self, f: impl FnOnce(&mut CounterSnapshot) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn request(&self, mailbox: Option<&str>, endpoint: &str) {
        self.with(|c| {
            c.requests += 1;
            *c.endpoints.entry(endpoint.to_string()).or_default() += 1;
            if let Some(m) = mailbox {
                let m = c.mailboxes.entry(m.to_string()).or_default();
                m.requests += 1;
                *m.endpoints.entry(endpoint.to_string()).or_default() += 1;
            }
        });
    }

    /// A 429 from the throttle; `over_concurrency` when the concurrency limit refused it.
    pub fn throttled(&self, mailbox: Option<&str>, over_concurrency: bool) {
        let n = u64::from(over_concurrency);
        self.with(|c| {
            c.throttled += 1;
            c.over_concurrency += n;
            if let Some(m) = mailbox {
                let m = c.mailboxes.entry(m.to_string()).or_default();
                m.throttled += 1;
                m.over_concurrency += n;
            }
        });
    }

    pub fn fault(&self) {
        self.with(|c| c.faults += 1);
    }

    /// Marks a request to `mailbox` as started; the returned guard marks it finished.
    pub fn enter(&self, mailbox: &str) -> usize {
        let now = {
            let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            let n = map.entry(mailbox.to_string()).or_default();
            *n += 1;
            *n
        };
        self.with(|c| {
            let m = c.mailboxes.entry(mailbox.to_string()).or_default();
            m.max_concurrency = m.max_concurrency.max(now);
        });
        now
    }

    pub fn leave(&self, mailbox: &str) {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(mailbox) {
            *n = n.saturating_sub(1);
        }
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        self.with(|c| c.clone())
    }

    pub fn reset(&self) {
        self.with(|c| *c = CounterSnapshot::default());
    }
}

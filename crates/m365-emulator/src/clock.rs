//! The emulator's notion of "now": wall-clock time plus an offset that tests advance.
//!
//! Token expiry, authorization-code lifetime, delta-token age and request budgets all read this
//! clock, so a test can jump ten minutes ahead instead of sleeping.

use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves the clock forward (never backward: expiry checks assume monotonic time).
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    pub fn unix(&self) -> i64 {
        self.now().timestamp()
    }

    /// Milliseconds since the epoch, for sliding windows.
    pub fn unix_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(std::time::Duration::from_secs(600));
        assert!(clock.now() - before >= Duration::seconds(600));
    }
}

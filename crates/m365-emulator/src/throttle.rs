//! Outlook's throttling, evaluated per (app id, mailbox): at most `concurrency_limit` requests
//! in flight (429 ApplicationThrottled "MailboxConcurrency") and a sliding-window request
//! budget (429 TooManyRequests). Retry-After is fractional, as Graph sends it.
//!
//! Uploads (POST, PUT, PATCH bodies) are limited to 150 MB per 5 minutes per (app, mailbox):
//! 429 ApplicationThrottled "IncomingBytes".
//!
//! Rejected requests do not consume budget, so a client that waits exactly Retry-After gets
//! through; a client that ignores it keeps getting 429s.

use crate::config::Throttle;
use crate::error::GraphError;
use axum::http::StatusCode;
use rand::Rng as _;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Outlook's upload limit per (app, mailbox).
pub const INCOMING_BYTES: u64 = 150 * 1024 * 1024;
pub const INCOMING_WINDOW_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Default)]
struct Lane {
    in_flight: usize,
    /// Admission times (ms) inside the current window.
    window: VecDeque<i64>,
    /// (time ms, bytes) of uploads inside the last five minutes.
    incoming: VecDeque<(i64, u64)>,
}

#[derive(Debug)]
struct State {
    mode: Throttle,
    concurrency: usize,
    lanes: HashMap<(String, String), Lane>,
    /// Upload limit: bytes per window (ms). Microsoft's unless a benchmark scales it.
    upload_limit: (u64, i64),
    /// Upload bytes admitted per mailbox since start (all apps), for benchmarks.
    uploaded: HashMap<String, u64>,
}

#[derive(Debug)]
pub struct Throttler {
    state: Mutex<State>,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    Concurrency { retry_after: f64 },
    Budget { retry_after: f64 },
    IncomingBytes { retry_after: f64 },
}

impl Refusal {
    pub fn to_error(self) -> GraphError {
        match self {
            Refusal::Concurrency { retry_after } => GraphError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
            )
            .without_inner()
            .retry_after(retry_after),
            Refusal::Budget { retry_after } => too_many_requests(retry_after),
            Refusal::IncomingBytes { retry_after } => GraphError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "ApplicationThrottled",
                "Application is over its IncomingBytes limit.",
            )
            .without_inner()
            .retry_after(retry_after),
        }
    }
}

/// The generic 429 body from Graph's throttling documentation.
pub fn too_many_requests(retry_after: f64) -> GraphError {
    let mut e = GraphError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Please retry again later.",
    )
    .retry_after(retry_after);
    e.inner_extra = vec![
        ("code", "429".into()),
        ("message", "Please retry after".into()),
        ("status", "429".into()),
    ];
    e
}

impl Throttler {
    pub fn new(mode: Throttle, concurrency: usize) -> Self {
        Throttler {
            state: Mutex::new(State {
                mode,
                concurrency: concurrency.max(1),
                lanes: HashMap::new(),
                upload_limit: (INCOMING_BYTES, INCOMING_WINDOW_MS),
                uploaded: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set(&self, mode: Throttle, concurrency: usize) {
        let mut s = self.lock();
        s.mode = mode;
        s.concurrency = concurrency.max(1);
        s.lanes.clear();
    }

    /// Scales the upload limit (default: 150 MB per 5 minutes), keeping its sliding-window
    /// shape, so a benchmark reaches it in seconds. Applies whenever throttling is on.
    pub fn set_upload_limit(&self, bytes: u64, per: std::time::Duration) {
        let mut s = self.lock();
        s.upload_limit = (bytes, per.as_millis() as i64);
        s.lanes.clear();
    }

    /// Upload bytes admitted for `mailbox` so far.
    pub fn uploaded(&self, mailbox: &str) -> u64 {
        self.lock().uploaded.get(mailbox).copied().unwrap_or(0)
    }

    pub fn mode(&self) -> (Throttle, usize) {
        let s = self.lock();
        (s.mode, s.concurrency)
    }

    /// Admits a request at `now_ms` or says how long to wait. On success the caller must call
    /// `release` when the response is finished.
    pub fn admit(
        &self,
        app: &str,
        mailbox: &str,
        incoming_bytes: u64,
        now_ms: i64,
    ) -> Result<bool, Refusal> {
        let mut s = self.lock();
        let Some((requests, per)) = s.mode.budget() else {
            return Ok(false);
        };
        let limit = s.concurrency;
        let (upload_bytes, upload_window_ms) = s.upload_limit;
        let lane = s
            .lanes
            .entry((app.to_string(), mailbox.to_string()))
            .or_default();
        if lane.in_flight >= limit {
            let retry_after = rand::thread_rng().gen_range(0.2..1.0);
            return Err(Refusal::Concurrency { retry_after });
        }
        let per_ms = per.as_millis() as i64;
        while lane.window.front().is_some_and(|&t| t <= now_ms - per_ms) {
            lane.window.pop_front();
        }
        if lane.window.len() >= requests as usize {
            let oldest = lane.window.front().copied().unwrap_or(now_ms);
            let retry_after = ((oldest + per_ms - now_ms) as f64 / 1000.0).max(0.001);
            return Err(Refusal::Budget { retry_after });
        }
        while lane
            .incoming
            .front()
            .is_some_and(|&(t, _)| t <= now_ms - upload_window_ms)
        {
            lane.incoming.pop_front();
        }
        let uploaded: u64 = lane.incoming.iter().map(|&(_, b)| b).sum();
        if incoming_bytes > 0 && uploaded + incoming_bytes > upload_bytes {
            // Retry-After: until enough of the window has slid out for this body to fit.
            let mut freed = 0;
            let mut until = now_ms;
            for &(t, b) in &lane.incoming {
                freed += b;
                until = t + upload_window_ms;
                if uploaded - freed + incoming_bytes <= upload_bytes {
                    break;
                }
            }
            let retry_after = ((until - now_ms) as f64 / 1000.0).max(0.001);
            return Err(Refusal::IncomingBytes { retry_after });
        }
        if incoming_bytes > 0 {
            lane.incoming.push_back((now_ms, incoming_bytes));
        }
        lane.window.push_back(now_ms);
        lane.in_flight += 1;
        *s.uploaded.entry(mailbox.to_string()).or_default() += incoming_bytes;
        Ok(true)
    }

    pub fn release(&self, app: &str, mailbox: &str) {
        let mut s = self.lock();
        if let Some(lane) = s.lanes.get_mut(&(app.to_string(), mailbox.to_string())) {
            lane.in_flight = lane.in_flight.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn concurrency_limit_then_release() {
        let t = Throttler::new(Throttle::Realistic, 2);
        assert_eq!(t.admit("a", "m", 0, 0), Ok(true));
        assert_eq!(t.admit("a", "m", 0, 0), Ok(true));
        assert!(matches!(
            t.admit("a", "m", 0, 0),
            Err(Refusal::Concurrency { .. })
        ));
        // Another app or mailbox is a separate lane.
        assert_eq!(t.admit("b", "m", 0, 0), Ok(true));
        assert_eq!(t.admit("a", "n", 0, 0), Ok(true));
        t.release("a", "m");
        assert_eq!(t.admit("a", "m", 0, 0), Ok(true));
    }

    #[test]
    fn budget_refuses_until_the_window_slides() {
        let t = Throttler::new(
            Throttle::Scaled {
                requests: 3,
                per: Duration::from_secs(1),
            },
            10,
        );
        for ms in [0, 100, 200] {
            assert_eq!(t.admit("a", "m", 0, ms), Ok(true));
            t.release("a", "m");
        }
        match t.admit("a", "m", 0, 300) {
            Err(Refusal::Budget { retry_after }) => assert!((retry_after - 0.7).abs() < 1e-9),
            other => panic!("expected budget refusal, got {other:?}"),
        }
        assert_eq!(t.admit("a", "m", 0, 1000), Ok(true));
    }

    #[test]
    fn a_scaled_upload_limit_waits_until_the_body_fits() {
        let t = Throttler::new(Throttle::Realistic, 4);
        t.set_upload_limit(100, Duration::from_secs(10));
        for (i, now) in [0, 1_000, 2_000].into_iter().enumerate() {
            assert_eq!(t.admit("a", "m", 30, now), Ok(true), "upload {i}");
            t.release("a", "m");
        }
        // 90 of 100 bytes used; 50 more fit once the first two uploads (at 0 s and 1 s) leave
        // the window, at 11 s.
        match t.admit("a", "m", 50, 3_000) {
            Err(Refusal::IncomingBytes { retry_after }) => assert_eq!(retry_after, 8.0),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(t.admit("a", "m", 50, 11_000), Ok(true));
        assert_eq!(t.uploaded("m"), 140);
    }

    #[test]
    fn uploads_over_150_mb_in_five_minutes_are_refused() {
        let t = Throttler::new(Throttle::Realistic, 4);
        let chunk = 4 * 1024 * 1024;
        for i in 0..37 {
            assert_eq!(t.admit("a", "m", chunk, i), Ok(true), "chunk {i}");
            t.release("a", "m");
        }
        assert!(matches!(
            t.admit("a", "m", chunk, 100),
            Err(Refusal::IncomingBytes { .. })
        ));
        assert_eq!(
            t.admit("a", "m", 0, 100),
            Ok(true),
            "reads are not limited by upload volume"
        );
        t.release("a", "m");
        assert_eq!(t.admit("a", "m", chunk, INCOMING_WINDOW_MS + 1), Ok(true));
    }

    #[test]
    fn off_admits_everything() {
        let t = Throttler::new(Throttle::Off, 1);
        for _ in 0..100 {
            assert_eq!(t.admit("a", "m", 0, 0), Ok(false));
        }
    }
}

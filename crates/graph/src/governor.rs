//! Per-mailbox request governor: what Outlook allows one app per mailbox, enforced client-side.
//!
//! - at most `max_in_flight` (4) requests in flight per mailbox;
//! - a request budget (token bucket) per mailbox, under Outlook's 10,000 per 10 minutes;
//! - a shared `Retry-After` fence per mailbox: when any request to a mailbox is told to wait,
//!   no request to that mailbox starts before the fence (fractional seconds honoured);
//! - jittered exponential backoff for transient failures (5xx, resets, truncated bodies).
//!
//! Each lane also keeps a throttle clock: the wall time during which at least one of its
//! requests waited on a fence or a backoff (concurrent waiters count once), so progress and
//! reports show the time throttling really cost.
//!
//! Time is tokio's clock (so tests use `start_paused`); jitter comes from an injectable seed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Limits applied to each mailbox (and to the tenant-wide directory traffic as one more gate).
#[derive(Debug, Clone)]
pub struct GovernorConfig {
    /// Concurrent requests per mailbox. Outlook allows 4.
    pub max_in_flight: usize,
    /// Sustained request budget per mailbox: `requests` per `window`.
    pub budget_requests: u32,
    pub budget_window: Duration,
    /// Requests that may start back to back before the sustained rate applies.
    pub budget_burst: u32,
}

impl Default for GovernorConfig {
    fn default() -> Self {
        // Outlook: 10,000 requests per 10 minutes per app per mailbox. Keep Corso's margin
        // (9,600) so a throttle-bound backup still runs at 96% of the bound.
        GovernorConfig {
            max_in_flight: 4,
            budget_requests: 9_600,
            budget_window: Duration::from_secs(600),
            budget_burst: 200,
        }
    }
}

/// Which gate a request passes through.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Requests about one mailbox (Outlook resources, mailbox settings). The key is the user
    /// as the caller names it, compared case-insensitively: name each mailbox the same way
    /// (by id) everywhere, or its limits would be counted twice.
    Mailbox(String),
    /// Tenant-wide requests (directory, provisioning, `$batch` across mailboxes).
    Tenant,
}

impl Lane {
    pub fn mailbox(user: &str) -> Lane {
        Lane::Mailbox(user.to_ascii_lowercase())
    }
}

/// Shared by every request of one client; cheap to clone.
#[derive(Debug, Clone)]
pub struct Governor {
    config: GovernorConfig,
    gates: Arc<Mutex<HashMap<Lane, Arc<Gate>>>>,
}

#[derive(Debug)]
struct Gate {
    slots: Arc<Semaphore>,
    state: Mutex<GateState>,
    clock: Mutex<ThrottleClock>,
}

/// Time a lane's requests spent held back by throttling.
#[derive(Debug, Default)]
struct ThrottleClock {
    /// Requests waiting right now.
    waiting: u32,
    /// When `waiting` last went from 0 to 1.
    since: Option<Instant>,
    /// Waits that ended.
    total: Duration,
}

/// Runs a lane's throttle clock while held; dropping it (also by cancellation) stops it.
struct Waiting(Arc<Gate>);

impl Waiting {
    fn start(gate: &Arc<Gate>) -> Waiting {
        let mut c = gate.clock.lock().expect("clock lock");
        if c.waiting == 0 {
            c.since = Some(Instant::now());
        }
        c.waiting += 1;
        Waiting(gate.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut c = self.0.clock.lock().expect("clock lock");
        c.waiting -= 1;
        if c.waiting == 0 {
            if let Some(since) = c.since.take() {
                c.total += Instant::now() - since;
            }
        }
    }
}

#[derive(Debug)]
struct GateState {
    /// No request may start before this instant.
    fence: Option<Instant>,
    /// Token bucket.
    tokens: f64,
    refilled_at: Instant,
}

/// Held while a request is in flight (including while its body streams).
#[derive(Debug)]
pub struct Permit {
    _slot: OwnedSemaphorePermit,
}

impl Governor {
    pub fn new(config: GovernorConfig) -> Governor {
        assert!(config.max_in_flight > 0, "max_in_flight must be positive");
        Governor {
            config,
            gates: Arc::default(),
        }
    }

    pub fn config(&self) -> &GovernorConfig {
        &self.config
    }

    fn gate(&self, lane: &Lane) -> Arc<Gate> {
        let mut gates = self.gates.lock().expect("governor lock");
        gates
            .entry(lane.clone())
            .or_insert_with(|| {
                Arc::new(Gate {
                    slots: Arc::new(Semaphore::new(self.config.max_in_flight)),
                    state: Mutex::new(GateState {
                        fence: None,
                        tokens: f64::from(self.config.budget_burst.max(1)),
                        refilled_at: Instant::now(),
                    }),
                    clock: Mutex::default(),
                })
            })
            .clone()
    }

    /// Wait for the lane's fence, a free slot and a budget token, in that order.
    pub async fn acquire(&self, lane: &Lane) -> Permit {
        self.acquire_weighted(lane, 1, 1).await
    }

    /// Like [`Governor::acquire`] for a request that occupies `slots` concurrency slots and
    /// costs `cost` budget tokens (a `$batch` whose items Outlook runs in parallel).
    pub async fn acquire_weighted(&self, lane: &Lane, slots: u32, cost: u32) -> Permit {
        let gate = self.gate(lane);
        let slots = slots.clamp(1, self.config.max_in_flight as u32);
        let cost = cost.clamp(1, self.config.budget_burst.max(1));
        loop {
            self.wait_for_fence(&gate).await;
            let slot = gate
                .slots
                .clone()
                .acquire_many_owned(slots)
                .await
                .expect("semaphore never closed");
            // A throttled response may have raised the fence while we queued for the slot.
            if self.fence_wait(&gate).is_some() {
                drop(slot);
                continue;
            }
            match self.take_tokens(&gate, cost) {
                None => return Permit { _slot: slot },
                Some(wait) => {
                    drop(slot);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Tell every request to `lane` to wait `delay` from now (never shortens a longer fence).
    pub fn fence(&self, lane: &Lane, delay: Duration) {
        let gate = self.gate(lane);
        let until = Instant::now() + delay;
        let mut st = gate.state.lock().expect("gate lock");
        if st.fence.is_none_or(|f| f < until) {
            st.fence = Some(until);
        }
    }

    /// How long until `lane`'s fence opens, if it is closed now.
    pub fn fenced_for(&self, lane: &Lane) -> Option<Duration> {
        self.fence_wait(&self.gate(lane))
    }

    fn fence_wait(&self, gate: &Gate) -> Option<Duration> {
        let st = gate.state.lock().expect("gate lock");
        let now = Instant::now();
        st.fence.filter(|f| *f > now).map(|f| f - now)
    }

    async fn wait_for_fence(&self, gate: &Arc<Gate>) {
        while let Some(wait) = self.fence_wait(gate) {
            let _waiting = Waiting::start(gate);
            tokio::time::sleep(wait).await;
        }
    }

    /// Sleeps `delay` before retrying a request of `lane`, on the lane's throttle clock.
    pub async fn back_off(&self, lane: &Lane, delay: Duration) {
        let _waiting = Waiting::start(&self.gate(lane));
        tokio::time::sleep(delay).await;
    }

    /// Wall time `lane`'s requests have waited on fences and backoffs so far (time during
    /// which several waited counts once), including a wait going on now.
    pub fn throttle_wait(&self, lane: &Lane) -> Duration {
        let gate = self.gate(lane);
        let c = gate.clock.lock().expect("clock lock");
        c.total + c.since.map_or(Duration::ZERO, |s| Instant::now() - s)
    }

    /// Whether a request of `lane` is waiting on a fence or a backoff right now.
    pub fn is_throttled(&self, lane: &Lane) -> bool {
        self.gate(lane).clock.lock().expect("clock lock").waiting > 0
    }

    /// Take `cost` budget tokens; `Some(wait)` when the bucket holds too few.
    fn take_tokens(&self, gate: &Gate, cost: u32) -> Option<Duration> {
        let cost = f64::from(cost);
        let rate = f64::from(self.config.budget_requests) / self.config.budget_window.as_secs_f64();
        let burst = f64::from(self.config.budget_burst.max(1));
        let mut st = gate.state.lock().expect("gate lock");
        let now = Instant::now();
        let elapsed = (now - st.refilled_at).as_secs_f64();
        st.tokens = (st.tokens + elapsed * rate).min(burst);
        st.refilled_at = now;
        if st.tokens >= cost {
            st.tokens -= cost;
            None
        } else {
            Some(Duration::from_secs_f64((cost - st.tokens) / rate))
        }
    }
}

/// Parse a `Retry-After` value: delay-seconds (Graph sends fractions such as `2.128`) or an
/// HTTP-date, relative to `now`. Dates in the past mean "retry now" (zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::from(date.with_timezone(&chrono::Utc));
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Jittered exponential backoff: attempt `n` (0-based) waits a uniformly random time in
/// `[d/2, d]` where `d = min(max, base * 2^n)`, so waits grow but never synchronise.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    /// Attempts in total (first try included) before a request that keeps failing
    /// transiently (5xx, resets, truncated bodies) gives up.
    pub max_attempts: u32,
    /// How long one request may keep being refused for throttling (429, or 503 with
    /// Retry-After) before it gives up. Refusals do not count as attempts: the service did
    /// not act and said when to come back, and under a budget tighter than the governor's
    /// the waiting requests of a mailbox contend for each freed slot, so one request can be
    /// refused many times in a row while the mailbox as a whole runs at its full budget.
    pub max_throttled: Duration,
    rng: Arc<Mutex<StdRng>>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(60), 8)
    }
}

impl Backoff {
    pub fn new(base: Duration, max: Duration, max_attempts: u32) -> Backoff {
        Backoff {
            base,
            max,
            max_attempts,
            max_throttled: Duration::from_secs(30 * 60),
            rng: Arc::new(Mutex::new(StdRng::from_entropy())),
        }
    }

    /// Deterministic jitter for tests.
    pub fn with_seed(mut self, seed: u64) -> Backoff {
        self.rng = Arc::new(Mutex::new(StdRng::seed_from_u64(seed)));
        self
    }

    /// The upper bound of the wait before retry number `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(30));
        self.base.saturating_mul(factor).min(self.max)
    }

    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let fraction: f64 = self.rng.lock().expect("rng lock").gen_range(0.5..=1.0);
        ceiling.mul_f64(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn retry_after_seconds_fractional_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37Z
        assert_eq!(
            parse_retry_after("2.128", now),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(
            parse_retry_after(" 30 ", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("NaN", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_within_bounds_and_is_deterministic_with_a_seed() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2), 5).with_seed(1);
        for attempt in 0..10 {
            let ceiling = b.ceiling(attempt);
            assert_eq!(
                ceiling,
                Duration::from_millis(100 * 2u64.pow(attempt)).min(Duration::from_secs(2))
            );
            for _ in 0..50 {
                let d = b.delay(attempt);
                assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d:?}");
            }
        }
        let a = Backoff::default().with_seed(9);
        let c = Backoff::default().with_seed(9);
        assert_eq!(
            (0..5).map(|n| a.delay(n)).collect::<Vec<_>>(),
            (0..5).map(|n| c.delay(n)).collect::<Vec<_>>()
        );
        assert_eq!(
            Backoff::default().ceiling(u32::MAX),
            Duration::from_secs(60)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_max_in_flight_per_mailbox_and_mailboxes_are_independent() {
        let gov = Governor::new(GovernorConfig::default());
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (gov, in_flight, peak) = (gov.clone(), in_flight.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                let _p = gov.acquire(&Lane::mailbox("A@x")).await;
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        // Another mailbox is not blocked by A's four slots.
        let started = Instant::now();
        let _other = gov.acquire(&Lane::mailbox("b@x")).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn fence_holds_every_request_to_that_mailbox_only() {
        let gov = Governor::new(GovernorConfig::default());
        let a = Lane::mailbox("a@x");
        gov.fence(&a, Duration::from_secs_f64(2.128));
        gov.fence(&a, Duration::from_secs(1)); // a shorter fence never shortens the longer one
        let t0 = Instant::now();
        let _b = gov.acquire(&Lane::mailbox("B@X")).await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        let _p = gov.acquire(&Lane::mailbox("A@X")).await; // case-insensitive key
        assert_eq!(t0.elapsed(), Duration::from_millis(2128));
        assert_eq!(gov.fenced_for(&a), None);
    }

    #[tokio::test(start_paused = true)]
    async fn fence_raised_while_queued_for_a_slot_is_honoured() {
        let config = GovernorConfig {
            max_in_flight: 1,
            ..GovernorConfig::default()
        };
        let gov = Governor::new(config);
        let lane = Lane::mailbox("a");
        let first = gov.acquire(&lane).await;
        let t0 = Instant::now();
        let waiter = {
            let (gov, lane) = (gov.clone(), lane.clone());
            tokio::spawn(async move {
                let _p = gov.acquire(&lane).await;
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The in-flight request comes back 429 with Retry-After: 3 and releases its slot.
        gov.fence(&lane, Duration::from_secs(3));
        drop(first);
        let started = waiter.await.unwrap();
        assert_eq!(started - t0, Duration::from_millis(3100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_weighted_request_takes_every_slot_it_names() {
        let gov = Governor::new(GovernorConfig::default());
        let lane = Lane::mailbox("a");
        let batch = gov.acquire_weighted(&lane, 20, 20).await; // clamped to 4 slots
        let single = {
            let (gov, lane) = (gov.clone(), lane.clone());
            tokio::spawn(async move {
                let _p = gov.acquire(&lane).await;
                Instant::now()
            })
        };
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(batch);
        assert_eq!(single.await.unwrap() - t0, Duration::from_millis(50));
    }

    #[tokio::test(start_paused = true)]
    async fn budget_limits_the_sustained_rate() {
        let config = GovernorConfig {
            max_in_flight: 4,
            budget_requests: 10,
            budget_window: Duration::from_secs(10),
            budget_burst: 5,
        };
        let gov = Governor::new(config);
        let lane = Lane::Tenant;
        let t0 = Instant::now();
        for _ in 0..5 {
            drop(gov.acquire(&lane).await);
        }
        assert_eq!(t0.elapsed(), Duration::ZERO, "the burst starts at once");
        for _ in 0..10 {
            drop(gov.acquire(&lane).await);
        }
        // Ten more at one per second.
        let elapsed = t0.elapsed();
        assert!(
            elapsed >= Duration::from_millis(9_990) && elapsed <= Duration::from_millis(10_010),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttle_clock_counts_wall_time_once_for_concurrent_waiters() {
        let g = Governor::new(GovernorConfig::default());
        let a = Lane::mailbox("a");
        let b = Lane::mailbox("b");
        assert_eq!(g.throttle_wait(&a), Duration::ZERO);
        g.fence(&a, Duration::from_millis(2000));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (g, a) = (g.clone(), a.clone());
                tokio::spawn(async move { drop(g.acquire(&a).await) })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(g.is_throttled(&a));
        assert_eq!(g.throttle_wait(&a), Duration::from_millis(500));
        for w in waiters {
            w.await.unwrap();
        }
        assert!(!g.is_throttled(&a));
        assert_eq!(g.throttle_wait(&a), Duration::from_millis(2000));
        g.back_off(&a, Duration::from_millis(300)).await;
        assert_eq!(g.throttle_wait(&a), Duration::from_millis(2300));
        // Unthrottled requests and other mailboxes do not run the clock.
        drop(g.acquire(&a).await);
        assert_eq!(g.throttle_wait(&a), Duration::from_millis(2300));
        assert_eq!(g.throttle_wait(&b), Duration::ZERO);
    }
}

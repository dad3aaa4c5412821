//! Injected time and randomness, so tests are deterministic.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::{OsRng, StdRng};
use rand::{RngCore, SeedableRng};

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// Starts at `ms`.
    pub fn new(ms: i64) -> Self {
        ManualClock(AtomicI64::new(ms))
    }

    /// Moves the clock forward.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The random source for keys, salts and seeds. Production uses the operating system's
/// CSPRNG; a seeded generator is for single-process tests only, because two processes
/// with the same seed would derive the same pack keys.
#[derive(Clone)]
pub struct Rng(Arc<Mutex<Box<dyn RngCore + Send>>>);

impl Rng {
    /// The operating system's CSPRNG.
    pub fn os() -> Self {
        Rng(Arc::new(Mutex::new(Box::new(OsRng))))
    }

    /// A deterministic generator (tests only).
    pub fn seeded(seed: u64) -> Self {
        Rng(Arc::new(Mutex::new(Box::new(StdRng::seed_from_u64(seed)))))
    }

    pub(crate) fn bytes<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        self.0.lock().expect("rng lock").fill_bytes(&mut out);
        out
    }

    pub(crate) fn below(&self, n: u64) -> u64 {
        self.0.lock().expect("rng lock").next_u64() % n.max(1)
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut dyn RngCore) -> T) -> T {
        let mut guard = self.0.lock().expect("rng lock");
        f(&mut **guard)
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::os()
    }
}

impl fmt::Debug for Rng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rng(..)")
    }
}

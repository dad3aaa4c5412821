//! Fault injection: a random fraction of Graph requests (and any explicitly scheduled ones)
//! fail the way Graph fails in production.

use crate::config::FaultKind;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};
use std::collections::VecDeque;
use std::sync::Mutex;

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct ScheduledFault {
    pub kind: FaultKind,
    /// Only requests whose path and query contain this text (any request when absent).
    #[serde(default)]
    pub path_contains: Option<String>,
}

#[derive(Debug)]
struct State {
    rate: f64,
    kinds: Vec<FaultKind>,
    rng: StdRng,
    scheduled: VecDeque<ScheduledFault>,
}

#[derive(Debug)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    pub fn new(rate: f64, kinds: Vec<FaultKind>, seed: u64) -> Self {
        Faults {
            state: Mutex::new(State {
                rate,
                kinds,
                rng: StdRng::seed_from_u64(seed ^ 0xFA17),
                scheduled: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set(&self, rate: f64, kinds: Vec<FaultKind>) {
        let mut s = self.lock();
        s.rate = rate.clamp(0.0, 1.0);
        s.kinds = kinds;
    }

    pub fn settings(&self) -> (f64, Vec<FaultKind>) {
        let s = self.lock();
        (s.rate, s.kinds.clone())
    }

    /// Queues faults for the next matching requests, ahead of the random ones.
    pub fn schedule(&self, fault: ScheduledFault, count: usize) {
        let mut s = self.lock();
        for _ in 0..count {
            s.scheduled.push_back(fault.clone());
        }
    }

    /// The fault for this request, if any. `delta_with_token` says whether an expired sync
    /// state can apply; `can_reset` whether the connection can be reset.
    pub fn pick(
        &self,
        path_and_query: &str,
        delta_with_token: bool,
        can_reset: bool,
    ) -> Option<FaultKind> {
        let applies = |k: &FaultKind| match k {
            FaultKind::DeltaTokenExpired => delta_with_token,
            FaultKind::ConnectionReset => can_reset,
            _ => true,
        };
        let mut s = self.lock();
        if let Some(i) = s.scheduled.iter().position(|f| {
            applies(&f.kind)
                && f.path_contains
                    .as_deref()
                    .is_none_or(|p| path_and_query.contains(p))
        }) {
            return s.scheduled.remove(i).map(|f| f.kind);
        }
        if s.rate <= 0.0 {
            return None;
        }
        let roll: f64 = s.rng.gen();
        if roll >= s.rate {
            return None;
        }
        let candidates: Vec<FaultKind> = s.kinds.iter().copied().filter(applies).collect();
        if candidates.is_empty() {
            return None;
        }
        let i = s.rng.gen_range(0..candidates.len());
        Some(candidates[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_faults_match_paths_and_run_out() {
        let f = Faults::new(0.0, FaultKind::ALL.to_vec(), 1);
        f.schedule(
            ScheduledFault {
                kind: FaultKind::GatewayTimeout,
                path_contains: Some("/messages".into()),
            },
            2,
        );
        assert_eq!(f.pick("/v1.0/users", false, true), None);
        assert_eq!(
            f.pick("/v1.0/users/x/messages", false, true),
            Some(FaultKind::GatewayTimeout)
        );
        assert_eq!(
            f.pick("/v1.0/users/x/messages", false, true),
            Some(FaultKind::GatewayTimeout)
        );
        assert_eq!(f.pick("/v1.0/users/x/messages", false, true), None);
    }

    #[test]
    fn rate_is_roughly_honoured_and_inapplicable_kinds_skipped() {
        let f = Faults::new(
            0.25,
            vec![FaultKind::Unavailable, FaultKind::DeltaTokenExpired],
            9,
        );
        let hits: Vec<_> = (0..4000)
            .filter_map(|_| f.pick("/x", false, true))
            .collect();
        assert!((800..1200).contains(&hits.len()), "{}", hits.len());
        assert!(hits.iter().all(|k| *k == FaultKind::Unavailable));
    }
}

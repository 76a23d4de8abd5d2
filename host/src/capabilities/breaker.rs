//! Circuit breakers for `services.call`, one per callee plugin: after
//! `breaker_failures` consecutive failures (trap, timeout, unavailable, or a 5xx answer)
//! calls fail fast with `unavailable` for `breaker_cooldown_ms`; then one probe call is
//! let through (half-open) and its outcome closes or re-opens the circuit.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use dashmap::DashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is in flight; everyone else fails fast.
    HalfOpen,
}

impl State {
    /// 0 closed, 1 open, 2 half-open (the metric's encoding).
    pub fn code(&self) -> i64 {
        match self {
            State::Closed { .. } => 0,
            State::Open { .. } => 1,
            State::HalfOpen => 2,
        }
    }
}

pub struct Breakers {
    failures: u32,
    cooldown: Duration,
    circuits: DashMap<String, Mutex<State>>,
}

impl Breakers {
    pub fn new(failures: u32, cooldown: Duration) -> Self {
        Self {
            failures: failures.max(1),
            cooldown,
            circuits: DashMap::new(),
        }
    }

    /// May a call to `callee` go ahead now? (Moves an expired open circuit to half-open
    /// and lets exactly that caller probe.)
    pub fn allow(&self, callee: &str) -> bool {
        let entry = self
            .circuits
            .entry(callee.to_string())
            .or_insert_with(|| Mutex::new(State::Closed { failures: 0 }));
        let Ok(mut state) = entry.lock() else {
            return true;
        };
        match *state {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    /// Records the outcome of a call that `allow` let through; returns the new state.
    pub fn record(&self, callee: &str, ok: bool) -> State {
        let entry = self
            .circuits
            .entry(callee.to_string())
            .or_insert_with(|| Mutex::new(State::Closed { failures: 0 }));
        let Ok(mut state) = entry.lock() else {
            return State::Closed { failures: 0 };
        };
        *state = match (*state, ok) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 < self.failures => State::Closed {
                failures: failures + 1,
            },
            (_, false) => State::Open {
                until: Instant::now() + self.cooldown,
            },
        };
        *state
    }

    /// Callees whose circuit is not closed (for `/ready`).
    pub fn open(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .circuits
            .iter()
            .filter(|e| e.value().lock().map(|s| s.code() != 0).unwrap_or(false))
            .map(|e| e.key().clone())
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_then_probes() {
        let b = Breakers::new(2, Duration::from_millis(20));
        assert!(b.allow("c"));
        assert_eq!(b.record("c", false).code(), 0);
        assert!(b.allow("c"));
        assert_eq!(b.record("c", false).code(), 1, "second failure opens");
        assert!(!b.allow("c"), "open circuits fail fast");
        std::thread::sleep(Duration::from_millis(25));
        assert!(b.allow("c"), "one probe after the cool-down");
        assert!(!b.allow("c"), "only one probe");
        assert_eq!(b.open(), vec!["c".to_string()]);
        assert_eq!(b.record("c", true).code(), 0);
        assert!(b.allow("c"));
        assert!(b.open().is_empty());
    }

    #[test]
    fn a_failed_probe_reopens() {
        let b = Breakers::new(1, Duration::from_millis(10));
        assert!(b.allow("c"));
        b.record("c", false);
        std::thread::sleep(Duration::from_millis(15));
        assert!(b.allow("c"));
        assert_eq!(b.record("c", false).code(), 1);
        assert!(!b.allow("c"));
    }
}

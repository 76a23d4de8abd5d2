//! Circuit breakers for `services.call`, one per callee plugin: after
//! `breaker_failures` consecutive failures (trap, timeout, unavailable, or a 5xx answer)
//! calls fail fast with `unavailable` for `breaker_cooldown_ms`; then one probe call is
//! let through (half-open) and its outcome closes or re-opens the circuit. A probe that
//! never reports (its caller was dropped mid-call) does not hold the circuit half-open
//! for good: after another cool-down the next caller probes instead.

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
    /// One probe is in flight since `since`; everyone else fails fast.
    HalfOpen {
        since: Instant,
    },
}

impl State {
    /// 0 closed, 1 open, 2 half-open (the metric's encoding).
    pub fn code(&self) -> i64 {
        match self {
            State::Closed { .. } => 0,
            State::Open { .. } => 1,
            State::HalfOpen { .. } => 2,
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

    /// May a call to `callee` go ahead now? Moves an expired open circuit (or a probe
    /// that has not reported for a cool-down) to half-open and lets exactly that caller
    /// probe. The second value is the new state when this call changed it (for the
    /// `circuit_state` metric).
    pub fn allow(&self, callee: &str) -> (bool, Option<State>) {
        self.allow_at(callee, Instant::now())
    }

    /// [`Breakers::allow`] at `now`.
    fn allow_at(&self, callee: &str, now: Instant) -> (bool, Option<State>) {
        let entry = self
            .circuits
            .entry(callee.to_string())
            .or_insert_with(|| Mutex::new(State::Closed { failures: 0 }));
        let Ok(mut state) = entry.lock() else {
            return (true, None);
        };
        match *state {
            State::Closed { .. } => (true, None),
            State::Open { until } if now >= until => {
                *state = State::HalfOpen { since: now };
                (true, Some(*state))
            }
            State::HalfOpen { since } if now >= since + self.cooldown => {
                *state = State::HalfOpen { since: now };
                (true, Some(*state))
            }
            State::Open { .. } | State::HalfOpen { .. } => (false, None),
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
        assert!(b.allow("c").0);
        assert_eq!(b.record("c", false).code(), 0);
        assert!(b.allow("c").0);
        assert_eq!(b.record("c", false).code(), 1, "second failure opens");
        assert!(!b.allow("c").0, "open circuits fail fast");
        std::thread::sleep(Duration::from_millis(25));
        let (probe, state) = b.allow("c");
        assert!(probe, "one probe after the cool-down");
        assert_eq!(state.map(|s| s.code()), Some(2), "half-open is reported");
        assert!(!b.allow("c").0, "only one probe");
        assert_eq!(b.open(), vec!["c".to_string()]);
        assert_eq!(b.record("c", true).code(), 0);
        assert!(b.allow("c").0);
        assert!(b.open().is_empty());
    }

    #[test]
    fn a_failed_probe_reopens() {
        let b = Breakers::new(1, Duration::from_millis(10));
        assert!(b.allow("c").0);
        b.record("c", false);
        std::thread::sleep(Duration::from_millis(15));
        assert!(b.allow("c").0);
        assert_eq!(b.record("c", false).code(), 1);
        assert!(!b.allow("c").0);
    }

    #[test]
    fn a_probe_that_never_reports_does_not_hold_the_circuit() {
        let cooldown = Duration::from_secs(10);
        let b = Breakers::new(1, cooldown);
        assert!(b.allow("c").0);
        b.record("c", false);
        let later = Instant::now() + cooldown + Duration::from_secs(1);
        assert!(b.allow_at("c", later).0, "the probe");
        // The probe's caller is dropped: no record() ever comes.
        assert!(
            !b.allow_at("c", later + cooldown / 2).0,
            "while the probe may still report"
        );
        let (again, state) = b.allow_at("c", later + cooldown);
        assert!(again, "a cool-down later the next caller probes");
        assert_eq!(state.map(|s| s.code()), Some(2));
        assert_eq!(b.record("c", true).code(), 0);
        assert!(b.allow("c").0);
    }
}

//! Brute-force limits that hold under concurrency: login failures, OTP codes and phone
//! proofs all go through [`Attempt`].
//!
//! The rule: a try is *counted* first, with one atomic store operation that returns the
//! count including this try (`UPDATE … SET attempts = attempts + 1 … RETURNING`, or an
//! upsert), and only a try whose own count is within the limit gets to compare the
//! secret. N tries, however they overlap, receive N distinct counts, so at most `max` of
//! them ever compare. The older shape (read the count, compare, then write `count + 1`)
//! let every overlapping try read the same count and compare.
//!
//! The steps are a small state machine so the unit tests below can interleave several
//! tries step by step against an in-memory store, every schedule, deterministically;
//! the handlers run the very same machine with [`Attempt::run`].

/// How a try ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The secret matched within the limit and the success was recorded.
    Accepted,
    /// The secret did not match; the try was counted.
    Rejected,
    /// Refused without comparing: the limit was already used up by earlier counted tries,
    /// there is no live secret, or a concurrent try consumed it first.
    Refused,
}

/// The store side of one limited secret. Every method is one atomic operation; nothing
/// is read in one call and written back in another.
pub trait Counter {
    /// What a try compares against (a code's hash), carried from `count` to the later
    /// steps so they act on that same secret and not on a replacement.
    type Secret: Clone;
    type Error;

    /// Counts this try; the secret and the count *including* this try, or `None` when
    /// there is nothing to try against (no code, or it expired).
    fn count(&self) -> Result<Option<(Self::Secret, i64)>, Self::Error>;
    /// Compares the offered secret (argon2, in the host). Only called for a try whose
    /// count is within the limit.
    fn compare(&self, secret: &Self::Secret) -> Result<bool, Self::Error>;
    /// The limit is used up: a code is voided; a login counter simply stays.
    fn exhaust(&self, secret: &Self::Secret) -> Result<(), Self::Error>;
    /// A right secret within the limit: a code is consumed, a login counter cleared.
    /// False when a concurrent try consumed or voided it first (then this try is refused).
    fn succeed(&self, secret: &Self::Secret) -> Result<bool, Self::Error>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step<S> {
    Count,
    Compare(S, i64),
    Exhaust(S, Outcome),
    Succeed(S),
    Done(Outcome),
}

/// One try against a [`Counter`], at most `max` compared per secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt<S> {
    max: i64,
    step: Step<S>,
}

impl<S: Clone> Attempt<S> {
    pub fn new(max: i64) -> Self {
        Attempt {
            max: max.max(1),
            step: Step::Count,
        }
    }

    /// The outcome once the try is over.
    pub fn outcome(&self) -> Option<Outcome> {
        match self.step {
            Step::Done(o) => Some(o),
            _ => None,
        }
    }

    /// Runs the next step (one store operation or the comparison).
    pub fn advance<C: Counter<Secret = S>>(&mut self, c: &C) -> Result<(), C::Error> {
        let step = std::mem::replace(&mut self.step, Step::Done(Outcome::Refused));
        self.step = match step {
            Step::Count => match c.count()? {
                None => Step::Done(Outcome::Refused),
                Some((secret, n)) if n > self.max => Step::Exhaust(secret, Outcome::Refused),
                Some((secret, n)) => Step::Compare(secret, n),
            },
            Step::Compare(secret, n) => {
                if c.compare(&secret)? {
                    Step::Succeed(secret)
                } else if n >= self.max {
                    Step::Exhaust(secret, Outcome::Rejected)
                } else {
                    Step::Done(Outcome::Rejected)
                }
            }
            Step::Exhaust(secret, outcome) => {
                c.exhaust(&secret)?;
                Step::Done(outcome)
            }
            Step::Succeed(secret) => Step::Done(if c.succeed(&secret)? {
                Outcome::Accepted
            } else {
                Outcome::Refused
            }),
            done @ Step::Done(_) => done,
        };
        Ok(())
    }

    /// Runs every step in order: what a handler does.
    pub fn run<C: Counter<Secret = S>>(mut self, c: &C) -> Result<Outcome, C::Error> {
        loop {
            if let Some(o) = self.outcome() {
                return Ok(o);
            }
            self.advance(c)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::convert::Infallible;

    /// An in-memory code: a generation number stands for its hash.
    #[derive(Debug, Clone, Default, PartialEq)]
    struct Store {
        /// `Some((generation, attempts))` while a code is live.
        code: Option<(u32, i64)>,
        /// Comparisons made, and by which tries.
        compared: Vec<usize>,
        /// Tries counted in total.
        counted: i64,
    }

    /// One try's view of the shared store: which try it is and whether it guesses right.
    struct View<'a> {
        store: &'a RefCell<Store>,
        who: usize,
        right: bool,
    }

    impl Counter for View<'_> {
        type Secret = u32;
        type Error = Infallible;
        fn count(&self) -> Result<Option<(u32, i64)>, Infallible> {
            let mut s = self.store.borrow_mut();
            s.counted += 1;
            Ok(s.code.as_mut().map(|(generation, attempts)| {
                *attempts += 1;
                (*generation, *attempts)
            }))
        }
        fn compare(&self, _: &u32) -> Result<bool, Infallible> {
            self.store.borrow_mut().compared.push(self.who);
            Ok(self.right)
        }
        fn exhaust(&self, generation: &u32) -> Result<(), Infallible> {
            let mut s = self.store.borrow_mut();
            if s.code.is_some_and(|(g, _)| g == *generation) {
                s.code = None;
            }
            Ok(())
        }
        fn succeed(&self, generation: &u32) -> Result<bool, Infallible> {
            let mut s = self.store.borrow_mut();
            let mine = s.code.is_some_and(|(g, _)| g == *generation);
            if mine {
                s.code = None;
            }
            Ok(mine)
        }
    }

    /// Every interleaving of the tries' steps, depth first; `check` sees each finished
    /// schedule's store and outcomes. Returns the number of schedules.
    fn every_schedule(
        max: i64,
        guesses: &[bool],
        check: &mut dyn FnMut(&Store, &[Outcome]),
    ) -> usize {
        fn go(
            store: Store,
            tries: Vec<Attempt<u32>>,
            guesses: &[bool],
            check: &mut dyn FnMut(&Store, &[Outcome]),
        ) -> usize {
            let open: Vec<usize> = (0..tries.len())
                .filter(|&i| tries[i].outcome().is_none())
                .collect();
            if open.is_empty() {
                let outcomes: Vec<Outcome> = tries.iter().filter_map(|t| t.outcome()).collect();
                check(&store, &outcomes);
                return 1;
            }
            let mut n = 0;
            for i in open {
                let cell = RefCell::new(store.clone());
                let mut next = tries.clone();
                let view = View {
                    store: &cell,
                    who: i,
                    right: guesses[i],
                };
                let Ok(()) = next[i].advance(&view);
                n += go(cell.into_inner(), next, guesses, check);
            }
            n
        }
        let store = Store {
            code: Some((1, 0)),
            ..Store::default()
        };
        go(
            store,
            vec![Attempt::new(max); guesses.len()],
            guesses,
            check,
        )
    }

    #[test]
    fn two_overlapping_wrong_guesses_use_two_tries() {
        // Two wrong guesses with one try left between them: whatever the order of
        // their steps, only one compares and the code ends void.
        let mut seen = 0;
        let schedules = every_schedule(1, &[false, false], &mut |s, outcomes| {
            seen += 1;
            assert_eq!(s.counted, 2);
            assert_eq!(s.compared.len(), 1, "{s:?}");
            assert_eq!(s.code, None, "{s:?}");
            assert!(outcomes.iter().all(|o| *o != Outcome::Accepted));
        });
        assert_eq!(schedules, seen);
        assert!(schedules > 2, "the steps really interleave: {schedules}");
    }

    #[test]
    fn parallel_wrong_guesses_never_compare_more_than_the_limit() {
        every_schedule(3, &[false; 5], &mut |s, outcomes| {
            assert_eq!(s.counted, 5, "every try is counted");
            assert_eq!(s.compared.len(), 3, "{s:?}");
            assert_eq!(s.code, None, "three wrong tries void the code");
            assert_eq!(
                outcomes.iter().filter(|o| **o == Outcome::Rejected).count(),
                3
            );
            assert_eq!(
                outcomes.iter().filter(|o| **o == Outcome::Refused).count(),
                2
            );
        });
    }

    #[test]
    fn a_right_guess_counts_as_a_try_and_wins_only_within_the_limit() {
        // Three wrong and one right guess, interleaved every way: at most three
        // comparisons; the right one wins exactly when it compared (its own count was
        // within the limit and no wrong try voided the code first), otherwise it is
        // refused like any try past the limit.
        let guesses = [false, false, false, true];
        let (mut wins, mut refusals) = (0, 0);
        every_schedule(3, &guesses, &mut |s, outcomes| {
            assert!(s.compared.len() <= 3, "{s:?}");
            assert_eq!(s.counted, 4);
            let won = outcomes[3] == Outcome::Accepted;
            assert!(!won || s.compared.contains(&3), "{s:?} {outcomes:?}");
            assert_eq!(s.code, None, "the code is consumed or void: {s:?}");
            assert!(outcomes[..3].iter().all(|o| *o != Outcome::Accepted));
            if won {
                wins += 1;
            } else {
                refusals += 1;
            }
        });
        assert!(wins > 0 && refusals > 0, "{wins} {refusals}");
    }

    #[test]
    fn after_the_limit_the_right_guess_is_refused() {
        let cell = RefCell::new(Store {
            code: Some((1, 0)),
            ..Store::default()
        });
        let view = |who, right| View {
            store: &cell,
            who,
            right,
        };
        for who in 0..3 {
            let Ok(o) = Attempt::new(3).run(&view(who, false));
            assert_eq!(o, Outcome::Rejected);
        }
        let Ok(o) = Attempt::new(3).run(&view(3, true));
        assert_eq!(o, Outcome::Refused);
        assert_eq!(cell.borrow().compared.len(), 3);
    }

    #[test]
    fn a_counter_that_stays_after_the_limit_keeps_refusing() {
        // A login counter is never voided: once `max` tries are counted, every later try
        // (even with the right password) is refused without comparing, and the 5th wrong
        // one is still an ordinary rejection.
        struct Logins(RefCell<(i64, usize)>, bool);
        impl Counter for Logins {
            type Secret = ();
            type Error = Infallible;
            fn count(&self) -> Result<Option<((), i64)>, Infallible> {
                let mut s = self.0.borrow_mut();
                s.0 += 1;
                Ok(Some(((), s.0)))
            }
            fn compare(&self, _: &()) -> Result<bool, Infallible> {
                self.0.borrow_mut().1 += 1;
                Ok(self.1)
            }
            fn exhaust(&self, _: &()) -> Result<(), Infallible> {
                Ok(())
            }
            fn succeed(&self, _: &()) -> Result<bool, Infallible> {
                self.0.borrow_mut().0 = 0;
                Ok(true)
            }
        }
        let wrong = Logins(RefCell::new((0, 0)), false);
        for _ in 0..5 {
            assert_eq!(Attempt::new(5).run(&wrong), Ok(Outcome::Rejected));
        }
        let right = Logins(RefCell::new(*wrong.0.borrow()), true);
        assert_eq!(Attempt::new(5).run(&right), Ok(Outcome::Refused));
        assert_eq!(right.0.borrow().1, 5, "the right password was not compared");
        // Within the limit, a right password clears the count.
        let fresh = Logins(RefCell::new((4, 4)), true);
        assert_eq!(Attempt::new(5).run(&fresh), Ok(Outcome::Accepted));
        assert_eq!(fresh.0.borrow().0, 0);
    }

    #[test]
    fn the_schedule_explorer_catches_check_then_act() {
        // The old shape, modelled with the same explorer: read the count, compare, then
        // write `read + 1`. Some schedule lets both of two wrong guesses compare with a
        // single try left, which is what the atomic count above rules out.
        #[derive(Clone)]
        enum Old {
            Read,
            Compare(i64),
            Write(i64),
            Done,
        }
        fn explore(attempts: i64, tries: Vec<Old>, compared: usize, worst: &mut usize) {
            let open: Vec<usize> = (0..tries.len())
                .filter(|&i| !matches!(tries[i], Old::Done))
                .collect();
            if open.is_empty() {
                *worst = (*worst).max(compared);
                return;
            }
            for i in open {
                let mut next = tries.clone();
                let (mut a, mut c) = (attempts, compared);
                next[i] = match tries[i] {
                    Old::Read if attempts >= 1 => Old::Done,
                    Old::Read => Old::Compare(attempts),
                    Old::Compare(n) => {
                        c += 1;
                        Old::Write(n)
                    }
                    Old::Write(n) => {
                        a = n + 1;
                        Old::Done
                    }
                    Old::Done => Old::Done,
                };
                explore(a, next, c, worst);
            }
        }
        let mut worst = 0;
        explore(0, vec![Old::Read, Old::Read], 0, &mut worst);
        assert_eq!(worst, 2, "check-then-act overruns a limit of 1");
    }
}

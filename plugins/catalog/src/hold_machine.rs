//! The stock hold's state machine, pure so every case is unit-tested natively.
//!
//! A hold owns the units a checkout took. Exactly one of four things ends it:
//!
//! ```text
//!            order.created / expiry finds the order
//!   held ───────────────────────────────────────────▶ confirmed ──┐
//!    │  \                                                          │ order.cancelled
//!    │   \ order.cancelled                                         ▼  (units back)
//!    │    └─────────────────────────────────────────────────────▶ returned
//!    │ release / expiry finds no order (units back)                ▲
//!    ▼                                                             │ order.cancelled
//!   released ──────────────────────────────────────────────────────┘ (units already back)
//!    │ order.created (the order committed after all: units taken again, logged)
//!    └──────────────────────────────────────────────────────▶ confirmed
//! ```
//!
//! Each step is applied with a conditional `UPDATE ... WHERE status = <from>` in the
//! same transaction as the unit movement, so a step happens at most once whatever
//! races it; anything not in the table changes nothing.

/// Where a hold is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldStatus {
    /// Units taken for a checkout whose order is not known yet.
    Held,
    /// The order exists; the units are in it.
    Confirmed,
    /// No order came (failed checkout or expiry); the units went back.
    Released,
    /// The order was cancelled; the units went back.
    Returned,
}

impl HoldStatus {
    pub const ALL: [HoldStatus; 4] = [
        HoldStatus::Held,
        HoldStatus::Confirmed,
        HoldStatus::Released,
        HoldStatus::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Held => "held",
            HoldStatus::Confirmed => "confirmed",
            HoldStatus::Released => "released",
            HoldStatus::Returned => "returned",
        }
    }

    pub fn parse(s: &str) -> Option<HoldStatus> {
        HoldStatus::ALL.into_iter().find(|h| h.as_str() == s)
    }
}

/// What happened to a hold's order (or checkout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `order.created` carried the hold.
    OrderCreated,
    /// The expiry found the order (orders answered 200 for the hold).
    ExpiredWithOrder,
    /// The expiry found no order (orders answered 404 for the hold).
    ExpiredWithoutOrder,
    /// `order.cancelled` carried the hold.
    OrderCancelled,
    /// The checkout that took the hold failed and gave it back.
    Release,
}

/// What a step does with the hold's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Units {
    /// They stay where they are.
    Keep,
    /// They go back to the products' stock.
    PutBack,
    /// They were put back but the order exists after all: take them again, as far as
    /// the stock allows.
    TakeAgain,
}

/// The step `trigger` makes from `from`, or `None` when it changes nothing.
pub fn step(from: HoldStatus, trigger: Trigger) -> Option<(HoldStatus, Units)> {
    use HoldStatus::*;
    use Trigger::*;
    match (from, trigger) {
        (Held, OrderCreated | ExpiredWithOrder) => Some((Confirmed, Units::Keep)),
        (Released, OrderCreated) => Some((Confirmed, Units::TakeAgain)),
        (Held, ExpiredWithoutOrder | Release) => Some((Released, Units::PutBack)),
        (Held | Confirmed, OrderCancelled) => Some((Returned, Units::PutBack)),
        // An expiry released the units before the order's events arrived: the order is
        // cancelled, so they stay back; `returned` keeps a late `order.created` from
        // taking them again.
        (Released, OrderCancelled) => Some((Returned, Units::Keep)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HoldStatus::*;
    use Trigger::*;

    const TRIGGERS: [Trigger; 5] = [
        OrderCreated,
        ExpiredWithOrder,
        ExpiredWithoutOrder,
        OrderCancelled,
        Release,
    ];

    #[test]
    fn statuses_round_trip() {
        for s in HoldStatus::ALL {
            assert_eq!(HoldStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(HoldStatus::parse("expired"), None);
        assert_eq!(HoldStatus::parse("HELD"), None);
    }

    #[test]
    fn a_checkout_that_becomes_an_order_is_confirmed() {
        assert_eq!(step(Held, OrderCreated), Some((Confirmed, Units::Keep)));
        // The expiry may find the order before its event arrives.
        assert_eq!(step(Held, ExpiredWithOrder), Some((Confirmed, Units::Keep)));
        // Then the late event changes nothing.
        assert_eq!(step(Confirmed, OrderCreated), None);
    }

    #[test]
    fn a_checkout_without_an_order_is_released_once() {
        assert_eq!(
            step(Held, ExpiredWithoutOrder),
            Some((Released, Units::PutBack))
        );
        assert_eq!(step(Held, Release), Some((Released, Units::PutBack)));
        // Releasing twice, or expiring after a release, puts nothing back again.
        assert_eq!(step(Released, Release), None);
        assert_eq!(step(Released, ExpiredWithoutOrder), None);
        assert_eq!(step(Released, ExpiredWithOrder), None);
    }

    #[test]
    fn expiry_never_touches_a_confirmed_hold() {
        for t in [ExpiredWithOrder, ExpiredWithoutOrder, Release] {
            assert_eq!(step(Confirmed, t), None, "{t:?}");
        }
    }

    #[test]
    fn an_order_that_commits_after_its_hold_expired_takes_the_units_again() {
        assert_eq!(
            step(Released, OrderCreated),
            Some((Confirmed, Units::TakeAgain))
        );
    }

    #[test]
    fn cancelling_returns_the_units_exactly_once() {
        assert_eq!(
            step(Confirmed, OrderCancelled),
            Some((Returned, Units::PutBack))
        );
        // The cancellation may be delivered before the creation.
        assert_eq!(step(Held, OrderCancelled), Some((Returned, Units::PutBack)));
        assert_eq!(step(Returned, OrderCreated), None);
        // Units an expiry already put back are not put back again.
        assert_eq!(
            step(Released, OrderCancelled),
            Some((Returned, Units::Keep))
        );
        for t in TRIGGERS {
            assert_eq!(step(Returned, t), None, "{t:?}");
        }
    }

    /// What has happened to the checkout's order, and which of its events the catalog
    /// has seen.
    #[derive(Debug, Clone, Copy, Default)]
    struct World {
        committed: bool,
        failed: bool,
        cancelled: bool,
        created_seen: bool,
        cancelled_seen: bool,
        expiry_seen: bool,
    }

    /// Explores every interleaving of the order's fate with the deliveries of its
    /// events (each event delivered once or twice, in any order) and checks that the
    /// units a hold keeps off the shelf always match its status, and that once every
    /// event has arrived they are off the shelf exactly when the order is live.
    #[test]
    fn no_interleaving_loses_or_doubles_units() {
        fn units_match(status: HoldStatus, taken: i32) {
            let want = match status {
                Held | Confirmed => 1,
                Released | Returned => 0,
            };
            assert_eq!(taken, want, "{status:?}");
        }
        fn apply(status: HoldStatus, taken: i32, t: Trigger) -> (HoldStatus, i32) {
            match step(status, t) {
                None => (status, taken),
                Some((to, Units::Keep)) => (to, taken),
                Some((to, Units::PutBack)) => (to, taken - 1),
                Some((to, Units::TakeAgain)) => (to, taken + 1),
            }
        }
        fn walk(status: HoldStatus, taken: i32, w: World, depth: usize, finals: &mut usize) {
            units_match(status, taken);
            // The order's fate is decided and every event about it has arrived.
            let settled = (w.committed || w.failed)
                && w.expiry_seen
                && (!w.committed || w.created_seen)
                && (!w.cancelled || w.cancelled_seen);
            if settled {
                let live = w.committed && !w.cancelled;
                assert_eq!(taken, i32::from(live), "{w:?} ended {status:?}");
                *finals += 1;
            }
            if depth == 0 {
                return;
            }
            // The world moves on.
            if !w.committed && !w.failed {
                walk(
                    status,
                    taken,
                    World {
                        committed: true,
                        ..w
                    },
                    depth - 1,
                    finals,
                );
                // A failed order write gives the hold back...
                let (s, k) = apply(status, taken, Release);
                walk(s, k, World { failed: true, ..w }, depth - 1, finals);
                // ...unless the process died first: only the expiry is left.
                walk(
                    status,
                    taken,
                    World { failed: true, ..w },
                    depth - 1,
                    finals,
                );
            }
            if w.committed && !w.cancelled {
                walk(
                    status,
                    taken,
                    World {
                        cancelled: true,
                        ..w
                    },
                    depth - 1,
                    finals,
                );
            }
            // Deliveries (a redelivery is the same trigger again).
            if w.committed {
                let (s, k) = apply(status, taken, OrderCreated);
                walk(
                    s,
                    k,
                    World {
                        created_seen: true,
                        ..w
                    },
                    depth - 1,
                    finals,
                );
            }
            if w.cancelled {
                let (s, k) = apply(status, taken, OrderCancelled);
                walk(
                    s,
                    k,
                    World {
                        cancelled_seen: true,
                        ..w
                    },
                    depth - 1,
                    finals,
                );
            }
            let expiry = if w.committed {
                ExpiredWithOrder
            } else {
                ExpiredWithoutOrder
            };
            let (s, k) = apply(status, taken, expiry);
            walk(
                s,
                k,
                World {
                    expiry_seen: true,
                    ..w
                },
                depth - 1,
                finals,
            );
        }
        let mut finals = 0;
        walk(Held, 1, World::default(), 7, &mut finals);
        assert!(finals > 100, "only {finals} settled interleavings explored");
    }
}

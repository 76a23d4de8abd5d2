//! The orders plugin's pure rules: statuses and their state machine, payment statuses,
//! totals and the `[orders]` settings. Nothing here touches a host capability, so all of
//! it is unit-tested natively.

use kirana_sdk::ApiError;

/// An order's lifecycle (API.md "Orders").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Confirmed,
    Preparing,
    OutForDelivery,
    Delivered,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::Confirmed,
        Status::Preparing,
        Status::OutForDelivery,
        Status::Delivered,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Confirmed => "confirmed",
            Status::Preparing => "preparing",
            Status::OutForDelivery => "out_for_delivery",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A `status` value from a body or query: unknown is `400 validation_failed`.
    pub fn parse_field(field: &str, s: &str) -> Result<Status, ApiError> {
        Status::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                field,
                "must be one of pending, confirmed, preparing, out_for_delivery, delivered, cancelled",
            )
        })
    }

    /// The forward step, and cancellation from the three early states. Anything else,
    /// staying put included, is not a transition.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Pending, Confirmed)
                | (Confirmed, Preparing)
                | (Preparing, OutForDelivery)
                | (OutForDelivery, Delivered)
                | (Pending, Cancelled)
                | (Confirmed, Cancelled)
                | (Preparing, Cancelled)
        )
    }

    /// `409 invalid_transition` unless `self → to` is allowed.
    pub fn check(self, to: Status) -> Result<(), ApiError> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(kirana_shop::errors::invalid_transition(format!(
                "an order cannot go from {} to {}",
                self.as_str(),
                to.as_str()
            ))
            .with_details(kirana_sdk::json!({"from": self.as_str(), "to": to.as_str()})))
        }
    }
}

/// How an order is paid.
pub const PAYMENT_METHODS: [&str; 2] = ["cod", "online"];

/// `payment_status` values.
pub const PAYMENT_STATUSES: [&str; 4] = ["cod", "awaiting", "paid", "refunded"];

/// The status and payment status an order starts with.
pub fn initial_state(payment_method: &str) -> (Status, &'static str) {
    if payment_method == "online" {
        (Status::Pending, "awaiting")
    } else {
        (Status::Confirmed, "cod")
    }
}

/// The `[orders]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrdersConfig {
    /// Fee in paise charged when the subtotal is below `free_delivery_threshold`.
    pub delivery_fee: i64,
    /// Subtotal in paise from which delivery is free.
    pub free_delivery_threshold: i64,
    /// Minutes from creation to `estimated_delivery_at`, clamped to 5..=60.
    pub eta_minutes: i64,
    /// Seconds an online order may stay unpaid before it is cancelled.
    pub payment_timeout_secs: u64,
    /// Seconds an `Idempotency-Key` is remembered.
    pub idempotency_secs: u64,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self {
            delivery_fee: 2500,
            free_delivery_threshold: 19900,
            eta_minutes: 20,
            payment_timeout_secs: 15 * 60,
            idempotency_secs: 24 * 3600,
        }
    }
}

impl OrdersConfig {
    /// Reads `[orders]`; `payment_timeout_seconds` and `idempotency_seconds`, when set,
    /// override `payment_timeout_minutes` and `idempotency_hours` (for tests and demos).
    pub fn load() -> Self {
        use kirana_sdk::config::{get, get_or};
        let d = Self::default();
        let non_negative = |v: i64, default: i64| if v < 0 { default } else { v };
        let minutes: u64 = get_or("payment_timeout_minutes", d.payment_timeout_secs / 60);
        let payment_timeout_secs = match get("payment_timeout_seconds") {
            Some(raw) => raw.trim().parse::<u64>().unwrap_or(minutes * 60),
            None => minutes.saturating_mul(60),
        };
        Self {
            delivery_fee: non_negative(get_or("delivery_fee", d.delivery_fee), d.delivery_fee),
            free_delivery_threshold: non_negative(
                get_or("free_delivery_threshold", d.free_delivery_threshold),
                d.free_delivery_threshold,
            ),
            eta_minutes: clamp_eta(get_or("eta_minutes", d.eta_minutes)),
            payment_timeout_secs,
            idempotency_secs: match get("idempotency_seconds") {
                Some(raw) => raw.trim().parse::<u64>().unwrap_or(d.idempotency_secs),
                None => get_or::<u64>("idempotency_hours", 24)
                    .max(1)
                    .saturating_mul(3600),
            }
            .max(1),
        }
    }

    /// The delivery fee for `subtotal` (same rule as the cart).
    pub fn fee_for(&self, subtotal: i64) -> i64 {
        if subtotal < self.free_delivery_threshold {
            self.delivery_fee
        } else {
            0
        }
    }
}

/// An order's money: the coupon's discount as it applies (never below 0 nor above the
/// subtotal) and `total = subtotal + delivery_fee - discount`, which therefore never
/// falls below the delivery fee.
pub fn totals(subtotal: i64, delivery_fee: i64, quoted_discount: i64) -> (i64, i64) {
    let discount = quoted_discount.clamp(0, subtotal.max(0));
    (discount, subtotal.saturating_add(delivery_fee) - discount)
}

/// API.md: `estimated_delivery_at` is 5..60 minutes after creation.
pub fn clamp_eta(minutes: i64) -> i64 {
    minutes.clamp(5, 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine() {
        use Status::*;
        assert!(Pending.can_become(Confirmed));
        assert!(Confirmed.can_become(Preparing));
        assert!(Preparing.can_become(OutForDelivery));
        assert!(OutForDelivery.can_become(Delivered));
        for from in [Pending, Confirmed, Preparing] {
            assert!(from.can_become(Cancelled));
        }
        for s in Status::ALL {
            assert!(!s.can_become(s), "{s:?} to itself");
            assert!(!s.can_become(Pending));
        }
        assert!(!OutForDelivery.can_become(Cancelled));
        assert!(!Delivered.can_become(Cancelled));
        assert!(!Cancelled.can_become(Confirmed));
        assert!(!Confirmed.can_become(Delivered));
        assert_eq!(
            Confirmed.check(Confirmed).unwrap_err().code,
            "invalid_transition"
        );
    }

    #[test]
    fn parsing() {
        assert_eq!(
            Status::parse("out_for_delivery"),
            Some(Status::OutForDelivery)
        );
        assert_eq!(Status::parse("shipped"), None);
        let e = Status::parse_field("status", "nope").unwrap_err();
        assert_eq!((e.status, e.code), (400, "validation_failed"));
    }

    #[test]
    fn initial_states() {
        assert_eq!(initial_state("cod"), (Status::Confirmed, "cod"));
        assert_eq!(initial_state("online"), (Status::Pending, "awaiting"));
    }

    #[test]
    fn a_discount_comes_off_the_total_but_never_below_the_delivery_fee() {
        assert_eq!(totals(9000, 2500, 0), (0, 11500));
        assert_eq!(totals(9000, 2500, 900), (900, 10600));
        assert_eq!(totals(9000, 2500, 50_000), (9000, 2500));
        assert_eq!(totals(20_000, 0, 50_000), (20_000, 0));
        assert_eq!(totals(9000, 2500, -1), (0, 11500));
    }

    #[test]
    fn fees_and_eta() {
        let c = OrdersConfig::default();
        assert_eq!(c.fee_for(19899), 2500);
        assert_eq!(c.fee_for(19900), 0);
        assert_eq!(clamp_eta(0), 5);
        assert_eq!(clamp_eta(20), 20);
        assert_eq!(clamp_eta(500), 60);
    }
}

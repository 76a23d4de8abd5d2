//! The `promotions` plugin's internal routes (docs/plugins/promotions.md): coupon
//! quotes for the cart, redemptions for checkout. Promotions is a Python plugin, so
//! only the callers share these types; the tests hold them to its documented answers.

use kirana_sdk::{ApiError, Method};
use serde::{Deserialize, Serialize};

use crate::call::{expect, expect_found, send};

/// The plugin these routes belong to.
pub const PLUGIN: &str = "promotions";

/// `POST /internal/promotions/quote` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteRequest {
    pub code: String,
    pub user_id: String,
    /// The cart's subtotal in paise.
    pub subtotal: i64,
}

/// What the coupon takes off this subtotal now (nothing is written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub coupon_id: String,
    /// The code as promotions spells it.
    pub code: String,
    pub discount: i64,
}

/// `POST /internal/promotions/redemptions` body: one use of the coupon, under the
/// checkout's stock hold id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemRequest {
    pub code: String,
    pub user_id: String,
    pub subtotal: i64,
    pub hold_id: String,
}

/// A redemption: the fields checkout keeps (promotions sends more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    pub hold_id: String,
    pub coupon_id: String,
    pub code: String,
    pub discount: i64,
    /// `held`, `confirmed`, `released`, `returned` or `expired`.
    pub status: String,
}

/// A redemption's status after a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedemptionState {
    pub hold_id: String,
    pub status: String,
}

/// The discount `code` gives this subtotal: `404 not_found` for an unknown or inactive
/// code, `400 validation_failed` (field `code`, `details.reason`) for one that does not
/// apply.
pub fn quote(code: &str, user_id: &str, subtotal: i64) -> Result<Quote, ApiError> {
    let body = QuoteRequest {
        code: code.to_string(),
        user_id: user_id.to_string(),
        subtotal,
    };
    expect(
        send(
            PLUGIN,
            Method::Post,
            "/internal/promotions/quote",
            Some(&body),
        )?,
        200,
    )
}

/// Takes one use of `code` for the checkout holding `hold_id` (`201`); `409 conflict`
/// when it is used up, `404`/`400` as [`quote`]. Idempotent per hold.
pub fn redeem(
    code: &str,
    user_id: &str,
    subtotal: i64,
    hold_id: &str,
) -> Result<Redemption, ApiError> {
    let body = RedeemRequest {
        code: code.to_string(),
        user_id: user_id.to_string(),
        subtotal,
        hold_id: hold_id.to_string(),
    };
    expect(
        send(
            PLUGIN,
            Method::Post,
            "/internal/promotions/redemptions",
            Some(&body),
        )?,
        201,
    )
}

/// Gives a `held` redemption's use back; `None` when the hold has no redemption.
pub fn release_redemption(hold_id: &str) -> Result<Option<RedemptionState>, ApiError> {
    if !crate::plausible_id(hold_id) {
        return Ok(None);
    }
    let path = format!("/internal/promotions/redemptions/{hold_id}/release");
    expect_found(send::<()>(PLUGIN, Method::Post, &path, None)?, 200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{round_trip, subset};

    #[test]
    fn quote_and_redemption_shapes() {
        round_trip::<QuoteRequest>(
            r#"{"code": "WELCOME50", "user_id": "usr_1", "subtotal": 57800}"#,
        );
        let q: Quote =
            round_trip(r#"{"coupon_id": "cpn_1", "code": "WELCOME50", "discount": 5000}"#);
        assert_eq!(q.discount, 5000);
        round_trip::<RedeemRequest>(
            r#"{"code": "WELCOME50", "user_id": "usr_1", "subtotal": 57800, "hold_id": "hld_1"}"#,
        );
        let r: Redemption = subset(
            r#"{"hold_id": "hld_1", "coupon_id": "cpn_1", "code": "WELCOME50", "user_id": "usr_1",
                "subtotal": 57800, "discount": 5000, "status": "held", "order_id": null,
                "expires_at": "2026-12-06T10:10:00Z", "created_at": "2026-12-06T10:00:00Z",
                "updated_at": "2026-12-06T10:00:00Z"}"#,
        );
        assert_eq!(r.status, "held");
        round_trip::<RedemptionState>(r#"{"hold_id": "hld_1", "status": "released"}"#);
    }

    #[test]
    fn implausible_hold_ids_make_no_call() {
        assert_eq!(release_redemption("a/b").ok(), Some(None));
    }
}

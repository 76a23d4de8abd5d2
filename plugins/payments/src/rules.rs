//! The payments plugin's pure rules: payment statuses, sandbox signatures, request
//! checks, refund arithmetic, the webhook body and how a payment is settled against its
//! order. Nothing here touches a host capability, so all of it is unit-tested natively.

use hmac::{Hmac, Mac};
use kirana_sdk::serde_json::Value as Json;
use kirana_sdk::{json, ApiError};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// A payment's lifecycle: `created → captured → refunded`, `created → failed`, and
/// `failed → captured` (a later attempt on the same provider order succeeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Captured,
    Failed,
    Refunded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Captured => "captured",
            Status::Failed => "failed",
            Status::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Created,
            Status::Captured,
            Status::Failed,
            Status::Refunded,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Money can still be captured: nothing was captured yet.
    pub fn capturable(self) -> bool {
        matches!(self, Status::Created | Status::Failed)
    }
}

/// Why money went back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundReason {
    /// `POST /api/v1/payments/{id}/refund`.
    Admin,
    /// The order was cancelled (before or after the capture).
    OrderCancelled,
    /// Another payment had already paid the order.
    Duplicate,
}

impl RefundReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundReason::Admin => "admin",
            RefundReason::OrderCancelled => "order_cancelled",
            RefundReason::Duplicate => "duplicate",
        }
    }

    pub fn parse(s: &str) -> Option<RefundReason> {
        [
            RefundReason::Admin,
            RefundReason::OrderCancelled,
            RefundReason::Duplicate,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

// ---------------------------------------------------------------------------------
// Signatures

/// Lowercase hex HMAC-SHA256 of `message` under `secret`.
pub fn sign(secret: &str, message: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// True when `signature` (hex; either case) is the HMAC-SHA256 of `message` under
/// `secret`. Compared in constant time; anything that is not hex is simply invalid.
pub fn verify(secret: &str, message: &[u8], signature: &str) -> bool {
    let Ok(expected) = hex::decode(signature) else {
        return false;
    };
    let mut mac = mac(secret);
    mac.update(message);
    mac.verify_slice(&expected).is_ok()
}

fn mac(secret: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this never fails; the fallback keeps it total.
    HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()))
}

/// What the checkout signs: `provider_order_id + "|" + provider_payment_id`.
pub fn payment_message(provider_order_id: &str, provider_payment_id: &str) -> String {
    format!("{provider_order_id}|{provider_payment_id}")
}

/// Checks a checkout signature (`POST /api/v1/payments/verify`).
pub fn verify_payment(
    key_secret: &str,
    provider_order_id: &str,
    provider_payment_id: &str,
    signature: &str,
) -> bool {
    verify(
        key_secret,
        payment_message(provider_order_id, provider_payment_id).as_bytes(),
        signature,
    )
}

/// Lowercase hex SHA-256 of a webhook body: how a replay is recognised.
pub fn digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

// ---------------------------------------------------------------------------------
// Ids and bodies

/// An id we may put into another plugin's path: 1..=128 letters, digits, `_`, `-`.
/// Anything else cannot name an order, so callers answer 404 without asking.
pub fn plausible_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A `provider_payment_id` the client chose: 1..=64 letters, digits, `_`, `-` (so it can
/// never contain the `|` of the signed message).
pub fn valid_provider_payment_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub const PROVIDER_PAYMENT_ID_RULE: &str = "must be 1 to 64 letters, digits, _ or -";

/// The optional `amount` of a refund body: absent or `null` means "what is left";
/// otherwise a JSON integer ≥ 1 (`10.5`, `"100"`, `0` are `400 validation_failed`).
pub fn refund_amount(body: &Json) -> Result<Option<i64>, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    };
    match obj.get("amount") {
        None | Some(Json::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 1 => Ok(Some(n)),
            _ => Err(ApiError::invalid_field(
                "amount",
                "must be an integer number of paise ≥ 1",
            )),
        },
    }
}

/// Why a refund cannot happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotCaptured(&'static str),
    NothingLeft,
    TooMuch { left: i64, requested: i64 },
}

impl Refusal {
    /// `409 conflict` with the reason in the message and details.
    pub fn into_error(self) -> ApiError {
        match self {
            Refusal::NotCaptured(status) => ApiError::conflict(format!(
                "only a captured payment can be refunded; this one is {status}"
            ))
            .with_details(json!({"status": status})),
            Refusal::NothingLeft => ApiError::conflict("the payment is already refunded in full")
                .with_details(json!({"refundable": 0})),
            Refusal::TooMuch { left, requested } => ApiError::conflict(format!(
                "only {left} paise are left to refund, {requested} were asked"
            ))
            .with_details(json!({"refundable": left, "requested": requested})),
        }
    }
}

/// How much to refund: `requested`, or everything left when `None`.
pub fn refund_plan(
    status: Status,
    amount: i64,
    refunded: i64,
    requested: Option<i64>,
) -> Result<i64, Refusal> {
    match status {
        Status::Captured => {}
        Status::Refunded => return Err(Refusal::NothingLeft),
        other => return Err(Refusal::NotCaptured(other.as_str())),
    }
    let left = amount - refunded;
    if left <= 0 {
        return Err(Refusal::NothingLeft);
    }
    let want = requested.unwrap_or(left);
    if want > left {
        return Err(Refusal::TooMuch {
            left,
            requested: want,
        });
    }
    Ok(want)
}

// ---------------------------------------------------------------------------------
// Orders

/// What the payments plugin needs of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderState {
    pub user_id: String,
    pub status: String,
    pub payment_method: String,
    pub payment_status: String,
}

/// May `caller` open a payment intent for `order`? Another user's order is a 404 (as if
/// it did not exist); a COD, paid, refunded or cancelled order is `409 conflict`.
pub fn intent_allowed(order: &OrderState, caller: &str) -> Result<(), ApiError> {
    if order.user_id != caller {
        return Err(ApiError::not_found("order"));
    }
    let details = json!({"status": order.status, "payment_method": order.payment_method,
                         "payment_status": order.payment_status});
    let refusal = if order.payment_method != "online" {
        Some("a cash-on-delivery order is not paid online")
    } else if order.status == "cancelled" {
        Some("the order is cancelled")
    } else if matches!(order.payment_status.as_str(), "paid" | "refunded") {
        Some("the order is already paid")
    } else if order.status != "pending" || order.payment_status != "awaiting" {
        Some("the order is not awaiting payment")
    } else {
        None
    };
    match refusal {
        Some(m) => Err(ApiError::conflict(m).with_details(details)),
        None => Ok(()),
    }
}

/// What settling one payment against its order's current state requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Nothing,
    /// Tell orders `payment_status: paid` (this payment is the order's payment).
    MarkPaid,
    /// Give back what is left of this payment.
    Refund(RefundReason),
    /// Tell orders `payment_status: refunded` (the order's payment is refunded in full).
    MarkRefunded,
}

/// The one rule that keeps payments and orders consistent, whatever order events and
/// requests arrive in. `holds_order` says whether this payment is the one that paid the
/// order (the first capture); any later capture for the same order is a duplicate.
pub fn settle(order: &OrderState, payment: Status, holds_order: bool) -> Settle {
    match payment {
        Status::Captured if order.status == "cancelled" => {
            Settle::Refund(RefundReason::OrderCancelled)
        }
        Status::Captured if !holds_order => Settle::Refund(RefundReason::Duplicate),
        Status::Captured if order.payment_status == "awaiting" => Settle::MarkPaid,
        Status::Refunded if holds_order && order.payment_status == "paid" => Settle::MarkRefunded,
        _ => Settle::Nothing,
    }
}

// ---------------------------------------------------------------------------------
// Webhooks

/// A parsed webhook body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Webhook {
    Captured {
        provider_order_id: String,
        provider_payment_id: String,
    },
    Failed {
        provider_order_id: String,
        provider_payment_id: String,
    },
    /// An event this sandbox does not act on; acknowledged and ignored.
    Other(String),
}

/// Parses `{event, payload: {provider_order_id, provider_payment_id}}` (after the
/// signature was checked): `400 invalid_json` or `400 validation_failed` naming fields.
pub fn parse_webhook(body: &[u8]) -> Result<Webhook, ApiError> {
    let v: Json = kirana_sdk::serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_json(format!("the body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    }
    let event = match v.get("event").and_then(Json::as_str) {
        Some(e) if !e.trim().is_empty() => e.trim().to_string(),
        _ => return Err(ApiError::invalid_field("event", "is required")),
    };
    if event != "payment.captured" && event != "payment.failed" {
        return Ok(Webhook::Other(event));
    }
    let payload = v.get("payload").filter(|p| p.is_object());
    let text = |name: &str| {
        payload
            .and_then(|p| p.get(name))
            .and_then(Json::as_str)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let provider_order_id = text("provider_order_id");
    let provider_payment_id = text("provider_payment_id");
    let mut fields = kirana_sdk::Validator::new();
    fields.check(
        plausible_id(&provider_order_id),
        "payload.provider_order_id",
        "is required (1 to 128 letters, digits, _ or -)",
    );
    fields.check(
        valid_provider_payment_id(&provider_payment_id),
        "payload.provider_payment_id",
        PROVIDER_PAYMENT_ID_RULE,
    );
    fields.finish()?;
    Ok(if event == "payment.captured" {
        Webhook::Captured {
            provider_order_id,
            provider_payment_id,
        }
    } else {
        Webhook::Failed {
            provider_order_id,
            provider_payment_id,
        }
    })
}

// ---------------------------------------------------------------------------------
// Configuration

/// The `[payments]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentsConfig {
    /// Public key id handed to the checkout with every intent.
    pub key_id: String,
    /// Signs checkout results (`provider_order_id|provider_payment_id`).
    pub key_secret: String,
    /// Signs webhook bodies.
    pub webhook_secret: String,
    /// Hours an `Idempotency-Key` answer is replayed.
    pub idempotency_hours: u64,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            key_id: "rzp_test_kirana".into(),
            key_secret: "kirana_sandbox_key_secret".into(),
            webhook_secret: "kirana_sandbox_webhook_secret".into(),
            idempotency_hours: 24,
        }
    }
}

impl PaymentsConfig {
    /// Reads `[payments]` (`KIRANA_PAYMENTS_*` overrides apply in the host).
    pub fn load() -> Self {
        use kirana_sdk::config::get_or;
        let d = Self::default();
        Self {
            key_id: get_or("key_id", d.key_id),
            key_secret: get_or("key_secret", d.key_secret),
            webhook_secret: get_or("webhook_secret", d.webhook_secret),
            idempotency_hours: get_or("idempotency_hours", d.idempotency_hours).max(1),
        }
    }

    pub fn idempotency_window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.idempotency_hours.saturating_mul(3600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_round_trip_and_reject_tampering() {
        let s = sign("secret", b"order_1|pay_1");
        assert_eq!(s.len(), 64);
        assert_eq!(s, s.to_lowercase());
        assert!(verify("secret", b"order_1|pay_1", &s));
        assert!(verify("secret", b"order_1|pay_1", &s.to_uppercase()));
        assert!(!verify("other", b"order_1|pay_1", &s));
        assert!(!verify("secret", b"order_1|pay_2", &s));
        assert!(!verify("secret", b"order_1|pay_1", "zz"));
        assert!(!verify("secret", b"order_1|pay_1", ""));
        assert!(!verify("secret", b"order_1|pay_1", &s[..62]));
        assert!(verify_payment("secret", "order_1", "pay_1", &s));
    }

    #[test]
    fn known_hmac_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            digest(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn ids() {
        assert!(plausible_id("ord_0190abc"));
        assert!(!plausible_id(""));
        assert!(!plausible_id("../orders"));
        assert!(!plausible_id(&"a".repeat(129)));
        assert!(valid_provider_payment_id("pay_ABC-123"));
        assert!(!valid_provider_payment_id("pay|1"));
        assert!(!valid_provider_payment_id(""));
        assert!(!valid_provider_payment_id(&"a".repeat(65)));
    }

    #[test]
    fn refund_amounts() {
        assert_eq!(refund_amount(&json!({})).unwrap(), None);
        assert_eq!(refund_amount(&json!({"amount": null})).unwrap(), None);
        assert_eq!(refund_amount(&json!({"amount": 500})).unwrap(), Some(500));
        for bad in [
            json!({"amount": 0}),
            json!({"amount": -5}),
            json!({"amount": 10.5}),
            json!({"amount": 10.0}),
            json!({"amount": "100"}),
            json!({"amount": u64::MAX}),
        ] {
            let e = refund_amount(&bad).unwrap_err();
            assert_eq!(e.details["fields"][0]["field"], "amount", "{bad}");
        }
        assert_eq!(refund_amount(&json!([1])).unwrap_err().status, 400);
    }

    #[test]
    fn refund_plans() {
        use Status::*;
        assert_eq!(refund_plan(Captured, 1000, 0, None), Ok(1000));
        assert_eq!(refund_plan(Captured, 1000, 300, None), Ok(700));
        assert_eq!(refund_plan(Captured, 1000, 300, Some(700)), Ok(700));
        assert_eq!(
            refund_plan(Captured, 1000, 300, Some(701)),
            Err(Refusal::TooMuch {
                left: 700,
                requested: 701
            })
        );
        assert_eq!(
            refund_plan(Refunded, 1000, 1000, None),
            Err(Refusal::NothingLeft)
        );
        assert_eq!(
            refund_plan(Created, 1000, 0, None),
            Err(Refusal::NotCaptured("created"))
        );
        assert_eq!(
            refund_plan(Failed, 1000, 0, Some(1)),
            Err(Refusal::NotCaptured("failed"))
        );
        let e = Refusal::TooMuch {
            left: 5,
            requested: 9,
        }
        .into_error();
        assert_eq!((e.status, e.code), (409, "conflict"));
        assert_eq!(e.details["refundable"], 5);
    }

    fn order(status: &str, method: &str, pay: &str) -> OrderState {
        OrderState {
            user_id: "u1".into(),
            status: status.into(),
            payment_method: method.into(),
            payment_status: pay.into(),
        }
    }

    #[test]
    fn intents() {
        assert!(intent_allowed(&order("pending", "online", "awaiting"), "u1").is_ok());
        let e = intent_allowed(&order("pending", "online", "awaiting"), "u2").unwrap_err();
        assert_eq!(e.status, 404);
        for o in [
            order("confirmed", "cod", "cod"),
            order("confirmed", "online", "paid"),
            order("cancelled", "online", "awaiting"),
            order("cancelled", "online", "refunded"),
        ] {
            let e = intent_allowed(&o, "u1").unwrap_err();
            assert_eq!((e.status, e.code), (409, "conflict"), "{o:?}");
        }
    }

    #[test]
    fn settling() {
        use Status::*;
        let pending = order("pending", "online", "awaiting");
        let paid = order("confirmed", "online", "paid");
        let cancelled_unpaid = order("cancelled", "online", "awaiting");
        let cancelled_paid = order("cancelled", "online", "paid");
        let refunded = order("confirmed", "online", "refunded");

        assert_eq!(settle(&pending, Captured, true), Settle::MarkPaid);
        assert_eq!(settle(&paid, Captured, true), Settle::Nothing);
        assert_eq!(
            settle(&paid, Captured, false),
            Settle::Refund(RefundReason::Duplicate)
        );
        for o in [&cancelled_unpaid, &cancelled_paid] {
            for holds in [true, false] {
                assert_eq!(
                    settle(o, Captured, holds),
                    Settle::Refund(RefundReason::OrderCancelled)
                );
            }
        }
        assert_eq!(
            settle(&cancelled_paid, Refunded, true),
            Settle::MarkRefunded
        );
        assert_eq!(settle(&paid, Refunded, true), Settle::MarkRefunded);
        assert_eq!(settle(&paid, Refunded, false), Settle::Nothing);
        assert_eq!(settle(&refunded, Refunded, true), Settle::Nothing);
        assert_eq!(settle(&cancelled_unpaid, Refunded, true), Settle::Nothing);
        for s in [Created, Failed] {
            assert_eq!(settle(&pending, s, false), Settle::Nothing);
            assert_eq!(settle(&cancelled_paid, s, true), Settle::Nothing);
        }
    }

    #[test]
    fn statuses() {
        for s in ["created", "captured", "failed", "refunded"] {
            assert_eq!(Status::parse(s).map(Status::as_str), Some(s));
        }
        assert!(Status::Created.capturable() && Status::Failed.capturable());
        assert!(!Status::Captured.capturable() && !Status::Refunded.capturable());
        assert_eq!(
            RefundReason::parse("duplicate"),
            Some(RefundReason::Duplicate)
        );
    }

    #[test]
    fn webhooks() {
        let w = parse_webhook(
            br#"{"event":"payment.captured","payload":{"provider_order_id":"order_1","provider_payment_id":"pay_1"}}"#,
        )
        .unwrap();
        assert_eq!(
            w,
            Webhook::Captured {
                provider_order_id: "order_1".into(),
                provider_payment_id: "pay_1".into()
            }
        );
        let w = parse_webhook(
            br#"{"event":"payment.failed","payload":{"provider_order_id":"order_1","provider_payment_id":"pay_1"}}"#,
        )
        .unwrap();
        assert!(matches!(w, Webhook::Failed { .. }));
        assert_eq!(
            parse_webhook(br#"{"event":"refund.processed"}"#).unwrap(),
            Webhook::Other("refund.processed".into())
        );
        assert_eq!(parse_webhook(b"{nope").unwrap_err().code, "invalid_json");
        let e = parse_webhook(br#"{"payload":{}}"#).unwrap_err();
        assert_eq!(e.details["fields"][0]["field"], "event");
        let e = parse_webhook(br#"{"event":"payment.captured","payload":{}}"#).unwrap_err();
        assert_eq!(e.details["fields"].as_array().map(Vec::len), Some(2));
    }
}

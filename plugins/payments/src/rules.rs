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
    /// Refunded at the provider (its dashboard or API) and reported by the
    /// `refund.processed` webhook.
    Provider,
}

impl RefundReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundReason::Admin => "admin",
            RefundReason::OrderCancelled => "order_cancelled",
            RefundReason::Duplicate => "duplicate",
            RefundReason::Provider => "provider",
        }
    }

    pub fn parse(s: &str) -> Option<RefundReason> {
        [
            RefundReason::Admin,
            RefundReason::OrderCancelled,
            RefundReason::Duplicate,
            RefundReason::Provider,
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
/// An empty secret verifies nothing: anyone can compute an HMAC under it.
pub fn verify(secret: &str, message: &[u8], signature: &str) -> bool {
    if secret.is_empty() {
        return false;
    }
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
    TooMuch {
        left: i64,
        requested: i64,
    },
    /// The provider's refund (by its id) is on record already: a replay.
    AlreadyRecorded,
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
            Refusal::AlreadyRecorded => {
                ApiError::conflict("this provider refund is already recorded")
            }
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
        /// What the provider captured (Razorpay's body says; the flat sandbox body
        /// does not): checked against the intent before it counts.
        amount: Option<i64>,
        currency: Option<String>,
    },
    Failed {
        provider_order_id: String,
        provider_payment_id: String,
    },
    /// `refund.processed`: money given back at the provider.
    Refunded {
        provider_refund_id: String,
        provider_payment_id: String,
        amount: i64,
        /// From `payload.payment.entity.order_id` when the body has it.
        provider_order_id: Option<String>,
    },
    /// An event this plugin does not act on; acknowledged and ignored.
    Other(String),
}

impl Webhook {
    /// The event name as recorded with the body.
    pub fn event(&self) -> &str {
        match self {
            Webhook::Captured { .. } => "payment.captured",
            Webhook::Failed { .. } => "payment.failed",
            Webhook::Refunded { .. } => "refund.processed",
            Webhook::Other(e) => e,
        }
    }

    /// The provider order the body is about, when it names one.
    pub fn provider_order_id(&self) -> Option<&str> {
        match self {
            Webhook::Captured {
                provider_order_id, ..
            }
            | Webhook::Failed {
                provider_order_id, ..
            } => Some(provider_order_id),
            Webhook::Refunded {
                provider_order_id, ..
            } => provider_order_id.as_deref(),
            Webhook::Other(_) => None,
        }
    }
}

/// `v[path...]`, when every step is an object key.
fn at<'a>(v: &'a Json, path: &[&str]) -> Option<&'a Json> {
    path.iter().try_fold(v, |v, key| v.get(key))
}

/// A trimmed string at `path` ("" when absent or not a string).
fn text_at(v: &Json, path: &[&str]) -> String {
    at(v, path)
        .and_then(Json::as_str)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// An integer amount (paise) at `path`: `Ok(None)` when absent or null, an error
/// naming the field when it is not a non-negative integer.
fn amount_at(v: &Json, path: &[&str], v_err: &mut kirana_sdk::Validator) -> Option<i64> {
    match at(v, path) {
        None | Some(Json::Null) => None,
        Some(a) => match a.as_i64() {
            Some(n) if n >= 0 => Some(n),
            _ => {
                v_err.push(&path.join("."), "must be an integer amount in paise");
                None
            }
        },
    }
}

/// Parses a webhook body (after the signature was checked): `400 invalid_json`, or
/// `400 validation_failed` naming the fields. Two shapes are accepted:
///
/// - Razorpay's own event: `{entity: "event", event, contains, payload: {payment:
///   {entity: {id, order_id, amount, currency, status, ...}}}, created_at}`, and for
///   `refund.processed` also `payload.refund.entity {id, payment_id, amount, ...}`;
/// - the flat sandbox body `{event, payload: {provider_order_id, provider_payment_id}}`
///   (payment events only).
///
/// A Razorpay payment event whose payment has no `order_id` was not made through an
/// order, so not through this plugin: it parses as [`Webhook::Other`].
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
    match event.as_str() {
        "payment.captured" | "payment.failed" => parse_payment_event(&v, event),
        "refund.processed" => parse_refund_event(&v),
        _ => Ok(Webhook::Other(event)),
    }
}

fn parse_payment_event(v: &Json, event: String) -> Result<Webhook, ApiError> {
    let mut fields = kirana_sdk::Validator::new();
    const ENTITY: [&str; 3] = ["payload", "payment", "entity"];
    let entity_field = |key: &'static str| [ENTITY[0], ENTITY[1], ENTITY[2], key];
    let (order_field, payment_field, provider_order_id, provider_payment_id, amount, currency) =
        if at(v, &ENTITY[..2]).is_some() {
            // Razorpay's event body.
            if !at(v, &ENTITY).is_some_and(Json::is_object) {
                return Err(ApiError::invalid_field(
                    "payload.payment.entity",
                    "must be the payment object",
                ));
            }
            if at(v, &entity_field("order_id")).is_none_or(Json::is_null) {
                return Ok(Webhook::Other(event));
            }
            let currency = Some(text_at(v, &entity_field("currency"))).filter(|c| !c.is_empty());
            (
                "payload.payment.entity.order_id",
                "payload.payment.entity.id",
                text_at(v, &entity_field("order_id")),
                text_at(v, &entity_field("id")),
                amount_at(v, &entity_field("amount"), &mut fields),
                currency,
            )
        } else {
            // The flat sandbox body.
            (
                "payload.provider_order_id",
                "payload.provider_payment_id",
                text_at(v, &["payload", "provider_order_id"]),
                text_at(v, &["payload", "provider_payment_id"]),
                None,
                None,
            )
        };
    fields.check(
        plausible_id(&provider_order_id),
        order_field,
        "is required (1 to 128 letters, digits, _ or -)",
    );
    fields.check(
        valid_provider_payment_id(&provider_payment_id),
        payment_field,
        PROVIDER_PAYMENT_ID_RULE,
    );
    fields.finish()?;
    Ok(if event == "payment.captured" {
        Webhook::Captured {
            provider_order_id,
            provider_payment_id,
            amount,
            currency,
        }
    } else {
        Webhook::Failed {
            provider_order_id,
            provider_payment_id,
        }
    })
}

fn parse_refund_event(v: &Json) -> Result<Webhook, ApiError> {
    let mut fields = kirana_sdk::Validator::new();
    let refund = |key: &'static str| ["payload", "refund", "entity", key];
    let provider_refund_id = text_at(v, &refund("id"));
    let provider_payment_id = text_at(v, &refund("payment_id"));
    let amount = at(v, &refund("amount"))
        .and_then(Json::as_i64)
        .filter(|a| *a >= 1);
    fields.check(
        valid_provider_payment_id(&provider_refund_id),
        "payload.refund.entity.id",
        PROVIDER_PAYMENT_ID_RULE,
    );
    fields.check(
        valid_provider_payment_id(&provider_payment_id),
        "payload.refund.entity.payment_id",
        PROVIDER_PAYMENT_ID_RULE,
    );
    fields.check(
        amount.is_some(),
        "payload.refund.entity.amount",
        "is required: an integer amount in paise, at least 1",
    );
    fields.finish()?;
    let provider_order_id = Some(text_at(v, &["payload", "payment", "entity", "order_id"]))
        .filter(|id| plausible_id(id));
    Ok(Webhook::Refunded {
        provider_refund_id,
        provider_payment_id,
        amount: amount.unwrap_or_default(),
        provider_order_id,
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

/// No secret has a built-in value: one published in this repository would let anyone
/// sign a checkout result or a webhook. Unset or blank means "payments are not
/// configured" (see [`PaymentsConfig::key_secret`]).
impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            key_id: "rzp_test_kirana".into(),
            key_secret: String::new(),
            webhook_secret: String::new(),
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

    /// The checkout signing secret, or `503 plugin_unavailable` naming the setting when
    /// it is unset or blank (never an HMAC under an empty key).
    pub fn key_secret(&self) -> Result<&str, ApiError> {
        configured(&self.key_secret, "key_secret", "KIRANA_PAYMENTS_KEY_SECRET")
    }

    /// The webhook signing secret, or `503 plugin_unavailable` naming the setting.
    pub fn webhook_secret(&self) -> Result<&str, ApiError> {
        configured(
            &self.webhook_secret,
            "webhook_secret",
            "KIRANA_PAYMENTS_WEBHOOK_SECRET",
        )
    }

    pub fn idempotency_window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.idempotency_hours.saturating_mul(3600))
    }
}

fn configured<'a>(secret: &'a str, key: &str, env: &str) -> Result<&'a str, ApiError> {
    if secret.trim().is_empty() {
        return Err(ApiError::unavailable(format!(
            "payments are not configured: set {env} (or [payments] {key}) to your provider's secret"
        ))
        .with_details(json!({ "setting": env })));
    }
    Ok(secret)
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
        // A signature under the empty key is never accepted.
        let empty = sign("", b"order_1|pay_1");
        assert!(!verify("", b"order_1|pay_1", &empty));
        assert!(!verify_payment("", "order_1", "pay_1", &empty));
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
        assert_eq!(
            RefundReason::parse("provider"),
            Some(RefundReason::Provider)
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
                provider_payment_id: "pay_1".into(),
                amount: None,
                currency: None,
            }
        );
        assert_eq!(w.event(), "payment.captured");
        assert_eq!(w.provider_order_id(), Some("order_1"));
        let w = parse_webhook(
            br#"{"event":"payment.failed","payload":{"provider_order_id":"order_1","provider_payment_id":"pay_1"}}"#,
        )
        .unwrap();
        assert!(matches!(w, Webhook::Failed { .. }));
        assert_eq!(
            parse_webhook(br#"{"event":"refund.created","payload":{}}"#).unwrap(),
            Webhook::Other("refund.created".into())
        );
        assert_eq!(parse_webhook(b"{nope").unwrap_err().code, "invalid_json");
        let e = parse_webhook(br#"{"payload":{}}"#).unwrap_err();
        assert_eq!(e.details["fields"][0]["field"], "event");
        let e = parse_webhook(br#"{"event":"payment.captured","payload":{}}"#).unwrap_err();
        assert_eq!(e.details["fields"].as_array().map(Vec::len), Some(2));
    }

    /// Razorpay's `payment.captured` sample body (docs: Webhooks → Payments), trimmed of
    /// fields this plugin does not read.
    const RAZORPAY_CAPTURED: &str = r#"{
      "entity": "event", "account_id": "acc_BFQ7uQEaa7j2z7", "event": "payment.captured",
      "contains": ["payment"],
      "payload": {"payment": {"entity": {
        "id": "pay_DESlfW9H8K9uqM", "entity": "payment", "amount": 100, "currency": "INR",
        "status": "captured", "order_id": "order_DESlLckIVRkHWj", "invoice_id": null,
        "international": false, "method": "netbanking", "amount_refunded": 0,
        "refund_status": null, "captured": true, "description": null,
        "bank": "HDFC", "email": "gaurav.kumar@example.com", "contact": "+919876543210",
        "notes": [], "fee": 2, "tax": 0, "error_code": null, "created_at": 1567674599}}},
      "created_at": 1567674606}"#;

    #[test]
    fn razorpay_payment_events() {
        let w = parse_webhook(RAZORPAY_CAPTURED.as_bytes()).unwrap();
        assert_eq!(
            w,
            Webhook::Captured {
                provider_order_id: "order_DESlLckIVRkHWj".into(),
                provider_payment_id: "pay_DESlfW9H8K9uqM".into(),
                amount: Some(100),
                currency: Some("INR".into()),
            }
        );
        let failed = RAZORPAY_CAPTURED
            .replace(
                r#""event": "payment.captured""#,
                r#""event": "payment.failed""#,
            )
            .replace(r#""status": "captured""#, r#""status": "failed""#);
        assert_eq!(
            parse_webhook(failed.as_bytes()).unwrap(),
            Webhook::Failed {
                provider_order_id: "order_DESlLckIVRkHWj".into(),
                provider_payment_id: "pay_DESlfW9H8K9uqM".into(),
            }
        );
        // A payment made outside an order is none of this plugin's.
        let no_order = RAZORPAY_CAPTURED.replace(
            r#""order_id": "order_DESlLckIVRkHWj""#,
            r#""order_id": null"#,
        );
        assert_eq!(
            parse_webhook(no_order.as_bytes()).unwrap(),
            Webhook::Other("payment.captured".into())
        );
        // Malformed Razorpay bodies name Razorpay's fields.
        let e =
            parse_webhook(br#"{"event":"payment.captured","payload":{"payment":{}}}"#).unwrap_err();
        assert_eq!(e.details["fields"][0]["field"], "payload.payment.entity");
        let e = parse_webhook(
            br#"{"event":"payment.captured","payload":{"payment":{"entity":{"order_id":"order_1","amount":"100"}}}}"#,
        )
        .unwrap_err();
        let mut fields: Vec<String> = e.details["fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["field"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        fields.sort();
        assert_eq!(
            fields,
            ["payload.payment.entity.amount", "payload.payment.entity.id"]
        );
    }

    #[test]
    fn razorpay_refund_events() {
        let body = r#"{"entity":"event","account_id":"acc_C22WOuBW79sh0n","event":"refund.processed",
          "contains":["refund","payment"],
          "payload":{
            "refund":{"entity":{"id":"rfnd_Heax5rxucwf2aS","entity":"refund","amount":4000,
              "currency":"INR","payment_id":"pay_HeGCvvjQIAjsvZ","notes":[],"receipt":null,
              "acquirer_data":{"arn":null},"created_at":1627528610,"batch_id":null,
              "status":"processed","speed_processed":"normal","speed_requested":"normal"}},
            "payment":{"entity":{"id":"pay_HeGCvvjQIAjsvZ","entity":"payment","amount":4000,
              "currency":"INR","status":"refunded","order_id":"order_HeGCnjDGqpe5oW",
              "amount_refunded":4000,"refund_status":"full","captured":true}}},
          "created_at":1627528610}"#;
        let w = parse_webhook(body.as_bytes()).unwrap();
        assert_eq!(
            w,
            Webhook::Refunded {
                provider_refund_id: "rfnd_Heax5rxucwf2aS".into(),
                provider_payment_id: "pay_HeGCvvjQIAjsvZ".into(),
                amount: 4000,
                provider_order_id: Some("order_HeGCnjDGqpe5oW".into()),
            }
        );
        assert_eq!(w.event(), "refund.processed");
        assert_eq!(w.provider_order_id(), Some("order_HeGCnjDGqpe5oW"));
        for (bad, field) in [
            (
                r#"{"event":"refund.processed","payload":{}}"#,
                "payload.refund.entity.id",
            ),
            (
                r#"{"event":"refund.processed","payload":{"refund":{"entity":{"id":"rfnd_1","payment_id":"pay_1","amount":0}}}}"#,
                "payload.refund.entity.amount",
            ),
            (
                r#"{"event":"refund.processed","payload":{"refund":{"entity":{"id":"rfnd_1","amount":5}}}}"#,
                "payload.refund.entity.payment_id",
            ),
        ] {
            let e = parse_webhook(bad.as_bytes()).unwrap_err();
            assert_eq!(e.code, "validation_failed", "{bad}");
            assert!(
                e.details["fields"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|f| f["field"] == field)),
                "{bad}: {}",
                e.details
            );
        }
    }

    #[test]
    fn secrets_have_no_published_default() {
        let c = PaymentsConfig::default();
        assert!(c.key_secret.is_empty() && c.webhook_secret.is_empty());
        let e = c.key_secret().unwrap_err();
        assert_eq!((e.status, e.code), (503, "plugin_unavailable"));
        assert!(
            e.message.contains("KIRANA_PAYMENTS_KEY_SECRET"),
            "{}",
            e.message
        );
        let e = c.webhook_secret().unwrap_err();
        assert_eq!((e.status, e.code), (503, "plugin_unavailable"));
        assert!(
            e.message.contains("KIRANA_PAYMENTS_WEBHOOK_SECRET"),
            "{}",
            e.message
        );
        let blank = PaymentsConfig {
            key_secret: "  ".into(),
            webhook_secret: "\t".into(),
            ..PaymentsConfig::default()
        };
        assert!(blank.key_secret().is_err() && blank.webhook_secret().is_err());
        let set = PaymentsConfig {
            key_secret: "k".into(),
            webhook_secret: "w".into(),
            ..PaymentsConfig::default()
        };
        assert_eq!(set.key_secret().ok(), Some("k"));
        assert_eq!(set.webhook_secret().ok(), Some("w"));
    }
}

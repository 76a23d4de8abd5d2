//! The customer and admin routes: intents, verification, listing, refunds, and the
//! internal capture route verification goes through.

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::Value as Json;
use kirana_sdk::{services, Method};

use crate::db::{self, Payment};
use crate::flow::{self, Captured, Refunded};
use crate::orders;
use crate::rules::{self, PaymentsConfig, RefundReason, Status};

/// The provider name shown on every payment.
const PROVIDER: &str = "sandbox";

/// A required, trimmed string field of a body; `None` when missing, null or blank.
fn text_field(body: &Json, name: &str) -> Option<String> {
    body.get(name)
        .and_then(Json::as_str)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The body as a JSON object (415 / 400 invalid_json as the SDK answers them).
fn object_body(req: &Request) -> Result<Json, ApiError> {
    req.json::<Json>()
}

/// A required string field: every missing or non-string field is listed at once.
fn require(v: &mut Validator, body: &Json, name: &str) -> String {
    match body.get(name) {
        None | Some(Json::Null) => {
            v.push(name, "is required");
            String::new()
        }
        Some(Json::String(_)) => {
            let s = text_field(body, name).unwrap_or_default();
            v.check(!s.is_empty(), name, "must not be blank");
            s
        }
        Some(_) => {
            v.push(name, "must be a string");
            String::new()
        }
    }
}

// ---------------------------------------------------------------------------------
// POST /api/v1/payments/intents

/// `POST /api/v1/payments/intents {order_id}` with `Idempotency-Key`.
pub fn create_intent(req: &Request) -> Result<Response, ApiError> {
    let config = PaymentsConfig::load();
    kirana_sdk::idempotency::with_key(req, config.idempotency_window(), |req| intent(req, &config))
}

fn intent(req: &Request, config: &PaymentsConfig) -> Result<Response, ApiError> {
    let caller = req.user()?.user_id.clone();
    // An intent nobody could ever verify is a trap for the customer's money.
    config.key_secret()?;
    let body = object_body(req)?;
    let mut v = Validator::new();
    let order_id = require(&mut v, &body, "order_id");
    v.finish()?;
    let order = orders::get(&order_id)?.ok_or_else(|| ApiError::not_found("order"))?;
    rules::intent_allowed(&crate::orders::state(&order), &caller)?;
    // Orders learns of a capture a moment after it happens; a captured payment already
    // paying this order settles the question.
    if db::order_payer(&order.id)?.is_some() {
        return Err(ApiError::conflict("the order is already paid"));
    }
    if order.total < 1 {
        return Err(ApiError::conflict("the order has nothing to pay"));
    }
    let now = now_rfc3339();
    let payment = Payment {
        id: new_id("pmt"),
        order_id: order.id.clone(),
        user_id: order.user_id.clone(),
        amount: order.total,
        currency: "INR".to_string(),
        provider: PROVIDER.to_string(),
        provider_order_id: new_id("order"),
        provider_payment_id: None,
        key_id: config.key_id.clone(),
        status: Status::Created.as_str().to_string(),
        refunded_amount: 0,
        refunds: Vec::new(),
        created_at: now.clone(),
        updated_at: now,
        captured_at: None,
    };
    db::insert(&payment)?;
    Ok(Response::created(&payment))
}

// ---------------------------------------------------------------------------------
// POST /api/v1/payments/verify

/// `POST /api/v1/payments/verify {order_id, provider_payment_id, signature}`.
///
/// The capture itself runs in `POST /internal/payments/{id}/capture` (this plugin,
/// called through the host): when the order was cancelled meanwhile the client must get
/// `409`, and the host drops the events of a call that answers ≥ 400 — the nested call
/// answers 200, so `payment.captured` and `payment.refunded` are committed.
pub fn verify(req: &Request) -> Result<Response, ApiError> {
    let body = object_body(req)?;
    let mut v = Validator::new();
    let order_id = require(&mut v, &body, "order_id");
    let provider_payment_id = require(&mut v, &body, "provider_payment_id");
    let signature = require(&mut v, &body, "signature");
    if !provider_payment_id.is_empty() {
        v.check(
            rules::valid_provider_payment_id(&provider_payment_id),
            "provider_payment_id",
            rules::PROVIDER_PAYMENT_ID_RULE,
        );
    }
    v.finish()?;
    let config = PaymentsConfig::load();
    let key_secret = config.key_secret()?;
    let order = orders::visible(&order_id, req)?;
    let payments = db::by_order(&order.id)?;
    let matched = payments.into_iter().find(|p| {
        rules::verify_payment(
            key_secret,
            &p.provider_order_id,
            &provider_payment_id,
            &signature,
        )
    });
    let Some(payment) = matched else {
        return Err(ApiError::new(
            400,
            "invalid_signature",
            "the signature does not match any payment intent of this order",
        ));
    };
    if !payment.state().capturable()
        && payment.provider_payment_id.as_deref() != Some(provider_payment_id.as_str())
    {
        return Err(ApiError::conflict(
            "this payment was already captured with another provider_payment_id",
        )
        .with_details(json!({"payment_id": payment.id, "status": payment.status})));
    }
    let reply = services::call(
        "payments",
        Method::Post,
        &format!("/internal/payments/{}/capture", payment.id),
        "",
        Some(&json!({ "provider_payment_id": provider_payment_id })),
    )?;
    if !reply.is_success() {
        return Err(reply.into_error());
    }
    let outcome: CaptureReply = reply.json()?;
    match outcome.outcome.as_str() {
        "captured" => Ok(Response::ok(&outcome.payment)),
        "refunded" => {
            let why = match outcome.reason.as_deref().and_then(RefundReason::parse) {
                Some(RefundReason::Duplicate) => {
                    "the order was already paid by another payment; this payment was refunded in full"
                }
                _ => "the order was cancelled before the payment was confirmed; the payment was refunded in full",
            };
            Err(ApiError::conflict(why).with_details(json!({
                "payment_id": outcome.payment["id"],
                "status": outcome.payment["status"],
                "refunded_amount": outcome.payment["refunded_amount"],
                "reason": outcome.reason,
            })))
        }
        _ => Err(ApiError::unavailable(
            "the payment is captured but the order could not be updated yet; it will be shortly, or retry this call",
        )
        .with_details(json!({"payment_id": outcome.payment["id"], "status": outcome.payment["status"]}))),
    }
}

#[derive(Debug, Deserialize)]
struct CaptureReply {
    outcome: String,
    #[serde(default)]
    reason: Option<String>,
    payment: Json,
}

/// `POST /internal/payments/{id}/capture {provider_payment_id}` → 200
/// `{outcome: "captured"|"refunded"|"pending", reason, payment}`. Internal: the caller
/// has checked the provider's proof (signature). Always 200 once something changed,
/// so the events of the change are committed.
pub fn internal_capture(req: &Request) -> Result<Response, ApiError> {
    let id: String = req.param("id")?;
    let body = object_body(req)?;
    let pid = text_field(&body, "provider_payment_id").unwrap_or_default();
    if !rules::valid_provider_payment_id(&pid) {
        return Err(ApiError::invalid_field(
            "provider_payment_id",
            rules::PROVIDER_PAYMENT_ID_RULE,
        ));
    }
    let payment = db::find(&id)?.ok_or_else(|| ApiError::not_found("payment"))?;
    let answer = match flow::capture(&payment, &pid)? {
        Captured::Done(p) => json!({"outcome": "captured", "reason": null, "payment": p}),
        Captured::Refunded(p, reason) => {
            json!({"outcome": "refunded", "reason": reason.as_str(), "payment": p})
        }
        Captured::Pending(p, e) => {
            json!({"outcome": "pending", "reason": e.message, "payment": p})
        }
    };
    Ok(Response::ok(&answer))
}

// ---------------------------------------------------------------------------------
// GET /api/v1/payments?order_id=

/// The order's payments, newest first: its customer or an admin.
pub fn list(req: &Request) -> Result<Response, ApiError> {
    let order_id = req.query("order_id").map(str::trim).unwrap_or("");
    if order_id.is_empty() {
        return Err(ApiError::invalid_field("order_id", "is required"));
    }
    let order = orders::visible(order_id, req)?;
    let items = db::by_order(&order.id)?;
    Ok(Response::ok(&json!({ "items": items })))
}

// ---------------------------------------------------------------------------------
// POST /api/v1/payments/{id}/refund

/// `POST /api/v1/payments/{id}/refund {amount?}` (admin) with `Idempotency-Key`.
pub fn refund(req: &Request) -> Result<Response, ApiError> {
    let config = PaymentsConfig::load();
    kirana_sdk::idempotency::with_key(req, config.idempotency_window(), refund_once)
}

fn refund_once(req: &Request) -> Result<Response, ApiError> {
    let id: String = req.param("id")?;
    // An empty body means `{}`.
    let requested = if req.body().iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        rules::refund_amount(&object_body(req)?)?
    };
    if !rules::plausible_id(&id) {
        return Err(ApiError::not_found("payment"));
    }
    match flow::refund(&id, requested, RefundReason::Admin)? {
        Refunded::Refused(r) => Err(r.into_error()),
        Refunded::Done(p) => {
            if p.state() == Status::Refunded {
                // A full refund: the order becomes payment_status refunded.
                flow::settle_after_change(&p.order_id);
            }
            Ok(Response::ok(&*p))
        }
    }
}

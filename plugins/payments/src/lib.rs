//! Payments: a Razorpay-style flow against a built-in sandbox provider — intents,
//! signature verification, signed webhooks (Razorpay's own event bodies and a flat
//! sandbox body), refunds (admin, made at the provider, and automatic when a paid order
//! is cancelled). The signing secrets have no default: unset, payments answer 503.
//!
//! Modules: `handlers` (customer and admin routes), `webhook` (the provider's
//! notifications), `flow` (every payment change and settling payments against their
//! order), `orders` (calls to the orders plugin), `db` (schema and queries), `rules`
//! (pure rules, signatures and configuration). Behaviour and choices:
//! docs/plugins/payments.md.

use kirana_sdk::prelude::*;
use kirana_shop::access;

mod db;
mod flow;
mod handlers;
mod orders;
pub mod rules;
mod webhook;

pub struct Payments;

fn refund_schema() -> kirana_sdk::serde_json::Value {
    json!({"type": "object", "properties": {
        "id": {"type": "string"}, "amount": {"type": "integer"},
        "reason": {"type": "string", "enum": ["admin", "order_cancelled", "duplicate", "provider"]},
        "provider_refund_id": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"}}})
}

fn payment_schema() -> kirana_sdk::serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "order_id": {"type": "string"},
            "user_id": {"type": "string"}, "amount": {"type": "integer"},
            "currency": {"type": "string", "const": "INR"},
            "provider": {"type": "string", "const": "sandbox"},
            "provider_order_id": {"type": "string"},
            "provider_payment_id": {"type": ["string", "null"]},
            "key_id": {"type": "string"},
            "status": {"type": "string", "enum": ["created", "captured", "failed", "refunded"]},
            "refunded_amount": {"type": "integer"},
            "refunds": {"type": "array", "items": refund_schema()},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "captured_at": {"type": ["string", "null"], "format": "date-time"}
        }
    })
}

impl Plugin for Payments {
    const NAME: &'static str = "payments";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn router() -> Router {
        Router::new()
            .post(
                "/api/v1/payments/intents",
                access::CUSTOMER,
                handlers::create_intent,
            )
            .summary("Opens a payment intent for the caller's pending online order (Idempotency-Key supported)")
            .request_schema(json!({"type": "object", "required": ["order_id"],
                "properties": {"order_id": {"type": "string"}}}))
            .response_schema(payment_schema())
            .post("/api/v1/payments/verify", access::CUSTOMER, handlers::verify)
            .summary("Verifies the checkout's signature and captures the payment")
            .request_schema(json!({"type": "object",
                "required": ["order_id", "provider_payment_id", "signature"],
                "properties": {"order_id": {"type": "string"},
                    "provider_payment_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                    "signature": {"type": "string", "description": "lowercase hex HMAC-SHA256(key_secret, provider_order_id|provider_payment_id)"}}}))
            .response_schema(payment_schema())
            .post("/api/v1/payments/webhook", Access::Public, webhook::handle)
            .summary("The provider's signed notification (X-Razorpay-Signature over the raw body): Razorpay's event body or the flat sandbox body")
            .request_schema(json!({"type": "object", "required": ["event"],
                "properties": {
                    "event": {"type": "string", "description": "payment.captured, payment.failed and refund.processed are acted on; any other is acknowledged and ignored"},
                    "payload": {"anyOf": [
                        {"type": "object", "description": "Razorpay's event payload",
                         "properties": {
                            "payment": {"type": "object", "properties": {"entity": {"type": "object",
                                "required": ["id", "order_id"],
                                "properties": {"id": {"type": "string"}, "order_id": {"type": ["string", "null"]},
                                    "amount": {"type": "integer"}, "currency": {"type": "string"},
                                    "status": {"type": "string"}}}}},
                            "refund": {"type": "object", "properties": {"entity": {"type": "object",
                                "required": ["id", "payment_id", "amount"],
                                "properties": {"id": {"type": "string"}, "payment_id": {"type": "string"},
                                    "amount": {"type": "integer", "minimum": 1}}}}}}},
                        {"type": "object", "description": "the flat sandbox payload (payment events)",
                         "required": ["provider_order_id", "provider_payment_id"],
                         "properties": {"provider_order_id": {"type": "string"},
                            "provider_payment_id": {"type": "string"}}}]}}}))
            .response_schema(json!({"type": "object", "properties": {
                "status": {"type": "string", "enum": ["processed", "duplicate", "ignored"]}}}))
            .get(
                "/api/v1/payments",
                access::CUSTOMER_OR_ADMIN,
                handlers::list,
            )
            .summary("The payments of one order (?order_id=), newest first")
            .response_schema(json!({"type": "object", "properties": {
                "items": {"type": "array", "items": payment_schema()}}}))
            .post(
                "/api/v1/payments/{id}/refund",
                access::ADMIN,
                handlers::refund,
            )
            .summary("Refunds part or all of a captured payment (Idempotency-Key supported)")
            .request_schema(json!({"type": "object", "properties": {
                "amount": {"type": "integer", "minimum": 1, "description": "paise; absent = all that is left"}}}))
            .response_schema(payment_schema())
            .post(
                "/internal/payments/{id}/capture",
                Access::Internal,
                handlers::internal_capture,
            )
            .summary("Captures a verified payment and settles its order (used by verify)")
    }

    fn capabilities() -> Capabilities {
        Capabilities::new()
            .sql()
            // Idempotency-Key claims (kirana_sdk::idempotency).
            .kv()
            .call(&["orders", "payments"])
            .publish(&[
                "payment.captured",
                "payment.failed",
                "payment.refunded",
                flow::SETTLE_TOPIC,
            ])
    }

    fn subscriptions() -> Vec<String> {
        vec![
            "order.cancelled".to_string(),
            flow::SETTLE_TOPIC.to_string(),
        ]
    }

    fn migrate(_from: Option<&str>) -> Result<(), String> {
        db::migrate().map_err(|e| kirana_sdk::cap_error_message(&e))
    }

    /// `order.cancelled` and the `payments.settle` retry both settle the order's
    /// payments: captures of a cancelled order are refunded in full, once.
    fn on_event(event: &Event) -> Result<(), String> {
        #[derive(Deserialize)]
        struct OrderRef {
            order_id: String,
        }
        if event.topic != "order.cancelled" && event.topic != flow::SETTLE_TOPIC {
            return Ok(()); // not subscribed to anything else
        }
        let payload = match kirana_sdk::events::payload::<OrderRef>(event) {
            Ok(p) => p,
            Err(e) => {
                kirana_sdk::log::warn(&format!("dropping event {}: {e}", event.id), &[]);
                return Ok(());
            }
        };
        if !rules::plausible_id(&payload.order_id) {
            kirana_sdk::log::warn(&format!("dropping event {}: bad order_id", event.id), &[]);
            return Ok(());
        }
        flow::settle_for_event(&payload.order_id)
    }
}

kirana_sdk::export_plugin!(Payments);

//! Orders: checkout from the cart (redeeming its coupon), the order state machine,
//! cancellation and the automatic cancellation of unpaid online orders.
//!
//! Modules: `checkout` (POST /api/v1/orders with Idempotency-Key), `handlers` (the other
//! public routes), `internal` (routes for payments and delivery), `lifecycle` (every
//! change of an existing order), `db` (schema and queries), `rules` (pure rules and
//! configuration). Behaviour and choices: docs/plugins/orders.md.

use kirana_sdk::prelude::*;
use kirana_shop::access;

mod checkout;
mod db;
mod handlers;
mod internal;
mod lifecycle;
pub mod rules;

pub struct Orders;

/// The topic of the delayed self-event that cancels unpaid online orders.
const PAYMENT_TIMEOUT: &str = "orders.payment_timeout";

fn order_schema() -> kirana_sdk::serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "user_id": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "confirmed", "preparing", "out_for_delivery", "delivered", "cancelled"]},
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "product_id": {"type": "string"}, "name": {"type": "string"},
                "unit": {"type": "string"}, "unit_price": {"type": "integer"},
                "quantity": {"type": "integer"}, "line_total": {"type": "integer"}}}},
            "subtotal": {"type": "integer"}, "delivery_fee": {"type": "integer"},
            "discount": {"type": "integer"}, "coupon_code": {"type": ["string", "null"]},
            "total": {"type": "integer"}, "currency": {"type": "string", "const": "INR"},
            "payment_method": {"type": "string", "enum": ["cod", "online"]},
            "payment_status": {"type": "string", "enum": ["cod", "awaiting", "paid", "refunded"]},
            "address": {"type": "object"}, "notes": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "estimated_delivery_at": {"type": "string", "format": "date-time"},
            "delivered_at": {"type": ["string", "null"], "format": "date-time"},
            "status_history": {"type": "array", "items": {"type": "object", "properties": {
                "status": {"type": "string"}, "at": {"type": "string", "format": "date-time"}}}}
        }
    })
}

fn page_schema() -> kirana_sdk::serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": order_schema()},
            "page": {"type": "integer"}, "page_size": {"type": "integer"}, "total": {"type": "integer"}
        }
    })
}

fn status_schema() -> kirana_sdk::serde_json::Value {
    json!({"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}})
}

impl Plugin for Orders {
    const NAME: &'static str = "orders";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn router() -> Router {
        Router::new()
            .post("/api/v1/orders", access::CUSTOMER, checkout::create)
            .summary("Places an order from the cart (Idempotency-Key supported)")
            .request_schema(json!({
                "type": "object", "required": ["address_id", "payment_method"],
                "properties": {"address_id": {"type": "string"},
                    "payment_method": {"type": "string", "enum": ["cod", "online"]},
                    "notes": {"type": ["string", "null"], "maxLength": 500}}
            }))
            .response_schema(order_schema())
            .get("/api/v1/orders", access::CUSTOMER, handlers::list_own)
            .summary("The caller's orders, newest first; filter status")
            .response_schema(page_schema())
            .get("/api/v1/orders/{id}", access::ANY_ROLE, handlers::get)
            .summary("One order (its customer, an admin, or the assigned agent)")
            .response_schema(order_schema())
            .post(
                "/api/v1/orders/{id}/cancel",
                access::CUSTOMER_OR_ADMIN,
                handlers::cancel,
            )
            .summary(
                "Cancels an order (pending, confirmed or preparing); its stock hold is returned",
            )
            .request_schema(json!({"type": "object", "properties": {"reason": {"type": "string"}}}))
            .response_schema(order_schema())
            .patch(
                "/api/v1/orders/{id}/status",
                access::ADMIN,
                handlers::set_status,
            )
            .summary("Moves an order one step through the state machine")
            .request_schema(status_schema())
            .response_schema(order_schema())
            .get("/api/v1/admin/orders", access::ADMIN, handlers::list_all)
            .summary("Every order, newest first; filter status")
            .response_schema(page_schema())
            .get("/internal/orders/{id}", Access::Internal, internal::get)
            .summary("An order, for payments and delivery")
            .get(
                "/internal/orders/by-hold/{hold_id}",
                Access::Internal,
                internal::by_hold,
            )
            .summary("The order of a stock hold (and coupon redemption), for their expiry")
            .post(
                "/internal/orders/{id}/status",
                Access::Internal,
                internal::status,
            )
            .summary("A state-machine transition, for delivery")
            .post(
                "/internal/orders/{id}/payment-status",
                Access::Internal,
                internal::payment_status,
            )
            .summary("Records paid/refunded, for payments")
            .put(
                "/internal/orders/{id}/agent",
                Access::Internal,
                internal::agent,
            )
            .summary("Sets or clears the assigned delivery agent")
    }

    fn capabilities() -> Capabilities {
        Capabilities::new()
            .sql()
            // Idempotency-Key claims (kirana_sdk::idempotency).
            .kv()
            // promotions: redeeming the cart's coupon at checkout.
            .call(&["cart", "auth", "catalog", "promotions"])
            .publish(&[
                "order.created",
                "order.status_changed",
                "order.cancelled",
                PAYMENT_TIMEOUT,
            ])
    }

    fn subscriptions() -> Vec<String> {
        vec![PAYMENT_TIMEOUT.to_string()]
    }

    fn migrate(_from: Option<&str>) -> Result<(), String> {
        db::migrate().map_err(|e| kirana_sdk::cap_error_message(&e))
    }

    fn on_event(event: &Event) -> Result<(), String> {
        #[derive(Deserialize)]
        struct Timeout {
            order_id: String,
        }
        if event.topic != PAYMENT_TIMEOUT {
            // Not subscribed to anything else; acknowledge rather than retry forever.
            return Ok(());
        }
        let Ok(payload) = kirana_sdk::events::payload::<Timeout>(event) else {
            return Ok(()); // a malformed payload will never succeed; drop it
        };
        lifecycle::payment_timeout(&payload.order_id).map_err(|e| e.to_string())
    }
}

kirana_sdk::export_plugin!(Orders);

//! Delivery: agent profiles, availability and live location; one delivery per order
//! created when the order is being prepared and given to the nearest available agent;
//! the agent's steps (which move the order along), tracking for the customer, and the
//! admin's list and reassignment.
//!
//! Modules: `agents` (profiles, status, location), `handlers` (deliveries over HTTP),
//! `dispatch` (creation, assignment, system changes, events), `peers` (auth and orders
//! internal routes), `db` (schema and queries), `rules` (pure rules). Behaviour and
//! choices: docs/plugins/delivery.md.

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::Value as Json;
use kirana_shop::access;

mod agents;
mod db;
mod dispatch;
mod handlers;
mod peers;
pub mod rules;

pub struct DeliveryPlugin;

fn point_schema() -> Json {
    json!({"type": ["object", "null"], "properties": {
        "lat": {"type": "number"}, "lon": {"type": "number"},
        "at": {"type": "string", "format": "date-time"}}})
}

fn agent_schema() -> Json {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "user_id": {"type": "string"},
            "name": {"type": "string"}, "phone": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": ["offline", "available", "busy"]},
            "last_location": point_schema()
        }
    })
}

fn delivery_schema() -> Json {
    let ts = json!({"type": ["string", "null"], "format": "date-time"});
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "order_id": {"type": "string"},
            "user_id": {"type": "string"}, "agent_id": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": ["unassigned", "assigned", "picked_up", "in_transit", "delivered", "cancelled"]},
            "address": {"type": "object"},
            "items": {"type": "array", "items": {"type": "object"}},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "assigned_at": ts, "picked_up_at": ts, "in_transit_at": ts,
            "delivered_at": ts, "cancelled_at": ts
        }
    })
}

fn page_of(item: Json) -> Json {
    json!({
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": item},
            "page": {"type": "integer"}, "page_size": {"type": "integer"}, "total": {"type": "integer"}
        }
    })
}

fn track_schema() -> Json {
    json!({
        "type": "object",
        "properties": {
            "order_id": {"type": "string"}, "delivery_id": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": ["pending", "unassigned", "assigned", "picked_up", "in_transit", "delivered", "cancelled"]},
            "order_status": {"type": "string"},
            "agent": {"type": ["object", "null"], "properties": {
                "name": {"type": "string"}, "phone": {"type": ["string", "null"]}}},
            "last_location": point_schema(),
            "path": {"type": "array", "items": point_schema()},
            "estimated_delivery_at": {"type": ["string", "null"], "format": "date-time"}
        }
    })
}

impl Plugin for DeliveryPlugin {
    const NAME: &'static str = "delivery";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn router() -> Router {
        Router::new()
            .get("/api/v1/delivery/me", access::DELIVERY_AGENT, agents::me)
            .summary("The calling agent's profile (made on first use)")
            .response_schema(agent_schema())
            .put(
                "/api/v1/delivery/me/status",
                access::DELIVERY_AGENT,
                agents::set_status,
            )
            .summary("Goes available or offline (busy is set by the system)")
            .request_schema(
                json!({"type": "object", "required": ["status"], "properties": {
                "status": {"type": "string", "enum": ["available", "offline"]}}}),
            )
            .response_schema(agent_schema())
            .post(
                "/api/v1/delivery/me/location",
                access::DELIVERY_AGENT,
                agents::location,
            )
            .summary("Reports the agent's position; appended to the active delivery's path")
            .request_schema(
                json!({"type": "object", "required": ["lat", "lon"], "properties": {
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                "lon": {"type": "number", "minimum": -180, "maximum": 180}}}),
            )
            .get(
                "/api/v1/delivery/assignments",
                access::DELIVERY_AGENT,
                handlers::assignments,
            )
            .summary("The calling agent's active deliveries with address and items")
            .response_schema(json!({"type": "object", "properties": {
                "items": {"type": "array", "items": delivery_schema()}}}))
            .put(
                "/api/v1/delivery/{id}/status",
                access::DELIVERY_AGENT,
                handlers::step,
            )
            .summary("The assigned agent's next step: picked_up, in_transit, delivered")
            .request_schema(
                json!({"type": "object", "required": ["status"], "properties": {
                "status": {"type": "string", "enum": ["picked_up", "in_transit", "delivered"]}}}),
            )
            .response_schema(delivery_schema())
            .get(
                "/api/v1/delivery/track/{order_id}",
                access::CUSTOMER_OR_ADMIN,
                handlers::track,
            )
            .summary("Live tracking of an order's delivery (its customer or an admin)")
            .response_schema(track_schema())
            .get("/api/v1/admin/deliveries", access::ADMIN, handlers::list)
            .summary("Every delivery, newest first; filter status")
            .response_schema(page_of(delivery_schema()))
            .put(
                "/api/v1/admin/deliveries/{id}/reassign",
                access::ADMIN,
                handlers::reassign,
            )
            .summary("Gives a not yet picked up delivery to another available agent")
            .request_schema(
                json!({"type": "object", "required": ["agent_id"], "properties": {
                "agent_id": {"type": "string"}}}),
            )
            .response_schema(delivery_schema())
            .get("/api/v1/admin/delivery-agents", access::ADMIN, agents::list)
            .summary("Every agent profile, oldest first; filter status")
            .response_schema(page_of(agent_schema()))
    }

    fn capabilities() -> Capabilities {
        Capabilities::new()
            .sql()
            .call(&["auth", "orders"])
            .publish(&[
                "delivery.assigned",
                "delivery.status_changed",
                "delivery.location_updated",
            ])
    }

    fn subscriptions() -> Vec<String> {
        ["user.created", "order.status_changed", "order.cancelled"]
            .map(String::from)
            .to_vec()
    }

    fn migrate(_from: Option<&str>) -> Result<(), String> {
        db::migrate().map_err(|e| kirana_sdk::cap_error_message(&e))
    }

    fn on_event(event: &Event) -> Result<(), String> {
        let before = dispatch::published();
        let result = handle_event(event);
        match result {
            Ok(()) => Ok(()),
            // Only a fault that may pass is retried, and never once something was
            // announced: a retry would drop those events.
            Err(e) if e.status >= 500 && dispatch::published() == before => Err(e.to_string()),
            Err(e) => {
                kirana_sdk::log::warn(
                    &format!("{} {} not fully handled: {e}", event.topic, event.id),
                    &[],
                );
                Ok(())
            }
        }
    }
}

#[derive(Deserialize)]
struct UserCreated {
    user_id: String,
    name: String,
    #[serde(default)]
    phone: Option<String>,
    role: String,
}

#[derive(Deserialize)]
struct StatusChanged {
    order_id: String,
    to: String,
}

#[derive(Deserialize)]
struct Cancelled {
    order_id: String,
}

/// Routes one event; a malformed payload is logged and acknowledged.
fn handle_event(event: &Event) -> Result<(), ApiError> {
    fn parse<T: serde::de::DeserializeOwned>(event: &Event) -> Option<T> {
        kirana_sdk::events::payload::<T>(event)
            .map_err(|e| kirana_sdk::log::warn(&e, &[]))
            .ok()
    }
    match event.topic.as_str() {
        "user.created" => match parse::<UserCreated>(event) {
            Some(u) if u.role == "delivery_agent" => {
                agents::user_created(&u.user_id, &u.name, u.phone.as_deref())
            }
            _ => Ok(()),
        },
        "order.status_changed" => match parse::<StatusChanged>(event) {
            Some(s) if s.to == "preparing" => dispatch::order_preparing(&s.order_id),
            Some(s) if s.to == "delivered" => dispatch::order_delivered(&s.order_id),
            _ => Ok(()),
        },
        "order.cancelled" => match parse::<Cancelled>(event) {
            Some(c) => dispatch::order_cancelled(&c.order_id),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

kirana_sdk::export_plugin!(DeliveryPlugin);

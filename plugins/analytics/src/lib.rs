//! Analytics: admin dashboards fed only by events (no calls to other plugins).
//!
//! Modules: `events` (payloads and dispatch), `store` (schema and the idempotent
//! updates of the read models), `handlers` (the routes), `rules` (UTC days, the order
//! model and the revenue rule, query parameters; unit-tested natively). Behaviour and
//! choices: docs/plugins/analytics.md.

use kirana_sdk::prelude::*;
use kirana_shop::access;

mod events;
mod handlers;
pub mod rules;
mod store;

pub struct Analytics;

impl Plugin for Analytics {
    const NAME: &'static str = "analytics";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn router() -> Router {
        let int = json!({"type": "integer"});
        let by_status: kirana_sdk::serde_json::Map<String, kirana_sdk::serde_json::Value> =
            rules::ORDER_STATUSES
                .iter()
                .map(|s| (s.to_string(), int.clone()))
                .collect();
        Router::new()
            .get(
                "/api/v1/analytics/dashboard",
                access::ADMIN,
                handlers::dashboard,
            )
            .summary("Today's orders, revenue, average order value, active deliveries and signups (UTC day)")
            .response_schema(json!({
                "type": "object",
                "properties": {
                    "orders_today": int, "revenue_today": int, "avg_order_value": int,
                    "active_deliveries": int, "new_users_today": int,
                    "orders_by_status": {"type": "object", "properties": by_status},
                    "currency": {"type": "string", "const": "INR"}
                }
            }))
            .get("/api/v1/analytics/sales", access::ADMIN, handlers::sales)
            .summary("Counted orders and revenue per UTC day, from..to inclusive (default: the last 7 days)")
            .response_schema(json!({
                "type": "object",
                "properties": {
                    "from": {"type": "string", "format": "date"},
                    "to": {"type": "string", "format": "date"},
                    "points": {"type": "array", "items": {"type": "object", "properties": {
                        "date": {"type": "string", "format": "date"},
                        "orders": int, "revenue": int}}},
                    "total_orders": int, "total_revenue": int,
                    "currency": {"type": "string", "const": "INR"}
                }
            }))
            .get(
                "/api/v1/analytics/products/top",
                access::ADMIN,
                handlers::top_products,
            )
            .summary("Best-selling products of counted orders, by units (limit 1..100, default 10)")
            .response_schema(json!({
                "type": "object",
                "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {
                    "product_id": {"type": "string"}, "name": {"type": "string"},
                    "units": int, "revenue": int}}}}
            }))
            .get("/api/v1/analytics/users", access::ADMIN, handlers::users)
            .summary("Customers in total, new in from..to (default today), and repeat customers")
            .response_schema(json!({
                "type": "object",
                "properties": {
                    "from": {"type": "string", "format": "date"},
                    "to": {"type": "string", "format": "date"},
                    "total": int, "new_in_range": int, "repeat_customers": int
                }
            }))
    }

    fn capabilities() -> Capabilities {
        Capabilities::new().sql()
    }

    fn subscriptions() -> Vec<String> {
        events::TOPICS.iter().map(|t| t.to_string()).collect()
    }

    fn migrate(_from: Option<&str>) -> Result<(), String> {
        store::migrate().map_err(|e| kirana_sdk::cap_error_message(&e))
    }

    fn on_event(event: &Event) -> Result<(), String> {
        events::handle(event)
    }
}

kirana_sdk::export_plugin!(Analytics);

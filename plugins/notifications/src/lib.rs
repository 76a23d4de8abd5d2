//! Notifications: email/SMS from templates (`POST /internal/messages`, the admin
//! outbox), in-app notifications made from events, and the forwarding of events to
//! users' live connections (the only plugin that calls realtime).
//!
//! Modules: `templates` (the templates and strict rendering), `rules` (what each event
//! means for whom), `events` (`on_event`), `handlers` (the user's notifications),
//! `messages` (internal send route and admin outbox), `db` (schema and queries).
//! Behaviour and choices: docs/plugins/notifications.md.

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::Value as Json;

mod db;
mod events;
mod handlers;
mod messages;
pub mod rules;
pub mod templates;

pub struct Notifications;

fn notification_schema() -> Json {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "type": {"type": "string"},
            "title": {"type": "string"}, "body": {"type": "string"},
            "data": {"type": "object"}, "read": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"}
        }
    })
}

fn outbox_schema() -> Json {
    json!({
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"},
                "channel": {"type": "string", "enum": ["email", "sms"]},
                "to": {"type": "string"}, "subject": {"type": "string"},
                "body": {"type": "string"},
                "created_at": {"type": "string", "format": "date-time"},
                "status": {"type": "string", "enum": ["recorded", "pending", "sent", "failed"]}}}},
            "page": {"type": "integer"}, "page_size": {"type": "integer"}, "total": {"type": "integer"}
        }
    })
}

impl Plugin for Notifications {
    const NAME: &'static str = "notifications";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn router() -> Router {
        Router::new()
            .get(
                "/api/v1/notifications",
                Access::Authenticated,
                handlers::list,
            )
            .summary("The caller's in-app notifications, newest first; filter unread=true")
            .response_schema(json!({
                "type": "object",
                "properties": {
                    "items": {"type": "array", "items": notification_schema()},
                    "unread_count": {"type": "integer"},
                    "page": {"type": "integer"}, "page_size": {"type": "integer"},
                    "total": {"type": "integer"}
                }
            }))
            .post(
                "/api/v1/notifications/{id}/read",
                Access::Authenticated,
                handlers::read,
            )
            .summary("Marks one of the caller's notifications read")
            .post(
                "/api/v1/notifications/read-all",
                Access::Authenticated,
                handlers::read_all,
            )
            .summary("Marks every notification of the caller read")
            .get("/api/v1/admin/outbox", Access::ADMIN, messages::outbox)
            .summary("Email and SMS messages sent, newest first; filters channel, to")
            .response_schema(outbox_schema())
            .post("/internal/messages", Access::Internal, messages::create)
            .summary("Renders a template and sends it by email or SMS")
            .request_schema(json!({
                "type": "object", "required": ["channel", "to", "template"],
                "properties": {
                    "channel": {"type": "string", "enum": ["email", "sms"]},
                    "to": {"type": "string"},
                    "template": {"type": "string", "enum": ["otp", "password_reset", "welcome"]},
                    "vars": {"type": "object"}
                }
            }))
            .response_schema(json!({"type": "object", "properties": {"id": {"type": "string"}}}))
    }

    fn capabilities() -> Capabilities {
        Capabilities::new().sql().mail().realtime()
    }

    fn subscriptions() -> Vec<String> {
        rules::SUBSCRIPTIONS.iter().map(|t| t.to_string()).collect()
    }

    fn migrate(_from: Option<&str>) -> Result<(), String> {
        db::migrate().map_err(|e| kirana_sdk::cap_error_message(&e))
    }

    fn on_event(event: &Event) -> Result<(), String> {
        events::handle(event)
    }
}

kirana_sdk::export_plugin!(Notifications);

//! Notifications: email/SMS from templates (`POST /internal/messages`, the admin
//! outbox), in-app notifications and Web Push messages made from events, and the
//! forwarding of events to users' live connections (the only plugin that calls
//! realtime).
//!
//! Modules: `templates` (the templates and strict rendering), `rules` (what each event
//! means for whom), `events` (`on_event`), `handlers` (the user's notifications),
//! `messages` (internal send route and admin outbox), `push` (push subscriptions and
//! payloads), `db` (schema and queries).
//! Behaviour and choices: docs/plugins/notifications.md.

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::Value as Json;
use kirana_shop::access;

mod db;
mod events;
mod handlers;
mod messages;
pub mod push;
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
                "channel": {"type": "string", "enum": ["email", "sms", "push"]},
                "to": {"type": "string", "description": "email address, phone, or (push) user id"},
                "subject": {"type": "string"},
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
            .get(
                "/api/v1/notifications/push/key",
                Access::Public,
                push::key,
            )
            .summary("The VAPID public key (base64url) for the browser's pushManager.subscribe")
            .response_schema(json!({"type": "object", "properties": {
                "vapid_public_key": {"type": "string"}}}))
            .post(
                "/api/v1/notifications/push/subscriptions",
                Access::Authenticated,
                push::subscribe,
            )
            .summary("Registers the browser's push subscription for the caller (201; the same endpoint again: 200, same id)")
            .request_schema(json!({
                "type": "object", "required": ["endpoint", "keys"],
                "properties": {
                    "endpoint": {"type": "string", "format": "uri"},
                    "keys": {"type": "object", "required": ["p256dh", "auth"], "properties": {
                        "p256dh": {"type": "string"}, "auth": {"type": "string"}}}
                }
            }))
            .response_schema(json!({"type": "object", "properties": {"id": {"type": "string"}}}))
            .delete(
                "/api/v1/notifications/push/subscriptions/{id}",
                Access::Authenticated,
                push::unsubscribe,
            )
            .summary("Deletes one of the caller's push subscriptions")
            .get("/api/v1/admin/outbox", access::ADMIN, messages::outbox)
            .summary("Email, SMS and push messages sent, newest first; filters channel, to")
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

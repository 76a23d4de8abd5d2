//! Events in: in-app notifications, the welcome email and live pushes.
//!
//! The order makes redelivery harmless: (1) notifications are inserted in one
//! transaction, deduplicated by event id, and each one created *now* is pushed as
//! `notification.created`; (2) the email and each Web Push message are claimed by
//! event id before they are sent; (3) the event is forwarded live. Only (1) and (2)
//! can fail the handler (and be retried); a retry finds the notifications and the
//! messages already done and creates nothing twice. Realtime failures are logged,
//! never retried: the in-app notifications are the durable record.

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::{self, Value as Json};
use kirana_sdk::{cap_error_message, log, realtime, CapError};

use crate::db::{self, NewNotification, Notification};
use crate::messages;
use crate::rules::{self, EmailSpec, NoteSpec, NOTIFICATION_CREATED};
use crate::templates::{self, RenderedMessage};

pub fn handle(event: &Event) -> Result<(), String> {
    let payload: Json = match serde_json::from_slice(&event.payload) {
        Ok(p @ Json::Object(_)) => p,
        _ => {
            log::warn(
                "dropping an event whose payload is not a JSON object",
                &[("topic", &event.topic), ("event_id", &event.id)],
            );
            return Ok(());
        }
    };
    match rules::effects(&event.topic, &payload) {
        Ok(fx) => {
            let created = db::insert_all(prepare(&event.id, fx.notes))
                .map_err(|e| format!("storing notifications: {}", cap_error_message(&e)))?;
            for n in &created {
                push(&n.user_id, NOTIFICATION_CREATED, &n);
            }
            if let Some(email) = fx.email {
                send_once(&event.id, &email)?;
            }
            for spec in &fx.pushes {
                push_once(&event.id, spec, &payload)?;
            }
        }
        Err(why) => log::warn(
            "no notification for a malformed event",
            &[
                ("topic", &event.topic),
                ("event_id", &event.id),
                ("reason", &why),
            ],
        ),
    }
    for user in rules::forward_targets(&event.topic, &payload) {
        push(&user, &event.topic, &payload);
    }
    Ok(())
}

/// Renders the notifications; one that does not render is logged and left out.
fn prepare(event_id: &str, notes: Vec<rules::NoteSpec>) -> Vec<NewNotification> {
    let now = now_rfc3339();
    notes
        .into_iter()
        .filter_map(|n| match templates::render_notification(n.kind, &n.vars) {
            Ok(r) => Some(NewNotification {
                dedupe_key: rules::dedupe_key(event_id, n.kind, &n.user_id),
                notification: Notification {
                    id: new_id("ntf"),
                    kind: n.kind.to_string(),
                    title: r.subject,
                    body: r.body,
                    data: n.data,
                    read: false,
                    created_at: now.clone(),
                    user_id: n.user_id,
                },
            }),
            Err(e) => {
                log::error(
                    "a notification template did not render",
                    &[("type", n.kind), ("error", &e.to_string())],
                );
                None
            }
        })
        .collect()
}

/// Sends the event's email unless an earlier delivery of the event did. A send that
/// fails for a reason that may pass gives the claim back and fails the handler (the
/// event is retried); a message the host refuses as invalid is logged and dropped.
fn send_once(event_id: &str, email: &EmailSpec) -> Result<(), String> {
    let key = format!("{event_id}|email|{}", email.template);
    let rendered = match messages::render(email.template, &email.vars) {
        Ok(r) => r,
        Err(e) => {
            log::error(
                "an email template did not render",
                &[("template", email.template), ("error", &e.to_string())],
            );
            return Ok(());
        }
    };
    let claimed = db::claim_message(&key)
        .map_err(|e| format!("claiming an email: {}", cap_error_message(&e)))?;
    if !claimed {
        return Ok(());
    }
    match messages::send("email", &email.to, &rendered) {
        Ok(id) => {
            if let Err(e) = db::message_sent(&key, &id) {
                log::warn(
                    "recording a sent email",
                    &[("error", &cap_error_message(&e))],
                );
            }
            Ok(())
        }
        Err(CapError::Invalid(m)) => {
            log::warn(
                "the host refused an email; not retrying",
                &[("template", email.template), ("error", &m)],
            );
            Ok(())
        }
        Err(e) => {
            let why = cap_error_message(&e);
            if let Err(e) = db::release_message(&key) {
                log::warn(
                    "releasing an email claim",
                    &[("error", &cap_error_message(&e))],
                );
            }
            Err(format!("sending the {} email: {why}", email.template))
        }
    }
}

/// Sends the Web Push message `spec` to the user's subscribed browsers unless an
/// earlier delivery of the event did (the host records one outbox row per browser and
/// delivers each once). A user with no subscription gets none; a failure that may
/// pass gives the claim back and fails the handler, like email.
fn push_once(event_id: &str, spec: &NoteSpec, event: &Json) -> Result<(), String> {
    let key = format!("{event_id}|push|{}|{}", spec.kind, spec.user_id);
    let rendered = match templates::render_notification(spec.kind, &spec.vars) {
        Ok(r) => r,
        Err(e) => {
            log::error(
                "a push template did not render",
                &[("type", spec.kind), ("error", &e.to_string())],
            );
            return Ok(());
        }
    };
    let message = RenderedMessage {
        real: templates::Rendered {
            body: crate::push::payload(spec.kind, &rendered.subject, &rendered.body, event),
            subject: rendered.subject,
        },
        masked: None,
    };
    let claimed = db::claim_message(&key)
        .map_err(|e| format!("claiming a push message: {}", cap_error_message(&e)))?;
    if !claimed {
        return Ok(());
    }
    match messages::send("push", &spec.user_id, &message) {
        Ok(id) => {
            if let Err(e) = db::message_sent(&key, &id) {
                log::warn(
                    "recording a sent push message",
                    &[("error", &cap_error_message(&e))],
                );
            }
            Ok(())
        }
        // No browser subscribed: nothing to send, nothing to retry.
        Err(CapError::NotConfigured(_)) => Ok(()),
        Err(CapError::Invalid(m)) => {
            log::warn(
                "the host refused a push message; not retrying",
                &[("type", spec.kind), ("error", &m)],
            );
            Ok(())
        }
        Err(e) => {
            let why = cap_error_message(&e);
            if let Err(e) = db::release_message(&key) {
                log::warn(
                    "releasing a push claim",
                    &[("error", &cap_error_message(&e))],
                );
            }
            Err(format!("sending the {} push message: {why}", spec.kind))
        }
    }
}

/// A live push; a failure (no connection layer, denied) is only logged.
fn push<T: Serialize + ?Sized>(user_id: &str, event: &str, data: &T) {
    if let Err(e) = realtime::push(user_id, event, data) {
        log::warn(
            "a realtime push failed",
            &[
                ("event", event),
                ("user_id", user_id),
                ("error", &cap_error_message(&e)),
            ],
        );
    }
}

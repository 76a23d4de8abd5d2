//! Email and SMS: `POST /internal/messages` (templates rendered and handed to the host's
//! mail capability) and the admin's view of the outbox.
//!
//! Login codes and reset tokens must reach only their recipient. The host's outbox keeps
//! the real text (its SMTP sender delivers it), so before a message is handed to the
//! host this plugin records what an admin may see of it: the masked copy of a template
//! with secrets, or "as sent" for one without. The admin outbox shows that record, and
//! hides a message it has none for; only `[notifications] outbox_reveals_secrets = true`
//! (development) shows the real text.

use kirana_sdk::mail;
use kirana_sdk::prelude::*;
// The body is the contract auth sends it with, defined once.
use kirana_sdk::serde_json::{Map, Value as Json};
use kirana_sdk::{config, CapError};
use kirana_shop::notifications::{Accepted, MessageRequest as MessageBody};
use sha2::{Digest, Sha256};

use crate::db::{self, OutboxView};
use crate::templates::{self, RenderedMessage, TemplateError, MASK};

/// Where the password-reset link points when `[notifications] reset_url` is unset and
/// the host knows no public address.
pub const DEFAULT_RESET_URL: &str = "http://localhost:8080/reset-password";

/// The password-reset page: `[notifications] reset_url`, else the storefront's
/// `/reset-password` at the shop's public address.
fn reset_url() -> String {
    config::get("reset_url")
        .filter(|u| !u.is_empty())
        .or_else(|| config::public_url().map(|base| format!("{base}/reset-password")))
        .unwrap_or_else(|| DEFAULT_RESET_URL.to_string())
}

/// What `POST /internal/messages` sends on.
const CHANNELS: &[&str] = &["email", "sms"];
/// What the admin outbox lists (push messages come from events only).
const OUTBOX_CHANNELS: &[&str] = &["email", "sms", "push"];

/// The variables every message template gets from configuration.
pub fn globals() -> Map<String, Json> {
    let mut g = Map::new();
    g.insert("reset_url".into(), Json::String(reset_url()));
    g
}

/// Renders message template `name`, and its masked copy when it carries secrets.
pub fn render(name: &str, vars: &Map<String, Json>) -> Result<RenderedMessage, TemplateError> {
    templates::render_message_masked(name, vars, &globals())
}

/// Whether the admin outbox shows secrets (development only; default false).
fn reveals_secrets() -> bool {
    config::get_or("outbox_reveals_secrets", false)
}

/// What identifies a message as the host records it (`to` trimmed, as the host stores
/// it): SHA-256 over the length-prefixed fields. The outbox view is keyed by this and
/// not by the outbox id because it must exist before the host has the message, so
/// the message is never listed without it.
pub fn view_digest(channel: &str, to: &str, subject: &str, body: &str) -> String {
    let mut h = Sha256::new();
    for part in [channel, to.trim(), subject, body] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// A host refusal of a message as an API error: the recipient, else what the
/// variables made of the subject or body.
fn refused(e: CapError) -> ApiError {
    match e {
        CapError::Invalid(m) if m.contains("`to`") => ApiError::invalid_field("to", m),
        CapError::Invalid(m) => ApiError::invalid_field("vars", m),
        other => other.into(),
    }
}

/// Sends a rendered message; returns its outbox id. What the admin may see of it is
/// recorded first: if that fails nothing is sent (the caller's retry sends it).
pub fn send(channel: &str, to: &str, m: &RenderedMessage) -> Result<String, CapError> {
    let r = &m.real;
    let view = OutboxView {
        masked_subject: m.masked.as_ref().map(|x| x.subject.clone()),
        masked_body: m.masked.as_ref().map(|x| x.body.clone()),
    };
    db::remember_view(&view_digest(channel, to, &r.subject, &r.body), &view)?;
    mail::send(channel, to, &r.subject, &r.body)
}

/// `POST /internal/messages {channel, to, template, vars}` → 202 `{id}`.
pub fn create(req: &Request) -> Result<Response, ApiError> {
    let body: MessageBody = req.json()?;
    let channel = body.channel.trim();
    let to = body.to.trim();
    let mut v = Validator::new();
    v.check(
        CHANNELS.contains(&channel),
        "channel",
        "must be email or sms",
    );
    match templates::message(body.template.trim()) {
        None => {
            let names: Vec<&str> = templates::MESSAGES.iter().map(|t| t.name).collect();
            v.push(
                "template",
                &format!("unknown template; one of {}", names.join(", ")),
            );
        }
        Some(t) if CHANNELS.contains(&channel) && t.channel != channel => {
            v.push(
                "channel",
                &format!("template {} is sent on the {} channel", t.name, t.channel),
            );
        }
        Some(_) => {}
    }
    match channel {
        "email" => {
            v.email("to", to);
        }
        "sms" => {
            v.phone("to", to);
        }
        _ => {}
    }
    let vars = match body.vars {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(m)) => m,
        Some(_) => {
            v.push("vars", "must be an object");
            Map::new()
        }
    };
    v.finish()?;
    let rendered = render(body.template.trim(), &vars).map_err(|e| match e {
        TemplateError::MissingVars(names) => ApiError::invalid_field(
            "vars",
            format!("missing: {}", names.join(", ")),
        )
        .with_details(json!({
            "fields": [{"field": "vars", "message": format!("missing: {}", names.join(", "))}],
            "missing": names,
        })),
        TemplateError::Unknown(_) => ApiError::invalid_field("template", "unknown template"),
        TemplateError::Render(m) => ApiError::invalid_field("vars", m),
    })?;
    let id = send(channel, to, &rendered).map_err(refused)?;
    Ok(Response::accepted(&Accepted { id }))
}

/// One outbox entry as the admin sees it.
#[derive(Debug, Serialize)]
struct OutboxItem {
    id: String,
    channel: String,
    to: String,
    subject: String,
    body: String,
    created_at: String,
    /// `recorded`, `pending`, `sent` or `failed` (the host's delivery state).
    status: String,
}

/// `GET /api/v1/admin/outbox?channel=&to=&page=&page_size=`: the messages this plugin
/// sent (which is every email, SMS and push message), newest first. A push message
/// is listed once per subscribed browser, `to` being the user id.
pub fn outbox(req: &Request) -> Result<Response, ApiError> {
    let paging = Paging::from_request(req)?;
    let channel = match req.query("channel").map(str::trim) {
        None | Some("") => None,
        Some(c) if OUTBOX_CHANNELS.contains(&c) => Some(c),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "channel",
                "must be email, sms or push",
            ))
        }
    };
    let to = req.query("to").map(str::trim).filter(|t| !t.is_empty());
    // A page past u32 offsets is past the end: the host then answers no items.
    let offset = u32::try_from(paging.offset()).unwrap_or(u32::MAX);
    let page = mail::outbox(channel, to, paging.page_size, offset)?;
    let mut items: Vec<OutboxItem> = page
        .items
        .into_iter()
        .map(|m| OutboxItem {
            id: m.id,
            channel: m.channel,
            to: m.to,
            subject: m.subject,
            body: m.body,
            created_at: m.created_at,
            status: m.status,
        })
        .collect();
    if !reveals_secrets() {
        mask(&mut items)?;
    }
    let total = i64::try_from(page.total).unwrap_or(i64::MAX);
    Ok(Response::ok(&Paged::new(items, paging, total)))
}

/// Replaces each item's text by what the admin may see of it. A message without a
/// recorded view (sent by a version before masking, or by hand) may carry a secret,
/// so it is hidden whole.
fn mask(items: &mut [OutboxItem]) -> Result<(), ApiError> {
    let digests: Vec<String> = items
        .iter()
        .map(|m| view_digest(&m.channel, &m.to, &m.subject, &m.body))
        .collect();
    let views = db::views(&digests)?;
    for (m, digest) in items.iter_mut().zip(&digests) {
        match views.get(digest) {
            Some(v) => {
                if let Some(s) = &v.masked_subject {
                    m.subject = s.clone();
                }
                if let Some(b) = &v.masked_body {
                    m.body = b.clone();
                }
            }
            None => {
                m.subject = MASK.to_string();
                m.body = format!("{MASK} (hidden: no masked copy of this message is on record)");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_tell_every_field_apart() {
        let d = view_digest("sms", "+919876543210", "s", "b");
        assert_eq!(d.len(), 64);
        assert_eq!(d, view_digest("sms", " +919876543210 ", "s", "b"));
        assert_ne!(d, view_digest("email", "+919876543210", "s", "b"));
        assert_ne!(d, view_digest("sms", "+919876543210", "sb", ""));
        assert_ne!(d, view_digest("sms", "+919876543210", "s", "b "));
    }
}

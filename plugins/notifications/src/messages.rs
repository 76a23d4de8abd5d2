//! Email and SMS: `POST /internal/messages` (templates rendered and handed to the host's
//! mail capability) and the admin's view of the outbox.

use kirana_sdk::mail;
use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::{Map, Value as Json};
use kirana_sdk::{config, CapError};

use crate::templates::{self, Rendered, TemplateError};

/// Where the password-reset link points when `[notifications] reset_url` is unset.
pub const DEFAULT_RESET_URL: &str = "http://localhost:8080/reset-password";

const CHANNELS: &[&str] = &["email", "sms"];

/// The variables every message template gets from configuration.
pub fn globals() -> Map<String, Json> {
    let mut g = Map::new();
    g.insert(
        "reset_url".into(),
        Json::String(config::get_or("reset_url", DEFAULT_RESET_URL.to_string())),
    );
    g
}

/// Renders message template `name`.
pub fn render(name: &str, vars: &Map<String, Json>) -> Result<Rendered, TemplateError> {
    templates::render_message(name, vars, &globals())
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

/// Sends a rendered message; returns its outbox id.
pub fn send(channel: &str, to: &str, r: &Rendered) -> Result<String, CapError> {
    mail::send(channel, to, &r.subject, &r.body)
}

#[derive(Debug, Deserialize)]
struct MessageBody {
    channel: String,
    to: String,
    template: String,
    #[serde(default)]
    vars: Option<Json>,
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
    Ok(Response::accepted(&json!({ "id": id })))
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
/// sent (which is every email and SMS), newest first.
pub fn outbox(req: &Request) -> Result<Response, ApiError> {
    let paging = Paging::from_request(req)?;
    let channel = match req.query("channel").map(str::trim) {
        None | Some("") => None,
        Some(c) if CHANNELS.contains(&c) => Some(c),
        Some(_) => return Err(ApiError::invalid_field("channel", "must be email or sms")),
    };
    let to = req.query("to").map(str::trim).filter(|t| !t.is_empty());
    // A page past u32 offsets is past the end: the host then answers no items.
    let offset = u32::try_from(paging.offset()).unwrap_or(u32::MAX);
    let page = mail::outbox(channel, to, paging.page_size, offset)?;
    let items: Vec<OutboxItem> = page
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
    let total = i64::try_from(page.total).unwrap_or(i64::MAX);
    Ok(Response::ok(&Paged::new(items, paging, total)))
}

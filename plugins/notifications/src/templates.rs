//! The templates compiled into the plugin and their rendering (pure; unit-tested natively).
//!
//! Each file under `templates/` is a minijinja template whose first line is the subject
//! (email/SMS) or the title (in-app notification) and whose remaining lines are the body.
//! Rendering is strict: a variable the template uses but the caller did not give is an
//! error, never an empty string.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use kirana_sdk::serde_json::{Map, Value as Json};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// A message template sent through the mail capability.
pub struct MessageTemplate {
    pub name: &'static str,
    /// The channel it is written for: `email` or `sms`.
    pub channel: &'static str,
    /// Variables that are secrets (a login code, a reset token): only the recipient may
    /// read them, so the admin outbox shows a copy rendered with [`MASK`] in their place.
    pub secrets: &'static [&'static str],
    source: &'static str,
}

/// What stands in for a secret in the masked copy of a message.
pub const MASK: &str = "••••••";

/// Templates `POST /internal/messages` accepts (and the welcome email).
pub const MESSAGES: &[MessageTemplate] = &[
    MessageTemplate {
        name: "otp",
        channel: "sms",
        secrets: &["code"],
        source: include_str!("../templates/messages/otp.txt"),
    },
    MessageTemplate {
        name: "password_reset",
        channel: "email",
        secrets: &["token"],
        source: include_str!("../templates/messages/password_reset.txt"),
    },
    MessageTemplate {
        name: "welcome",
        channel: "email",
        secrets: &[],
        source: include_str!("../templates/messages/welcome.txt"),
    },
];

/// In-app notification templates, named by the notification `type` they produce.
pub const NOTIFICATIONS: &[(&str, &str)] = &[
    (
        "welcome",
        include_str!("../templates/notifications/welcome.txt"),
    ),
    (
        "order.placed",
        include_str!("../templates/notifications/order.placed.txt"),
    ),
    (
        "order.status_changed",
        include_str!("../templates/notifications/order.status_changed.txt"),
    ),
    (
        "payment.captured",
        include_str!("../templates/notifications/payment.captured.txt"),
    ),
    (
        "payment.refunded",
        include_str!("../templates/notifications/payment.refunded.txt"),
    ),
    (
        "delivery.assigned",
        include_str!("../templates/notifications/delivery.assigned.txt"),
    ),
    (
        "delivery.new_assignment",
        include_str!("../templates/notifications/delivery.new_assignment.txt"),
    ),
    // Sent as Web Push only (no in-app notification).
    (
        "payment.failed",
        include_str!("../templates/notifications/payment.failed.txt"),
    ),
];

/// Variables the plugin itself provides to every template (from configuration), so
/// callers never pass them.
pub const GLOBALS: &[&str] = &["reset_url"];

/// A rendered template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line: the email/SMS subject or the notification title.
    pub subject: String,
    pub body: String,
}

/// A rendered message and, when its template carries secrets, the copy with every
/// secret masked (what the admin outbox shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMessage {
    /// What the recipient gets.
    pub real: Rendered,
    /// `None` when the template has no secret: the real text is safe to show.
    pub masked: Option<Rendered>,
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    Unknown(String),
    /// Variables the template needs that were absent or null, sorted.
    MissingVars(Vec<String>),
    Render(String),
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::Unknown(name) => write!(f, "no template named {name:?}"),
            TemplateError::MissingVars(vars) => {
                write!(f, "missing template variables: {}", vars.join(", "))
            }
            TemplateError::Render(m) => write!(f, "rendering failed: {m}"),
        }
    }
}

/// The message template `name`, if there is one.
pub fn message(name: &str) -> Option<&'static MessageTemplate> {
    MESSAGES.iter().find(|t| t.name == name)
}

/// Splits a template file into its subject line and body.
fn split(source: &'static str) -> (&'static str, &'static str) {
    match source.split_once('\n') {
        Some((subject, body)) => (subject, body),
        None => (source, ""),
    }
}

fn key(prefix: &str, name: &str, part: &str) -> String {
    format!("{prefix}/{name}.{part}")
}

/// Every template compiled once. The sources are constants checked by the unit tests,
/// so a compile error here is a bug in this crate; it surfaces as a render error.
fn env() -> &'static Result<Environment<'static>, String> {
    static ENV: OnceLock<Result<Environment<'static>, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        let all = MESSAGES
            .iter()
            .map(|t| ("message", t.name, t.source))
            .chain(NOTIFICATIONS.iter().map(|(n, s)| ("notification", *n, *s)));
        for (prefix, name, source) in all {
            let (subject, body) = split(source);
            for (part, text) in [("subject", subject), ("body", body)] {
                env.add_template_owned(key(prefix, name, part), text)
                    .map_err(|e| format!("template {prefix}/{name}.{part}: {e}"))?;
            }
        }
        Ok(env)
    })
}

/// The variables a template uses that the caller must give (globals excluded), sorted.
fn required(env: &Environment<'static>, prefix: &str, name: &str) -> BTreeSet<String> {
    let mut vars = BTreeSet::new();
    for part in ["subject", "body"] {
        if let Ok(t) = env.get_template(&key(prefix, name, part)) {
            vars.extend(t.undeclared_variables(false));
        }
    }
    vars.retain(|v| !GLOBALS.contains(&v.as_str()));
    vars
}

/// The caller-supplied variables `name` needs.
pub fn required_vars(prefix: &str, name: &str) -> Result<Vec<String>, TemplateError> {
    let env = env()
        .as_ref()
        .map_err(|e| TemplateError::Render(e.clone()))?;
    Ok(required(env, prefix, name).into_iter().collect())
}

fn render(
    prefix: &str,
    name: &str,
    vars: &Map<String, Json>,
    globals: &Map<String, Json>,
) -> Result<Rendered, TemplateError> {
    let env = env()
        .as_ref()
        .map_err(|e| TemplateError::Render(e.clone()))?;
    if env.get_template(&key(prefix, name, "body")).is_err() {
        return Err(TemplateError::Unknown(name.to_string()));
    }
    let missing: Vec<String> = required(env, prefix, name)
        .into_iter()
        .filter(|v| vars.get(v).is_none_or(Json::is_null))
        .collect();
    if !missing.is_empty() {
        return Err(TemplateError::MissingVars(missing));
    }
    // Globals first so a caller cannot override them.
    let mut ctx = vars.clone();
    for (k, v) in globals {
        ctx.insert(k.clone(), v.clone());
    }
    let ctx = minijinja::Value::from_serialize(&ctx);
    let run = |part: &str| -> Result<String, TemplateError> {
        env.get_template(&key(prefix, name, part))
            .and_then(|t| t.render(&ctx))
            .map_err(|e| TemplateError::Render(e.to_string()))
    };
    let subject = run("subject")?;
    let body = run("body")?;
    Ok(Rendered {
        // A subject is one line whatever the variables held.
        subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
        body: body.trim().to_string(),
    })
}

/// Renders message template `name` (email/SMS).
pub fn render_message(
    name: &str,
    vars: &Map<String, Json>,
    globals: &Map<String, Json>,
) -> Result<Rendered, TemplateError> {
    if message(name).is_none() {
        return Err(TemplateError::Unknown(name.to_string()));
    }
    render("message", name, vars, globals)
}

/// Renders message template `name` twice: as sent, and with its secret variables
/// replaced by [`MASK`]. A secret's value is also scrubbed from the masked copy
/// wherever else it surfaced (say, a caller passed it in another variable too).
pub fn render_message_masked(
    name: &str,
    vars: &Map<String, Json>,
    globals: &Map<String, Json>,
) -> Result<RenderedMessage, TemplateError> {
    let real = render_message(name, vars, globals)?;
    let secrets = message(name).map(|t| t.secrets).unwrap_or_default();
    if secrets.is_empty() {
        return Ok(RenderedMessage { real, masked: None });
    }
    let mut masked_vars = vars.clone();
    let mut values = Vec::new();
    for s in secrets {
        if let Some(v) = masked_vars.insert((*s).to_string(), Json::String(MASK.into())) {
            values.extend(secret_text(&v));
        }
    }
    let mut masked = render("message", name, &masked_vars, globals)?;
    for v in &values {
        masked.subject = masked.subject.replace(v.as_str(), MASK);
        masked.body = masked.body.replace(v.as_str(), MASK);
    }
    Ok(RenderedMessage {
        real,
        masked: Some(masked),
    })
}

/// The text a secret value renders as, when it is long enough to scrub safely (a
/// one-character "secret" would blank every digit of the message, and guards nothing).
fn secret_text(v: &Json) -> Option<String> {
    let text = match v {
        Json::String(s) => s.trim().to_string(),
        Json::Number(n) => n.to_string(),
        _ => return None,
    };
    (text.chars().count() >= 4).then_some(text)
}

/// Renders the in-app notification template of type `kind` (title = `subject`).
pub fn render_notification(
    kind: &str,
    vars: &Map<String, Json>,
) -> Result<Rendered, TemplateError> {
    render("notification", kind, vars, &Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kirana_sdk::json;

    fn obj(v: Json) -> Map<String, Json> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn globals() -> Map<String, Json> {
        obj(json!({"reset_url": "https://shop.example/reset-password"}))
    }

    #[test]
    fn every_template_compiles() {
        assert!(env().is_ok(), "{:?}", env().as_ref().err());
        for t in MESSAGES {
            assert!(t.channel == "email" || t.channel == "sms");
            assert!(
                !split(t.source).0.trim().is_empty(),
                "{} has a subject",
                t.name
            );
        }
        for (name, source) in NOTIFICATIONS {
            assert!(!split(source).0.trim().is_empty(), "{name} has a title");
            assert!(!split(source).1.trim().is_empty(), "{name} has a body");
        }
    }

    #[test]
    fn required_variables_are_the_documented_ones() {
        assert_eq!(
            required_vars("message", "otp").unwrap(),
            ["code", "minutes"]
        );
        assert_eq!(
            required_vars("message", "password_reset").unwrap(),
            ["name", "token"]
        );
        assert_eq!(required_vars("message", "welcome").unwrap(), ["name"]);
        assert_eq!(
            required_vars("notification", "order.status_changed").unwrap(),
            ["label", "order_ref", "to"]
        );
    }

    #[test]
    fn otp_sms_carries_the_code() {
        let r = render_message(
            "otp",
            &obj(json!({"code": "042917", "minutes": 5})),
            &globals(),
        )
        .unwrap();
        assert_eq!(r.subject, "Your Kirana login code");
        assert!(r.body.contains("042917"), "{}", r.body);
        assert!(r.body.contains("5 minutes"), "{}", r.body);
        let one = render_message(
            "otp",
            &obj(json!({"code": "042917", "minutes": 1})),
            &globals(),
        )
        .unwrap();
        assert!(one.body.contains("expires in 1 minute."), "{}", one.body);
    }

    #[test]
    fn reset_email_carries_token_and_name() {
        let r = render_message(
            "password_reset",
            &obj(json!({"token": "rst_abc-123", "name": "Asha"})),
            &globals(),
        )
        .unwrap();
        assert!(r.body.contains("token=rst_abc-123"), "{}", r.body);
        assert!(r.body.contains("Hi Asha,"), "{}", r.body);
        assert!(
            r.body
                .contains("https://shop.example/reset-password?token=rst_abc-123"),
            "{}",
            r.body
        );
    }

    #[test]
    fn secrets_are_template_variables() {
        for t in MESSAGES {
            let required = required_vars("message", t.name).unwrap();
            for s in t.secrets {
                assert!(required.iter().any(|r| r == s), "{}: {s}", t.name);
            }
        }
        let secret_templates: Vec<&str> = MESSAGES
            .iter()
            .filter(|t| !t.secrets.is_empty())
            .map(|t| t.name)
            .collect();
        assert_eq!(secret_templates, ["otp", "password_reset"]);
    }

    #[test]
    fn masked_copies_hide_codes_and_tokens_only() {
        let m = render_message_masked(
            "otp",
            &obj(json!({"code": "042917", "minutes": 5})),
            &globals(),
        )
        .unwrap();
        assert!(m.real.body.contains("042917"), "{}", m.real.body);
        let masked = m.masked.expect("otp has a masked copy");
        assert!(!masked.body.contains("042917"), "{}", masked.body);
        assert!(masked.body.contains(MASK), "{}", masked.body);
        assert!(masked.body.contains("5 minutes"), "{}", masked.body);
        assert_eq!(masked.subject, m.real.subject);

        let token = "0123456789abcdef0123456789abcdef";
        let m = render_message_masked(
            "password_reset",
            &obj(json!({"token": token, "name": "Asha"})),
            &globals(),
        )
        .unwrap();
        assert!(m.real.body.contains(&format!("token={token}")));
        let masked = m.masked.expect("reset has a masked copy");
        assert!(!masked.body.contains(token), "{}", masked.body);
        assert!(
            masked
                .body
                .contains(&format!("https://shop.example/reset-password?token={MASK}")),
            "{}",
            masked.body
        );
        assert!(masked.body.contains("Hi Asha,"), "{}", masked.body);

        let m =
            render_message_masked("welcome", &obj(json!({"name": "Asha"})), &globals()).unwrap();
        assert_eq!(m.masked, None);
    }

    #[test]
    fn a_secret_repeated_in_another_variable_is_scrubbed_too() {
        let m = render_message_masked(
            "password_reset",
            &obj(json!({"token": "tok_secret_1", "name": "tok_secret_1"})),
            &globals(),
        )
        .unwrap();
        let masked = m.masked.expect("masked");
        assert!(!masked.body.contains("tok_secret_1"), "{}", masked.body);
        // A numeric code is masked as well.
        let m = render_message_masked(
            "otp",
            &obj(json!({"code": 731904, "minutes": 5})),
            &globals(),
        )
        .unwrap();
        assert!(m.real.body.contains("731904"));
        assert!(!m.masked.expect("masked").body.contains("731904"));
    }

    #[test]
    fn callers_cannot_override_globals() {
        let r = render_message(
            "password_reset",
            &obj(json!({"token": "t1", "name": "A", "reset_url": "https://evil.example"})),
            &globals(),
        )
        .unwrap();
        assert!(!r.body.contains("evil"), "{}", r.body);
    }

    #[test]
    fn missing_or_null_variables_are_errors() {
        let e = render_message("otp", &obj(json!({"code": "123456"})), &globals()).unwrap_err();
        assert_eq!(e, TemplateError::MissingVars(vec!["minutes".into()]));
        let e = render_message("otp", &obj(json!({"code": null, "minutes": 5})), &globals())
            .unwrap_err();
        assert_eq!(e, TemplateError::MissingVars(vec!["code".into()]));
        let e = render_message("welcome", &Map::new(), &globals()).unwrap_err();
        assert_eq!(e, TemplateError::MissingVars(vec!["name".into()]));
        assert!(matches!(
            render_message("nope", &Map::new(), &globals()),
            Err(TemplateError::Unknown(_))
        ));
        assert!(matches!(
            render_notification("nope", &Map::new()),
            Err(TemplateError::Unknown(_))
        ));
    }

    #[test]
    fn strict_undefined_also_inside_branches() {
        // `order_ref` is only read in branches; it is still required up front.
        let e = render_notification(
            "order.status_changed",
            &obj(json!({"to": "delivered", "label": "delivered"})),
        )
        .unwrap_err();
        assert_eq!(e, TemplateError::MissingVars(vec!["order_ref".into()]));
    }

    #[test]
    fn subjects_are_one_line_and_text_is_not_html_escaped() {
        let r = render_message(
            "welcome",
            &obj(json!({"name": "A\r\nBcc: x <y>"})),
            &globals(),
        )
        .unwrap();
        assert_eq!(r.subject, "Welcome to Kirana, A Bcc: x <y>!");
        assert!(r.body.contains("Hi A\r\nBcc: x <y>,"), "{}", r.body);
    }

    #[test]
    fn status_change_texts() {
        let r = render_notification(
            "order.status_changed",
            &obj(json!({"to": "out_for_delivery", "label": "out for delivery", "order_ref": "#AB12CD"})),
        )
        .unwrap();
        assert_eq!(r.subject, "Order out for delivery");
        assert_eq!(r.body, "Your order #AB12CD is on its way.");
    }

    #[test]
    fn order_placed_texts() {
        let vars = json!({"order_ref": "#AB12CD", "item_count": 1, "total": "₹115.00",
                          "payment_method": "cod"});
        let r = render_notification("order.placed", &obj(vars)).unwrap();
        assert_eq!(r.subject, "Order placed");
        assert_eq!(
            r.body,
            "We have received your order #AB12CD (1 item, ₹115.00). \
             Please keep ₹115.00 ready for cash on delivery."
        );
        let vars = json!({"order_ref": "#AB12CD", "item_count": 3, "total": "₹115.00",
                          "payment_method": "online"});
        let r = render_notification("order.placed", &obj(vars)).unwrap();
        assert!(r.body.contains("3 items") && r.body.ends_with("to confirm it."));
    }
}

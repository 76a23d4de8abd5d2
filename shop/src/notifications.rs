//! The `notifications` plugin's internal route (docs/plugins/notifications.md): a
//! message from one of its templates, by email or SMS.

use kirana_sdk::serde_json::Value as Json;
use kirana_sdk::{ApiError, Method};
use serde::{Deserialize, Serialize};

use crate::call::{expect, send};

/// The plugin this route belongs to.
pub const PLUGIN: &str = "notifications";

/// `POST /internal/messages` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRequest {
    /// `email` or `sms`: the template's own channel.
    pub channel: String,
    /// An email address or an E.164 number.
    pub to: String,
    /// A message template's name (`otp`, `password_reset`, ...).
    pub template: String,
    /// The template's variables, an object.
    #[serde(default)]
    pub vars: Option<Json>,
}

/// The message was accepted (`202`): its outbox id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub id: String,
}

/// Renders `template` with `vars` and sends it on `channel` to `to`; a bad field is
/// notifications' `400 validation_failed`.
pub fn send_message(
    channel: &str,
    to: &str,
    template: &str,
    vars: Json,
) -> Result<Accepted, ApiError> {
    let body = MessageRequest {
        channel: channel.to_string(),
        to: to.to_string(),
        template: template.to_string(),
        vars: Some(vars),
    };
    expect(
        send(PLUGIN, Method::Post, "/internal/messages", Some(&body))?,
        202,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::round_trip;

    #[test]
    fn message_shapes() {
        let m: MessageRequest = round_trip(
            r#"{"channel": "sms", "to": "+919812345678", "template": "otp",
                "vars": {"code": "123456", "minutes": 5}}"#,
        );
        assert_eq!(m.vars.map(|v| v["minutes"].clone()), Some(5.into()));
        round_trip::<Accepted>(r#"{"id": "msg_1"}"#);
    }
}

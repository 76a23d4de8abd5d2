//! Messages to users go through the notifications plugin, which owns the templates and
//! the outbox (`POST /internal/messages`).

use kirana_sdk::prelude::*;
use kirana_sdk::services;
use kirana_sdk::Method;

/// Renders `template` with `vars` and sends it on `channel` to `to`.
pub fn send(
    channel: &str,
    to: &str,
    template: &str,
    vars: kirana_sdk::serde_json::Value,
) -> Result<(), ApiError> {
    let reply = services::call(
        "notifications",
        Method::Post,
        "/internal/messages",
        "",
        Some(&json!({"channel": channel, "to": to, "template": template, "vars": vars})),
    )?;
    if reply.is_success() {
        Ok(())
    } else {
        Err(reply.into_error())
    }
}

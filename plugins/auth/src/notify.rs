//! Messages to users go through the notifications plugin, which owns the templates and
//! the outbox (`POST /internal/messages`).

use kirana_sdk::prelude::*;

/// Renders `template` with `vars` and sends it on `channel` to `to`.
pub fn send(
    channel: &str,
    to: &str,
    template: &str,
    vars: kirana_sdk::serde_json::Value,
) -> Result<(), ApiError> {
    kirana_shop::notifications::send_message(channel, to, template, vars).map(|_| ())
}

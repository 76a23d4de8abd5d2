//! Outgoing email and SMS, recorded in the host's outbox (and sent over SMTP when the
//! operator configured it).

use crate::bindings::kirana::platform::mail as wit;
use crate::error::CapError;

pub use wit::{OutboxPage, SentMessage};

/// Sends a message on `channel` (`email` or `sms`); returns its id.
pub fn send(channel: &str, to: &str, subject: &str, body: &str) -> Result<String, CapError> {
    wit::send(&wit::Message {
        channel: channel.to_string(),
        to: to.to_string(),
        subject: subject.to_string(),
        body: body.to_string(),
    })
}

/// The messages this plugin sent, newest first, optionally only one `channel` or one
/// recipient; `limit` is capped at 100 by the host.
pub fn outbox(
    channel: Option<&str>,
    to: Option<&str>,
    limit: u32,
    offset: u32,
) -> Result<OutboxPage, CapError> {
    wit::outbox(&wit::OutboxQuery {
        channel: channel.map(str::to_string),
        to: to.map(str::to_string),
        limit,
        offset,
    })
}

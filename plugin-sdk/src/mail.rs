//! Outgoing email and SMS, recorded in the host's outbox.

use crate::bindings::kirana::platform::mail as wit;
use crate::error::CapError;

/// Sends a message on `channel` (`email` or `sms`); returns its id.
pub fn send(channel: &str, to: &str, subject: &str, body: &str) -> Result<String, CapError> {
    wit::send(&wit::Message {
        channel: channel.to_string(),
        to: to.to_string(),
        subject: subject.to_string(),
        body: body.to_string(),
    })
}

//! Outgoing email, SMS and Web Push, recorded in the host's outbox (email sent over
//! SMTP when the operator configured it; push delivered by the host to each browser
//! the user subscribed).

use crate::bindings::kirana::platform::mail as wit;
use crate::error::CapError;

pub use wit::{OutboxPage, PushSubscriptionResult, SentMessage};

/// Sends a message on `channel` (`email`, `sms` or `push`); returns its id.
///
/// For `push`, `to` is a user id and `body` the payload the browser's service worker
/// receives (at most 3993 bytes); a user without a subscription is
/// [`CapError::NotConfigured`] and nothing is recorded.
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

/// The host's VAPID public key (base64url), for the browser's `pushManager.subscribe`.
pub fn push_public_key() -> Result<String, CapError> {
    wit::push_public_key()
}

/// Stores a browser's push subscription for `user_id` (keys base64url, as
/// `PushSubscription.toJSON()` gives them). The same endpoint again keeps its id
/// (`created` false). A bad endpoint or key is [`CapError::Invalid`] whose message
/// starts with the field: `endpoint:`, `p256dh:` or `auth:`.
pub fn push_subscribe(
    user_id: &str,
    endpoint: &str,
    p256dh: &str,
    auth: &str,
) -> Result<PushSubscriptionResult, CapError> {
    wit::push_subscribe(user_id, endpoint, p256dh, auth)
}

/// Deletes one of `user_id`'s push subscriptions; false when the user has no such one.
pub fn push_unsubscribe(user_id: &str, id: &str) -> Result<bool, CapError> {
    wit::push_unsubscribe(user_id, id)
}

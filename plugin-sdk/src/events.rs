//! Publishing events. They are held until the handler succeeds, then written to the
//! host's durable outbox and delivered at least once to every subscriber.

use std::time::Duration;

use serde::Serialize;

use crate::bindings::kirana::platform::events as wit;
use crate::error::CapError;

fn to_json<T: Serialize + ?Sized>(payload: &T) -> Result<Vec<u8>, CapError> {
    serde_json::to_vec(payload).map_err(|e| CapError::Invalid(e.to_string()))
}

/// Publishes `payload` as JSON on `topic`; returns the event id.
pub fn publish<T: Serialize + ?Sized>(topic: &str, payload: &T) -> Result<String, CapError> {
    wit::publish(topic, &to_json(payload)?)
}

/// Publishes an event about a change that is already committed: a failure cannot undo
/// the change and must not fail the answer, so it is logged instead of returned.
pub fn publish_or_log<T: Serialize + ?Sized>(topic: &str, payload: &T) {
    if let Err(e) = publish(topic, payload) {
        crate::log::error(
            &format!(
                "publishing {topic} failed: {}",
                crate::cap_error_message(&e)
            ),
            &[],
        );
    }
}

/// Delivers `payload` on `topic` after `delay`; survives restarts.
pub fn schedule<T: Serialize + ?Sized>(
    topic: &str,
    payload: &T,
    delay: Duration,
) -> Result<String, CapError> {
    let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    wit::schedule(topic, &to_json(payload)?, ms)
}

/// An event's payload as `T`.
pub fn payload<T: serde::de::DeserializeOwned>(event: &crate::Event) -> Result<T, String> {
    serde_json::from_slice(&event.payload)
        .map_err(|e| format!("{} payload is not the expected JSON: {e}", event.topic))
}

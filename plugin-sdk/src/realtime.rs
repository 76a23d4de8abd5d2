//! Live pushes to a user's open connections.

use serde::Serialize;

use crate::bindings::kirana::platform::realtime as wit;
use crate::error::CapError;

/// Sends `data` as JSON to every live connection of `user_id` as SSE event `event`.
pub fn push<T: Serialize + ?Sized>(user_id: &str, event: &str, data: &T) -> Result<(), CapError> {
    let bytes = serde_json::to_vec(data).map_err(|e| CapError::Invalid(e.to_string()))?;
    wit::push(user_id, event, &bytes)
}

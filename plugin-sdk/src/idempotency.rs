//! `Idempotency-Key` for POST routes that create things (orders, payment intents,
//! refunds): the first answer for a (user, key) is stored in the plugin's own database
//! and replayed for the same key within a window, so a retried request creates nothing
//! new. Call [`migrate`] from the plugin's `migrate` and wrap the handler in [`with_key`].

use std::time::Duration;

use serde_json::Value as Json;

use crate::error::{ApiError, CapError};
use crate::http::{Request, Response};
use crate::{params, sql};

/// Creates the `idempotency_keys` table (idempotent).
pub fn migrate() -> Result<(), CapError> {
    sql::execute_batch(&["CREATE TABLE IF NOT EXISTS idempotency_keys (
            user_id TEXT NOT NULL,
            idem_key TEXT NOT NULL,
            request_body TEXT NOT NULL,
            status BIGINT,
            body TEXT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (user_id, idem_key)
        )"])
}

/// An `Idempotency-Key`: 1..=255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// Runs `handler` once per (caller, `Idempotency-Key`) within `window`: the first answer
/// (success or 4xx) is stored and replayed with `Idempotent-Replayed: true`; the same
/// key with another body or on another path, or while the first call is still running,
/// is `409 conflict`;
/// a 5xx answer releases the key so the client may retry. Without the header the
/// handler simply runs. The route must require a signed-in caller.
pub fn with_key(
    req: &Request,
    window: Duration,
    handler: impl FnOnce(&Request) -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let Some(key) = req.header("idempotency-key") else {
        return handler(req);
    };
    if !valid_key(key) {
        return Err(ApiError::invalid_field(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        ));
    }
    let user_id = req.user()?.user_id.clone();
    // The same key on another resource (another payment's refund) is another request.
    let request_body = format!(
        "{} {} {}",
        req.method(),
        req.path(),
        fingerprint(req.body())
    );
    if let Some(stored) = claim(&user_id, key, &request_body, window)? {
        return Ok(stored.replay(req.id()));
    }
    let response = match handler(req) {
        Ok(r) => r,
        Err(e) => e.into_response(req.id()),
    };
    remember(&user_id, key, &response)?;
    Ok(response)
}

/// The request body as compared between a key's uses: JSON re-serialised (so key order
/// and whitespace do not matter), anything else as text.
fn fingerprint(body: &[u8]) -> String {
    match serde_json::from_slice::<Json>(body) {
        Ok(v) => v.to_string(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

/// A claim without an answer this old belongs to a call that died (trap, timeout,
/// restart): plugin calls last seconds, so it is forgotten and may be claimed again.
const ABANDONED_CLAIM_SECS: u64 = 120;

/// A stored first answer.
struct Stored {
    status: u16,
    body: String,
}

impl Stored {
    /// The first answer again. An error body's `request_id` is set to this request's
    /// id, so it keeps matching the `X-Request-Id` header.
    fn replay(self, request_id: &str) -> Response {
        let mut body: Json = serde_json::from_str(&self.body).unwrap_or(Json::Null);
        if let Some(obj) = body.as_object_mut() {
            if obj.contains_key("request_id") {
                obj.insert("request_id".into(), Json::from(request_id));
            }
        }
        Response::json(self.status, &body).with_header("idempotent-replayed", "true")
    }
}

/// Claims `(user, key)` for this request. `None`: the claim is ours, go ahead.
/// `Some(stored)`: replay it. A claim older than the window is forgotten first.
fn claim(
    user_id: &str,
    key: &str,
    request_body: &str,
    window: Duration,
) -> Result<Option<Stored>, ApiError> {
    let now = crate::now();
    let cutoff = crate::rfc3339(now - window);
    let abandoned = crate::rfc3339(now - Duration::from_secs(ABANDONED_CLAIM_SECS));
    sql::execute(
        "DELETE FROM idempotency_keys WHERE user_id = $1 AND idem_key = $2 \
         AND (created_at < $3 OR (status IS NULL AND created_at < $4))",
        &params![user_id, key, cutoff, abandoned],
    )?;
    let inserted = sql::execute(
        "INSERT INTO idempotency_keys (user_id, idem_key, request_body, created_at) \
         VALUES ($1, $2, $3, $4)",
        &params![user_id, key, request_body, crate::rfc3339(now)],
    );
    match inserted {
        Ok(_) => Ok(None),
        Err(CapError::Conflict(_)) => existing(user_id, key, request_body).map(Some),
        Err(e) => Err(e.into()),
    }
}

fn existing(user_id: &str, key: &str, request_body: &str) -> Result<Stored, ApiError> {
    let rows = sql::query(
        "SELECT request_body, status, body FROM idempotency_keys WHERE user_id = $1 AND idem_key = $2",
        &params![user_id, key],
    )?;
    let row = rows
        .first()
        .ok_or_else(|| ApiError::conflict("the Idempotency-Key is being reused; retry"))?;
    let first_body: String = row.get("request_body")?;
    if first_body != request_body {
        return Err(ApiError::conflict(
            "this Idempotency-Key was used with a different request body",
        ));
    }
    let status: Option<i64> = row.get("status")?;
    let body: Option<String> = row.get("body")?;
    match (status.and_then(|s| u16::try_from(s).ok()), body) {
        (Some(status), Some(body)) => Ok(Stored { status, body }),
        _ => Err(ApiError::conflict(
            "a request with this Idempotency-Key is still in progress",
        )),
    }
}

/// Stores the first answer; a server error (5xx) releases the claim instead, so the
/// client can retry the same key once the fault is gone.
fn remember(user_id: &str, key: &str, response: &Response) -> Result<(), ApiError> {
    if response.status >= 500 {
        sql::execute(
            "DELETE FROM idempotency_keys WHERE user_id = $1 AND idem_key = $2",
            &params![user_id, key],
        )?;
        return Ok(());
    }
    let body = String::from_utf8_lossy(&response.body).into_owned();
    // The work is done and must be answered; failing to store the answer only means a
    // retry after the abandoned-claim timeout is not recognised, so it is logged.
    if let Err(e) = sql::execute(
        "UPDATE idempotency_keys SET status = $1, body = $2 WHERE user_id = $3 AND idem_key = $4",
        &params![i64::from(response.status), body, user_id, key],
    ) {
        crate::log::error(
            &format!(
                "storing the answer of Idempotency-Key {key} failed: {}",
                crate::cap_error_message(&e)
            ),
            &[],
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(valid_key("abc-123"));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key(&"x".repeat(256)));
    }

    #[test]
    fn fingerprints_ignore_json_layout() {
        assert_eq!(
            fingerprint(br#"{"a":1, "b":2}"#),
            fingerprint(br#"{ "a": 1,"b":2 }"#)
        );
        assert_ne!(fingerprint(br#"{"a":1}"#), fingerprint(br#"{"a":2}"#));
    }
}

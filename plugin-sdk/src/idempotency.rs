//! `Idempotency-Key` for POST routes that create things (orders, payment intents,
//! refunds): the first answer for a (user, key) is stored in the plugin's own database
//! and replayed for the same key within a window, so a retried request creates nothing
//! new. Call [`migrate`] from the plugin's `migrate` and wrap the handler in [`with_key`].
//!
//! The answer is stored in the same transaction as the handler's work (the host commits
//! everything a call does together), so after a crash either both exist or neither:
//! a retry gets the first answer, or the work is done once, never twice. Two requests
//! with one key at once: the key is claimed in the plugin's KV space (needs the `kv`
//! capability), so the second answers `409 idempotency_in_progress` (or replays the
//! first answer once it committed); without `kv` the claim is a database row and the
//! second waits for the first's commit.

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
/// (success or 4xx) is stored with the handler's work and replayed with
/// `Idempotent-Replayed: true`; the same key with another body or on another path is
/// `409 conflict`; while another request with the key runs, `409
/// idempotency_in_progress`. A 5xx answer stores nothing (the host rolls the call back),
/// so the client may retry. Without the header the handler simply runs. The route must
/// require a signed-in caller.
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
    let now = crate::now();
    let cutoff = crate::rfc3339(now - window);
    if let Some(stored) = stored(&user_id, key, &request_body, &cutoff)? {
        return Ok(stored.replay(req.id()));
    }
    match claim_in_kv(&user_id, key, window) {
        Ok(true) => {}
        // Another request with this key is running (or just answered).
        Ok(false) => {
            return match stored(&user_id, key, &request_body, &cutoff)? {
                Some(first) => Ok(first.replay(req.id())),
                None => Err(in_progress()),
            }
        }
        Err(CapError::Denied(_)) => {
            return claimed_in_the_database(req, key, &user_id, &request_body, &cutoff, handler)
        }
        Err(e) => return Err(e.into()),
    }
    let response = match handler(req) {
        Ok(r) => r,
        Err(e) => e.into_response(req.id()),
    };
    if response.status >= 500 {
        // Undone with the rest of the call: the client may retry the key at once.
        let _ = crate::kv::delete(&kv_lock(&user_id, key));
        return Ok(response);
    }
    // The answer commits with the handler's work (the host commits the call as one).
    // Replaces only an expired answer.
    let written = sql::execute(
        "INSERT INTO idempotency_keys (user_id, idem_key, request_body, status, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (user_id, idem_key) DO UPDATE SET request_body = excluded.request_body, \
         status = excluded.status, body = excluded.body, created_at = excluded.created_at \
         WHERE idempotency_keys.created_at < $7",
        &params![
            user_id,
            key,
            request_body,
            i64::from(response.status),
            String::from_utf8_lossy(&response.body).into_owned(),
            crate::rfc3339(now),
            cutoff
        ],
    );
    match written {
        Ok(1) => Ok(response),
        // A request with this key got past an expired lock and answered first: this
        // one must leave nothing behind, so it fails (5xx rolls the call back) and the
        // client's retry replays the first answer.
        Ok(_) | Err(CapError::Conflict(_)) => Err(ApiError::unavailable(
            "another request with this Idempotency-Key finished first; retry to get its answer",
        )),
        Err(e) => Err(e.into()),
    }
}

/// How long a key's claim in KV lasts: past any call's time limit, short enough that a
/// call that died (trap, crash) frees its key soon.
const KV_CLAIM: Duration = Duration::from_secs(15);

fn kv_lock(user_id: &str, key: &str) -> String {
    format!("idempotency:{user_id}:{key}")
}

/// Claims `(user, key)` in the plugin's KV space; false when another request holds it.
/// A short lock outside the database, so the database's write lock is not held while
/// the handler waits for other plugins (SQLite has one writer per database). It outlives
/// the answer (which then replays from the database), but never the key's `window`: past
/// that, the key is a new request.
fn claim_in_kv(user_id: &str, key: &str, window: Duration) -> Result<bool, CapError> {
    let ttl = KV_CLAIM.min(window);
    crate::kv::compare_and_swap(&kv_lock(user_id, key), None, Some(b"1"), Some(ttl))
}

/// Without the `kv` capability: the claim is the call's first write, so the claim, the
/// work and the answer still commit together, and a concurrent request with the key
/// waits at its claim for this one to commit, then replays its answer.
fn claimed_in_the_database(
    req: &Request,
    key: &str,
    user_id: &str,
    request_body: &str,
    cutoff: &str,
    handler: impl FnOnce(&Request) -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let now = crate::now();
    let tx = sql::begin()?;
    let claimed = tx.execute(
        "INSERT INTO idempotency_keys (user_id, idem_key, request_body, created_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, idem_key) DO UPDATE SET request_body = excluded.request_body, \
         status = NULL, body = NULL, created_at = excluded.created_at \
         WHERE idempotency_keys.created_at < $5",
        &params![user_id, key, request_body, crate::rfc3339(now), cutoff],
    );
    match claimed {
        Ok(1) => {}
        // Taken (and committed) by another request meanwhile: its answer.
        Ok(_) | Err(CapError::Conflict(_)) => {
            tx.rollback()?;
            return match stored(user_id, key, request_body, cutoff)? {
                Some(first) => Ok(first.replay(req.id())),
                None => Err(in_progress()),
            };
        }
        Err(e) => return Err(e.into()),
    }
    let response = match handler(req) {
        Ok(r) => r,
        Err(e) => e.into_response(req.id()),
    };
    if response.status >= 500 {
        // Undone with the rest of the call: the client may retry the key.
        drop(tx);
        return Ok(response);
    }
    let body = String::from_utf8_lossy(&response.body).into_owned();
    tx.execute(
        "UPDATE idempotency_keys SET status = $1, body = $2 WHERE user_id = $3 AND idem_key = $4",
        &params![i64::from(response.status), body, user_id, key],
    )?;
    tx.commit()?;
    Ok(response)
}

fn in_progress() -> ApiError {
    ApiError::new(
        409,
        "idempotency_in_progress",
        "a request with this Idempotency-Key is still in progress; retry shortly",
    )
}

/// The request body as compared between a key's uses: JSON re-serialised (so key order
/// and whitespace do not matter), anything else as text.
fn fingerprint(body: &[u8]) -> String {
    match serde_json::from_slice::<Json>(body) {
        Ok(v) => v.to_string(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

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

/// The first answer for `(user, key)` if one is stored and younger than `cutoff`.
/// The same key with another request is `409 conflict`.
fn stored(
    user_id: &str,
    key: &str,
    request_body: &str,
    cutoff: &str,
) -> Result<Option<Stored>, ApiError> {
    let rows = sql::query(
        "SELECT request_body, status, body FROM idempotency_keys \
         WHERE user_id = $1 AND idem_key = $2 AND created_at >= $3",
        &params![user_id, key, cutoff],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let first_body: String = row.get("request_body")?;
    if first_body != request_body {
        return Err(ApiError::conflict(
            "this Idempotency-Key was used with a different request body",
        ));
    }
    let status: Option<i64> = row.get("status")?;
    let body: Option<String> = row.get("body")?;
    match (status.and_then(|s| u16::try_from(s).ok()), body) {
        (Some(status), Some(body)) => Ok(Some(Stored { status, body })),
        // A claim row from an older version of this module, still unanswered.
        _ => Err(in_progress()),
    }
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

//! A key-value store namespaced per plugin, with TTLs and atomic counters.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::bindings::kirana::platform::kv as wit;
use crate::error::CapError;

fn ttl_ms(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub fn get(key: &str) -> Result<Option<Vec<u8>>, CapError> {
    wit::get(key)
}

/// [`get`] of each key, in order, in one call (one round trip to a shared store); at
/// most 1,024 keys.
pub fn get_many(keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CapError> {
    wit::get_many(keys)
}

pub fn set(key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), CapError> {
    wit::set(key, value, ttl_ms(ttl))
}

pub fn delete(key: &str) -> Result<bool, CapError> {
    wit::delete(key)
}

/// Adds `delta` (absent counts as 0); `ttl` applies when the key is created.
pub fn incr(key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, CapError> {
    wit::incr(key, delta, ttl_ms(ttl))
}

/// Writes `new` only if the current value is `expected`; true when it wrote.
pub fn compare_and_swap(
    key: &str,
    expected: Option<&[u8]>,
    new: Option<&[u8]>,
    ttl: Option<Duration>,
) -> Result<bool, CapError> {
    wit::compare_and_swap(key, expected, new, ttl_ms(ttl))
}

/// [`incr`], applied only once the call's writes have committed (before its answer
/// leaves the host) and dropped when they roll back: for a version that readers of a
/// cache compare against.
pub fn incr_after_commit(key: &str, delta: i64, ttl: Option<Duration>) -> Result<(), CapError> {
    wit::incr_after_commit(key, delta, ttl_ms(ttl))
}

/// Stores `value` tagged `revision` unless the key holds a newer revision, or the same
/// one with a value (an empty `value` marks a revision whose value is not known); true
/// when it wrote. See [`crate::cache::Revisioned`].
pub fn put_revision(
    key: &str,
    revision: u64,
    value: &[u8],
    ttl: Option<Duration>,
) -> Result<bool, CapError> {
    wit::put_revision(key, revision, value, ttl_ms(ttl))
}

/// [`put_revision`], applied only once the call's writes have committed and dropped
/// when they roll back, like [`incr_after_commit`].
pub fn put_revision_after_commit(
    key: &str,
    revision: u64,
    value: &[u8],
    ttl: Option<Duration>,
) -> Result<(), CapError> {
    wit::put_revision_after_commit(key, revision, value, ttl_ms(ttl))
}

/// The revision and value of a key written by [`put_revision`] (the value is empty
/// when that revision's value is not known).
pub fn get_revision(key: &str) -> Result<Option<(u64, Vec<u8>)>, CapError> {
    wit::get_revision(key)
}

pub fn scan(prefix: &str, limit: u32) -> Result<Vec<(String, Vec<u8>)>, CapError> {
    wit::scan(prefix, limit)
}

/// The value at `key` as JSON.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, CapError> {
    match get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            CapError::Invalid(format!("kv value at {key} is not the expected JSON: {e}"))
        }),
    }
}

/// Stores `value` as JSON.
pub fn set_json<T: Serialize + ?Sized>(
    key: &str,
    value: &T,
    ttl: Option<Duration>,
) -> Result<(), CapError> {
    let bytes = serde_json::to_vec(value).map_err(|e| CapError::Invalid(e.to_string()))?;
    set(key, &bytes, ttl)
}

//! The one way the clients call a peer: JSON in, the expected status, JSON out.

use kirana_sdk::services::{self, Reply};
use kirana_sdk::{ApiError, Method};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// `method path` on `plugin` with an optional JSON body; a transport failure (the peer
/// disabled, missing, trapped or slow) is its 503/504 as an [`ApiError`].
pub(crate) fn send<B: Serialize + ?Sized>(
    plugin: &str,
    method: Method,
    path: &str,
    body: Option<&B>,
) -> Result<Reply, ApiError> {
    Ok(services::call(plugin, method, path, "", body)?)
}

/// The answer's body as `T` when its status is `want`, else the peer's error.
pub(crate) fn expect<T: DeserializeOwned>(reply: Reply, want: u16) -> Result<T, ApiError> {
    if reply.status == want {
        reply.json()
    } else {
        Err(reply.into_error())
    }
}

/// `expect`, with a `404` as `None` (an unknown thing is an answer, not an error).
pub(crate) fn expect_found<T: DeserializeOwned>(
    reply: Reply,
    want: u16,
) -> Result<Option<T>, ApiError> {
    match reply.status {
        404 => Ok(None),
        _ => expect(reply, want).map(Some),
    }
}

/// Success with any 2xx and the body ignored, else the peer's error.
pub(crate) fn expect_success(reply: Reply) -> Result<(), ApiError> {
    if reply.is_success() {
        Ok(())
    } else {
        Err(reply.into_error())
    }
}

/// For tests: `T` from a JSON sample, re-serialised equal to it (the type is the
/// whole shape).
#[cfg(test)]
pub(crate) fn round_trip<T: DeserializeOwned + Serialize>(text: &str) -> T {
    let value: kirana_sdk::serde_json::Value =
        kirana_sdk::serde_json::from_str(text).expect("sample is JSON");
    let parsed: T = kirana_sdk::serde_json::from_value(value.clone()).expect("sample parses");
    let again = kirana_sdk::serde_json::to_value(&parsed).expect("serialises");
    assert_eq!(again, value, "round trip changed the sample");
    parsed
}

/// For tests: `T` from a JSON sample of a richer answer; every field `T` keeps
/// re-serialises to the sample's own value (the type is a faithful subset).
#[cfg(test)]
pub(crate) fn subset<T: DeserializeOwned + Serialize>(text: &str) -> T {
    let value: kirana_sdk::serde_json::Value =
        kirana_sdk::serde_json::from_str(text).expect("sample is JSON");
    let parsed: T = kirana_sdk::serde_json::from_value(value.clone()).expect("sample parses");
    let again = kirana_sdk::serde_json::to_value(&parsed).expect("serialises");
    let kept = again.as_object().expect("an object");
    assert!(!kept.is_empty());
    for (k, v) in kept {
        assert_eq!(Some(v), value.get(k), "field {k} differs from the sample");
    }
    parsed
}

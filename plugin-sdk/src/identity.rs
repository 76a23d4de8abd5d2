//! Tokens, sessions and passwords; the signing key stays in the host.

use crate::bindings::kirana::platform::identity as wit;
use crate::error::CapError;

pub use wit::{OidcIdentity, OidcSignIn, SessionInfo, TokenPair};

/// Starts a session and issues its first token pair.
pub fn issue(user_id: &str, role: &str, user_agent: Option<&str>) -> Result<TokenPair, CapError> {
    wit::issue(user_id, role, user_agent)
}

/// Rotates a refresh token; `denied` for a dead, unknown or expired one.
pub fn refresh(refresh_token: &str) -> Result<TokenPair, CapError> {
    wit::refresh(refresh_token)
}

pub fn sessions(user_id: &str) -> Result<Vec<SessionInfo>, CapError> {
    wit::sessions(user_id)
}

pub fn revoke_session(user_id: &str, session_id: &str) -> Result<bool, CapError> {
    wit::revoke_session(user_id, session_id)
}

pub fn revoke_all(user_id: &str) -> Result<u32, CapError> {
    wit::revoke_all(user_id)
}

pub fn hash_password(password: &str) -> Result<String, CapError> {
    wit::hash_password(password)
}

pub fn verify_password(password: &str, hash: &str) -> Result<bool, CapError> {
    wit::verify_password(password, hash)
}

/// Begins a sign-in with an OpenID Connect provider configured on the host; returns the
/// provider URL to redirect the browser to. `NotConfigured` for an unknown provider,
/// `Invalid` for a bad `return_to` or host, `Unavailable` when the provider is down.
pub fn oidc_start(sign_in: &OidcSignIn) -> Result<String, CapError> {
    wit::oidc_start(sign_in)
}

/// The names of the OpenID Connect providers configured on the host, sorted.
pub fn oidc_providers() -> Result<Vec<String>, CapError> {
    wit::oidc_providers()
}

/// Completes it with the callback's `code` and `state`: who signed in, checked by the
/// host. `Invalid` for a bad state, code or ID token; `Unavailable` when the provider
/// is down.
pub fn oidc_finish(provider: &str, code: &str, state: &str) -> Result<OidcIdentity, CapError> {
    wit::oidc_finish(provider, code, state)
}

//! Sign-in with OpenID Connect providers ("Sign in with Google"), and the providers an
//! account is linked to.
//!
//! The host does everything that needs the network or the provider's keys (the plugin
//! has neither): `identity::oidc_start` gives the provider URL, `identity::oidc_finish`
//! checks the callback (state once, PKCE, ID token) and says who signed in. This module
//! decides which account that is:
//!
//! - an identity already linked (`provider`, `subject`) signs in to its account;
//! - else an account with the same email is linked, only when the provider says the
//!   email is verified (an unverified claim would let anyone take over that account):
//!   otherwise `409 conflict`. Signup never proved that email, so whoever made the
//!   account may not be its owner (account pre-hijacking): linking ends every session
//!   of the account and drops its password and proven phone, as a password reset by
//!   email would. The owner sets a new password with the reset email if they want one;
//! - else a new customer is made, with the email only when it is verified (an
//!   unverified one would squat the address), and `user.created` goes out.
//!
//! Admin accounts never sign in through a provider (as they never do by SMS): `403`.
//! Tokens are issued exactly as for a password login, so logout, logout-all and
//! revocation behave the same.

use kirana_sdk::prelude::*;
use kirana_sdk::{identity, sql, CapError};

use crate::account::{publish_created, token_response, user_agent};
use crate::db::{self, User};

pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS identities (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        provider TEXT NOT NULL,
        subject TEXT NOT NULL,
        email TEXT,
        linked_at TEXT NOT NULL,
        UNIQUE (provider, subject)
    )",
    "CREATE INDEX IF NOT EXISTS identities_user ON identities (user_id, linked_at)",
];

/// Longest name taken from a provider (the profile's own limit).
const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Serialize, FromRow)]
pub struct LinkedIdentity {
    pub id: String,
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub linked_at: String,
}

/// A capability error of a provider step, as the API answers it.
fn provider_error(provider: &str, e: CapError) -> ApiError {
    match e {
        CapError::NotConfigured(_) => ApiError::not_found("sign-in provider"),
        CapError::Invalid(m) => ApiError::new(400, "validation_failed", m),
        CapError::Unavailable(m) | CapError::Timeout(m) => {
            ApiError::unavailable(m).with_details(json!({ "provider": provider }))
        }
        other => other.into(),
    }
}

/// `GET /api/v1/auth/oidc/providers` → `{items: [{name, start_url}]}`, sorted by name.
pub fn providers(_req: &Request) -> Result<Response, ApiError> {
    let items: Vec<kirana_sdk::serde_json::Value> = identity::oidc_providers()?
        .into_iter()
        .map(|name| json!({"start_url": format!("/api/v1/auth/oidc/{name}/start"), "name": name}))
        .collect();
    Ok(Response::ok(&json!({ "items": items })))
}

/// `GET /api/v1/auth/oidc/{provider}/start?redirect_uri=` → 302 to the provider.
pub fn start(req: &Request) -> Result<Response, ApiError> {
    let provider: String = req.param("provider")?;
    let sign_in = identity::OidcSignIn {
        callback_path: format!("/api/v1/auth/oidc/{provider}/callback"),
        request_host: req.header("host").map(str::to_string),
        return_to: req
            .query("redirect_uri")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        provider: provider.clone(),
    };
    let url = identity::oidc_start(&sign_in).map_err(|e| provider_error(&provider, e))?;
    Ok(Response::redirect(&url))
}

/// `GET /api/v1/auth/oidc/{provider}/callback?code=&state=` → the token pair (200), or a
/// 302 to the start's `redirect_uri` with the tokens in the fragment.
pub fn callback(req: &Request) -> Result<Response, ApiError> {
    let provider: String = req.param("provider")?;
    if let Some(error) = req.query("error") {
        let why = req.query("error_description").unwrap_or(error);
        return Err(ApiError::new(
            400,
            "validation_failed",
            format!("the provider did not sign you in ({error}): {why}"),
        ));
    }
    let (Some(code), Some(state)) = (req.query("code"), req.query("state")) else {
        return Err(ApiError::new(
            400,
            "validation_failed",
            "the callback needs the provider's code and state: start the sign-in again",
        ));
    };
    let who =
        identity::oidc_finish(&provider, code, state).map_err(|e| provider_error(&provider, e))?;
    let (user, created) = account_for(&who)?;
    let pair = identity::issue(&user.id, &user.role, user_agent(req))?;
    if created {
        publish_created(&user)?;
    }
    Ok(match &who.return_to {
        Some(to) => Response::redirect(&format!(
            "{to}#access_token={}&refresh_token={}&token_type=Bearer&expires_in={}",
            pair.access_token, pair.refresh_token, pair.expires_in
        )),
        None => token_response(200, &user, &pair).with_header("cache-control", "no-store"),
    })
}

/// The account `who` signs in to, and whether it was made now.
fn account_for(who: &identity::OidcIdentity) -> Result<(User, bool), ApiError> {
    if let Some(user) = linked_user(who)? {
        return usable(user).map(|u| (u, false));
    }
    let email = who.email.as_deref().map(crate::input::normalize_email);
    if let Some(email) = email.as_deref() {
        if let Some(user) = db::user_by_email(email)? {
            if !who.email_verified {
                return Err(ApiError::conflict(
                    "an account with this email exists, and the provider does not say the email is verified: sign in with your password, or verify the email with the provider",
                ));
            }
            let user = usable(user)?;
            link(&user.id, who)?;
            if user.password_hash.is_some() || user.phone_verified {
                // The email's owner now holds the account: whatever else opened it goes.
                db::drop_unproven_credentials(&user.id)?;
                identity::revoke_all(&user.id)?;
            }
            let user = db::user_by_id(&user.id)?.ok_or_else(|| ApiError::not_found("user"))?;
            return Ok((user, false));
        }
    }
    let verified_email = email.filter(|_| who.email_verified);
    let name = display_name(who);
    let tx = sql::begin()?;
    let user = db::insert_oidc_user(&tx, verified_email.as_deref(), &name);
    let user = match user {
        Ok(user) => user,
        // The email was taken meanwhile (a signup or another first sign-in).
        Err(CapError::Conflict(_)) => {
            tx.rollback()?;
            return account_for(who);
        }
        Err(e) => return Err(e.into()),
    };
    match insert_identity(&tx, &user.id, who) {
        Ok(()) => {
            tx.commit()?;
            Ok((user, true))
        }
        // The same first sign-in finished twice at once: the other made the account.
        Err(CapError::Conflict(_)) => {
            tx.rollback()?;
            let user = linked_user(who)?.ok_or_else(|| {
                ApiError::conflict("this sign-in is being completed elsewhere: try again")
            })?;
            usable(user).map(|u| (u, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// Admins sign in with their password only.
fn usable(user: User) -> Result<User, ApiError> {
    if user.role == "admin" {
        return Err(ApiError::forbidden(
            "admin accounts sign in with their password, not through a provider",
        ));
    }
    Ok(user)
}

fn linked_user(who: &identity::OidcIdentity) -> Result<Option<User>, ApiError> {
    let user_id = sql::query(
        "SELECT user_id FROM identities WHERE provider = $1 AND subject = $2",
        &params![who.provider, who.subject],
    )?
    .first()
    .map(|r| r.at::<String>(0))
    .transpose()?;
    match user_id {
        Some(id) => Ok(db::user_by_id(&id)?),
        None => Ok(None),
    }
}

/// Links `who` to an existing account; linking it again is a no-op.
fn link(user_id: &str, who: &identity::OidcIdentity) -> Result<(), ApiError> {
    let tx = sql::begin()?;
    match insert_identity(&tx, user_id, who) {
        Ok(()) => Ok(tx.commit()?),
        Err(CapError::Conflict(_)) => Ok(tx.rollback()?),
        Err(e) => Err(e.into()),
    }
}

fn insert_identity(
    tx: &sql::Tx,
    user_id: &str,
    who: &identity::OidcIdentity,
) -> Result<(), CapError> {
    tx.execute(
        "INSERT INTO identities (id, user_id, provider, subject, email, linked_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &params![
            new_id("idn"),
            user_id,
            who.provider,
            who.subject,
            who.email,
            now_rfc3339()
        ],
    )?;
    Ok(())
}

/// The provider's name for the person, else the email's local part, else a stand-in
/// (renamed with `PATCH /me`).
fn display_name(who: &identity::OidcIdentity) -> String {
    let name = who
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .or_else(|| {
            who.email
                .as_deref()
                .and_then(|e| e.split('@').next())
                .filter(|n| !n.is_empty())
        })
        .unwrap_or("Kirana customer");
    name.chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect()
}

/// `GET /api/v1/auth/identities`: the caller's linked providers, oldest first.
pub fn list(req: &Request) -> Result<Response, ApiError> {
    let caller = req.user()?;
    let items: Vec<LinkedIdentity> = sql::query_as(
        "SELECT id, provider, subject, email, linked_at FROM identities \
         WHERE user_id = $1 ORDER BY linked_at, id",
        &params![caller.user_id],
    )?;
    Ok(Response::ok(&json!({ "items": items })))
}

/// `DELETE /api/v1/auth/identities/{id}`: 204; someone else's is 404; the account's
/// last way to sign in (no password, no proven phone, no other provider) is 409.
pub fn unlink(req: &Request) -> Result<Response, ApiError> {
    let caller = req.user()?;
    let id: String = req.param("id")?;
    let tx = sql::begin()?;
    // Writing the user row first serialises unlinks of one account (a row lock on
    // PostgreSQL; SQLite has one writer), so two at once cannot both see a spare.
    let touched = tx.execute(
        "UPDATE users SET updated_at = $1 WHERE id = $2",
        &params![now_rfc3339(), caller.user_id],
    )?;
    let owned = tx
        .query(
            "SELECT 1 FROM identities WHERE id = $1 AND user_id = $2",
            &params![id, caller.user_id],
        )?
        .first()
        .is_some();
    if touched == 0 || !owned {
        return Err(ApiError::not_found("identity"));
    }
    let user = db::user_by_id(&caller.user_id)?.ok_or_else(|| ApiError::not_found("user"))?;
    let others = tx
        .query(
            "SELECT COUNT(*) FROM identities WHERE user_id = $1 AND id <> $2",
            &params![caller.user_id, id],
        )?
        .first()
        .map(|r| r.at::<i64>(0))
        .transpose()?
        .unwrap_or(0);
    if user.password_hash.is_none() && !user.phone_verified && others == 0 {
        return Err(ApiError::conflict(
            "this provider is the account's only way to sign in: set a password (password reset by email) or prove a phone first",
        ));
    }
    tx.execute(
        "DELETE FROM identities WHERE id = $1 AND user_id = $2",
        &params![id, caller.user_id],
    )?;
    tx.commit()?;
    Ok(Response::no_content())
}

//! Password recovery: `POST /api/v1/auth/password/forgot` emails a single-use reset
//! token (the notifications plugin's `password_reset` template, body `token=<token>`);
//! `POST /password/reset` sets the new password and revokes every session.
//!
//! `forgot` answers 202 whatever the email, and a failure to send is logged rather than
//! reported, so neither the status nor the body tells whether an account exists. Only
//! a SHA-256 of the token is stored; a token lives `password_reset_secs` and works
//! once; a successful reset voids the user's other outstanding tokens.

use kirana_sdk::prelude::*;
use kirana_sdk::{identity, random_token, rfc3339, sql};
use sha2::{Digest, Sha256};

use crate::db;
use crate::input::{check_password, normalize_email};
use crate::{lockout, notify};

pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS password_resets (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT,
        created_at TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS password_resets_user ON password_resets (user_id)",
];

/// What is stored of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, Deserialize)]
struct ForgotBody {
    email: String,
}

#[derive(Debug, Deserialize)]
struct ResetBody {
    token: String,
    new_password: String,
}

/// `POST /api/v1/auth/password/forgot {email}` → 202.
pub fn forgot(req: &Request) -> Result<Response, ApiError> {
    let email = normalize_email(&req.json::<ForgotBody>()?.email);
    Validator::new().email("email", &email).finish()?;
    if let Some(user) = db::user_by_email(&email)? {
        if let Err(e) = issue_and_send(&user.id, &email, &user.name) {
            kirana_sdk::log::error(
                &format!("sending a password reset failed: {}", e.message),
                &[("user_id", user.id.as_str())],
            );
        }
    }
    Ok(Response::accepted(&json!({
        "message": "if an account has this email, a reset link is on its way"
    })))
}

fn issue_and_send(user_id: &str, email: &str, name: &str) -> Result<(), ApiError> {
    let ttl = crate::lifetimes::RESET.get();
    let token = random_token();
    let now = kirana_sdk::now();
    sql::execute(
        "INSERT INTO password_resets (token_hash, user_id, expires_at, created_at) \
         VALUES ($1, $2, $3, $4)",
        &params![
            token_hash(&token),
            user_id,
            rfc3339(now + ttl),
            rfc3339(now)
        ],
    )?;
    notify::send(
        "email",
        email,
        "password_reset",
        json!({"token": token, "name": name, "minutes": crate::lifetimes::minutes(ttl)}),
    )
}

/// `POST /api/v1/auth/password/reset {token, new_password}` → 204. The password is
/// checked first, so a too-short one leaves the token usable.
pub fn reset(req: &Request) -> Result<Response, ApiError> {
    let body: ResetBody = req.json()?;
    let mut v = Validator::new();
    check_password(&mut v, "new_password", &body.new_password);
    v.check(!body.token.trim().is_empty(), "token", "is required");
    v.finish()?;
    let bad_token = || ApiError::invalid_field("token", "is invalid, expired or already used");
    let hash = token_hash(body.token.trim());
    let now = kirana_sdk::now_rfc3339();
    let rows = sql::query(
        "SELECT user_id FROM password_resets \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        &params![hash, now],
    )?;
    let user_id: String = rows.first().ok_or_else(bad_token)?.get("user_id")?;
    let user = db::user_by_id(&user_id)?.ok_or_else(bad_token)?;
    let password_hash = identity::hash_password(&body.new_password)?;
    let tx = sql::begin()?;
    // The conditional update makes the token single-use even against a concurrent reset.
    let used = tx.execute(
        "UPDATE password_resets SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        &params![now, hash],
    )?;
    if used != 1 {
        tx.rollback()?;
        return Err(bad_token());
    }
    tx.execute(
        "UPDATE password_resets SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
        &params![now, user.id],
    )?;
    tx.execute(
        "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3",
        &params![password_hash, now, user.id],
    )?;
    tx.commit()?;
    identity::revoke_all(&user.id)?;
    if let Some(email) = &user.email {
        lockout::clear(email)?;
    }
    Ok(Response::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hashes_are_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

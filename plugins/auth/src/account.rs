//! Signup, login, token refresh, logout, sessions and the caller's own profile.
//!
//! Passwords are hashed and tokens signed by the host (`identity`); this plugin never
//! holds a key and never hashes by itself.

use kirana_sdk::identity::{self, TokenPair};
use kirana_sdk::prelude::*;
use kirana_sdk::{events, sql, CapError};

use crate::db::{self, User};
use crate::input::{
    LoginBody, NewUser, NewUserBody, PasswordChangeBody, ProfilePatch, RefreshBody,
};
use crate::lockout;

/// A valid argon2id PHC string (the host's default parameters) of a password nobody
/// knows. Login verifies against it when the email is unknown, so an unknown email
/// costs the same time as a wrong password and does not reveal which accounts exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$a2lyYW5hZHVtbXlzYWx0MQ$SPvyOYUoVV09+4o33QUKBdDpOqStfehdmE4vNtuUUWA";

/// Longer emails never pass signup's validation.
const MAX_EMAIL_BYTES: usize = 254;

/// `{user, access_token, refresh_token, token_type, expires_in}`.
pub fn token_response(status: u16, user: &User, pair: &TokenPair) -> Response {
    Response::json(
        status,
        &json!({
            "user": user,
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "token_type": "Bearer",
            "expires_in": pair.expires_in,
        }),
    )
}

pub fn user_agent(req: &Request) -> Option<&str> {
    req.header("user-agent").filter(|ua| !ua.is_empty())
}

/// The `user.created` event, the same for signups and admin-made users.
pub fn publish_created(user: &User) -> Result<(), CapError> {
    events::publish(
        "user.created",
        &json!({
            "user_id": user.id,
            "email": user.email,
            "name": user.name,
            "phone": user.phone,
            "role": user.role,
            "created_at": user.created_at,
        }),
    )?;
    Ok(())
}

/// A UNIQUE violation on `users.email` is a taken email.
pub fn taken(e: CapError) -> ApiError {
    match e {
        CapError::Conflict(_) => {
            ApiError::already_exists("an account with this email already exists")
                .with_details(json!({ "field": "email" }))
        }
        other => other.into(),
    }
}

/// Hashes the password (in the host) after making sure the email is free, so a taken
/// email does not cost a hash; the UNIQUE constraint still settles races.
pub fn hash_for(user: &NewUser) -> Result<String, ApiError> {
    if db::user_by_email(&user.email)?.is_some() {
        return Err(taken(CapError::Conflict("email".into())));
    }
    Ok(identity::hash_password(&user.password)?)
}

/// `POST /api/v1/auth/signup`: a new customer with its first session. The row, the
/// session and the event stand or fall together: the insert commits last.
pub fn signup(req: &Request) -> Result<Response, ApiError> {
    let new = req.json::<NewUserBody>()?.validate()?;
    let hash = hash_for(&new)?;
    let tx = sql::begin()?;
    let user = db::insert_user(Some(&tx), &new, &hash).map_err(taken)?;
    let pair = identity::issue(&user.id, &user.role, user_agent(req))?;
    publish_created(&user)?;
    tx.commit().map_err(taken)?;
    Ok(token_response(201, &user, &pair))
}

/// `POST /api/v1/auth/login`: unknown email and wrong password are the same 401; a
/// locked account is 429 whatever the password (see `lockout`).
pub fn login(req: &Request) -> Result<Response, ApiError> {
    let (email, password) = req.json::<LoginBody>()?.validate()?;
    if email.len() > MAX_EMAIL_BYTES {
        // No account can have it (signup caps emails); not worth a counter row.
        identity::verify_password(&password, DUMMY_HASH)?;
        return Err(ApiError::invalid_credentials());
    }
    let user = db::user_by_email(&email)?;
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.as_deref())
        .unwrap_or(DUMMY_HASH);
    let verified = lockout::check_password(&email, &password, hash)?;
    let user = match user {
        Some(u) if verified && u.password_hash.is_some() => u,
        _ => return Err(ApiError::invalid_credentials()),
    };
    let pair = identity::issue(&user.id, &user.role, user_agent(req))?;
    Ok(token_response(200, &user, &pair))
}

/// What the login lockout of an account is keyed by: its email, as login counts it, or
/// its id when it has no email (no login can reach such an account by password).
pub fn lockout_subject(user: &User) -> &str {
    user.email.as_deref().unwrap_or(&user.id)
}

/// `POST /api/v1/auth/password {current_password, new_password}` → 204. The current
/// password is checked under the login lockout (a wrong one counts as a failed login,
/// and a locked account is 429); every other session of the user ends, the caller's
/// stays; outstanding reset tokens die with the old password.
pub fn change_password(req: &Request) -> Result<Response, ApiError> {
    let body = req.json::<PasswordChangeBody>()?.validate()?;
    let caller = req.user()?;
    let user = db::user_by_id(&caller.user_id)?.ok_or_else(|| ApiError::not_found("user"))?;
    let hash = user.password_hash.as_deref().unwrap_or(DUMMY_HASH);
    let verified = lockout::check_password(lockout_subject(&user), &body.current, hash)?;
    if !verified || user.password_hash.is_none() {
        return Err(ApiError::invalid_credentials());
    }
    let new_hash = identity::hash_password(&body.new)?;
    db::set_password(&user.id, &new_hash)?;
    // After the new hash is stored, so a session listed here is every session that the
    // old password could have opened.
    for session in identity::sessions(&user.id)? {
        if session.id != caller.session_id {
            identity::revoke_session(&user.id, &session.id)?;
        }
    }
    Ok(Response::no_content())
}

/// `POST /api/v1/auth/refresh`: rotates the refresh token. A dead, unknown or expired
/// token is 401; the host revokes the whole session when a rotated one comes back.
pub fn refresh(req: &Request) -> Result<Response, ApiError> {
    let token = req.json::<RefreshBody>()?.validate()?;
    // `denied` is what the WIT promises for a bad token; `invalid` is taken the same way
    // in case the host rejects a malformed token before looking it up.
    let pair = identity::refresh(&token).map_err(|e| match e {
        CapError::Denied(_) | CapError::Invalid(_) => {
            ApiError::unauthorized("the refresh token is invalid, expired or revoked")
        }
        other => other.into(),
    })?;
    let Some(user) = db::user_by_id(&pair.user_id)? else {
        identity::revoke_session(&pair.user_id, &pair.session_id)?;
        return Err(ApiError::unauthorized("the account no longer exists"));
    };
    Ok(token_response(200, &user, &pair))
}

/// `POST /api/v1/auth/logout`: ends the caller's session (its refresh token too).
pub fn logout(req: &Request) -> Result<Response, ApiError> {
    let caller = req.user()?;
    identity::revoke_session(&caller.user_id, &caller.session_id)?;
    Ok(Response::no_content())
}

/// `POST /api/v1/auth/logout-all`: ends every session of the caller.
pub fn logout_all(req: &Request) -> Result<Response, ApiError> {
    let caller = req.user()?;
    identity::revoke_all(&caller.user_id)?;
    Ok(Response::no_content())
}

/// `GET /api/v1/auth/sessions`: live sessions, newest first; `current` marks the
/// caller's own.
pub fn sessions(req: &Request) -> Result<Response, ApiError> {
    let caller = req.user()?;
    let mut list = identity::sessions(&caller.user_id)?;
    list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let items: Vec<_> = list
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "created_at": s.created_at,
                "last_used_at": s.last_used_at,
                "user_agent": s.user_agent,
                "current": s.id == caller.session_id,
            })
        })
        .collect();
    Ok(Response::ok(&json!({ "items": items })))
}

/// `DELETE /api/v1/auth/sessions/{id}`: 404 unless it is a live session of the caller.
pub fn delete_session(req: &Request) -> Result<Response, ApiError> {
    let caller = req.user()?;
    let id: String = req.param("id")?;
    if identity::revoke_session(&caller.user_id, &id)? {
        Ok(Response::no_content())
    } else {
        Err(ApiError::not_found("session"))
    }
}

fn me_user(req: &Request) -> Result<User, ApiError> {
    let caller = req.user()?;
    db::user_by_id(&caller.user_id)?.ok_or_else(|| ApiError::not_found("user"))
}

/// `GET /api/v1/auth/me`.
pub fn me(req: &Request) -> Result<Response, ApiError> {
    Ok(Response::ok(&me_user(req)?))
}

/// `PATCH /api/v1/auth/me` `{name?, phone?}`: role and email never change here.
pub fn patch_me(req: &Request) -> Result<Response, ApiError> {
    let change = req.json::<ProfilePatch>()?.validate()?;
    let user = me_user(req)?;
    db::update_profile(&user, &change)?;
    let user = db::user_by_id(&user.id)?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Response::ok(&user))
}

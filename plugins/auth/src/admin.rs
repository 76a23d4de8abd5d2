//! Admin user management and the one bootstrap admin from configuration.

use kirana_sdk::prelude::*;
use kirana_sdk::{config, identity, log, sql, CapError};

use crate::account::{hash_for, lockout_subject, publish_created, taken};
use crate::db::{self, User};
use crate::input::{self, AdminUserBody, NewUser};
use crate::lockout;

/// The bootstrap admin the configuration manages: which account it is, and a hash of
/// the configured password last applied to it (to tell a changed configuration from
/// a password the admin changed since). One row, `slot = 'admin'`.
pub const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS bootstrap_admin (
        slot TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )"];

/// `POST /api/v1/admin/users` → 201 user: how admins and delivery agents are made.
/// Publishes `user.created` like a signup (delivery makes agent profiles from it).
pub fn create_user(req: &Request) -> Result<Response, ApiError> {
    let new = req.json::<AdminUserBody>()?.validate()?;
    let hash = hash_for(&new)?;
    let user = db::insert_user(None, &new, &hash).map_err(taken)?;
    publish_created(&user)?;
    Ok(Response::created(&user))
}

/// `GET /api/v1/admin/users?role=&page=&page_size=`: newest first.
pub fn list_users(req: &Request) -> Result<Response, ApiError> {
    let paging = Paging::from_request(req)?;
    let role = input::role_filter(req.query("role"))?;
    let (users, total) = db::list_users(role.as_deref(), paging)?;
    Ok(Response::ok(&Paged::new(users, paging, total)))
}

fn setting(key: &str) -> Option<String> {
    config::get(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The bootstrap admin's row: its user id and the hash of the password last applied.
fn bootstrap_record() -> Result<Option<(String, String)>, CapError> {
    let rows = sql::query(
        "SELECT user_id, password_hash FROM bootstrap_admin WHERE slot = 'admin'",
        &[],
    )?;
    rows.first()
        .map(|r| Ok((r.get("user_id")?, r.get("password_hash")?)))
        .transpose()
}

fn remember(user_id: &str, password_hash: &str) -> Result<(), CapError> {
    sql::execute(
        "INSERT INTO bootstrap_admin (slot, user_id, password_hash, updated_at) \
         VALUES ('admin', $1, $2, $3) ON CONFLICT (slot) DO UPDATE SET \
         user_id = excluded.user_id, password_hash = excluded.password_hash, \
         updated_at = excluded.updated_at",
        &params![user_id, password_hash, now_rfc3339()],
    )?;
    Ok(())
}

/// Keeps the one bootstrap admin in step with `admin_email` / `admin_password`. Runs in
/// every `migrate` (every start, every replica), so each step is idempotent; statements
/// run in the migration's transaction (no `sql::begin` here).
///
/// - No `admin_password` (unset or empty): nothing is created, and an existing
///   bootstrap admin is left as it is. There is no built-in password.
/// - First time: the account with `admin_email` is adopted if it is an admin; with no
///   such account, the oldest admin is adopted and renamed (older versions created the
///   first admin this way, and no other path makes a first admin); with no admin at all,
///   one is created. An `admin_email` held by a non-admin is logged and left alone.
/// - Later: a changed `admin_email` renames the same account (unless another account
///   has that email: logged, left alone, never merged); a changed `admin_password`
///   (it no longer verifies against the hash last applied) replaces the admin's
///   password and revokes its sessions. An unchanged one leaves a password the admin
///   changed through the API as it is.
///
/// A bad email is logged and skipped rather than failing the plugin's load. No
/// `user.created` is published from here: migrate is not a request, and the admin is
/// not a customer.
pub fn ensure_bootstrap_admin() -> Result<(), String> {
    let cap = |e: CapError| kirana_sdk::cap_error_message(&e);
    let record = bootstrap_record().map_err(cap)?;
    let Some(password) = config::get("admin_password").filter(|p| !p.is_empty()) else {
        if record.is_some() {
            log::warn(
                "auth.admin_password (KIRANA_ADMIN_PASSWORD) is not set; the bootstrap admin is left as it is",
                &[],
            );
        } else {
            log::warn(
                "auth.admin_password (KIRANA_ADMIN_PASSWORD) is not set; no bootstrap admin is created",
                &[],
            );
        }
        return Ok(());
    };
    let Some(email) = setting("admin_email").map(|e| input::normalize_email(&e)) else {
        log::warn(
            "auth.admin_email (KIRANA_ADMIN_EMAIL) is not set; the bootstrap admin is not managed",
            &[],
        );
        return Ok(());
    };
    if !kirana_sdk::Validator::new()
        .email("admin_email", &email)
        .is_empty()
    {
        log::warn(
            "admin_email is not a valid email; the bootstrap admin is not managed",
            &[("email", &email)],
        );
        return Ok(());
    }
    if password.chars().count() < input::PASSWORD_MIN {
        log::warn(
            "admin_password is shorter than the password policy allows",
            &[],
        );
    }
    let known = match &record {
        Some((user_id, applied)) => db::user_by_id(user_id)
            .map_err(cap)?
            .map(|u| (u, applied.clone())),
        None => None,
    };
    match known {
        Some((user, applied)) => {
            follow_email(&user, &email).map_err(cap)?;
            if !identity::verify_password(&password, &applied).map_err(cap)? {
                let user = db::user_by_id(&user.id).map_err(cap)?.unwrap_or(user);
                apply_password(&user, &password).map_err(cap)?;
            }
            Ok(())
        }
        None => establish(&email, &password).map_err(cap),
    }
}

/// The first admin's password that earlier versions shipped as a default. An admin
/// account made with it before there was one bootstrap admin (a second admin appeared
/// when `KIRANA_ADMIN_EMAIL` changed) would keep a password anyone can read.
const PUBLISHED_ADMIN_PASSWORD: &str = "kirana-admin-123";

/// Finds or makes the bootstrap admin when none is remembered (or its account is gone),
/// then locks every other admin whose password is the published one.
fn establish(email: &str, password: &str) -> Result<(), CapError> {
    establish_account(email, password)?;
    lock_published_admins(password)
}

/// Admins other than the bootstrap one whose password is [`PUBLISHED_ADMIN_PASSWORD`]
/// lose it (password login off, sessions revoked; a reset by email gives them a new
/// one). Skipped when the configured password is that value itself (development).
fn lock_published_admins(configured: &str) -> Result<(), CapError> {
    if configured == PUBLISHED_ADMIN_PASSWORD {
        return Ok(());
    }
    let bootstrap = bootstrap_record()?.map(|(id, _)| id);
    let rows = sql::query(
        "SELECT id, password_hash FROM users WHERE role = 'admin' AND password_hash IS NOT NULL",
        &[],
    )?;
    for row in rows.iter() {
        let id: String = row.get("id")?;
        let hash: String = row.get("password_hash")?;
        if Some(&id) == bootstrap.as_ref()
            || !identity::verify_password(PUBLISHED_ADMIN_PASSWORD, &hash)?
        {
            continue;
        }
        sql::execute(
            "UPDATE users SET password_hash = NULL, updated_at = $1 WHERE id = $2",
            &params![now_rfc3339(), id],
        )?;
        let revoked = identity::revoke_all(&id)?;
        log::warn(
            "an admin account still had the published default password: its password login is off and its sessions are revoked (it can set a new one with a password reset)",
            &[("admin_id", &id), ("sessions", &revoked.to_string())],
        );
    }
    Ok(())
}

/// Finds or makes the bootstrap admin.
fn establish_account(email: &str, password: &str) -> Result<(), CapError> {
    let user = match db::user_by_email(email)? {
        Some(u) if u.role == "admin" => u,
        Some(u) => {
            log::warn(
                "admin_email belongs to an account that is not an admin; left as it is, no bootstrap admin",
                &[("email", email), ("role", &u.role)],
            );
            return Ok(());
        }
        None => match db::oldest_admin()? {
            Some(first) => {
                follow_email(&first, email)?;
                db::user_by_id(&first.id)?.unwrap_or(first)
            }
            None => return create(email, password),
        },
    };
    // Adopted: its password stays if it already is the configured one.
    match user.password_hash.as_deref() {
        Some(hash) if identity::verify_password(password, hash)? => remember(&user.id, hash),
        _ => apply_password(&user, password),
    }
}

fn create(email: &str, password: &str) -> Result<(), CapError> {
    let admin = NewUser {
        email: email.to_string(),
        password: String::new(),
        name: setting("admin_name").unwrap_or_else(|| "Administrator".to_string()),
        phone: None,
        role: "admin".to_string(),
    };
    let hash = identity::hash_password(password)?;
    let inserted = db::insert_user_if_absent(&admin, &hash)?;
    let Some(user) = db::user_by_email(email)? else {
        return Err(CapError::Failed("the bootstrap admin vanished".into()));
    };
    if !inserted {
        // Another replica made it first: adopt what it made.
        return establish_account(email, password);
    }
    remember(&user.id, &hash)?;
    log::info(
        "created the bootstrap admin from configuration",
        &[("email", email)],
    );
    Ok(())
}

/// Renames the bootstrap admin to `email`, unless another account has that email.
fn follow_email(user: &User, email: &str) -> Result<(), CapError> {
    if user.email.as_deref() == Some(email) {
        return Ok(());
    }
    let clash = || {
        log::warn(
            "admin_email belongs to another account; the bootstrap admin keeps its email",
            &[("email", email), ("admin_id", &user.id)],
        );
    };
    if db::user_by_email(email)?.is_some() {
        clash();
        return Ok(());
    }
    let renamed = sql::execute(
        "UPDATE users SET email = $1, updated_at = $2 WHERE id = $3 \
         AND NOT EXISTS (SELECT 1 FROM users WHERE email = $1)",
        &params![email, now_rfc3339(), user.id],
    )?;
    if renamed == 1 {
        log::info(
            "the bootstrap admin now has the configured admin_email",
            &[("email", email), ("admin_id", &user.id)],
        );
    } else {
        clash();
    }
    Ok(())
}

/// Sets the configured password on the bootstrap admin and remembers it; every session
/// of the admin ends (whoever held the old password is out), outstanding reset tokens
/// die, and failed-login counts are forgotten.
fn apply_password(user: &User, password: &str) -> Result<(), CapError> {
    let hash = identity::hash_password(password)?;
    let now = now_rfc3339();
    sql::execute(
        "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3",
        &params![hash, now, user.id],
    )?;
    sql::execute(
        "UPDATE password_resets SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
        &params![now, user.id],
    )?;
    lockout::clear(lockout_subject(user))?;
    remember(&user.id, &hash)?;
    let revoked = identity::revoke_all(&user.id)?;
    log::info(
        "applied the configured admin_password to the bootstrap admin; its sessions are revoked",
        &[("admin_id", &user.id), ("sessions", &revoked.to_string())],
    );
    Ok(())
}

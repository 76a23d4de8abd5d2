//! Phone login with one-time codes: `POST /api/v1/auth/otp/request` sends a 6-digit code
//! by SMS (through the notifications plugin's `otp` template), `POST /otp/verify` trades
//! it for tokens, creating a customer on a phone's first login.
//!
//! One live code per phone (a new request replaces it); the code is stored as an argon2
//! hash, expires after `otp_ttl_minutes`, and is void after 3 wrong tries. A phone gets at
//! most `otp_max_per_hour` codes an hour (SMS costs money and floods phones). Every
//! failure of verify is the same `401 invalid_credentials`.

use std::time::Duration;

use kirana_sdk::prelude::*;
use kirana_sdk::{config, identity, random_code, rfc3339, sql, CapError};

use crate::account::{publish_created, token_response, user_agent};
use crate::db::{self, User};
use crate::notify;

/// Wrong tries that void a code.
pub const MAX_ATTEMPTS: i64 = 3;
const CODE_DIGITS: u32 = 6;

pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS otp_codes (
        phone TEXT PRIMARY KEY,
        code_hash TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        expires_at TEXT NOT NULL,
        created_at TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS otp_sends (
        id TEXT PRIMARY KEY,
        phone TEXT NOT NULL,
        sent_at TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS otp_sends_phone ON otp_sends (phone, sent_at)",
];

fn ttl() -> Duration {
    let minutes: u64 = config::get_or("otp_ttl_minutes", 5u64).clamp(1, 60);
    Duration::from_secs(minutes * 60)
}

#[derive(Debug, Deserialize)]
struct RequestBody {
    phone: String,
}

#[derive(Debug, Deserialize)]
struct VerifyBody {
    phone: String,
    code: String,
}

fn clean_phone(raw: &str) -> Result<String, ApiError> {
    let phone = raw.trim().to_string();
    Validator::new().phone("phone", &phone).finish()?;
    Ok(phone)
}

/// `POST /api/v1/auth/otp/request {phone}` → 202 `{expires_in}`.
pub fn request(req: &Request) -> Result<Response, ApiError> {
    let phone = clean_phone(&req.json::<RequestBody>()?.phone)?;
    let now = kirana_sdk::now();
    let hour_ago = rfc3339(now - Duration::from_secs(3600));
    sql::execute(
        "DELETE FROM otp_sends WHERE phone = $1 AND sent_at < $2",
        &params![phone, hour_ago],
    )?;
    let sent: i64 = sql::query(
        "SELECT COUNT(*) AS n FROM otp_sends WHERE phone = $1",
        &params![phone],
    )?
    .scalar()?;
    let max_per_hour: i64 = config::get_or("otp_max_per_hour", 5i64).max(1);
    if sent >= max_per_hour {
        return Err(ApiError::rate_limited(format!(
            "at most {max_per_hour} codes an hour for one phone; try again later"
        )));
    }
    let code = random_code(CODE_DIGITS);
    let hash = identity::hash_password(&code)?;
    let ttl = ttl();
    let expires_at = rfc3339(now + ttl);
    let tx = sql::begin()?;
    tx.execute("DELETE FROM otp_codes WHERE phone = $1", &params![phone])?;
    tx.execute(
        "INSERT INTO otp_codes (phone, code_hash, attempts, expires_at, created_at) \
         VALUES ($1, $2, 0, $3, $4)",
        &params![phone, hash, expires_at, rfc3339(now)],
    )?;
    tx.execute(
        "INSERT INTO otp_sends (id, phone, sent_at) VALUES ($1, $2, $3)",
        &params![new_id("otps"), phone, rfc3339(now)],
    )?;
    // Sent before the commit: if the SMS cannot go out, no code is left behind.
    notify::send(
        "sms",
        &phone,
        "otp",
        json!({"code": code, "minutes": ttl.as_secs() / 60}),
    )?;
    tx.commit()?;
    Ok(Response::accepted(&json!({ "expires_in": ttl.as_secs() })))
}

/// `POST /api/v1/auth/otp/verify {phone, code}` → 200 tokens.
pub fn verify(req: &Request) -> Result<Response, ApiError> {
    let body: VerifyBody = req.json()?;
    let phone = clean_phone(&body.phone)?;
    let code = body.code.trim();
    let rows = sql::query(
        "SELECT code_hash, attempts, expires_at FROM otp_codes WHERE phone = $1",
        &params![phone],
    )?;
    let Some(row) = rows.first() else {
        return Err(ApiError::invalid_credentials());
    };
    let hash: String = row.get("code_hash")?;
    let attempts: i64 = row.get("attempts")?;
    let expires_at: String = row.get("expires_at")?;
    if expires_at <= kirana_sdk::now_rfc3339() || attempts >= MAX_ATTEMPTS {
        sql::execute(
            "DELETE FROM otp_codes WHERE phone = $1 AND code_hash = $2",
            &params![phone, hash],
        )?;
        return Err(ApiError::invalid_credentials());
    }
    let well_formed =
        code.len() == CODE_DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit());
    if !well_formed || !identity::verify_password(code, &hash)? {
        record_wrong_try(&phone, &hash, attempts)?;
        return Err(ApiError::invalid_credentials());
    }
    // Single use, even against a concurrent verify of the same code.
    let taken = sql::execute(
        "DELETE FROM otp_codes WHERE phone = $1 AND code_hash = $2",
        &params![phone, hash],
    )?;
    if taken != 1 {
        return Err(ApiError::invalid_credentials());
    }
    let (user, created) = user_for_phone(&phone)?;
    let pair = identity::issue(&user.id, &user.role, user_agent(req))?;
    if created {
        publish_created(&user)?;
    }
    Ok(token_response(200, &user, &pair))
}

/// Counts a wrong try; the third voids the code.
fn record_wrong_try(phone: &str, hash: &str, attempts: i64) -> Result<(), CapError> {
    if attempts + 1 >= MAX_ATTEMPTS {
        sql::execute(
            "DELETE FROM otp_codes WHERE phone = $1 AND code_hash = $2",
            &params![phone, hash],
        )?;
    } else {
        sql::execute(
            "UPDATE otp_codes SET attempts = attempts + 1 WHERE phone = $1 AND code_hash = $2",
            &params![phone, hash],
        )?;
    }
    Ok(())
}

/// The customer or delivery agent with this phone (the oldest, if several), else a new
/// customer named "Kirana customer" (renamed with `PATCH /me`). Admin accounts never
/// log in by SMS.
fn user_for_phone(phone: &str) -> Result<(User, bool), ApiError> {
    if let Some(user) = db::user_by_phone(phone)? {
        return Ok((user, false));
    }
    // Two first logins of one phone cannot race here: each needs the phone's one code,
    // and only one verify deletes it.
    Ok((db::insert_phone_user(phone)?, true))
}

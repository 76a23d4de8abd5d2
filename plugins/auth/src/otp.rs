//! Phone codes: login by SMS, and proving a phone for an account.
//!
//! `POST /api/v1/auth/otp/request` sends a 6-digit code by SMS (through the
//! notifications plugin's `otp` template); `POST /otp/verify` trades it for tokens of the
//! account that *proved* that phone, creating a customer (with the phone proven) when no
//! account has. A phone an account merely states (signup, `PATCH /me`) logs no one in.
//!
//! `POST /api/v1/auth/me/phone/request` and `/me/phone/verify` (any signed-in role) are
//! how an account proves the phone it states: the same kind of code, sent to that phone,
//! recorded in `proven_phones` (one account per proven phone) when it comes back.
//!
//! One live code per phone for login (a new request replaces it) and one per account
//! for proofs; codes are stored as argon2 hashes, expire after `otp_ttl_secs`, and
//! allow 3 tries, counted before each comparison (see `attempts`). A phone gets at most
//! `otp_max_per_hour` codes an hour, of both kinds together (SMS costs money and floods
//! phones). Every failure of a verify is the same `401 invalid_credentials`.

use std::cell::RefCell;
use std::time::Duration;

use kirana_sdk::prelude::*;
use kirana_sdk::sql::Tx;
use kirana_sdk::{config, identity, random_code, rfc3339, sql, CapError};

use crate::account::{publish_created, token_response, user_agent};
use crate::attempts::{Attempt, Counter, Outcome};
use crate::db::{self, User};
use crate::notify;

/// Tries a code allows; the third wrong one voids it.
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
    // One row per phone that sends lock: sends to one phone count one at a time.
    "CREATE TABLE IF NOT EXISTS otp_send_locks (phone TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS phone_proofs (
        user_id TEXT PRIMARY KEY,
        phone TEXT NOT NULL,
        code_hash TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        expires_at TEXT NOT NULL,
        created_at TEXT NOT NULL
    )",
];

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

#[derive(Debug, Deserialize)]
struct ProofBody {
    code: String,
}

/// Sends a fresh code to `phone` within the per-phone hourly limit. `store` keeps its
/// hash in the same transaction, which commits only once the SMS is queued: if it
/// cannot go out, no code is left behind. Returns the code's lifetime.
fn send_code(
    phone: &str,
    store: impl FnOnce(&Tx, &str, &str, &str) -> Result<(), CapError>,
) -> Result<Duration, ApiError> {
    let now = kirana_sdk::now();
    let hour_ago = rfc3339(now - Duration::from_secs(3600));
    let max_per_hour: i64 = config::get_or("otp_max_per_hour", 5i64).max(1);
    let tx = sql::begin()?;
    // Count and record under the phone's lock row (held to the commit on PostgreSQL;
    // SQLite's write transaction serialises anyway): parallel requests for one phone
    // cannot all see the count below the limit.
    tx.execute(
        "INSERT INTO otp_send_locks (phone) VALUES ($1) \
         ON CONFLICT (phone) DO UPDATE SET phone = excluded.phone",
        &params![phone],
    )?;
    tx.execute(
        "DELETE FROM otp_sends WHERE phone = $1 AND sent_at < $2",
        &params![phone, hour_ago],
    )?;
    let sent: i64 = tx
        .query(
            "SELECT COUNT(*) AS n FROM otp_sends WHERE phone = $1",
            &params![phone],
        )?
        .scalar()?;
    if sent >= max_per_hour {
        return Err(ApiError::rate_limited(format!(
            "at most {max_per_hour} codes an hour for one phone; try again later"
        )));
    }
    let code = random_code(CODE_DIGITS);
    let hash = identity::hash_password(&code)?;
    let ttl = crate::lifetimes::OTP.get();
    store(&tx, &hash, &rfc3339(now + ttl), &rfc3339(now))?;
    tx.execute(
        "INSERT INTO otp_sends (id, phone, sent_at) VALUES ($1, $2, $3)",
        &params![new_id("otps"), phone, rfc3339(now)],
    )?;
    notify::send(
        "sms",
        phone,
        "otp",
        json!({"code": code, "minutes": crate::lifetimes::minutes(ttl)}),
    )?;
    tx.commit()?;
    Ok(ttl)
}

fn well_formed(code: &str) -> bool {
    code.len() == CODE_DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit())
}

/// A try of a login code: counted on the phone's `otp_codes` row.
struct LoginCode<'a> {
    phone: &'a str,
    code: &'a str,
}

impl Counter for LoginCode<'_> {
    type Secret = String;
    type Error = CapError;

    fn count(&self) -> Result<Option<(String, i64)>, CapError> {
        let rows = sql::query(
            "UPDATE otp_codes SET attempts = attempts + 1 \
             WHERE phone = $1 AND expires_at > $2 RETURNING code_hash, attempts",
            &params![self.phone, kirana_sdk::now_rfc3339()],
        )?;
        rows.first()
            .map(|r| Ok((r.get("code_hash")?, r.get("attempts")?)))
            .transpose()
    }

    fn compare(&self, hash: &String) -> Result<bool, CapError> {
        Ok(well_formed(self.code) && identity::verify_password(self.code, hash)?)
    }

    fn exhaust(&self, hash: &String) -> Result<(), CapError> {
        sql::execute(
            "DELETE FROM otp_codes WHERE phone = $1 AND code_hash = $2",
            &params![self.phone, hash],
        )?;
        Ok(())
    }

    /// Single use, even against a concurrent verify of the same code.
    fn succeed(&self, hash: &String) -> Result<bool, CapError> {
        let taken = sql::execute(
            "DELETE FROM otp_codes WHERE phone = $1 AND code_hash = $2",
            &params![self.phone, hash],
        )?;
        Ok(taken == 1)
    }
}

/// `POST /api/v1/auth/otp/request {phone}` → 202 `{expires_in}`. Sent whoever states
/// the phone: the code reaches the phone itself, and only logs in as the account that
/// proved it (or a new customer).
pub fn request(req: &Request) -> Result<Response, ApiError> {
    let phone = clean_phone(&req.json::<RequestBody>()?.phone)?;
    let ttl = send_code(&phone, |tx, hash, expires_at, now| {
        tx.execute("DELETE FROM otp_codes WHERE phone = $1", &params![phone])?;
        tx.execute(
            "INSERT INTO otp_codes (phone, code_hash, attempts, expires_at, created_at) \
             VALUES ($1, $2, 0, $3, $4)",
            &params![phone, hash, expires_at, now],
        )?;
        Ok(())
    })?;
    Ok(Response::accepted(&json!({ "expires_in": ttl.as_secs() })))
}

/// `POST /api/v1/auth/otp/verify {phone, code}` → 200 tokens.
pub fn verify(req: &Request) -> Result<Response, ApiError> {
    let body: VerifyBody = req.json()?;
    let phone = clean_phone(&body.phone)?;
    let code = body.code.trim();
    let attempt = LoginCode {
        phone: &phone,
        code,
    };
    if Attempt::new(MAX_ATTEMPTS).run(&attempt)? != Outcome::Accepted {
        return Err(ApiError::invalid_credentials());
    }
    let (user, created) = user_for_phone(&phone)?;
    let pair = identity::issue(&user.id, &user.role, user_agent(req))?;
    if created {
        publish_created(&user)?;
    }
    Ok(token_response(200, &user, &pair))
}

/// The account that proved this phone, else a new customer named "Kirana customer"
/// (renamed with `PATCH /me`) with the phone proven. Accounts that only state the phone
/// are never chosen. Admin accounts never log in by SMS: a phone an admin proved is
/// `401 invalid_credentials` here.
fn user_for_phone(phone: &str) -> Result<(User, bool), ApiError> {
    let owner = match db::user_by_proven_phone(phone)? {
        Some(owner) => owner,
        None => match db::insert_phone_user(phone) {
            Ok(user) => return Ok((user, true)),
            // Proven by an account in the meantime (its owner verified a proof code).
            Err(CapError::Conflict(_)) => {
                db::user_by_proven_phone(phone)?.ok_or_else(ApiError::invalid_credentials)?
            }
            Err(e) => return Err(e.into()),
        },
    };
    if owner.role == "admin" {
        return Err(ApiError::invalid_credentials());
    }
    Ok((owner, false))
}

/// A try of a phone proof code: counted on the account's `phone_proofs` row. The
/// secret carries the phone the code was sent to, which is what gets proven.
struct ProofCode<'a> {
    user_id: &'a str,
    code: &'a str,
    /// The phone of the counted code, kept for after the try.
    phone: RefCell<Option<String>>,
}

impl Counter for ProofCode<'_> {
    type Secret = (String, String);
    type Error = CapError;

    fn count(&self) -> Result<Option<((String, String), i64)>, CapError> {
        let rows = sql::query(
            "UPDATE phone_proofs SET attempts = attempts + 1 \
             WHERE user_id = $1 AND expires_at > $2 RETURNING code_hash, phone, attempts",
            &params![self.user_id, kirana_sdk::now_rfc3339()],
        )?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let (hash, phone): (String, String) = (r.get("code_hash")?, r.get("phone")?);
        self.phone.replace(Some(phone.clone()));
        Ok(Some(((hash, phone), r.get("attempts")?)))
    }

    fn compare(&self, (hash, _): &(String, String)) -> Result<bool, CapError> {
        Ok(well_formed(self.code) && identity::verify_password(self.code, hash)?)
    }

    fn exhaust(&self, (hash, _): &(String, String)) -> Result<(), CapError> {
        sql::execute(
            "DELETE FROM phone_proofs WHERE user_id = $1 AND code_hash = $2",
            &params![self.user_id, hash],
        )?;
        Ok(())
    }

    fn succeed(&self, (hash, _): &(String, String)) -> Result<bool, CapError> {
        let taken = sql::execute(
            "DELETE FROM phone_proofs WHERE user_id = $1 AND code_hash = $2",
            &params![self.user_id, hash],
        )?;
        Ok(taken == 1)
    }
}

fn proven_elsewhere() -> ApiError {
    ApiError::conflict("this phone is proven by another account")
        .with_details(json!({ "field": "phone" }))
}

fn caller(req: &Request) -> Result<User, ApiError> {
    let caller = req.user()?;
    db::user_by_id(&caller.user_id)?.ok_or_else(|| ApiError::not_found("user"))
}

/// `POST /api/v1/auth/me/phone/request` → 202 `{expires_in}`: a code to the caller's
/// phone. 409 when the account has no phone, has already proven it, or another account
/// proved it (then nothing is sent: its owner's phone is not flooded).
pub fn prove_request(req: &Request) -> Result<Response, ApiError> {
    let user = caller(req)?;
    let Some(phone) = user.phone.clone() else {
        return Err(ApiError::conflict(
            "the account has no phone; set one with PATCH /api/v1/auth/me",
        )
        .with_details(json!({ "field": "phone" })));
    };
    if user.phone_verified {
        return Err(ApiError::conflict("this phone is already proven")
            .with_details(json!({ "field": "phone" })));
    }
    if db::user_by_proven_phone(&phone)?.is_some_and(|owner| owner.id != user.id) {
        return Err(proven_elsewhere());
    }
    let ttl = send_code(&phone, |tx, hash, expires_at, now| {
        tx.execute(
            "DELETE FROM phone_proofs WHERE user_id = $1",
            &params![user.id],
        )?;
        tx.execute(
            "INSERT INTO phone_proofs (user_id, phone, code_hash, attempts, expires_at, created_at) \
             VALUES ($1, $2, $3, 0, $4, $5)",
            &params![user.id, phone, hash, expires_at, now],
        )?;
        Ok(())
    })?;
    Ok(Response::accepted(&json!({ "expires_in": ttl.as_secs() })))
}

/// `POST /api/v1/auth/me/phone/verify {code}` → 200 the user, `phone_verified: true`.
/// A wrong, expired, voided or used code is 401 `invalid_credentials` (3 tries); 409
/// when another account proved the phone first, or the account's phone changed since
/// the code was sent.
pub fn prove_verify(req: &Request) -> Result<Response, ApiError> {
    let body: ProofBody = req.json()?;
    let user = caller(req)?;
    let attempt = ProofCode {
        user_id: &user.id,
        code: body.code.trim(),
        phone: RefCell::new(None),
    };
    let outcome = Attempt::new(MAX_ATTEMPTS).run(&attempt)?;
    let (Outcome::Accepted, Some(phone)) = (outcome, attempt.phone.take()) else {
        return Err(ApiError::invalid_credentials());
    };
    match db::prove_phone(&user.id, &phone) {
        Ok(true) => {}
        Ok(false) => {
            return Err(ApiError::conflict(
                "the account's phone changed since the code was sent",
            ))
        }
        Err(CapError::Conflict(_)) => return Err(proven_elsewhere()),
        Err(e) => return Err(e.into()),
    }
    let user = db::user_by_id(&user.id)?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Response::ok(&user))
}

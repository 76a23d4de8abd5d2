//! Login lockout: after `login_max_failures` failed logins (default 5) for one account,
//! it answers 429 until its window (default 15 minutes) ends.
//!
//! Every password check for an account (a login, or the current password of
//! `POST /auth/password`) is counted in `login_failures` *before* the password is
//! compared, with one upsert that returns the new count (see `attempts`): parallel
//! guesses each get their own count, so no more than the limit are ever compared, on
//! any number of replicas (the table is in the plugin's database, not in a process).
//! A right password within the limit deletes the row, so only failures remain counted.
//!
//! The window is fixed from the first counted try, not sliding: five failures spread
//! over 14 minutes lock the account for the minute that is left. The row is keyed by
//! the lowercased email (unknown emails are counted the same way, so the lockout does
//! not reveal which accounts exist), or by the user id for an account without email.

use std::time::Duration;

use kirana_sdk::prelude::*;
use kirana_sdk::{config, identity, rfc3339, sql, CapError};

use crate::attempts::{Attempt, Counter, Outcome};

pub const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS login_failures (
        subject TEXT PRIMARY KEY,
        failures BIGINT NOT NULL,
        window_ends TEXT NOT NULL
    )"];

const DEFAULT_MAX_FAILURES: i64 = 5;
const DEFAULT_WINDOW_MINUTES: u64 = 15;

fn max_failures() -> i64 {
    config::get_or("login_max_failures", DEFAULT_MAX_FAILURES).max(1)
}

fn window() -> Duration {
    let minutes = config::get_or("login_lockout_minutes", DEFAULT_WINDOW_MINUTES).max(1);
    Duration::from_secs(minutes.saturating_mul(60))
}

/// One password check for `subject` against `hash`.
struct PasswordCheck<'a> {
    subject: &'a str,
    password: &'a str,
    hash: &'a str,
}

impl Counter for PasswordCheck<'_> {
    type Secret = ();
    type Error = CapError;

    /// Counts the try; a window that has passed starts again at 1.
    fn count(&self) -> Result<Option<((), i64)>, CapError> {
        let now = kirana_sdk::now();
        let failures: i64 = sql::query(
            "INSERT INTO login_failures (subject, failures, window_ends) VALUES ($1, 1, $2)
             ON CONFLICT (subject) DO UPDATE SET
               failures = CASE WHEN login_failures.window_ends <= $3 THEN 1
                               ELSE login_failures.failures + 1 END,
               window_ends = CASE WHEN login_failures.window_ends <= $3 THEN $2
                                  ELSE login_failures.window_ends END
             RETURNING failures",
            &params![self.subject, rfc3339(now + window()), rfc3339(now)],
        )?
        .scalar()?;
        Ok(Some(((), failures)))
    }

    fn compare(&self, _: &()) -> Result<bool, CapError> {
        identity::verify_password(self.password, self.hash)
    }

    /// The counter simply stays until its window passes.
    fn exhaust(&self, _: &()) -> Result<(), CapError> {
        Ok(())
    }

    fn succeed(&self, _: &()) -> Result<bool, CapError> {
        clear(self.subject)?;
        Ok(true)
    }
}

/// Checks `password` against `hash` under the lockout of `subject`: `Ok(true)` for the
/// right password, 401 `invalid_credentials` for a wrong one (counted), 429 while locked
/// (not compared at all, even when right).
pub fn check_password(subject: &str, password: &str, hash: &str) -> Result<bool, ApiError> {
    let check = PasswordCheck {
        subject,
        password,
        hash,
    };
    match Attempt::new(max_failures()).run(&check)? {
        Outcome::Accepted => Ok(true),
        Outcome::Rejected => Ok(false),
        Outcome::Refused => Err(ApiError::rate_limited(
            "too many failed logins for this account; try again later",
        )),
    }
}

/// Forgets the failures of `subject` (a successful login, a password reset).
pub fn clear(subject: &str) -> Result<(), CapError> {
    sql::execute(
        "DELETE FROM login_failures WHERE subject = $1",
        &params![subject],
    )?;
    Ok(())
}

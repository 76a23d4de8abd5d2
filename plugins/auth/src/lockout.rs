//! Login lockout: after `login_max_failures` failed logins (default 5) for one email, the
//! account answers 429 until its window (default 15 minutes) ends.
//!
//! The counter lives in the KV store under `login_failures:<lowercased email>`, created
//! by the first failure with the window as its TTL (the KV applies a TTL only when a key
//! is created). The window is therefore fixed from the first failure, not sliding: five
//! failures spread over 14 minutes lock the account for the minute that is left, and
//! the lock ends 15 minutes after the first failure. Unknown emails are counted the same
//! way, so the lockout does not reveal which accounts exist.

use std::time::Duration;

use kirana_sdk::{config, kv, CapError};

const DEFAULT_MAX_FAILURES: i64 = 5;
const DEFAULT_WINDOW_MINUTES: u64 = 15;

fn key(email: &str) -> String {
    format!("login_failures:{email}")
}

fn max_failures() -> i64 {
    config::get_or("login_max_failures", DEFAULT_MAX_FAILURES).max(1)
}

fn window() -> Duration {
    let minutes = config::get_or("login_lockout_minutes", DEFAULT_WINDOW_MINUTES).max(1);
    Duration::from_secs(minutes.saturating_mul(60))
}

/// True when `failures` within the window lock the account.
pub fn locks(failures: i64, max: i64) -> bool {
    failures >= max
}

/// Failed logins in the current window. Reads without creating the key: `incr` by 0 is
/// used only once the key is known to exist, since the KV's integer encoding is the
/// host's business.
fn failures(email: &str) -> Result<i64, CapError> {
    let key = key(email);
    if kv::get(&key)?.is_none() {
        return Ok(0);
    }
    kv::incr(&key, 0, Some(window()))
}

/// True while the account is locked out.
pub fn is_locked(email: &str) -> Result<bool, CapError> {
    Ok(locks(failures(email)?, max_failures()))
}

/// Counts one failed login.
pub fn record_failure(email: &str) -> Result<(), CapError> {
    kv::incr(&key(email), 1, Some(window()))?;
    Ok(())
}

/// A successful login (when not locked) forgets earlier failures.
pub fn clear(email: &str) -> Result<(), CapError> {
    kv::delete(&key(email))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_at_the_limit() {
        assert!(!locks(0, 5));
        assert!(!locks(4, 5));
        assert!(locks(5, 5));
        assert!(locks(9, 5));
    }
}

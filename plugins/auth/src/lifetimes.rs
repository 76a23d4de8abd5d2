//! Lifetimes of one-time secrets (SMS codes, password reset tokens), configured in
//! seconds (`*_secs`); the older minute keys (`*_minutes`) are still read when the
//! second key is unset.

use std::time::Duration;

use kirana_sdk::config;

/// One lifetime setting: its keys, default and the range it is clamped to (seconds).
pub struct Lifetime {
    pub secs_key: &'static str,
    pub minutes_key: &'static str,
    pub default_secs: u64,
    pub max_secs: u64,
}

/// An SMS code's lifetime (`otp_ttl_secs`, default 5 minutes, at most an hour).
pub const OTP: Lifetime = Lifetime {
    secs_key: "otp_ttl_secs",
    minutes_key: "otp_ttl_minutes",
    default_secs: 300,
    max_secs: 3600,
};

/// A password reset token's lifetime (`password_reset_secs`, default 30 minutes, at
/// most a day).
pub const RESET: Lifetime = Lifetime {
    secs_key: "password_reset_secs",
    minutes_key: "password_reset_minutes",
    default_secs: 1800,
    max_secs: 24 * 3600,
};

impl Lifetime {
    /// The configured lifetime, clamped to 1 s ..= `max_secs`.
    pub fn get(&self) -> Duration {
        let secs = if config::get(self.secs_key).is_some() {
            config::get_or(self.secs_key, self.default_secs)
        } else if config::get(self.minutes_key).is_some() {
            config::get_or(self.minutes_key, self.default_secs / 60).saturating_mul(60)
        } else {
            self.default_secs
        };
        Duration::from_secs(secs.clamp(1, self.max_secs))
    }
}

/// Whole minutes for a message ("valid for 5 minutes"), rounded up, at least 1.
pub fn minutes(d: Duration) -> u64 {
    d.as_secs().div_ceil(60).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_minutes_up() {
        assert_eq!(minutes(Duration::from_secs(1)), 1);
        assert_eq!(minutes(Duration::from_secs(60)), 1);
        assert_eq!(minutes(Duration::from_secs(61)), 2);
        assert_eq!(minutes(Duration::from_secs(300)), 5);
    }
}

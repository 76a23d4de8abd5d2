//! Time and ids, the same way in every plugin.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The current time in UTC (from the host's WASI clock).
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// `t` as RFC 3339 in UTC with second precision, e.g. `2026-11-22T10:00:00Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The current time as RFC 3339.
pub fn now_rfc3339() -> String {
    rfc3339(now())
}

/// A new opaque id, time-ordered: `prefix_` followed by a UUIDv7 in hex.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// A secret for links and one-time tokens: 64 hex characters carrying 244 random bits
/// (two UUIDv4s from the host's WASI random source).
pub fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A random code of `digits` decimal digits (1..=18), leading zeros kept, e.g. OTPs.
pub fn random_code(digits: u32) -> String {
    let digits = digits.clamp(1, 18);
    // 122 random bits reduced modulo 10^digits: the bias is below 2^-60.
    let n = uuid::Uuid::new_v4().as_u128() % 10u128.pow(digits);
    format!("{n:0width$}", width = digits as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_unique() {
        let a = new_id("usr");
        let b = new_id("usr");
        assert!(a.starts_with("usr_"));
        assert_ne!(a, b);
    }

    #[test]
    fn random_tokens_and_codes() {
        let t = random_token();
        assert_eq!(t.len(), 64);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(t, random_token());
        for _ in 0..100 {
            let c = random_code(6);
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn rfc3339_is_utc_seconds() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
    }
}

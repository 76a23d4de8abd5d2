//! The plugin's own section of `kirana.toml`.

use std::str::FromStr;

use crate::bindings::kirana::platform::config as wit;

pub fn get(key: &str) -> Option<String> {
    wit::get(key)
}

/// The setting parsed as `T`, or `default` when unset or unparsable (logged).
pub fn get_or<T: FromStr>(key: &str, default: T) -> T {
    match get(key) {
        None => default,
        Some(raw) => raw.parse().unwrap_or_else(|_| {
            crate::log::warn(
                &format!("config {key}={raw:?} does not parse; using the default"),
                &[],
            );
            default
        }),
    }
}

/// The address shoppers reach the shop at (`https://shop.example`, no trailing slash),
/// for absolute links in emails: the host's `public_url`, or in development the
/// address it listens on. `None` on a production host that has not set one.
pub fn public_url() -> Option<String> {
    get("kirana.public_url")
}

pub fn all() -> Vec<(String, String)> {
    wit::get_all()
}

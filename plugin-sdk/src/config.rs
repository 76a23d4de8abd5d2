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

pub fn all() -> Vec<(String, String)> {
    wit::get_all()
}

//! Logging: human-readable by default, JSON lines when `log_format = "json"`.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(format: &str, level: &str) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let result = if format == "json" {
        fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(false)
            .try_init()
    } else {
        fmt().with_env_filter(filter).with_target(false).try_init()
    };
    // Already installed (e.g. by a test harness): keep the first one.
    let _ = result;
}

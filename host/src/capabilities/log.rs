//! `kirana:platform/log`: plugin log lines through `tracing`, tagged with the plugin,
//! its version and the request id so they line up with the host's access log.

use crate::bindings::kirana::platform::log::{Host, Level};
use crate::core::View;

/// Longest message or field value kept, so a plugin cannot flood the log.
const MAX_LEN: usize = 4096;

fn clip(s: &str) -> &str {
    match s.char_indices().nth(MAX_LEN) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl Host for View<'_, ()> {
    async fn log(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let plugin = self.plugin.name.as_str();
        let version = self.plugin.version.as_str();
        let request_id = self.call.request_id.as_str();
        let fields = fields
            .iter()
            .take(32)
            .map(|(k, v)| format!("{}={}", clip(k), clip(v)))
            .collect::<Vec<_>>()
            .join(" ");
        let message = clip(&message);
        match level {
            Level::Trace => {
                tracing::trace!(target: "plugin", plugin, version, request_id, fields, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: "plugin", plugin, version, request_id, fields, "{message}")
            }
            Level::Info => {
                tracing::info!(target: "plugin", plugin, version, request_id, fields, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: "plugin", plugin, version, request_id, fields, "{message}")
            }
            Level::Error => {
                tracing::error!(target: "plugin", plugin, version, request_id, fields, "{message}")
            }
        }
        Ok(())
    }
}

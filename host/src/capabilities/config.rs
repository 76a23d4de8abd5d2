//! `kirana:platform/config`: the plugin's own section of `kirana.toml`, after
//! environment overrides. A plugin never sees another plugin's or the host's settings.

use crate::bindings::kirana::platform::config::Host;
use crate::core::View;

impl Host for View<'_, ()> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self
            .plugin
            .settings
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone()))
    }

    async fn get_all(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.plugin.settings.clone())
    }
}

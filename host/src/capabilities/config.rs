//! `kirana:platform/config`: the plugin's own section of `kirana.toml`, after
//! environment overrides. A plugin never sees another plugin's or the host's settings,
//! with one exception every plugin may read: [`PUBLIC_URL_KEY`], the address shoppers
//! reach the shop at (for links in emails and the like).

use std::sync::OnceLock;

use crate::bindings::kirana::platform::config::Host;
use crate::core::View;

/// The reserved key under which every plugin reads the shop's public address.
pub const PUBLIC_URL_KEY: &str = "kirana.public_url";

/// What the config capability shares: the shop's public address, known once the host
/// has bound its port.
#[derive(Debug, Default)]
pub struct ConfigCap {
    public_url: OnceLock<String>,
}

impl ConfigCap {
    /// Records the shop's public address: `public_url` when configured; otherwise, in
    /// development only, the loopback address the host is bound to (nobody else can
    /// reach it). A production host without `public_url` has none.
    pub fn bound(&self, public_url: &str, dev: bool, addr: std::net::SocketAddr) {
        let url = if !public_url.is_empty() {
            public_url.trim_end_matches('/').to_string()
        } else if dev {
            let host = if addr.ip().is_unspecified() {
                "localhost".to_string()
            } else {
                addr.ip().to_string()
            };
            format!("http://{host}:{}", addr.port())
        } else {
            return;
        };
        let _ = self.public_url.set(url);
    }

    fn public_url(&self) -> Option<String> {
        self.public_url.get().cloned()
    }
}

impl Host for View<'_, ConfigCap> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        if key == PUBLIC_URL_KEY {
            return Ok(self.state.public_url());
        }
        Ok(self
            .plugin
            .settings
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone()))
    }

    async fn get_all(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        let mut all = self.plugin.settings.clone();
        if let Some(url) = self.state.public_url() {
            all.push((PUBLIC_URL_KEY.to_string(), url));
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_is_the_configured_one_else_the_dev_loopback_else_none() {
        let addr: std::net::SocketAddr = "127.0.0.1:8123".parse().unwrap();
        let c = ConfigCap::default();
        c.bound("https://shop.example", false, addr);
        assert_eq!(c.public_url().as_deref(), Some("https://shop.example"));
        let c = ConfigCap::default();
        c.bound("", true, addr);
        assert_eq!(c.public_url().as_deref(), Some("http://127.0.0.1:8123"));
        let c = ConfigCap::default();
        c.bound("", true, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(c.public_url().as_deref(), Some("http://localhost:9000"));
        let c = ConfigCap::default();
        c.bound("", false, addr);
        assert_eq!(c.public_url(), None);
    }
}

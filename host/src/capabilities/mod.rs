//! One module per WIT interface the host provides. Each owns its backend and the
//! checks that a plugin was granted it; the runtime only links them.

pub mod breaker;
pub mod config;
pub mod events;
pub mod grants;
pub mod identity;
pub mod kv;
pub mod log;
pub mod mail;
pub mod realtime;
pub mod services;
pub mod sql;

use crate::runtime::bindings::wit;

/// The WIT error of a capability the plugin was not granted.
pub(crate) fn denied(capability: &str, plugin: &str) -> wit::Error {
    wit::Error::Denied(format!(
        "plugin {plugin} was not granted the {capability} capability (ask for it in the manifest and have the operator grant it)"
    ))
}

impl wit::Host for crate::runtime::HostState {}

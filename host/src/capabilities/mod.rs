//! One module per WIT interface the host provides. Each owns its backend and the
//! checks that a plugin was granted it; the runtime only links them.

pub mod breaker;
pub mod config;
pub mod events;
pub mod files;
pub mod identity;
pub mod kv;
pub mod log;
pub mod mail;
pub mod oidc;
pub mod push;
pub mod realtime;
pub mod services;
pub mod sql;

use crate::bindings::wit;

/// The WIT error of a capability the plugin was not granted.
pub(crate) fn denied(capability: &str, plugin: &str) -> wit::Error {
    wit::Error::Denied(format!(
        "plugin {plugin} was not granted the {capability} capability (ask for it in the manifest and have the operator grant it)"
    ))
}

/// The message inside a capability error, for logs and wrapped errors.
pub(crate) fn error_text(e: &wit::Error) -> &str {
    match e {
        wit::Error::Denied(m)
        | wit::Error::NotConfigured(m)
        | wit::Error::Unavailable(m)
        | wit::Error::Timeout(m)
        | wit::Error::Invalid(m)
        | wit::Error::Conflict(m)
        | wit::Error::Failed(m) => m,
    }
}

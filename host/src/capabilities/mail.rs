//! `kirana:platform/mail`: email and SMS through the host's outbox.
//!
//! The outbox table and SMTP delivery arrive with the notifications work; until then a
//! granted plugin gets `not-configured`.

use crate::capabilities::denied;
use crate::runtime::bindings::kirana::platform::mail::{Host, Message};
use crate::runtime::bindings::wit;
use crate::runtime::HostState;

impl Host for HostState {
    async fn send(&mut self, _message: Message) -> wasmtime::Result<Result<String, wit::Error>> {
        if !self.plugin.grants.mail {
            return Ok(Err(denied("mail", &self.plugin.name)));
        }
        Ok(Err(wit::Error::NotConfigured(
            "mail delivery is not available on this host yet".into(),
        )))
    }
}

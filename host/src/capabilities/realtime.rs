//! `kirana:platform/realtime`: pushes to a user's live connections.
//!
//! The SSE fan-out arrives with the notifications work; until then a granted plugin
//! gets `not-configured`, so callers can tell "not available here" from a failure.

use crate::capabilities::denied;
use crate::runtime::bindings::kirana::platform::realtime::Host;
use crate::runtime::bindings::wit;
use crate::runtime::HostState;

impl Host for HostState {
    async fn push(
        &mut self,
        _user_id: String,
        _event: String,
        _data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        if !self.plugin.grants.realtime {
            return Ok(Err(denied("realtime", &self.plugin.name)));
        }
        Ok(Err(wit::Error::NotConfigured(
            "realtime delivery is not available on this host yet".into(),
        )))
    }
}

//! The capabilities' shared states, and how each WIT interface is linked: every
//! interface gets its own view of the store ([`View`]) with its own state, so a
//! capability sees the plugin, the call and its state, and nothing of the others.

use std::sync::Arc;

use wasmtime::component::{HasData, HasSelf, Linker};

use super::HostState;
use crate::bindings::kirana::platform as wit_if;
use crate::capabilities::config::ConfigCap;
use crate::capabilities::files::Files;
use crate::capabilities::identity::IdentityService;
use crate::capabilities::kv::KvBackend;
use crate::capabilities::mail::Mail;
use crate::capabilities::realtime::Hub;
use crate::capabilities::services::Services;
use crate::core::View;

/// What the capabilities share across every store.
pub struct Caps {
    pub kv: Arc<dyn KvBackend>,
    pub identity: Arc<IdentityService>,
    pub realtime: Arc<Hub>,
    pub mail: Arc<Mail>,
    pub files: Arc<Files>,
    pub services: Services,
    pub config: Arc<ConfigCap>,
}

/// The `types` interface holds types only.
impl wit_if::types::Host for HostState {}

macro_rules! link {
    ($linker:expr, $iface:ident, $data:ident, $state:ty, $pick:expr) => {{
        struct $data;
        impl HasData for $data {
            type Data<'a> = View<'a, $state>;
        }
        wit_if::$iface::add_to_linker::<HostState, $data>($linker, |s: &mut HostState| {
            s.view($pick)
        })?;
    }};
}

/// Links every `kirana:platform` interface into `linker`.
pub fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit_if::types::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    link!(linker, sql, Sql, (), |_| &());
    link!(linker, kv, Kv, Arc<dyn KvBackend>, |c| &c.kv);
    link!(linker, events, Events, (), |_| &());
    link!(linker, services, Svc, Services, |c| &c.services);
    link!(linker, identity, Identity, IdentityService, |c| &*c
        .identity);
    link!(linker, realtime, Realtime, Hub, |c| &*c.realtime);
    link!(linker, mail, MailLink, Mail, |c| &*c.mail);
    link!(linker, files, FilesLink, Files, |c| &*c.files);
    link!(linker, config, Config, ConfigCap, |c| &*c.config);
    link!(linker, log, Log, (), |_| &());
    Ok(())
}

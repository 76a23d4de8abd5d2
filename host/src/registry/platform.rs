//! The host's services in one place, for the registry's operations, the gateway and
//! the operator API: configuration, the runtime (which holds the capabilities' states),
//! the host database, the cluster, and the registry of loaded plugins.

use std::sync::Arc;

use super::Registry;
use crate::capabilities::events::EventBus;
use crate::capabilities::identity::IdentityService;
use crate::capabilities::kv::KvBackend;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::storage::Db;

pub struct Platform {
    pub config: Arc<Config>,
    pub runtime: Runtime,
    pub db: Db,
    /// The change feed and shared backends of the replicas.
    pub cluster: Cluster,
    pub kv: Arc<dyn KvBackend>,
    pub identity: Arc<IdentityService>,
    pub events: EventBus,
    /// Plugins whose outboxes have committed events to move to the bus.
    pub relay: super::effects::Relay,
    pub mail: Arc<crate::capabilities::mail::Mail>,
    pub realtime: Arc<crate::capabilities::realtime::Hub>,
    pub registry: Registry,
    pub metrics: Arc<Metrics>,
}

//! The services every store shares: configuration, the runtime, the host database and
//! the capability backends, and the registry of loaded plugins.

use std::sync::Arc;

use crate::capabilities::breaker::Breakers;
use crate::capabilities::events::EventBus;
use crate::capabilities::identity::IdentityService;
use crate::capabilities::kv::KvBackend;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::runtime::Runtime;
use crate::storage::Db;

pub struct Platform {
    pub config: Arc<Config>,
    pub runtime: Runtime,
    pub db: Db,
    /// The change feed and shared backends of the replicas.
    pub cluster: Cluster,
    pub kv: Arc<dyn KvBackend>,
    pub identity: IdentityService,
    pub events: EventBus,
    /// Plugins whose outboxes have committed events to move to the bus.
    pub relay: crate::capabilities::outbox::Relay,
    pub mail: crate::capabilities::mail::Mail,
    pub realtime: crate::capabilities::realtime::Hub,
    pub registry: Registry,
    pub metrics: Metrics,
    pub breakers: Breakers,
}

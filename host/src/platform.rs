//! The services every store shares: configuration, the runtime, the host database and
//! the capability backends, and the registry of loaded plugins.

use std::sync::Arc;

use anyhow::Result;

use crate::capabilities::events::EventBus;
use crate::capabilities::identity::IdentityService;
use crate::capabilities::kv::MemoryKv;
use crate::config::Config;
use crate::metrics::{Metrics, TopicLabels};
use crate::registry::Registry;
use crate::runtime::{PendingEvent, Runtime};
use crate::storage::Db;

pub struct Platform {
    pub config: Arc<Config>,
    pub runtime: Runtime,
    pub db: Db,
    pub kv: MemoryKv,
    pub identity: IdentityService,
    pub events: EventBus,
    pub registry: Registry,
    pub metrics: Metrics,
}

impl Platform {
    /// Commits events a successful call published, fanned out to current subscribers.
    pub async fn commit_events(&self, events: &[PendingEvent]) -> Result<()> {
        self.events
            .commit(events, |topic| self.registry.subscribers(topic))
            .await?;
        for e in events {
            self.metrics
                .events_published
                .get_or_create(&TopicLabels {
                    topic: e.topic.clone(),
                })
                .inc();
        }
        Ok(())
    }
}

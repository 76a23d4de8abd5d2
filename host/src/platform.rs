//! The services every store shares: configuration, the runtime, the host database and
//! the capability backends, and the registry of loaded plugins.

use std::sync::Arc;

use anyhow::Result;

use crate::capabilities::breaker::Breakers;
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
    pub mail: crate::capabilities::mail::Mail,
    pub realtime: crate::capabilities::realtime::Hub,
    pub registry: Registry,
    pub metrics: Metrics,
    pub breakers: Breakers,
}

impl Platform {
    /// Commits events a successful call published, fanned out to current subscribers.
    /// A busy database gets three tries; the call's own writes are already committed.
    pub async fn commit_events(&self, events: &[PendingEvent]) -> Result<()> {
        let mut attempt = 0;
        loop {
            match self
                .events
                .commit(events, |topic| self.registry.subscribers(topic))
                .await
            {
                Ok(()) => break,
                Err(e) if attempt < 2 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "committing events failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
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

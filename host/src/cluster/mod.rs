//! What the replicas of one shop share besides the database: a change feed (who revoked
//! a session, which plugin changed, a push for a user, work waiting) and, with
//! `redis_url` set, one Redis for shared state (plugin KV, rate budgets).
//!
//! The backend is chosen once from the configuration:
//! - nothing set, SQLite: one process, the [`feed::LocalFeed`] carries nothing;
//! - PostgreSQL without Redis: the feed is LISTEN/NOTIFY ([`pg::PgFeed`]), enough for
//!   revocations and registry changes to reach every replica;
//! - `redis_url`: the feed is Redis pub/sub ([`redis::RedisFeed`]) and the KV store
//!   and rate limiter live in Redis too.
//!
//! Whoever changes something applies it locally first, then publishes; a replica
//! ignores its own messages. A replica that was disconnected reconciles from the
//! database when the feed reconnects ([`Feed::connections`]).

pub mod feed;
pub mod pg;
pub mod redis;

use std::sync::Arc;

use anyhow::Result;

pub use feed::{Channel, Feed, Message};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::storage::Db;

/// This replica's view of the cluster.
pub struct Cluster {
    /// A name for this process, unique across restarts (messages carry it).
    pub replica: String,
    pub feed: Arc<dyn Feed>,
    /// The shared Redis, when configured.
    pub redis: Option<redis::Redis>,
}

impl Cluster {
    /// Connects what the configuration names. A `redis_url` that cannot be parsed is an
    /// error naming the setting; a Redis that is down is not (the host starts degraded
    /// and reconnects).
    pub async fn connect(config: &Config, db: &Db, metrics: &Metrics) -> Result<Self> {
        let replica = uuid::Uuid::new_v4().simple().to_string();
        if !config.redis_url.is_empty() {
            let redis = redis::Redis::connect(&config.redis_url, metrics).await?;
            let feed = redis::RedisFeed::start(&redis, replica.clone());
            return Ok(Self {
                replica,
                feed: Arc::new(feed),
                redis: Some(redis),
            });
        }
        let feed: Arc<dyn Feed> = if config.uses_postgres() {
            Arc::new(pg::PgFeed::start(
                &config.database_url,
                db.clone(),
                replica.clone(),
                metrics,
            ))
        } else {
            Arc::new(feed::LocalFeed::new(replica.clone()))
        };
        Ok(Self {
            replica,
            feed,
            redis: None,
        })
    }

    /// One process with no feed (tests of single capabilities).
    pub fn local() -> Self {
        let replica = uuid::Uuid::new_v4().simple().to_string();
        Self {
            feed: Arc::new(feed::LocalFeed::new(replica.clone())),
            replica,
            redis: None,
        }
    }

    /// What `/ready` reports of the shared backends: `None` when all is well.
    pub fn degraded(&self) -> Option<String> {
        if let Some(r) = &self.redis {
            if !r.is_up() {
                return Some("redis: unreachable (reconnecting); KV calls fail, revocations are checked in the database".into());
            }
        }
        if !self.feed.healthy() {
            return Some(format!(
                "{} change feed: disconnected (reconnecting)",
                self.feed.kind()
            ));
        }
        None
    }
}

//! `kirana:platform/events`: the event bus, a transactional outbox in the host database.
//!
//! `publish` and `schedule` only record the event in the call; the gateway (or the
//! dispatcher, for event handlers) commits them to the outbox when the call succeeded,
//! with one delivery row per subscriber. The dispatcher claims due deliveries with a
//! lease, calls the subscriber's `on-event`, and marks them done, or retries with
//! exponential backoff until `max_attempts`, then marks them `dead`. Nothing lives only
//! in memory, so a restart loses no event (delivery is at least once).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use sqlx::Row;
use tokio::sync::Notify;

use crate::cluster::{Channel, Feed};

use crate::bindings::kirana::platform::events::Host;
use crate::bindings::wit;
use crate::config::EventsConfig;
use crate::core::{PendingEvent, View};
use crate::storage::{now_ms, Db};

/// Largest event payload accepted.
pub const MAX_PAYLOAD: usize = 256 * 1024;
/// Events one call may publish (bounds the host memory a call can pin).
pub const MAX_PENDING: usize = 1000;
/// How far ahead an event may be scheduled.
pub const MAX_DELAY: Duration = Duration::from_secs(366 * 24 * 3600);
/// Deliveries one dispatcher round claims.
pub const BATCH: i64 = 32;
/// Rows per multi-row INSERT (well under both backends' parameter limits).
const ROWS_PER_INSERT: usize = 100;

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` parameters.
pub(crate) fn placeholders(rows: usize, columns: usize) -> String {
    placeholders_with(rows, &vec!["$"; columns])
}

/// Like [`placeholders`], where each `"$"` in `columns` becomes the next parameter and
/// anything else is written as is (a literal).
fn placeholders_with(rows: usize, columns: &[&str]) -> String {
    let mut n = 0;
    let mut out = Vec::with_capacity(rows);
    for _ in 0..rows {
        let row: Vec<String> = columns
            .iter()
            .map(|c| {
                if *c == "$" {
                    n += 1;
                    format!("${n}")
                } else {
                    (*c).to_string()
                }
            })
            .collect();
        out.push(format!("({})", row.join(", ")));
    }
    out.join(", ")
}

/// An event relayed from a plugin's outbox to the bus.
pub struct NewEvent {
    pub id: String,
    pub topic: String,
    pub payload: String,
    /// The publishing plugin and its version, stamped by the host.
    pub source: String,
    pub source_version: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub deliver_at: i64,
}

/// An event as the bus holds it.
#[derive(Clone)]
pub struct StoredEvent {
    pub topic: String,
    pub payload: String,
    pub source: String,
}

/// The wake-up body for the event dispatcher.
pub const WAKE_EVENTS: &str = "events";

pub struct EventBus {
    db: Db,
    pub config: EventsConfig,
    pub wake: Notify,
    /// Tells the other replicas' dispatchers that deliveries are waiting.
    feed: Arc<dyn Feed>,
}

impl EventBus {
    pub fn new(db: Db, config: EventsConfig, feed: Arc<dyn Feed>) -> Self {
        Self {
            db,
            config,
            wake: Notify::new(),
            feed,
        }
    }

    /// Wakes the dispatcher (deliveries became due outside a publish, e.g. a retry, or
    /// another replica committed some).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Writes relayed `events` and their deliveries in one transaction; `subscribers`
    /// names the plugins that subscribe to a topic. Rows already there (a second relay
    /// of the same outbox row) are left as they are.
    pub async fn commit(
        &self,
        events: &[NewEvent],
        subscribers: impl Fn(&str) -> Vec<String>,
    ) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut deliveries: Vec<(&str, String, i64)> = Vec::new();
        for e in events {
            for sub in subscribers(&e.topic) {
                deliveries.push((&e.id, sub, e.deliver_at));
            }
        }
        // A few multi-row INSERTs instead of one statement per row: each statement is a
        // round trip to the database.
        let mut tx = self.db.pool.begin_with(self.db.begin_statement()).await?;
        for chunk in events.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO events (id, topic, payload, source, source_version, created_at, deliver_at) \
                 VALUES {} ON CONFLICT (id) DO NOTHING",
                placeholders(chunk.len(), 7)
            );
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(&e.id)
                    .bind(&e.topic)
                    .bind(&e.payload)
                    .bind(&e.source)
                    .bind(&e.source_version)
                    .bind(e.created_at)
                    .bind(e.deliver_at);
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in deliveries.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO deliveries (event_id, subscriber, status, attempts, next_attempt_at, locked_until, updated_at) VALUES {} \
                 ON CONFLICT (event_id, subscriber) DO NOTHING",
                placeholders_with(chunk.len(), &["$", "$", "'pending'", "0", "$", "0", "$"])
            );
            let mut q = sqlx::query(&sql);
            for (event_id, sub, deliver_at) in chunk {
                q = q.bind(*event_id).bind(sub).bind(*deliver_at).bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.wake.notify_one();
        self.feed.publish(Channel::Wake, WAKE_EVENTS.into());
        Ok(())
    }

    /// Delay before attempt `attempts + 1`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let ms = self.config.backoff_ms.saturating_mul(1u64 << exp);
        Duration::from_millis(ms.min(self.config.max_backoff_ms))
    }

    /// Claims up to `BATCH` due deliveries for this dispatcher by leasing them.
    pub async fn claim(&self, limit: usize) -> Result<Vec<(String, String, u32)>> {
        let now = now_ms();
        let lease = now + i64::try_from(self.config.lease_ms).unwrap_or(30_000);
        let rows = sqlx::query(
            "UPDATE deliveries SET locked_until = $1 \
             WHERE (event_id, subscriber) IN ( \
                 SELECT event_id, subscriber FROM deliveries \
                 WHERE status = 'pending' AND next_attempt_at <= $2 AND locked_until <= $2 \
                 ORDER BY next_attempt_at LIMIT $3) \
             AND locked_until <= $2 \
             RETURNING event_id, subscriber, attempts",
        )
        .bind(lease)
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(BATCH))
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let attempts: i64 = r.try_get("attempts")?;
                Ok((
                    r.try_get("event_id")?,
                    r.try_get("subscriber")?,
                    u32::try_from(attempts).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// Topic, payload and source of each event in `ids`, in one query.
    pub async fn load_events(&self, ids: &[&str]) -> Result<HashMap<String, StoredEvent>> {
        let mut ids: Vec<&str> = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut found = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "SELECT id, topic, payload, source FROM events WHERE id IN {}",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.db.pool).await? {
                found.insert(
                    r.try_get("id")?,
                    StoredEvent {
                        topic: r.try_get("topic")?,
                        payload: r.try_get("payload")?,
                        source: r.try_get("source")?,
                    },
                );
            }
        }
        Ok(found)
    }

    pub async fn finish(
        &self,
        event_id: &str,
        subscriber: &str,
        status: &str,
        attempts: u32,
        next_at: i64,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE deliveries SET status = $1, attempts = $2, next_attempt_at = $3, locked_until = 0, \
             last_error = $4, updated_at = $5 WHERE event_id = $6 AND subscriber = $7",
        )
        .bind(status)
        .bind(i64::from(attempts))
        .bind(next_at)
        .bind(error.map(|e| e.chars().take(2000).collect::<String>()))
        .bind(now_ms())
        .bind(event_id)
        .bind(subscriber)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// Counts deliveries by status (for `/ready` details and the tests).
    pub async fn counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status ORDER BY status",
        )
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }
}

impl View<'_, ()> {
    fn buffer_event(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        delay: Duration,
    ) -> Result<String, wit::Error> {
        if !self.plugin.grants.may_publish(&topic) {
            return Err(wit::Error::Denied(format!(
                "plugin {} may not publish {topic:?}: a plugin publishes only the topics its \
                 manifest lists as its own (capabilities.publish), once the operator approved \
                 publish:{topic}",
                self.plugin.name
            )));
        }
        if topic.is_empty() || topic.len() > 128 {
            return Err(wit::Error::Invalid("topics are 1 to 128 characters".into()));
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(wit::Error::Invalid(format!(
                "event payloads are at most {MAX_PAYLOAD} bytes"
            )));
        }
        let payload = String::from_utf8(payload)
            .map_err(|_| wit::Error::Invalid("event payloads are JSON text".into()))?;
        if serde_json::from_str::<serde_json::Value>(&payload).is_err() {
            return Err(wit::Error::Invalid(
                "event payloads must be valid JSON".into(),
            ));
        }
        if self.call.pending.len() >= MAX_PENDING {
            return Err(wit::Error::Invalid(format!(
                "at most {MAX_PENDING} events per call"
            )));
        }
        if delay > MAX_DELAY {
            return Err(wit::Error::Invalid(
                "events can be scheduled at most a year ahead".into(),
            ));
        }
        let id = format!("evt_{}", uuid::Uuid::now_v7().simple());
        let savepoint = self.call.unit.as_ref().and_then(|u| u.innermost());
        self.call.pending.push(PendingEvent {
            id: id.clone(),
            topic,
            payload,
            source: self.plugin.name.clone(),
            delay,
            savepoint,
        });
        Ok(id)
    }
}

impl Host for View<'_, ()> {
    async fn publish(
        &mut self,
        topic: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<String, wit::Error>> {
        Ok(self.buffer_event(topic, payload, Duration::ZERO))
    }

    async fn schedule(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        delay_ms: u64,
    ) -> wasmtime::Result<Result<String, wit::Error>> {
        Ok(self.buffer_event(topic, payload, Duration::from_millis(delay_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_parameters_across_rows() {
        assert_eq!(placeholders(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(
            placeholders_with(2, &["$", "'pending'", "$"]),
            "($1, 'pending', $2), ($3, 'pending', $4)"
        );
    }
}

//! Each plugin's outbox and inbox: what makes a call's effects commit together.
//!
//! A call's writes, the events it published and (for an event delivery) the id of the
//! event it handled commit in one transaction in the plugin's own database: the call's
//! [`Unit`]. [`finish`] adds the outbox and inbox rows and commits it, or rolls it
//! back. The relay then moves committed outbox rows to the host's bus (where the
//! dispatcher delivers them) and deletes them; it runs after every commit, sweeps every
//! plugin's outbox every few seconds and at start (before `/ready`), so an event
//! committed before a crash is delivered after it. Copying is idempotent (event ids
//! are unique on the bus), so two relays, or a crash between the copy and the delete,
//! deliver nothing twice; the inbox makes a redelivered event change nothing.
//!
//! The tables live in the plugin's database so that they commit with its writes; the
//! plugin could touch them with its own SQL, which only ever hurts itself: the relay
//! stamps the source and accepts only topics the plugin owns.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::{watch, Notify};

use crate::capabilities::events::NewEvent;
use crate::capabilities::sql::{self, Unit};
use crate::metrics::TopicLabels;
use crate::platform::Platform;
use crate::runtime::bindings::kirana::platform::sql::Value;
use crate::runtime::bindings::wit;
use crate::runtime::{CallCtx, LoadedPlugin, PendingEvent, PluginCtx};
use crate::storage::{now_ms, PluginDb};

/// The tables, created by the host in every plugin's database (idempotent).
const TABLES: &str = "CREATE TABLE IF NOT EXISTS _kirana_outbox (
        id TEXT PRIMARY KEY,
        topic TEXT NOT NULL,
        payload TEXT NOT NULL,
        version TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        deliver_at BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS _kirana_inbox (
        event_id TEXT PRIMARY KEY,
        handled_at BIGINT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS _kirana_inbox_handled ON _kirana_inbox (handled_at);";

/// Rows per relay round and per multi-row INSERT.
const BATCH: usize = 100;
/// How often every plugin's outbox is looked at even without a commit here (rows
/// another replica committed, or a wake-up lost to a crash).
const SWEEP: Duration = Duration::from_secs(5);
/// How long handled event ids are kept: far longer than any redelivery takes.
const INBOX_DAYS: i64 = 7;
/// Time the host gives itself to finish a call whose own deadline has (nearly) passed.
const FINISH_TIME: Duration = Duration::from_secs(5);

/// Creates the outbox and inbox in a plugin's database.
pub async fn ensure_tables(db: &PluginDb) -> Result<()> {
    sql::execute_raw(db, TABLES).await
}

/// How a call ended, for [`finish`].
pub enum Outcome<'a> {
    /// Commit the call's writes; its events too when `publish` (a request answered
    /// below 400); record `handled` (an event id) in the inbox.
    Commit {
        publish: bool,
        handled: Option<&'a str>,
    },
    /// Undo everything the call did (a 5xx answer, an event handler's error).
    Rollback,
}

/// How a call answered with `status` ends: 5xx undoes its work, 4xx keeps its writes
/// (a failed login's counter) but publishes nothing, anything else commits all.
pub fn outcome_of(status: u16) -> Outcome<'static> {
    if status >= 500 {
        Outcome::Rollback
    } else {
        Outcome::Commit {
            publish: status < 400,
            handled: None,
        }
    }
}

/// What [`finish`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Finished {
    Committed,
    /// The event was handled already (its id is in the inbox): this call's work was
    /// rolled back.
    Duplicate,
}

/// Commits or rolls back the call's unit with its outbox and inbox rows. An error
/// means nothing of the call was committed.
pub async fn finish(
    platform: &Platform,
    plugin: &PluginCtx,
    call: &mut CallCtx,
    outcome: Outcome<'_>,
) -> Result<Finished, wit::Error> {
    let unit = call.unit.take();
    let (publish, handled) = match outcome {
        Outcome::Rollback => {
            call.pending.clear();
            if let Some(unit) = unit {
                unit.rollback().await?;
            }
            return Ok(Finished::Committed);
        }
        Outcome::Commit { publish, handled } => (publish, handled),
    };
    if call.unit_lost {
        call.pending.clear();
        if let Some(unit) = unit {
            let _ = unit.rollback().await;
        }
        return Err(wit::Error::Failed(
            "the call's transaction failed part way (a statement ended it), so nothing was \
             committed"
                .into(),
        ));
    }
    let mut events = if publish {
        std::mem::take(&mut call.pending)
    } else {
        call.pending.clear();
        Vec::new()
    };
    if events.is_empty() && handled.is_none() && unit.is_none() {
        return Ok(Finished::Committed);
    }
    let deadline = call.deadline.max(Instant::now() + Duration::from_secs(1));
    let mut unit = match unit {
        Some(u) => u,
        None => Unit::begin(&plugin.db, Instant::now() + FINISH_TIME).await?,
    };
    if let Some(first) = unit.close_open(deadline).await? {
        events.retain(|e| e.savepoint.is_none_or(|sp| sp < first));
    }
    let now = now_ms();
    for chunk in events.chunks(BATCH) {
        let mut params = Vec::with_capacity(chunk.len() * 6);
        for e in chunk {
            params.extend([
                Value::Text(e.id.clone()),
                Value::Text(e.topic.clone()),
                Value::Text(e.payload.clone()),
                Value::Text(plugin.version.clone()),
                Value::Int(now),
                Value::Int(deliver_at(now, e)),
            ]);
        }
        let statement = format!(
            "INSERT INTO _kirana_outbox (id, topic, payload, version, created_at, deliver_at) \
             VALUES {}",
            crate::capabilities::events::placeholders(chunk.len(), 6)
        );
        unit.tx().execute_host(deadline, statement, params).await?;
    }
    if let Some(event_id) = handled {
        let inserted = unit
            .tx()
            .execute_host(
                deadline,
                "INSERT INTO _kirana_inbox (event_id, handled_at) VALUES ($1, $2)".into(),
                vec![Value::Text(event_id.to_string()), Value::Int(now)],
            )
            .await;
        if let Err(wit::Error::Conflict(_)) = inserted {
            let _ = unit.rollback().await;
            return Ok(Finished::Duplicate);
        }
        inserted?;
    }
    unit.commit(deadline).await?;
    if !events.is_empty() {
        for e in &events {
            platform
                .metrics
                .events_published
                .get_or_create(&TopicLabels {
                    topic: e.topic.clone(),
                })
                .inc();
        }
        platform.relay.mark(&plugin.name);
    }
    Ok(Finished::Committed)
}

fn deliver_at(now: i64, e: &PendingEvent) -> i64 {
    now.saturating_add(i64::try_from(e.delay.as_millis()).unwrap_or(i64::MAX / 2))
}

/// Whether the plugin's inbox holds `event_id` (the event was handled already).
pub async fn handled(db: &PluginDb, event_id: &str) -> Result<bool, wit::Error> {
    let rows = sql::query_host(
        db,
        "SELECT 1 FROM _kirana_inbox WHERE event_id = $1",
        vec![Value::Text(event_id.to_string())],
    )
    .await?;
    Ok(!rows.rows.is_empty())
}

/// Plugins whose outbox has rows to relay, and the relay task's wake-up.
#[derive(Default)]
pub struct Relay {
    dirty: Mutex<BTreeSet<String>>,
    wake: Notify,
}

impl Relay {
    /// `plugin` committed events: relay them soon.
    pub fn mark(&self, plugin: &str) {
        if let Ok(mut d) = self.dirty.lock() {
            d.insert(plugin.to_string());
        }
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<String> {
        self.dirty
            .lock()
            .map(|mut d| std::mem::take(&mut *d).into_iter().collect())
            .unwrap_or_default()
    }
}

/// Moves `plugin`'s committed outbox rows to the bus; returns how many. Rows whose
/// topic the plugin does not own (written by its own SQL) are dropped and logged.
pub async fn relay_plugin(platform: &Platform, plugin: &Arc<LoadedPlugin>) -> Result<usize> {
    let name = plugin.name().to_string();
    let versions = platform.registry.versions_of(&name);
    let owns = |topic: &str| {
        versions.iter().any(|v| v.ctx.grants.may_publish(topic))
            || plugin.ctx.grants.may_publish(topic)
    };
    let mut total = 0;
    loop {
        let rows = sql::query_host(
            &plugin.ctx.db,
            &format!(
                "SELECT id, topic, payload, version, created_at, deliver_at FROM _kirana_outbox \
                 ORDER BY created_at, id LIMIT {BATCH}"
            ),
            Vec::new(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("reading the outbox of {name}: {e:?}"))?;
        let n = rows.rows.len();
        if n == 0 {
            break;
        }
        let mut ids = Vec::with_capacity(n);
        let mut events = Vec::with_capacity(n);
        for row in &rows.rows {
            let [Value::Text(id), Value::Text(topic), Value::Text(payload), Value::Text(version), created, deliver] =
                row.as_slice()
            else {
                tracing::error!(plugin = %name, "an outbox row has an unexpected shape; dropped");
                continue;
            };
            ids.push(Value::Text(id.clone()));
            if !owns(topic) {
                tracing::error!(plugin = %name, %topic, event_id = %id, "an outbox row names a topic the plugin does not own; dropped");
                platform.metrics.events_forged.inc();
                continue;
            }
            events.push(NewEvent {
                id: id.clone(),
                topic: topic.clone(),
                payload: payload.clone(),
                source: name.clone(),
                source_version: version.clone(),
                created_at: int(created),
                deliver_at: int(deliver),
            });
        }
        platform
            .events
            .commit(&events, |topic| platform.registry.subscribers(topic))
            .await?;
        sql::execute_host_pool(
            &plugin.ctx.db,
            &format!(
                "DELETE FROM _kirana_outbox WHERE id IN {}",
                crate::capabilities::events::placeholders(1, ids.len().max(1))
            ),
            ids,
        )
        .await
        .map_err(|e| anyhow::anyhow!("deleting relayed outbox rows of {name}: {e:?}"))?;
        platform.metrics.events_relayed.inc_by(events.len() as u64);
        total += n;
        if n < BATCH {
            break;
        }
    }
    Ok(total)
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Text(t) => t.parse().unwrap_or(0),
        _ => 0,
    }
}

/// Relays every loaded plugin's outbox once (at start, before `/ready`, and in
/// sweeps); returns how many events moved. A failing plugin is logged and skipped.
pub async fn relay_all(platform: &Platform) -> usize {
    let mut total = 0;
    for plugin in platform.registry.all_loaded() {
        match relay_plugin(platform, &plugin).await {
            Ok(n) => total += n,
            Err(e) => {
                tracing::error!(plugin = %plugin.name(), error = %e, "relaying the outbox failed; will retry");
            }
        }
    }
    total
}

/// Deletes inbox rows older than [`INBOX_DAYS`] in every loaded plugin.
async fn prune_inboxes(platform: &Platform) {
    let cutoff = now_ms() - INBOX_DAYS * 24 * 3600 * 1000;
    for plugin in platform.registry.all_loaded() {
        if let Err(e) = sql::execute_host_pool(
            &plugin.ctx.db,
            "DELETE FROM _kirana_inbox WHERE handled_at < $1",
            vec![Value::Int(cutoff)],
        )
        .await
        {
            tracing::warn!(plugin = %plugin.name(), error = ?e, "pruning the inbox failed");
        }
    }
}

/// Relays committed events until `stop`; a last relay runs on the way out.
pub async fn run_relay(platform: Arc<Platform>, mut stop: watch::Receiver<bool>) {
    let mut next_sweep = Instant::now() + SWEEP;
    let mut next_prune = Instant::now();
    loop {
        if *stop.borrow() {
            break;
        }
        if Instant::now() >= next_sweep {
            next_sweep = Instant::now() + SWEEP;
            relay_all(&platform).await;
            if Instant::now() >= next_prune {
                next_prune = Instant::now() + Duration::from_secs(600);
                prune_inboxes(&platform).await;
            }
        }
        let mut failed = false;
        for name in platform.relay.take() {
            let Some(plugin) = platform.registry.loaded(&name) else {
                continue;
            };
            if let Err(e) = relay_plugin(&platform, &plugin).await {
                tracing::error!(plugin = %name, error = %e, "relaying the outbox failed; will retry");
                failed = true;
            }
        }
        if failed {
            // The sweep retries; do not spin on a database that is down.
            next_sweep = next_sweep.min(Instant::now() + Duration::from_millis(500));
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = platform.relay.wake.notified() => {},
            _ = tokio::time::sleep_until(next_sweep.into()) => {},
        }
    }
    relay_all(&platform).await;
}

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

use super::Platform;
use crate::bindings::kirana::platform::sql::Value;
use crate::bindings::wit;
use crate::capabilities::events::NewEvent;
use crate::core::{CallCtx, KvAfterCommit, PendingEvent, PendingKv, PluginCtx};
use crate::metrics::TopicLabels;
use crate::runtime::LoadedPlugin;
use crate::storage::statements::{self as sql, Unit};
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
    let commits = matches!(outcome, Outcome::Commit { .. });
    let done = commit(&plugin.db, &plugin.version, call, outcome).await;
    let held = std::mem::take(&mut call.after_commit);
    let (finished, published) = done?;
    if commits && finished == Finished::Committed {
        apply_after_commit(platform, plugin, held).await;
    }
    if !published.is_empty() {
        for topic in published {
            platform
                .metrics
                .events_published
                .get_or_create(&TopicLabels { topic })
                .inc();
        }
        platform.relay.mark(&plugin.name);
    }
    Ok(finished)
}

/// Applies the KV writes a call held until its writes committed (`kv.incr-after-commit`,
/// `kv.put-revision-after-commit`). Failures are logged (the plugin's cache entries
/// then live out their TTL). The answer waits for them, so a store that did not answer
/// ends the work: a shared store that is down would otherwise hold the answer for its
/// timeout once per write.
async fn apply_after_commit(platform: &Platform, plugin: &PluginCtx, held: Vec<PendingKv>) {
    let total = held.len();
    for (done, write) in held.into_iter().enumerate() {
        let (ns, key, ttl) = (&plugin.name, &write.key, write.ttl_ms);
        let result = match write.op {
            KvAfterCommit::Incr(delta) => platform.kv.incr(ns, key, delta, ttl).await.map(drop),
            KvAfterCommit::PutRevision { revision, value } => platform
                .kv
                .put_revision(ns, key, revision, value, ttl)
                .await
                .map(drop),
        };
        let Err(e) = result else { continue };
        let store_down = matches!(e, wit::Error::Unavailable(_) | wit::Error::Timeout(_));
        tracing::warn!(
            plugin = %plugin.name,
            key = %write.key,
            skipped = if store_down { total - done - 1 } else { 0 },
            error = %crate::capabilities::error_text(&e),
            "a KV write after commit failed; values keyed by it may be stale until they expire"
        );
        if store_down {
            return;
        }
    }
}

/// The database half of [`finish`]: also returns the topics of the events committed.
async fn commit(
    db: &PluginDb,
    version: &str,
    call: &mut CallCtx,
    outcome: Outcome<'_>,
) -> Result<(Finished, Vec<String>), wit::Error> {
    let unit = call.unit.take();
    let (publish, handled) = match outcome {
        Outcome::Rollback => {
            call.pending.clear();
            if let Some(unit) = unit {
                unit.rollback().await?;
            }
            return Ok((Finished::Committed, Vec::new()));
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
        return Ok((Finished::Committed, Vec::new()));
    }
    let deadline = call.deadline.max(Instant::now() + Duration::from_secs(1));
    let mut unit = match unit {
        Some(u) => u,
        None => Unit::begin(db, Instant::now() + FINISH_TIME).await?,
    };
    if let Some(first) = unit.close_open(deadline).await? {
        events.retain(|e| e.savepoint.is_none_or(|sp| sp < first));
        call.drop_effects_from(first);
    }
    let now = now_ms();
    for chunk in events.chunks(BATCH) {
        let mut params = Vec::with_capacity(chunk.len() * 6);
        for e in chunk {
            params.extend([
                Value::Text(e.id.clone()),
                Value::Text(e.topic.clone()),
                Value::Text(e.payload.clone()),
                Value::Text(version.to_string()),
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
            return Ok((Finished::Duplicate, Vec::new()));
        }
        inserted?;
    }
    unit.commit(deadline).await?;
    Ok((
        Finished::Committed,
        events.into_iter().map(|e| e.topic).collect(),
    ))
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
    // `plugin` is one of its loaded versions; a canary's topics count too.
    let owns = |topic: &str| versions.iter().any(|v| v.ctx.grants.may_publish(topic));
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
        let (ids, events, forged) = relayable(&name, &rows.rows, owns);
        if forged > 0 {
            platform.metrics.events_forged.inc_by(forged);
        }
        if ids.is_empty() {
            tracing::error!(plugin = %name, "the outbox holds rows without a text id; they stay");
            break;
        }
        platform
            .events
            .commit(&events, |topic| platform.registry.subscribers(topic))
            .await?;
        sql::execute_host_pool(
            &plugin.ctx.db,
            &format!(
                "DELETE FROM _kirana_outbox WHERE id IN {}",
                crate::capabilities::events::placeholders(1, ids.len())
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

/// Splits outbox rows into the ids to delete and the events to put on the bus, stamped
/// with `plugin` as their source; rows of topics it does not own, or of a shape the host
/// never writes, are counted, logged and only deleted.
fn relayable(
    plugin: &str,
    rows: &[Vec<Value>],
    owns: impl Fn(&str) -> bool,
) -> (Vec<Value>, Vec<NewEvent>, u64) {
    let mut ids = Vec::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    let mut forged = 0;
    for row in rows {
        let [Value::Text(id), Value::Text(topic), Value::Text(payload), Value::Text(version), created, deliver] =
            row.as_slice()
        else {
            // Written by the plugin's own SQL: dropped, or it would block the relay.
            tracing::error!(plugin, "an outbox row has an unexpected shape; dropped");
            if let Some(id @ Value::Text(_)) = row.first() {
                ids.push(id.clone());
            }
            forged += 1;
            continue;
        };
        ids.push(Value::Text(id.clone()));
        if !owns(topic) {
            tracing::error!(plugin, %topic, event_id = %id, "an outbox row names a topic the plugin does not own; dropped");
            forged += 1;
            continue;
        }
        events.push(NewEvent {
            id: id.clone(),
            topic: topic.clone(),
            payload: payload.clone(),
            source: plugin.to_string(),
            source_version: version.clone(),
            created_at: int(created),
            deliver_at: int(deliver),
        });
    }
    (ids, events, forged)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sqlite::SqliteDb;
    use crate::storage::statements::query_host;

    async fn db() -> (tempfile::TempDir, PluginDb) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = SqliteDb::open(&dir.path().join("p.db"), 2)
            .await
            .expect("open");
        let db = PluginDb::Sqlite(db);
        ensure_tables(&db).await.expect("tables");
        sql::execute_raw(&db, "CREATE TABLE t (v TEXT)")
            .await
            .expect("table t");
        (dir, db)
    }

    /// A call that wrote `v` into `t` and published one event per topic.
    async fn call_writing(db: &PluginDb, v: &str, topics: &[&str]) -> CallCtx {
        let mut call = CallCtx::new("req".into(), None, 0, Duration::from_secs(5));
        let mut unit = Unit::begin(db, call.deadline).await.expect("begin");
        unit.tx()
            .execute_host(
                call.deadline,
                "INSERT INTO t (v) VALUES ($1)".into(),
                vec![Value::Text(v.into())],
            )
            .await
            .expect("insert");
        call.unit = Some(unit);
        for (i, topic) in topics.iter().enumerate() {
            call.pending.push(PendingEvent {
                id: format!("evt_{v}_{i}"),
                topic: topic.to_string(),
                payload: "{}".into(),
                source: "p".into(),
                delay: Duration::ZERO,
                savepoint: None,
            });
        }
        call
    }

    async fn count(db: &PluginDb, sql: &str) -> usize {
        query_host(db, sql, Vec::new())
            .await
            .expect("query")
            .rows
            .len()
    }

    #[tokio::test]
    async fn writes_events_and_the_handled_event_commit_together() {
        let (_dir, db) = db().await;
        let mut call = call_writing(&db, "a", &["x.made", "x.done"]).await;
        let outcome = Outcome::Commit {
            publish: true,
            handled: Some("evt_in_1"),
        };
        let (done, topics) = commit(&db, "1.2.3", &mut call, outcome)
            .await
            .expect("commit");
        assert_eq!(done, Finished::Committed);
        assert_eq!(topics, ["x.made", "x.done"]);
        assert_eq!(count(&db, "SELECT v FROM t").await, 1);
        let rows = query_host(&db, "SELECT id, topic, payload, version, created_at, deliver_at FROM _kirana_outbox ORDER BY id", Vec::new())
            .await
            .expect("outbox");
        assert_eq!(rows.rows.len(), 2);
        let (ids, events, forged) = relayable("p", &rows.rows, |t| t.starts_with("x."));
        assert_eq!((ids.len(), events.len(), forged), (2, 2, 0));
        assert!(events
            .iter()
            .all(|e| e.source == "p" && e.source_version == "1.2.3"));
        assert_eq!(count(&db, "SELECT event_id FROM _kirana_inbox").await, 1);
    }

    #[tokio::test]
    async fn an_event_handled_before_undoes_the_second_run() {
        let (_dir, db) = db().await;
        let handled = Outcome::Commit {
            publish: true,
            handled: Some("evt_in_1"),
        };
        let mut first = call_writing(&db, "a", &["x.made"]).await;
        commit(&db, "1", &mut first, handled).await.expect("first");
        let mut again = call_writing(&db, "b", &["x.made"]).await;
        let handled = Outcome::Commit {
            publish: true,
            handled: Some("evt_in_1"),
        };
        let (done, topics) = commit(&db, "1", &mut again, handled).await.expect("second");
        assert_eq!(done, Finished::Duplicate);
        assert!(topics.is_empty());
        assert_eq!(
            count(&db, "SELECT v FROM t").await,
            1,
            "only the first run's write"
        );
        assert_eq!(count(&db, "SELECT id FROM _kirana_outbox").await, 1);
    }

    #[tokio::test]
    async fn a_failed_call_leaves_nothing_and_a_4xx_publishes_nothing() {
        let (_dir, db) = db().await;
        let mut failed = call_writing(&db, "a", &["x.made"]).await;
        commit(&db, "1", &mut failed, outcome_of(503))
            .await
            .expect("rollback");
        assert_eq!(count(&db, "SELECT v FROM t").await, 0);
        assert_eq!(count(&db, "SELECT id FROM _kirana_outbox").await, 0);
        let mut refused = call_writing(&db, "b", &["x.made"]).await;
        commit(&db, "1", &mut refused, outcome_of(401))
            .await
            .expect("4xx");
        assert_eq!(
            count(&db, "SELECT v FROM t").await,
            1,
            "a 4xx keeps its writes"
        );
        assert_eq!(count(&db, "SELECT id FROM _kirana_outbox").await, 0);
    }

    #[tokio::test]
    async fn events_of_a_transaction_left_open_are_dropped_with_it() {
        let (_dir, db) = db().await;
        let mut call = call_writing(&db, "a", &["x.kept"]).await;
        let deadline = call.deadline;
        let unit = call.unit.as_mut().expect("unit");
        let sp = unit.savepoint(deadline).await.expect("savepoint");
        unit.tx()
            .execute_host(
                deadline,
                "INSERT INTO t (v) VALUES ('inner')".into(),
                Vec::new(),
            )
            .await
            .expect("inner insert");
        call.pending.push(PendingEvent {
            id: "evt_inner".into(),
            topic: "x.inner".into(),
            payload: "{}".into(),
            source: "p".into(),
            delay: Duration::ZERO,
            savepoint: Some(sp),
        });
        let outcome = Outcome::Commit {
            publish: true,
            handled: None,
        };
        let (_, topics) = commit(&db, "1", &mut call, outcome).await.expect("commit");
        assert_eq!(topics, ["x.kept"]);
        assert_eq!(
            count(&db, "SELECT v FROM t").await,
            1,
            "the open transaction's write is gone"
        );
    }

    #[test]
    fn rows_of_foreign_topics_or_odd_shapes_are_dropped_not_relayed() {
        let row = |id: &str, topic: &str| {
            vec![
                Value::Text(id.into()),
                Value::Text(topic.into()),
                Value::Text("{}".into()),
                Value::Text("1".into()),
                Value::Int(1),
                Value::Int(2),
            ]
        };
        let rows = vec![
            row("e1", "orders.created"),
            row("e2", "user.created"),
            vec![Value::Text("e3".into()), Value::Null],
        ];
        let (ids, events, forged) = relayable("orders", &rows, |t| t.starts_with("orders."));
        assert_eq!(ids.len(), 3, "every row leaves the outbox");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].topic, "orders.created");
        assert_eq!((events[0].created_at, events[0].deliver_at), (1, 2));
        assert_eq!(forged, 2);
    }
}

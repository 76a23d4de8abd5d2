//! Which plugin versions are loaded and live, and how a version becomes live: compile
//! (or load from the cache), validate its manifest, resolve its grants, check its routes
//! against everyone else's, run its `migrate` in a transaction, then swap it in.
//!
//! The live set and its route table sit behind one `ArcSwap`: a request reads a
//! snapshot once and keeps that version for its whole life, even if a swap happens.

mod manifest;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use arc_swap::ArcSwap;
use sqlx::Row;

use crate::capabilities::grants::Grants;
use crate::capabilities::sql;
use crate::config::{InstanceMode, PluginConfig};
use crate::gateway::routes::RouteTable;
use crate::platform::Platform;
use crate::runtime::{CallCtx, LoadedPlugin, Op, OpResult, PluginCtx};
use crate::storage::{self, now_ms};

pub use manifest::validate_manifest;

/// The live plugins and the route table built from them.
pub struct Snapshot {
    pub plugins: HashMap<String, Arc<LoadedPlugin>>,
    pub routes: RouteTable,
}

pub struct Registry {
    current: ArcSwap<Snapshot>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            current: ArcSwap::from_pointee(Snapshot {
                plugins: HashMap::new(),
                routes: RouteTable::default(),
            }),
        }
    }
}

impl Registry {
    /// The current live set; hold it for the whole request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn get(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.current.load().plugins.get(name).cloned()
    }

    /// Names of live plugins subscribed to `topic`.
    pub fn subscribers(&self, topic: &str) -> Vec<String> {
        let snap = self.current.load();
        let mut names: Vec<String> = snap
            .plugins
            .values()
            .filter(|p| p.manifest.subscriptions.iter().any(|s| s == topic))
            .map(|p| p.name().to_string())
            .collect();
        names.sort();
        names
    }

    /// Makes `plugins` the live set (their routes must not collide).
    pub fn publish(&self, plugins: Vec<Arc<LoadedPlugin>>) -> Result<()> {
        let routes = RouteTable::build(&plugins)?;
        let plugins = plugins
            .into_iter()
            .map(|p| (p.name().to_string(), p))
            .collect();
        let old = self.current.swap(Arc::new(Snapshot { plugins, routes }));
        for p in old.plugins.values() {
            p.drain();
        }
        Ok(())
    }
}

impl Registry {
    /// Drops every live plugin's warm instances (frees pool slots).
    pub fn drain_all(&self) {
        for p in self.current.load().plugins.values() {
            p.drain();
        }
    }

    /// Takes every plugin out of service: drops warm instances (which hold the
    /// platform alive) and closes the plugins' database pools.
    pub async fn shutdown(&self) {
        let old = self.current.swap(Arc::new(Snapshot {
            plugins: HashMap::new(),
            routes: RouteTable::default(),
        }));
        for p in old.plugins.values() {
            p.drain();
            p.ctx.db.close().await;
        }
    }
}

/// Loads, validates and migrates every enabled plugin of the configuration, then
/// makes them live together.
pub async fn load_configured(platform: &Arc<Platform>) -> Result<()> {
    let mut loaded = Vec::new();
    for (name, pc) in &platform.config.plugins {
        if !pc.enabled {
            tracing::info!(plugin = %name, "disabled in configuration; not loaded");
            continue;
        }
        let started = std::time::Instant::now();
        let plugin = load(platform, name, pc)
            .await
            .with_context(|| format!("loading plugin {name}"))?;
        tracing::info!(
            plugin = %name,
            version = %plugin.version(),
            routes = plugin.manifest.routes.len(),
            ms = started.elapsed().as_millis() as u64,
            "plugin loaded"
        );
        loaded.push(Arc::new(plugin));
    }
    // Refuse colliding routes before any migration touches a database.
    RouteTable::build(&loaded)?;
    for plugin in &loaded {
        migrate(platform, plugin)
            .await
            .with_context(|| format!("migrating plugin {}", plugin.name()))?;
    }
    let live: Vec<(String, String)> = loaded
        .iter()
        .map(|p| (p.name().to_string(), p.version().to_string()))
        .collect();
    platform.registry.publish(loaded)?;
    platform.metrics.set_live(&live);
    Ok(())
}

/// Compiles (or loads from the cache) and validates one plugin.
pub async fn load(platform: &Arc<Platform>, name: &str, pc: &PluginConfig) -> Result<LoadedPlugin> {
    let config = &platform.config;
    let path = config.plugin_path(pc);
    let bytes = tokio::fs::read(&path).await.with_context(|| {
        format!(
            "reading {} (build it with `kirana build` or `cargo build --release --target wasm32-wasip2 -p {name}`)",
            path.display()
        )
    })?;
    let size = bytes.len();
    let runtime_ref = platform.clone();
    let (component, sha256) =
        tokio::task::spawn_blocking(move || runtime_ref.runtime.compile(&bytes))
            .await
            .map_err(|e| anyhow!("compile task: {e}"))??;
    let pre = LoadedPlugin::prepare(platform, &component)?;
    let db = storage::open_plugin(config, name, &platform.db).await?;

    // Ask the component who it is, with no capabilities granted.
    let probe_ctx = Arc::new(PluginCtx {
        name: name.to_string(),
        version: "unknown".into(),
        grants: Grants::none(),
        db: db.clone(),
        settings: Vec::new(),
        memory_bytes: mb(config.limits.memory_mb),
        timeout: Duration::from_millis(config.limits.timeout_ms),
        mode: InstanceMode::Fresh,
    });
    let empty = crate::runtime::bindings::wit::Manifest {
        name: name.to_string(),
        version: "0.0.0".into(),
        routes: Vec::new(),
        subscriptions: Vec::new(),
        capabilities: crate::runtime::bindings::wit::Capabilities {
            sql: false,
            kv: false,
            publish: Vec::new(),
            call: Vec::new(),
            identity: false,
            realtime: false,
            mail: false,
        },
        limits: crate::runtime::bindings::wit::Limits {
            memory_mb: None,
            timeout_ms: None,
        },
    };
    let probe = LoadedPlugin::new(probe_ctx, pre.clone(), empty, sha256.clone(), size, 0)?;
    let call = CallCtx::new(format!("describe:{name}"), None, 0, probe.ctx.timeout);
    let manifest = match probe.run(platform, call, Op::Describe).await {
        Ok((OpResult::Manifest(m), _)) => m,
        Ok(_) => bail!("describe returned an unexpected result"),
        Err(e) => bail!("describe failed: {e}"),
    };
    validate_manifest(name, &manifest)?;
    let grants = Grants::resolve(name, &manifest.capabilities, pc.grants.as_deref())?;

    let max_mb = config.runtime.max_memory_mb;
    let memory_mb = pc
        .memory_mb
        .or(manifest.limits.memory_mb)
        .unwrap_or(config.limits.memory_mb)
        .min(max_mb);
    // A plugin may ask for less time than the default, never more; only the operator's
    // setting can raise it.
    let timeout_ms = pc.timeout_ms.unwrap_or_else(|| {
        manifest
            .limits
            .timeout_ms
            .map(u64::from)
            .unwrap_or(config.limits.timeout_ms)
            .min(config.limits.timeout_ms)
    });
    let ctx = Arc::new(PluginCtx {
        name: name.to_string(),
        version: manifest.version.clone(),
        grants,
        db,
        settings: config.plugin_settings(name),
        memory_bytes: mb(memory_mb),
        timeout: Duration::from_millis(timeout_ms),
        mode: pc.instances,
    });
    LoadedPlugin::new(
        ctx,
        pre,
        manifest,
        sha256,
        size,
        config.runtime.warm_instances,
    )
}

fn mb(n: u32) -> usize {
    usize::try_from(n)
        .unwrap_or(usize::MAX)
        .saturating_mul(1 << 20)
}

/// Runs the plugin's `migrate(from)` inside a transaction on its database and records
/// the version as migrated and live. A failure rolls everything back.
pub async fn migrate(platform: &Arc<Platform>, plugin: &Arc<LoadedPlugin>) -> Result<()> {
    let db = &platform.db;
    let from: Option<String> =
        sqlx::query("SELECT migrated_version FROM plugin_state WHERE name = $1")
            .bind(plugin.name())
            .fetch_optional(&db.pool)
            .await?
            .and_then(|r| {
                r.try_get::<Option<String>, _>("migrated_version")
                    .ok()
                    .flatten()
            });
    let tx = sql::begin(&plugin.ctx.db)
        .await
        .context("opening the migration transaction")?;
    // Seeding a fresh database may take longer than a request.
    let timeout = plugin.ctx.timeout.max(Duration::from_secs(60));
    let mut call = CallCtx::new(format!("migrate:{}", plugin.name()), None, 0, timeout);
    call.migration_tx = Some(tx);
    let (result, mut call) = match plugin.run(platform, call, Op::Migrate(from.clone())).await {
        Ok(r) => r,
        Err(e) => bail!("migrate crashed: {e}"),
    };
    match result {
        OpResult::Migrated(Ok(())) => {}
        OpResult::Migrated(Err(message)) => bail!("migrate from {from:?} failed: {message}"),
        _ => bail!("migrate returned an unexpected result"),
    }
    if let Some(tx) = call.migration_tx.take() {
        tx.commit().await.context("committing the migration")?;
    }
    platform.commit_events(&call.pending).await?;
    record_live(platform, plugin).await
}

async fn record_live(platform: &Platform, plugin: &LoadedPlugin) -> Result<()> {
    let now = now_ms();
    let db = &platform.db;
    sqlx::query(
        "INSERT INTO plugin_versions (name, version, sha256, size, installed_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (name, version) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size",
    )
    .bind(plugin.name())
    .bind(plugin.version())
    .bind(&plugin.sha256)
    .bind(i64::try_from(plugin.size).unwrap_or(i64::MAX))
    .bind(now)
    .execute(&db.pool)
    .await?;
    sqlx::query(
        "INSERT INTO plugin_state (name, live_version, migrated_version, updated_at) VALUES ($1, $2, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET live_version = excluded.live_version, \
         migrated_version = excluded.migrated_version, updated_at = excluded.updated_at",
    )
    .bind(plugin.name())
    .bind(plugin.version())
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

//! Which plugin versions are installed, which one of each plugin is live, and how a
//! version becomes live: compile (or load from the cache), describe, validate its
//! manifest, resolve its grants, check its routes against everyone else's, run its
//! `migrate` in a transaction, then swap it in.
//!
//! The live set, the disabled plugins, running canaries and the route table sit behind
//! one `ArcSwap`: a request reads a snapshot once and keeps that version for its whole
//! life, even if a swap happens meanwhile. Operator actions ([`ops`]) are serialised by
//! a lock and recorded in the host database ([`store`]), which is the truth across
//! restarts; the configuration file only seeds it (see [`start`]).

pub mod bundle;
pub mod dispatch;
pub mod effects;
pub mod invoke;
mod manifest;
pub mod ops;
mod platform;
pub mod reconcile;
pub mod routes;
pub mod store;
pub mod topics;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use arc_swap::ArcSwap;

use crate::bindings::wit;
use crate::config::{InstanceMode, PluginConfig};
use crate::core::grants::Grants;
use crate::core::{CallCtx, Op, OpResult, PluginCtx};
use crate::runtime::LoadedPlugin;
use crate::storage::statements as sql;
use crate::storage::{self, PluginDb};
use effects as outbox;
use routes::RouteTable;

pub use manifest::validate_manifest;
pub use platform::Platform;

/// A candidate version taking a share of a plugin's requests.
pub struct Canary {
    pub plugin: Arc<LoadedPlugin>,
    /// Share of requests, 1..=99.
    pub percent: u8,
    pub started: Instant,
    /// Unix milliseconds, for display.
    pub started_at_ms: i64,
    pub candidate: Counts,
    pub stable: Counts,
    /// Set once an automatic rollback was started, so it starts once.
    pub aborting: AtomicBool,
}

impl Canary {
    /// A canary of `plugin` taking `percent` of the requests, starting now.
    pub fn new(plugin: Arc<LoadedPlugin>, percent: u8) -> Self {
        Self {
            plugin,
            percent,
            started: Instant::now(),
            started_at_ms: crate::storage::now_ms(),
            candidate: Default::default(),
            stable: Default::default(),
            aborting: AtomicBool::new(false),
        }
    }
}

/// Requests and server errors (5xx) counted for one side of a canary.
#[derive(Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
}

impl Counts {
    pub fn record(&self, status: u16) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn get(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

/// The live plugins, the disabled ones and the route table built from both.
#[derive(Default, Clone)]
pub struct Snapshot {
    /// Enabled plugins: their live version.
    pub plugins: HashMap<String, Arc<LoadedPlugin>>,
    /// Disabled plugins (their last live version): routes answer 503, events wait.
    pub disabled: HashMap<String, Arc<LoadedPlugin>>,
    /// Candidates running as canaries, by plugin.
    pub canaries: HashMap<String, Arc<Canary>>,
    /// Plugins that should run but failed to load, with their subscriptions (from the
    /// stored manifest): events for them are queued and wait, as for disabled ones.
    pub missing: HashMap<String, Vec<String>>,
    pub routes: Arc<RouteTable>,
}

pub struct Registry {
    current: ArcSwap<Snapshot>,
    /// Serialises operator actions (install, enable, disable, ...).
    pub(crate) ops: tokio::sync::Mutex<()>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            current: ArcSwap::from_pointee(Snapshot::default()),
            ops: tokio::sync::Mutex::new(()),
        }
    }
}

impl Registry {
    /// The current live set; hold it for the whole request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The live version of an enabled plugin.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.current.load().plugins.get(name).cloned()
    }

    /// A loaded version of `name`: live, else disabled.
    pub fn loaded(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        let snap = self.current.load();
        snap.plugins
            .get(name)
            .or_else(|| snap.disabled.get(name))
            .cloned()
    }

    /// Every loaded version of `name` (live or disabled, and a canary).
    pub fn versions_of(&self, name: &str) -> Vec<Arc<LoadedPlugin>> {
        let snap = self.current.load();
        snap.plugins
            .get(name)
            .into_iter()
            .chain(snap.disabled.get(name))
            .chain(snap.canaries.get(name).map(|c| &c.plugin))
            .cloned()
            .collect()
    }

    /// One loaded version of every plugin (live or disabled).
    pub fn all_loaded(&self) -> Vec<Arc<LoadedPlugin>> {
        let snap = self.current.load();
        snap.plugins
            .values()
            .chain(snap.disabled.values())
            .cloned()
            .collect()
    }

    /// Names of plugins subscribed to `topic`, enabled or disabled (a disabled
    /// plugin's deliveries wait for it).
    pub fn subscribers(&self, topic: &str) -> Vec<String> {
        let snap = self.current.load();
        let mut names: Vec<String> = snap
            .plugins
            .values()
            .chain(snap.disabled.values())
            .filter(|p| p.manifest.subscriptions.iter().any(|s| s == topic))
            .map(|p| p.name().to_string())
            .chain(
                snap.missing
                    .iter()
                    .filter(|(_, subs)| subs.iter().any(|s| s == topic))
                    .map(|(n, _)| n.clone()),
            )
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Makes `plugins` the live set (their routes must not collide).
    pub fn publish(&self, plugins: Vec<Arc<LoadedPlugin>>) -> Result<()> {
        let next = Snapshot {
            plugins: plugins
                .into_iter()
                .map(|p| (p.name().to_string(), p))
                .collect(),
            ..Snapshot::default()
        };
        self.replace(next)
    }

    /// Installs `next` (its route table is rebuilt here) and drains the warm instances
    /// of versions that left.
    pub fn replace(&self, mut next: Snapshot) -> Result<()> {
        let serving: Vec<Arc<LoadedPlugin>> = next
            .plugins
            .values()
            .chain(next.disabled.values())
            .cloned()
            .collect();
        next.routes = Arc::new(RouteTable::build(&serving)?);
        for p in next
            .plugins
            .values()
            .chain(next.canaries.values().map(|c| &c.plugin))
        {
            p.revive();
        }
        let old = self.current.swap(Arc::new(next));
        let now = self.current.load();
        let still = |p: &Arc<LoadedPlugin>| {
            now.plugins.values().any(|q| Arc::ptr_eq(p, q))
                || now.canaries.values().any(|c| Arc::ptr_eq(p, &c.plugin))
        };
        for p in old
            .plugins
            .values()
            .chain(old.disabled.values())
            .chain(old.canaries.values().map(|c| &c.plugin))
        {
            if !still(p) {
                p.retire();
            }
        }
        Ok(())
    }

    /// Drops every live plugin's warm instances (frees pool slots).
    pub fn drain_all(&self) {
        let snap = self.current.load();
        for p in snap.plugins.values() {
            p.drain();
        }
        for c in snap.canaries.values() {
            c.plugin.drain();
        }
    }

    /// Takes every plugin out of service: drops warm instances (which hold the
    /// platform alive) and closes the plugins' database pools.
    pub async fn shutdown(&self) {
        let old = self.current.swap(Arc::new(Snapshot::default()));
        for p in old
            .plugins
            .values()
            .chain(old.disabled.values())
            .chain(old.canaries.values().map(|c| &c.plugin))
        {
            p.retire();
            p.ctx.db.close().await;
        }
    }
}

/// The `[plugins.NAME]` section of `name`, or [`unconfigured`] when it has none.
pub fn plugin_config(platform: &Platform, name: &str) -> PluginConfig {
    platform
        .config
        .plugins
        .get(name)
        .cloned()
        .unwrap_or_else(unconfigured)
}

/// The configuration of a plugin that has no `[plugins.NAME]` section: installed
/// through the operator API, fresh instances, and no grants but those the operator
/// approves at enable.
pub fn unconfigured() -> PluginConfig {
    PluginConfig {
        file: Default::default(),
        enabled: true,
        instances: InstanceMode::Fresh,
        warm_instances: None,
        max_instances: None,
        memory_mb: None,
        timeout_ms: None,
        body_bytes: None,
        max_call_depth: None,
        fuel: None,
        grants: Vec::new(),
        assets: Default::default(),
    }
}

/// Brings the registry up at start. For every plugin known to the host database or
/// named in the configuration:
/// - `enabled = false` in the configuration keeps it out entirely;
/// - with `registry.follow_files` (what `kirana up` sets for development), the
///   configured file is installed if new (its bytes replace a same-version build) and
///   made live;
/// - otherwise the registry's live version is loaded from its stored bytes, and a
///   plugin the registry has never seen is seeded from its configured file and made
///   live. A newer version found in the file is installed but not enabled.
///
/// A plugin that fails to load is logged and left out (`/ready` then answers 503 naming
/// it), and so is one declaring a topic another plugin going live owns ([`topics`]);
/// colliding routes stop the start.
pub async fn start(platform: &Arc<Platform>) -> Result<()> {
    let db = &platform.db;
    // A restart ends a canary, on every replica: the stable version keeps serving.
    for name in store::clear_canaries(db).await? {
        tracing::warn!(plugin = %name, "a canary was running; a start ends it");
        platform
            .cluster
            .feed
            .publish(crate::cluster::Channel::Registry, name);
    }
    let states: HashMap<String, store::StateRow> = store::states(db)
        .await?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    // A misspelt grant in the configuration would silently approve nothing.
    for (name, pc) in &platform.config.plugins {
        for g in &pc.grants {
            Grants::check_spelling(g).with_context(|| format!("[plugins.{name}] grants: {g:?}"))?;
        }
    }
    let mut names: Vec<String> = platform.config.plugins.keys().cloned().collect();
    names.extend(states.keys().cloned());
    names.sort();
    names.dedup();

    let mut live = Vec::new();
    let mut disabled = Vec::new();
    let mut missing: HashMap<String, Vec<String>> = HashMap::new();
    for name in names {
        let pc = plugin_config(platform, &name);
        if !pc.enabled {
            tracing::info!(plugin = %name, "disabled in configuration; not loaded");
            continue;
        }
        let started = Instant::now();
        match start_one(platform, &name, &pc, states.get(&name)).await {
            Ok(Some((plugin, is_disabled))) => {
                tracing::info!(
                    plugin = %name,
                    version = %plugin.version(),
                    routes = plugin.manifest.routes.len(),
                    disabled = is_disabled,
                    ms = started.elapsed().as_millis() as u64,
                    "plugin loaded"
                );
                if is_disabled {
                    disabled.push(Arc::new(plugin));
                } else {
                    live.push(Arc::new(plugin));
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(plugin = %name, error = %format!("{e:#}"), "plugin not loaded");
                let live_version = states.get(&name).and_then(|s| s.live_version.clone());
                if let Some(v) = live_version {
                    let subs = store::manifest(db, &name, &v)
                        .await?
                        .and_then(|m| serde_json::from_value(m["subscriptions"].clone()).ok())
                        .unwrap_or_default();
                    missing.insert(name.clone(), subs);
                }
            }
        }
    }
    // A topic has one owner: a plugin claiming one already owned is not loaded.
    let (live, refused) = topics::settle(live, |p| {
        states.get(p.name()).and_then(|s| s.live_version.as_deref()) == Some(p.version())
    });
    for (plugin, why) in refused {
        tracing::error!(plugin = %plugin.name(), error = %why, "plugin not loaded");
        missing.insert(
            plugin.name().to_string(),
            plugin.manifest.subscriptions.clone(),
        );
    }
    // Refuse colliding routes before any migration touches a database.
    let all: Vec<Arc<LoadedPlugin>> = live.iter().chain(disabled.iter()).cloned().collect();
    RouteTable::build(&all)?;
    let mut ready = Vec::new();
    for plugin in live {
        match migrate(platform, &plugin).await {
            Ok(()) => {
                let previous = states
                    .get(plugin.name())
                    .and_then(|s| s.live_version.clone())
                    .filter(|v| v != plugin.version());
                let previous = previous.or_else(|| {
                    states
                        .get(plugin.name())
                        .and_then(|s| s.previous_version.clone())
                });
                store::set_live(db, plugin.name(), plugin.version(), previous.as_deref()).await?;
                ready.push(plugin);
            }
            Err(e) => {
                tracing::error!(plugin = %plugin.name(), error = %format!("{e:#}"), "migration failed; plugin not loaded");
                missing.insert(
                    plugin.name().to_string(),
                    plugin.manifest.subscriptions.clone(),
                );
            }
        }
    }
    let next = Snapshot {
        plugins: ready
            .into_iter()
            .map(|p| (p.name().to_string(), p))
            .collect(),
        disabled: disabled
            .into_iter()
            .map(|p| (p.name().to_string(), p))
            .collect(),
        missing,
        ..Snapshot::default()
    };
    platform.registry.replace(next)?;
    ops::refresh_live_metric(platform);
    Ok(())
}

/// Decides and loads the version of one plugin at start; `Some((plugin, disabled))`.
async fn start_one(
    platform: &Arc<Platform>,
    name: &str,
    pc: &PluginConfig,
    state: Option<&store::StateRow>,
) -> Result<Option<(LoadedPlugin, bool)>> {
    let db = &platform.db;
    let is_disabled = state.is_some_and(|s| s.state == "disabled");
    let has_file = !pc.file.as_os_str().is_empty();
    if platform.config.registry.follow_files && has_file {
        let plugin = install_file(platform, name, pc).await?;
        return Ok(Some((plugin, is_disabled)));
    }
    let stored = match state.and_then(|s| s.live_version.as_deref()) {
        Some(v) => store::version(db, name, v).await?.filter(|r| r.has_bytes),
        None => None,
    };
    if let Some(row) = stored {
        let bytes = store::component(db, &row.sha256)
            .await?
            .ok_or_else(|| anyhow!("the stored bytes of {name} {} are gone", row.version))?;
        let approved = approved_grants(platform, name, pc).await?;
        let plugin = build(
            platform,
            Some(name),
            bytes,
            pc,
            None,
            GrantCheck::Enforce(&approved),
        )
        .await
        .map_err(anyhow::Error::from)?;
        if has_file {
            offer_file(platform, name, pc).await;
        }
        return Ok(Some((plugin, is_disabled)));
    }
    if !has_file {
        tracing::warn!(plugin = %name, "no stored component and no file configured; not loaded");
        return Ok(None);
    }
    // First start (or a registry from before it kept bytes): seed from the file.
    let plugin = install_file(platform, name, pc).await?;
    store::record(
        db,
        name,
        "install",
        Some(plugin.version()),
        "config",
        Some("seeded from the configuration"),
    )
    .await?;
    Ok(Some((plugin, is_disabled)))
}

/// Builds the configured file of `name` and records it (replacing a same-version
/// build), for seeding and for `follow_files`.
async fn install_file(
    platform: &Arc<Platform>,
    name: &str,
    pc: &PluginConfig,
) -> Result<LoadedPlugin> {
    let bytes = read_file(platform, name, pc).await?;
    let approved = approved_grants(platform, name, pc).await?;
    let plugin = build(
        platform,
        Some(name),
        bytes.clone(),
        pc,
        None,
        GrantCheck::Enforce(&approved),
    )
    .await
    .map_err(anyhow::Error::from)?;
    store::insert_version(
        &platform.db,
        &store::NewVersion {
            name,
            version: plugin.version(),
            sha256: &plugin.sha256,
            bytes: &bytes,
            manifest_json: &manifest_json(&plugin.manifest).to_string(),
            installed_by: "config",
        },
        true,
    )
    .await?;
    Ok(plugin)
}

/// Installs (without enabling) a version found in the configured file that the
/// registry does not have yet, so the operator can enable it.
async fn offer_file(platform: &Arc<Platform>, name: &str, pc: &PluginConfig) {
    let Ok(bytes) = tokio::fs::read(platform.config.plugin_path(pc)).await else {
        return;
    };
    let bytes = match with_assets(bytes, pc) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(plugin = %name, error = %format!("{e:#}"), "bundling the configured assets failed");
            return;
        }
    };
    match ops::install(platform, bytes, "config").await {
        Ok(ops::Installed {
            version, new: true, ..
        }) => tracing::info!(
            plugin = %name, %version,
            "a new version was found in the configured file and installed; enable it with `kirana plugins enable {name}@{version}`"
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(plugin = %name, error = %e, "the configured file was not installed")
        }
    }
}

async fn read_file(platform: &Platform, name: &str, pc: &PluginConfig) -> Result<Vec<u8>> {
    let path = platform.config.plugin_path(pc);
    let bytes = tokio::fs::read(&path).await.with_context(|| {
        format!(
            "reading {} (build it with `kirana build` or `cargo build --release --target wasm32-wasip2 -p {name}`)",
            path.display()
        )
    })?;
    with_assets(bytes, pc)
}

/// The configured file's bytes, bundled with `[plugins.NAME] assets` when set.
pub fn with_assets(component: Vec<u8>, pc: &PluginConfig) -> Result<Vec<u8>> {
    if pc.assets.as_os_str().is_empty() {
        return Ok(component);
    }
    bundle::pack_dir(&component, &pc.assets)
}

/// Why a component cannot be installed or enabled.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not a usable component (400).
    #[error("{0}")]
    Invalid(String),
    /// Clashes with what is installed or live (409).
    #[error("{0}")]
    Conflict(String),
    /// No such plugin or version (404).
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// How [`build`] treats the grants a component asks for.
#[derive(Debug, Clone, Copy)]
pub enum GrantCheck<'a> {
    /// The component will serve: everything it asks for must be among these approvals.
    Enforce(&'a [String]),
    /// Validation only (an upload is checked, never served): granted as asked, so the
    /// operator can be shown what it requests.
    Validate,
}

/// What the operator has approved for `name`: its configuration's `grants` and the
/// approvals given at enable (kept in the host database).
pub async fn approved_grants(
    platform: &Platform,
    name: &str,
    pc: &PluginConfig,
) -> Result<Vec<String>> {
    let mut out = pc.grants.clone();
    for g in store::approved_grants(&platform.db, name).await? {
        if !out.contains(&g) {
            out.push(g);
        }
    }
    Ok(out)
}

/// Compiles (or loads from the cache), describes and validates one component.
/// `expected` is the plugin name it must describe itself as (none when uploaded);
/// `db` is the plugin's database when another version already has it open.
pub async fn build(
    platform: &Arc<Platform>,
    expected: Option<&str>,
    bytes: Vec<u8>,
    pc: &PluginConfig,
    db: Option<PluginDb>,
    grants: GrantCheck<'_>,
) -> Result<LoadedPlugin, RegistryError> {
    let config = &platform.config;
    let size = bytes.len();
    // The registry's digest is of the bytes as stored: a bundle's whole, else the
    // component's (which compiling computes anyway).
    let bundle_sha256 = bundle::is_bundle(&bytes)
        .then(|| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
    let (bytes, assets) = bundle::split(bytes)
        .map_err(|e| RegistryError::Invalid(format!("not a usable plugin bundle: {e}")))?;
    let assets = Arc::new(assets);
    let runtime_ref = platform.clone();
    let (component, component_sha256) =
        tokio::task::spawn_blocking(move || runtime_ref.runtime.compile(&bytes))
            .await
            .map_err(|e| anyhow!("compile task: {e}"))?
            .map_err(|e| {
                RegistryError::Invalid(format!("not a WebAssembly component: {}", root(&e)))
            })?;
    let sha256 = bundle_sha256.unwrap_or(component_sha256);
    let pre = LoadedPlugin::prepare(&platform.runtime, &component)
        .map_err(|e| RegistryError::Invalid(format!("{e:#}")))?;

    // Ask the component who it is, with no capabilities and no database.
    let probe_db = PluginDb::Sqlite(storage::SqliteDb::memory());
    let probe_ctx = Arc::new(PluginCtx {
        name: expected.unwrap_or("(uploaded)").to_string(),
        version: "unknown".into(),
        grants: Grants::none(),
        db: probe_db,
        settings: Vec::new(),
        memory_bytes: mb(config.limits.memory_mb),
        timeout: Duration::from_millis(config.limits.timeout_ms),
        mode: InstanceMode::Fresh,
        body_bytes: config.limits.body_bytes,
        max_call_depth: config.limits.max_call_depth,
        fuel: None,
        assets: assets.clone(),
    });
    let probe = LoadedPlugin::new(
        probe_ctx,
        pre.clone(),
        empty_manifest(),
        sha256.clone(),
        size,
        0,
        None,
    )
    .map_err(RegistryError::Internal)?;
    let call = CallCtx::new("describe".into(), None, 0, probe.ctx.timeout);
    let manifest = match platform.run(&probe, call, Op::Describe).await {
        Ok((OpResult::Manifest(m), _)) => m,
        Ok(_) => {
            return Err(RegistryError::Invalid(
                "describe returned an unexpected result".into(),
            ))
        }
        Err(e) => return Err(RegistryError::Invalid(format!("describe failed: {e}"))),
    };
    let name = expected.unwrap_or(&manifest.name).to_string();
    validate_manifest(&name, &manifest).map_err(|e| RegistryError::Invalid(format!("{e:#}")))?;
    check_name(&name).map_err(RegistryError::Invalid)?;
    // The operator's setting decides the memory; without one, a manifest may ask for
    // less than the default freely, and for more only with a `memory:MiB` grant.
    let memory_ask = match pc.memory_mb {
        Some(_) => None,
        None => manifest.limits.memory_mb,
    };
    let grants = match grants {
        GrantCheck::Enforce(approved) => Grants::resolve(
            &name,
            &manifest,
            memory_ask,
            config.limits.memory_mb,
            approved,
        )
        .map_err(|e| RegistryError::Conflict(format!("{e:#}")))?,
        GrantCheck::Validate => Grants::asked(&manifest.capabilities),
    };

    let max_mb = config.runtime.max_memory_mb;
    let memory_mb = pc
        .memory_mb
        .or(memory_ask)
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
    let db = match db {
        Some(db) => db,
        None => {
            let db = storage::open_plugin(config, &name, &platform.db).await?;
            outbox::ensure_tables(&db)
                .await
                .with_context(|| format!("creating the outbox and inbox of {name}"))?;
            db
        }
    };
    let ctx = Arc::new(PluginCtx {
        name: name.clone(),
        version: manifest.version.clone(),
        grants,
        db,
        settings: config.plugin_settings(&name),
        memory_bytes: mb(memory_mb),
        timeout: Duration::from_millis(timeout_ms),
        mode: pc.instances,
        body_bytes: pc.body_bytes.unwrap_or(config.limits.body_bytes),
        max_call_depth: pc.max_call_depth.unwrap_or(config.limits.max_call_depth),
        fuel: pc.fuel,
        assets,
    });
    LoadedPlugin::new(
        ctx,
        pre,
        manifest,
        sha256,
        size,
        pc.warm_instances.unwrap_or(config.runtime.warm_instances),
        pc.max_instances,
    )
    .map_err(|e| RegistryError::Invalid(format!("{e:#}")))
}

fn root(e: &anyhow::Error) -> String {
    e.root_cause().to_string()
}

/// Names that would clash with the host's own configuration sections.
const RESERVED: &[&str] = &[
    "runtime",
    "limits",
    "services",
    "identity",
    "events",
    "rate_limit",
    "cors",
    "mail",
    "env_aliases",
    "plugins",
    "admin",
    "registry",
    "host",
    "kirana",
];

/// A plugin name: `[a-z][a-z0-9_]{0,31}`, not a host section.
fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(format!(
            "plugin name {name:?} must be 1 to 32 of a-z, 0-9 and _, starting with a letter"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!("plugin name {name:?} is reserved by the host"));
    }
    Ok(())
}

fn empty_manifest() -> wit::Manifest {
    wit::Manifest {
        name: String::new(),
        version: "0.0.0".into(),
        routes: Vec::new(),
        subscriptions: Vec::new(),
        capabilities: wit::Capabilities {
            sql: false,
            kv: false,
            publish: Vec::new(),
            call: Vec::new(),
            identity: false,
            realtime: false,
            mail: false,
        },
        limits: wit::Limits {
            memory_mb: None,
            timeout_ms: None,
        },
    }
}

/// A manifest as JSON (stored with each version and shown by the operator API).
pub fn manifest_json(m: &wit::Manifest) -> serde_json::Value {
    let routes: Vec<_> = m.routes.iter().map(route_json).collect();
    let c = &m.capabilities;
    serde_json::json!({
        "name": m.name,
        "version": m.version,
        "routes": routes,
        "subscriptions": m.subscriptions,
        "capabilities": {
            "sql": c.sql, "kv": c.kv, "publish": c.publish, "call": c.call,
            "identity": c.identity, "realtime": c.realtime, "mail": c.mail,
        },
        "limits": {"memory_mb": m.limits.memory_mb, "timeout_ms": m.limits.timeout_ms},
    })
}

/// `{method, path, role}`; role is `public`, `any`, `internal` or the roles joined by `|`.
pub fn route_json(r: &wit::Route) -> serde_json::Value {
    let role = match &r.access {
        wit::Access::Public => "public".to_string(),
        wit::Access::Authenticated => "any".to_string(),
        wit::Access::Internal => "internal".to_string(),
        wit::Access::Roles(roles) => roles.join("|"),
    };
    serde_json::json!({"method": r.method, "path": r.path, "role": role})
}

fn mb(n: u32) -> usize {
    usize::try_from(n)
        .unwrap_or(usize::MAX)
        .saturating_mul(1 << 20)
}

/// Runs the plugin's `migrate(from)` inside a transaction on its database, where `from`
/// is the version migrated last. A failure rolls everything back.
pub async fn migrate(platform: &Arc<Platform>, plugin: &Arc<LoadedPlugin>) -> Result<()> {
    let from = store::migrated_version(&platform.db, plugin.name()).await?;
    // Seeding a fresh database may take longer than a request.
    let timeout = plugin.ctx.timeout.max(crate::storage::MIGRATION_TIME);
    let mut call = CallCtx::new(format!("migrate:{}", plugin.name()), None, 0, timeout);
    let tx = sql::begin_migration(&plugin.ctx.db, call.deadline)
        .await
        .map_err(|e| anyhow!("opening the migration transaction: {e:?}"))?;
    call.migration_tx = Some(tx.for_migration());
    let (result, mut call) = match platform.run(plugin, call, Op::Migrate(from.clone())).await {
        Ok(r) => r,
        Err(e) => bail!("migrate crashed: {e}"),
    };
    match result {
        OpResult::Migrated(Ok(())) => {}
        OpResult::Migrated(Err(message)) => bail!("migrate from {from:?} failed: {message}"),
        _ => bail!("migrate returned an unexpected result"),
    }
    // Events `migrate` published go to the outbox in the migration's transaction.
    call.unit = call
        .migration_tx
        .take()
        .map(crate::storage::statements::Unit::from_tx);
    let outcome = outbox::Outcome::Commit {
        publish: true,
        handled: None,
    };
    outbox::finish(platform, &plugin.ctx, &mut call, outcome)
        .await
        .map_err(|e| anyhow!("committing the migration: {e:?}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names() {
        assert!(check_name("cart").is_ok());
        assert!(check_name("loyalty_points2").is_ok());
        assert!(check_name("Cart").is_err());
        assert!(check_name("2cart").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("mail").is_err());
        assert!(check_name(&"a".repeat(33)).is_err());
    }

    #[test]
    fn canary_counts() {
        let c = Counts::default();
        c.record(200);
        c.record(503);
        c.record(404);
        assert_eq!(c.get(), (3, 1));
    }
}

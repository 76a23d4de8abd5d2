//! Operator actions on the registry: install, enable (optionally as a canary), promote,
//! disable, rollback, delete. Each runs under the registry's lock, changes the live
//! snapshot with one atomic swap, and is recorded in the plugin's history.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{
    approved_grants, build, manifest_json, migrate, plugin_config, store, topics, unconfigured,
    Canary, GrantCheck, RegistryError,
};
use crate::core::grants::Grants;
use crate::registry::routes::RouteTable;
use crate::registry::Platform;
use crate::runtime::LoadedPlugin;

/// What `install` did.
#[derive(Debug, Clone)]
pub struct Installed {
    pub name: String,
    pub version: String,
    pub sha256: String,
    /// False when the same bytes were installed already.
    pub new: bool,
    /// Every grant the version asks for, as the configuration spells them.
    pub requested_grants: Vec<String>,
    /// Of those, the ones not approved yet: enabling needs `--grant` for them.
    pub unapproved_grants: Vec<String>,
}

/// Validates and records a component version without making it live. The same bytes
/// again are a no-op; the same version with other bytes is a conflict; a route
/// colliding with another plugin's routes refuses it. Nothing is written unless every
/// check passed. What it asks for is reported, with what is not approved yet: an
/// installed version is never served, so approval waits for `enable`.
pub async fn install(
    platform: &Arc<Platform>,
    bytes: Vec<u8>,
    actor: &str,
) -> Result<Installed, RegistryError> {
    let _guard = lock_ops(platform).await?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let plugin = build_detached(platform, bytes.clone()).await?;
    let name = plugin.name().to_string();
    let version = plugin.version().to_string();
    let pc = plugin_config(platform, &name);
    let requested_grants = Grants::requested(
        &plugin.manifest,
        pc.memory_mb
            .is_none()
            .then_some(plugin.manifest.limits.memory_mb)
            .flatten(),
        platform.config.limits.memory_mb,
    );
    let approved = approved_grants(platform, &name, &pc).await?;
    let unapproved_grants = Grants::missing(&requested_grants, &approved);
    let installed = |new| Installed {
        name: name.clone(),
        version: version.clone(),
        sha256: sha256.clone(),
        new,
        requested_grants: requested_grants.clone(),
        unapproved_grants: unapproved_grants.clone(),
    };
    if let Some(existing) = store::version(&platform.db, &name, &version).await? {
        if existing.sha256 == sha256 {
            return Ok(installed(false));
        }
        return Err(RegistryError::Conflict(format!(
            "{name} {version} is already installed with other bytes (sha256 {}); bump the version",
            existing.sha256
        )));
    }
    check_routes(platform, &plugin)?;
    store::insert_version(
        &platform.db,
        &store::NewVersion {
            name: &name,
            version: &version,
            sha256: &sha256,
            bytes: &bytes,
            manifest_json: &manifest_json(&plugin.manifest).to_string(),
            installed_by: actor,
        },
        false,
    )
    .await?;
    store::record(&platform.db, &name, "install", Some(&version), actor, None).await?;
    Ok(installed(true))
}

/// Development only (`kirana dev`, which sets `registry.follow_files`): `bytes`, a new
/// build of plugin `name`, becomes what serves, in place. A build of the live version
/// replaces that version's bytes; a new version is installed. Either way it is enabled
/// as `enable` does (its `migrate` first; on any failure the running build stays live).
/// Returns the version now live.
pub async fn reload(
    platform: &Arc<Platform>,
    name: &str,
    bytes: Vec<u8>,
    actor: &str,
) -> Result<String, RegistryError> {
    if !platform.config.registry.follow_files {
        return Err(RegistryError::Conflict(
            "replacing a version's bytes in place is for development (`kirana dev`); install a new version instead".into(),
        ));
    }
    let _guard = lock_ops(platform).await?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let plugin = build_detached(platform, bytes.clone()).await?;
    if plugin.name() != name {
        return Err(RegistryError::Invalid(format!(
            "the build of {name} names itself {}",
            plugin.name()
        )));
    }
    let version = plugin.version().to_string();
    check_routes(platform, &plugin)?;
    store::insert_version(
        &platform.db,
        &store::NewVersion {
            name,
            version: &version,
            sha256: &sha256,
            bytes: &bytes,
            manifest_json: &manifest_json(&plugin.manifest).to_string(),
            installed_by: actor,
        },
        true,
    )
    .await?;
    store::record(
        &platform.db,
        name,
        "install",
        Some(&version),
        actor,
        Some("a development build"),
    )
    .await?;
    enable_locked(platform, name, Some(&version), None, &[], actor, "enable").await?;
    changed(platform, name);
    Ok(version)
}

/// Builds a component for validation only, with an in-memory database (nothing is
/// created for a plugin that may never be installed) and its grants as asked.
async fn build_detached(
    platform: &Arc<Platform>,
    bytes: Vec<u8>,
) -> Result<LoadedPlugin, RegistryError> {
    let db = crate::storage::PluginDb::Sqlite(crate::storage::SqliteDb::memory());
    build(
        platform,
        None,
        bytes,
        &unconfigured(),
        Some(db),
        GrantCheck::Validate,
    )
    .await
}

/// Refuses a plugin whose public routes collide with another plugin's.
fn check_routes(platform: &Platform, plugin: &LoadedPlugin) -> Result<(), RegistryError> {
    let snap = platform.registry.snapshot();
    let mut manifests: Vec<(&str, &[crate::bindings::wit::Route])> = snap
        .plugins
        .values()
        .chain(snap.disabled.values())
        .filter(|p| p.name() != plugin.name())
        .map(|p| (p.name(), p.manifest.routes.as_slice()))
        .collect();
    manifests.push((plugin.name(), plugin.manifest.routes.as_slice()));
    RouteTable::from_routes(&manifests)
        .map(|_| ())
        .map_err(|e| RegistryError::Conflict(format!("{e:#}")))
}

/// Makes `version` (default: the newest installed) of `name` live, or starts it as a
/// canary taking `canary_percent` of the requests. Everything it asks for must be
/// approved: by the configuration, earlier enables, or `grant` (the operator's approval
/// now, kept once the version is enabled), and no topic it declares may be owned by
/// another enabled plugin ([`topics`]). Its `migrate` runs first, in a transaction;
/// if anything fails the current version stays live and the error is returned.
pub async fn enable(
    platform: &Arc<Platform>,
    name: &str,
    version: Option<&str>,
    canary_percent: Option<u8>,
    grant: &[String],
    actor: &str,
) -> Result<(), RegistryError> {
    for g in grant {
        Grants::check_spelling(g).map_err(|e| RegistryError::Invalid(format!("{e:#}")))?;
    }
    let _guard = lock_ops(platform).await?;
    enable_locked(
        platform,
        name,
        version,
        canary_percent,
        grant,
        actor,
        "enable",
    )
    .await?;
    changed(platform, name);
    Ok(())
}

/// Serialises operator actions: in this process, and across the replicas of one
/// PostgreSQL database.
async fn lock_ops(
    platform: &Platform,
) -> Result<
    (
        tokio::sync::MutexGuard<'_, ()>,
        crate::storage::AdvisoryLock,
    ),
    RegistryError,
> {
    let cluster =
        crate::storage::AdvisoryLock::take(&platform.db, crate::storage::locks::REGISTRY).await?;
    Ok((platform.registry.ops.lock().await, cluster))
}

/// Tells the other replicas that `name` changed (they reconcile it from the database).
fn changed(platform: &Platform, name: &str) {
    platform
        .cluster
        .feed
        .publish(crate::cluster::Channel::Registry, name.to_string());
}

#[allow(clippy::too_many_arguments)]
async fn enable_locked(
    platform: &Arc<Platform>,
    name: &str,
    version: Option<&str>,
    canary_percent: Option<u8>,
    grant: &[String],
    actor: &str,
    action: &str,
) -> Result<(), RegistryError> {
    let db = &platform.db;
    let row = match version {
        Some(v) => store::version(db, name, v).await?,
        None => store::newest_version(db, name).await?,
    }
    .ok_or_else(|| {
        RegistryError::NotFound(match version {
            Some(v) => format!("{name} {v} is not installed"),
            None => format!("no version of {name} is installed"),
        })
    })?;
    let snap = platform.registry.snapshot();
    let current = snap.plugins.get(name).cloned();
    let disabled = snap.disabled.get(name).cloned();
    if let Some(p) = canary_percent {
        if !(1..=99).contains(&p) {
            return Err(RegistryError::Invalid(
                "canary_percent must be 1 to 99".into(),
            ));
        }
        if current.is_none() {
            return Err(RegistryError::Conflict(format!(
                "{name} has no live version to compare a canary with; enable it first"
            )));
        }
    }
    // Re-enabling the disabled live version needs no build or migration.
    if let (Some(d), None) = (&disabled, canary_percent) {
        if d.version() == row.version && d.sha256 == row.sha256 {
            topics::check(&snap, d)?;
            let mut next = (*snap).clone();
            next.disabled.remove(name);
            next.plugins.insert(name.to_string(), d.clone());
            platform.registry.replace(next)?;
            store::set_state(db, name, "live").await?;
            store::record(db, name, action, Some(&row.version), actor, None).await?;
            refresh_live_metric(platform);
            return Ok(());
        }
    }
    if canary_percent.is_none() {
        if let Some(c) = &current {
            if c.version() == row.version
                && c.sha256 == row.sha256
                && !snap.canaries.contains_key(name)
            {
                return Ok(()); // already live
            }
        }
    }
    let bytes = store::component(db, &row.sha256).await?.ok_or_else(|| {
        RegistryError::NotFound(format!("the bytes of {name} {} are missing", row.version))
    })?;
    let pc = plugin_config(platform, name);
    let existing_db = current
        .as_ref()
        .or(disabled.as_ref())
        .map(|p| p.ctx.db.clone());
    let mut approved = approved_grants(platform, name, &pc).await?;
    approved.extend(grant.iter().cloned());
    let plugin = Arc::new(
        build(
            platform,
            Some(name),
            bytes,
            &pc,
            existing_db,
            GrantCheck::Enforce(&approved),
        )
        .await?,
    );
    check_routes(platform, &plugin)?;
    topics::check(&snap, &plugin)?;
    if let Err(e) = migrate(platform, &plugin).await {
        let message = format!("{e:#}");
        store::record(
            db,
            name,
            "enable_failed",
            Some(&row.version),
            actor,
            Some(&message),
        )
        .await?;
        return Err(RegistryError::Conflict(format!(
            "{name} {} was not enabled: {message}",
            row.version
        )));
    }
    if !grant.is_empty() {
        store::approve_grants(db, name, grant, actor).await?;
        store::record(
            db,
            name,
            "grant",
            Some(&row.version),
            actor,
            Some(&grant.join(", ")),
        )
        .await?;
    }
    let mut next = (*snap).clone();
    match canary_percent {
        Some(percent) => {
            store::set_migrated(db, name, &row.version).await?;
            store::set_canary(db, name, Some((&row.version, percent))).await?;
            next.canaries
                .insert(name.to_string(), Arc::new(Canary::new(plugin, percent)));
            platform.registry.replace(next)?;
            store::record(
                db,
                name,
                "canary",
                Some(&row.version),
                actor,
                Some(&format!("{percent}% of requests")),
            )
            .await?;
        }
        None => {
            let previous = match current.as_ref().or(disabled.as_ref()) {
                // A new build of the same version (`kirana dev`) keeps the rollback target.
                Some(p) if p.version() == row.version => store::state(db, name)
                    .await?
                    .and_then(|s| s.previous_version),
                Some(p) => Some(p.version().to_string()),
                None => None,
            };
            next.disabled.remove(name);
            next.missing.remove(name);
            let had_canary = next.canaries.remove(name).is_some();
            next.plugins.insert(name.to_string(), plugin);
            platform.registry.replace(next)?;
            store::set_live(db, name, &row.version, previous.as_deref()).await?;
            if had_canary {
                store::set_canary(db, name, None).await?;
            }
            store::record(db, name, action, Some(&row.version), actor, None).await?;
        }
    }
    refresh_live_metric(platform);
    Ok(())
}

/// Makes a running canary the live version.
pub async fn promote(
    platform: &Arc<Platform>,
    name: &str,
    actor: &str,
) -> Result<(), RegistryError> {
    let _guard = lock_ops(platform).await?;
    let snap = platform.registry.snapshot();
    let canary = snap
        .canaries
        .get(name)
        .cloned()
        .ok_or_else(|| RegistryError::Conflict(format!("{name} has no canary running")))?;
    let previous = snap.plugins.get(name).map(|p| p.version().to_string());
    let mut next = (*snap).clone();
    next.canaries.remove(name);
    next.plugins.insert(name.to_string(), canary.plugin.clone());
    platform.registry.replace(next)?;
    let version = canary.plugin.version().to_string();
    store::set_live(&platform.db, name, &version, previous.as_deref()).await?;
    store::set_canary(&platform.db, name, None).await?;
    store::record(&platform.db, name, "promote", Some(&version), actor, None).await?;
    refresh_live_metric(platform);
    changed(platform, name);
    Ok(())
}

/// Ends a running canary; the stable version keeps every request.
pub async fn abort_canary(
    platform: &Arc<Platform>,
    name: &str,
    actor: &str,
    reason: &str,
) -> Result<(), RegistryError> {
    let _guard = lock_ops(platform).await?;
    abort_canary_locked(platform, name, actor, reason).await?;
    changed(platform, name);
    Ok(())
}

async fn abort_canary_locked(
    platform: &Arc<Platform>,
    name: &str,
    actor: &str,
    reason: &str,
) -> Result<(), RegistryError> {
    let snap = platform.registry.snapshot();
    let Some(canary) = snap.canaries.get(name).cloned() else {
        return Err(RegistryError::Conflict(format!(
            "{name} has no canary running"
        )));
    };
    // Recorded before the swap, so whoever sees the canary gone also finds the reason.
    store::record(
        &platform.db,
        name,
        "canary_rollback",
        Some(canary.plugin.version()),
        actor,
        Some(reason),
    )
    .await?;
    let mut next = (*snap).clone();
    next.canaries.remove(name);
    platform.registry.replace(next)?;
    store::set_canary(&platform.db, name, None).await?;
    if let Some(stable) = snap.plugins.get(name) {
        // The candidate's migration ran; the stable version is what is live.
        store::set_migrated(&platform.db, name, stable.version()).await?;
    }
    tracing::warn!(plugin = %name, version = %canary.plugin.version(), %reason, "canary rolled back");
    Ok(())
}

/// Called by the gateway after a request served by a canary candidate: rolls the
/// canary back when its 5xx rate passed the configured bound within its window.
pub fn check_canary(platform: &Arc<Platform>, name: &str, canary: &Arc<Canary>) {
    let cfg = &platform.config.registry;
    if canary.started.elapsed() > std::time::Duration::from_secs(cfg.canary_window_secs) {
        return;
    }
    let (requests, errors) = canary.candidate.get();
    if requests < cfg.canary_min_requests || requests == 0 {
        return;
    }
    let rate = errors as f64 / requests as f64;
    if rate <= cfg.canary_max_error_rate {
        return;
    }
    if canary.aborting.swap(true, Ordering::SeqCst) {
        return;
    }
    let platform = platform.clone();
    let name = name.to_string();
    let reason = format!(
        "automatic: {errors} of {requests} requests failed ({:.0}% > {:.0}%)",
        rate * 100.0,
        cfg.canary_max_error_rate * 100.0
    );
    tokio::spawn(async move {
        if let Err(e) = abort_canary(&platform, &name, "kirana", &reason).await {
            tracing::error!(plugin = %name, error = %e, "automatic canary rollback failed");
        }
    });
}

/// Takes a plugin out of service: its routes answer 503 and its events wait.
pub async fn disable(
    platform: &Arc<Platform>,
    name: &str,
    actor: &str,
) -> Result<(), RegistryError> {
    let _guard = lock_ops(platform).await?;
    let snap = platform.registry.snapshot();
    if snap.disabled.contains_key(name) {
        return Ok(());
    }
    let live = snap
        .plugins
        .get(name)
        .cloned()
        .ok_or_else(|| RegistryError::NotFound(format!("{name} is not live")))?;
    if snap.canaries.contains_key(name) {
        abort_canary_locked(platform, name, actor, "the plugin was disabled").await?;
    }
    let snap = platform.registry.snapshot();
    let mut next = (*snap).clone();
    next.plugins.remove(name);
    next.canaries.remove(name);
    next.disabled.insert(name.to_string(), live.clone());
    platform.registry.replace(next)?;
    store::set_state(&platform.db, name, "disabled").await?;
    store::record(
        &platform.db,
        name,
        "disable",
        Some(live.version()),
        actor,
        None,
    )
    .await?;
    refresh_live_metric(platform);
    changed(platform, name);
    Ok(())
}

/// Re-enables the version that was live before the current one (a running canary is
/// simply ended instead).
pub async fn rollback(
    platform: &Arc<Platform>,
    name: &str,
    actor: &str,
) -> Result<(), RegistryError> {
    let _guard = lock_ops(platform).await?;
    let snap = platform.registry.snapshot();
    if snap.canaries.contains_key(name) {
        abort_canary_locked(platform, name, actor, "rolled back by the operator").await?;
        changed(platform, name);
        return Ok(());
    }
    if snap.disabled.contains_key(name) {
        return Err(RegistryError::Conflict(format!(
            "{name} is disabled; enable a version instead of rolling back"
        )));
    }
    let state = store::state(&platform.db, name)
        .await?
        .ok_or_else(|| RegistryError::NotFound(format!("{name} is not installed")))?;
    let previous = state.previous_version.ok_or_else(|| {
        RegistryError::Conflict(format!("{name} has no earlier version to roll back to"))
    })?;
    enable_locked(
        platform,
        name,
        Some(&previous),
        None,
        &[],
        actor,
        "rollback",
    )
    .await?;
    changed(platform, name);
    Ok(())
}

/// Deletes an installed version that is neither live nor a running canary.
pub async fn delete(
    platform: &Arc<Platform>,
    name: &str,
    version: &str,
    actor: &str,
) -> Result<(), RegistryError> {
    let _guard = lock_ops(platform).await?;
    let row = store::version(&platform.db, name, version)
        .await?
        .ok_or_else(|| RegistryError::NotFound(format!("{name} {version} is not installed")))?;
    let snap = platform.registry.snapshot();
    let in_use = snap
        .plugins
        .get(name)
        .or(snap.disabled.get(name))
        .is_some_and(|p| p.version() == version)
        || snap
            .canaries
            .get(name)
            .is_some_and(|c| c.plugin.version() == version);
    if in_use {
        return Err(RegistryError::Conflict(format!(
            "{name} {version} is live; enable another version first"
        )));
    }
    store::delete_version(&platform.db, name, version, &row.sha256).await?;
    store::record(&platform.db, name, "delete", Some(version), actor, None).await?;
    Ok(())
}

/// Sets the `plugin_version_live` metric from the snapshot, and creates the live
/// plugins' event series at zero.
pub fn refresh_live_metric(platform: &Platform) {
    let snap = platform.registry.snapshot();
    let live: Vec<(String, String)> = snap
        .plugins
        .values()
        .map(|p| (p.name().to_string(), p.version().to_string()))
        .collect();
    platform.metrics.set_live(&live);
    let mut publish = Vec::new();
    let mut subscribe = Vec::new();
    for p in snap.plugins.values() {
        publish.extend(p.ctx.grants.publish.iter().cloned());
        subscribe.extend(
            p.manifest
                .subscriptions
                .iter()
                .map(|t| (p.name().to_string(), t.clone())),
        );
    }
    platform.metrics.touch_events(&publish, &subscribe);
}

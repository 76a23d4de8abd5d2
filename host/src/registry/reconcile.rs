//! Brings this replica in line with the registry in the database, after another replica
//! changed it: the live version, enabled or disabled, and a running canary. The
//! replica that made the change ran its migration and its checks; this one only loads
//! the stored bytes (from the compile cache when it has them) and swaps them in.

use std::sync::Arc;

use anyhow::{anyhow, Result};

use super::{approved_grants, build, ops, plugin_config, store, Canary, GrantCheck};
use crate::config::PluginConfig;
use crate::registry::Platform;
use crate::runtime::LoadedPlugin;
use crate::storage::PluginDb;

/// Which plugins to look at.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// One plugin another replica changed (also loads it if it failed here before).
    One(&'a str),
    /// Every plugin (a reconnection, or the periodic check); plugins that failed to
    /// load here are left to the operator.
    All,
}

/// Reconciles `scope`; returns the plugins whose serving state changed here.
pub async fn reconcile(platform: &Arc<Platform>, scope: Scope<'_>) -> Result<Vec<String>> {
    let _guard = platform.registry.ops.lock().await;
    let states = match scope {
        Scope::One(name) => store::state(&platform.db, name)
            .await?
            .into_iter()
            .collect(),
        Scope::All => store::states(&platform.db).await?,
    };
    let mut changed = Vec::new();
    for state in states {
        if matches!(scope, Scope::All)
            && platform
                .registry
                .snapshot()
                .missing
                .contains_key(&state.name)
        {
            continue;
        }
        match reconcile_one(platform, &state).await {
            Ok(true) => changed.push(state.name.clone()),
            Ok(false) => {}
            Err(e) => tracing::error!(
                plugin = %state.name,
                error = %format!("{e:#}"),
                "could not follow a registry change made by another replica"
            ),
        }
    }
    if !changed.is_empty() {
        ops::refresh_live_metric(platform);
        tracing::info!(plugins = ?changed, "followed registry changes from another replica");
    }
    Ok(changed)
}

async fn reconcile_one(platform: &Arc<Platform>, state: &store::StateRow) -> Result<bool> {
    let name = state.name.as_str();
    let pc = plugin_config(platform, name);
    let Some(want) = state.live_version.as_deref() else {
        return Ok(false); // installed, never enabled
    };
    if !pc.enabled {
        return Ok(false); // this replica's configuration keeps it out
    }
    let want_disabled = state.state == "disabled";
    let want_canary = match (&state.canary_version, state.canary_percent) {
        (Some(v), Some(p)) if !want_disabled => Some((v.as_str(), u8::try_from(p)?)),
        _ => None,
    };
    let snap = platform.registry.snapshot();
    let live_here = snap.plugins.get(name).cloned();
    let disabled_here = snap.disabled.get(name).cloned();
    let canary_here = snap.canaries.get(name).cloned();
    let current = live_here.clone().or(disabled_here);
    let same_main = current.as_ref().is_some_and(|p| p.version() == want)
        && live_here.is_some() != want_disabled;
    let same_canary = match (&canary_here, want_canary) {
        (None, None) => true,
        (Some(c), Some((v, p))) => c.plugin.version() == v && c.percent == p,
        _ => false,
    };
    if same_main && same_canary {
        return Ok(false);
    }
    let existing_db = current.as_ref().map(|p| p.ctx.db.clone());
    let main = match (&current, &canary_here) {
        (Some(p), _) if p.version() == want => p.clone(),
        (_, Some(c)) if c.plugin.version() == want => c.plugin.clone(), // promoted
        _ => Arc::new(load(platform, name, want, &pc, existing_db).await?),
    };
    let canary = match want_canary {
        None => None,
        Some((v, percent)) => {
            let plugin = match &canary_here {
                Some(c) if c.plugin.version() == v => c.plugin.clone(),
                _ => Arc::new(load(platform, name, v, &pc, Some(main.ctx.db.clone())).await?),
            };
            Some(match &canary_here {
                Some(c) if Arc::ptr_eq(&c.plugin, &plugin) && c.percent == percent => c.clone(),
                _ => Arc::new(Canary::new(plugin, percent)),
            })
        }
    };
    let mut next = (*platform.registry.snapshot()).clone();
    next.plugins.remove(name);
    next.disabled.remove(name);
    next.canaries.remove(name);
    next.missing.remove(name);
    if want_disabled {
        next.disabled.insert(name.to_string(), main);
    } else {
        next.plugins.insert(name.to_string(), main);
    }
    if let Some(c) = canary {
        next.canaries.insert(name.to_string(), c);
    }
    platform.registry.replace(next)?;
    Ok(true)
}

/// Builds `name` `version` from the registry's stored bytes.
async fn load(
    platform: &Arc<Platform>,
    name: &str,
    version: &str,
    pc: &PluginConfig,
    existing_db: Option<PluginDb>,
) -> Result<LoadedPlugin> {
    let row = store::version(&platform.db, name, version)
        .await?
        .filter(|r| r.has_bytes)
        .ok_or_else(|| anyhow!("{name} {version} has no stored bytes"))?;
    let bytes = store::component(&platform.db, &row.sha256)
        .await?
        .ok_or_else(|| anyhow!("the stored bytes of {name} {version} are gone"))?;
    let approved = approved_grants(platform, name, pc).await?;
    build(
        platform,
        Some(name),
        bytes,
        pc,
        existing_db,
        GrantCheck::Enforce(&approved),
    )
    .await
    .map_err(anyhow::Error::from)
}

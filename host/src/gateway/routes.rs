//! The gateway's route table, built from the live plugins' manifests.
//!
//! Internal routes stay out: only `services.call` reaches them. Two plugins claiming
//! the same method and path, or paths the matcher cannot tell apart, are refused when
//! the table is built, never discovered at run time.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};

use crate::runtime::bindings::wit;
use crate::runtime::LoadedPlugin;

/// Who may call a public route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Public,
    Authenticated,
    Roles(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct RouteTarget {
    pub plugin: String,
    pub method: String,
    pub pattern: String,
    pub access: Access,
}

#[derive(Default)]
pub struct RouteTable {
    router: matchit::Router<usize>,
    /// Per path pattern, its methods.
    entries: Vec<Vec<RouteTarget>>,
}

pub enum Match<'a> {
    Found(&'a RouteTarget, Vec<(String, String)>),
    MethodNotAllowed(Vec<String>),
    NotFound,
}

impl RouteTable {
    pub fn build(plugins: &[Arc<LoadedPlugin>]) -> Result<Self> {
        let mut by_path: BTreeMap<String, Vec<RouteTarget>> = BTreeMap::new();
        for p in plugins {
            for r in &p.manifest.routes {
                let access = match &r.access {
                    wit::Access::Internal => continue,
                    wit::Access::Public => Access::Public,
                    wit::Access::Authenticated => Access::Authenticated,
                    wit::Access::Roles(roles) => Access::Roles(roles.clone()),
                };
                let targets = by_path.entry(r.path.clone()).or_default();
                if let Some(other) = targets.iter().find(|t| t.method == r.method) {
                    bail!(
                        "route {} {} is claimed by both {} and {}",
                        r.method,
                        r.path,
                        other.plugin,
                        p.name()
                    );
                }
                targets.push(RouteTarget {
                    plugin: p.name().to_string(),
                    method: r.method.clone(),
                    pattern: r.path.clone(),
                    access,
                });
            }
        }
        let mut table = RouteTable::default();
        for (path, targets) in by_path {
            let owners: Vec<&str> = targets.iter().map(|t| t.plugin.as_str()).collect();
            table
                .router
                .insert(path.clone(), table.entries.len())
                .map_err(|e| {
                    anyhow!(
                        "route path {path} (of {}) conflicts with another route: {e}",
                        owners.join(", ")
                    )
                })?;
            table.entries.push(targets);
        }
        Ok(table)
    }

    pub fn find(&self, method: &str, path: &str) -> Match<'_> {
        let Ok(m) = self.router.at(path) else {
            return Match::NotFound;
        };
        let targets = &self.entries[*m.value];
        match targets.iter().find(|t| t.method == method) {
            Some(t) => Match::Found(
                t,
                m.params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            None => Match::MethodNotAllowed(targets.iter().map(|t| t.method.clone()).collect()),
        }
    }

    /// Every public route, for listings.
    pub fn all(&self) -> impl Iterator<Item = &RouteTarget> {
        self.entries.iter().flatten()
    }
}

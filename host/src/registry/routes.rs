//! The gateway's route table, built from the live plugins' manifests.
//!
//! Internal routes stay out: only `services.call` reaches them. Two plugins claiming
//! the same method and path, or paths the matcher cannot tell apart, are refused when
//! the table is built, never discovered at run time.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use anyhow::{anyhow, bail, Result};

use crate::bindings::wit;
use crate::runtime::LoadedPlugin;

/// Who may call a public route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Public,
    Authenticated,
    Roles(Vec<String>),
}

/// Why a caller may not use a route.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The route needs a caller and there is none (401).
    NeedsCaller,
    /// The caller's role is not one of these (403).
    WrongRole(Vec<String>),
}

impl Access {
    /// The one access rule, for the gateway and for service calls alike.
    pub fn admits(&self, caller: Option<&wit::Identity>) -> Result<(), Refusal> {
        match (self, caller) {
            (Access::Public, _) => Ok(()),
            (_, None) => Err(Refusal::NeedsCaller),
            (Access::Roles(roles), Some(c)) if !roles.contains(&c.role) => {
                Err(Refusal::WrongRole(roles.clone()))
            }
            _ => Ok(()),
        }
    }

    /// [`Access::admits`] for a manifest's rule: internal routes admit any plugin.
    pub fn admits_call(a: &wit::Access, caller: Option<&wit::Identity>) -> Result<(), Refusal> {
        match Access::exposed(a) {
            None => Ok(()),
            Some(access) => access.admits(caller),
        }
    }

    /// A route's access as the gateway enforces it; None for an internal route (never
    /// exposed).
    pub fn exposed(a: &wit::Access) -> Option<Self> {
        match a {
            wit::Access::Internal => None,
            wit::Access::Public => Some(Access::Public),
            wit::Access::Authenticated => Some(Access::Authenticated),
            wit::Access::Roles(roles) => Some(Access::Roles(roles.clone())),
        }
    }
}

/// What a route's request body may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    /// JSON (`application/json` or `+json`), the default.
    Json,
    /// Raw bytes: the route's request schema is `{"type": "string", "format":
    /// "binary"}` (OpenAPI's spelling of a file upload). `contentMediaType` may list the
    /// accepted types, comma-separated; none listed means any.
    Raw(Vec<String>),
}

/// Whether a schema (already checked to be JSON at install) is OpenAPI's spelling of a
/// file: `{"type": "string", "format": "binary"}`; the parsed schema when it is.
fn binary_schema(schema: Option<&str>) -> Option<serde_json::Value> {
    let schema = schema.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())?;
    (schema["type"] == "string" && schema["format"] == "binary").then_some(schema)
}

impl BodyKind {
    /// Reads a route's request schema.
    pub fn of(request_schema: Option<&str>) -> Self {
        let Some(schema) = binary_schema(request_schema) else {
            return BodyKind::Json;
        };
        let types = schema["contentMediaType"]
            .as_str()
            .unwrap_or_default()
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        BodyKind::Raw(types)
    }
}

pub struct RouteTarget {
    pub plugin: String,
    pub method: String,
    pub pattern: String,
    pub access: Access,
    pub body: BodyKind,
    /// A `GET` that answers a file (its response schema is binary): counted against
    /// the rate limit's budget for files.
    pub file: bool,
    /// The route's metric handles, resolved by its first request.
    pub metrics: OnceLock<crate::metrics::RouteMetrics>,
}

#[derive(Default)]
pub struct RouteTable {
    router: matchit::Router<usize>,
    /// Per path pattern, its methods.
    entries: Vec<Vec<Arc<RouteTarget>>>,
}

pub enum Match<'a> {
    Found(&'a Arc<RouteTarget>, Vec<(String, String)>),
    MethodNotAllowed(Vec<String>),
    NotFound,
}

impl RouteTable {
    pub fn build(plugins: &[Arc<LoadedPlugin>]) -> Result<Self> {
        let manifests: Vec<(&str, &[wit::Route])> = plugins
            .iter()
            .map(|p| (p.name(), p.manifest.routes.as_slice()))
            .collect();
        Self::from_routes(&manifests)
    }

    /// Builds the table from each plugin's name and routes.
    pub fn from_routes(plugins: &[(&str, &[wit::Route])]) -> Result<Self> {
        let mut by_path: BTreeMap<String, Vec<Arc<RouteTarget>>> = BTreeMap::new();
        for (name, routes) in plugins {
            for r in routes.iter() {
                let Some(access) = Access::exposed(&r.access) else {
                    continue;
                };
                let targets = by_path.entry(r.path.clone()).or_default();
                if let Some(other) = targets.iter().find(|t| t.method == r.method) {
                    bail!(
                        "route {} {} is claimed by both {} and {}",
                        r.method,
                        r.path,
                        other.plugin,
                        name
                    );
                }
                targets.push(Arc::new(RouteTarget {
                    plugin: name.to_string(),
                    method: r.method.clone(),
                    pattern: r.path.clone(),
                    access,
                    body: BodyKind::of(r.request_schema.as_deref()),
                    file: r.method.eq_ignore_ascii_case("GET")
                        && binary_schema(r.response_schema.as_deref()).is_some(),
                    metrics: OnceLock::new(),
                }));
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
        self.entries.iter().flatten().map(|t| &**t)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_binary_request_schema_makes_a_raw_body_route() {
        use super::BodyKind;
        assert_eq!(BodyKind::of(None), BodyKind::Json);
        assert_eq!(BodyKind::of(Some(r#"{"type":"object"}"#)), BodyKind::Json);
        assert_eq!(BodyKind::of(Some(r#"{"type":"string"}"#)), BodyKind::Json);
        assert_eq!(
            BodyKind::of(Some(r#"{"type":"string","format":"binary"}"#)),
            BodyKind::Raw(vec![])
        );
        assert_eq!(
            BodyKind::of(Some(
                r#"{"type":"string","format":"binary","contentMediaType":"image/png, IMAGE/jpeg"}"#
            )),
            BodyKind::Raw(vec!["image/png".into(), "image/jpeg".into()])
        );
    }

    use super::*;

    fn route(method: &str, path: &str, access: wit::Access) -> wit::Route {
        wit::Route {
            method: method.into(),
            path: path.into(),
            access,
            summary: None,
            request_schema: None,
            response_schema: None,
        }
    }

    #[test]
    fn matches_params_methods_and_hides_internal_routes() {
        let catalog = vec![
            route("GET", "/api/v1/products/{id}", wit::Access::Public),
            route(
                "PUT",
                "/api/v1/products/{id}",
                wit::Access::Roles(vec!["admin".into()]),
            ),
            route("POST", "/internal/lookup", wit::Access::Internal),
        ];
        let t = RouteTable::from_routes(&[("catalog", &catalog)]).unwrap();
        match t.find("GET", "/api/v1/products/p1") {
            Match::Found(target, params) => {
                assert_eq!(target.plugin, "catalog");
                assert_eq!(params, vec![("id".to_string(), "p1".to_string())]);
            }
            _ => panic!("expected a match"),
        }
        match t.find("DELETE", "/api/v1/products/p1") {
            Match::MethodNotAllowed(allowed) => assert_eq!(allowed, vec!["GET", "PUT"]),
            _ => panic!("expected 405"),
        }
        assert!(matches!(
            t.find("POST", "/internal/lookup"),
            Match::NotFound
        ));
    }

    #[test]
    fn a_route_claimed_twice_is_refused_with_both_names() {
        let a = vec![route("GET", "/api/v1/cart", wit::Access::Public)];
        let b = vec![route("GET", "/api/v1/cart", wit::Access::Public)];
        let err = RouteTable::from_routes(&[("cart", &a), ("basket", &b)])
            .err()
            .expect("a collision");
        let msg = err.to_string();
        assert!(
            msg.contains("cart") && msg.contains("basket") && msg.contains("GET /api/v1/cart"),
            "{msg}"
        );
        // Same path, other methods: fine.
        let c = vec![route("POST", "/api/v1/cart", wit::Access::Public)];
        assert!(RouteTable::from_routes(&[("cart", &a), ("basket", &c)]).is_ok());
    }
}

//! `GET /openapi.json`: an OpenAPI 3.1 document assembled from the live plugins'
//! manifests — their public routes, the roles as security requirements, and the JSON
//! schemas the plugins declare — plus the host's own realtime stream. Internal routes
//! never appear; a swap changes it.

use serde_json::{json, Map, Value};

use crate::bindings::wit;
use crate::registry::Snapshot;

/// The document for the plugins of `snap`.
pub fn document(snap: &Snapshot) -> Value {
    let mut paths = Map::new();
    let mut plugins: Vec<_> = snap.plugins.values().collect();
    plugins.sort_by(|a, b| a.name().cmp(b.name()));
    for plugin in plugins {
        for route in &plugin.manifest.routes {
            if matches!(route.access, wit::Access::Internal) {
                continue;
            }
            let item = paths
                .entry(route.path.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(ops) = item {
                ops.insert(
                    route.method.to_ascii_lowercase(),
                    operation(plugin.name(), route),
                );
            }
        }
    }
    paths.insert(super::realtime::PATH.to_string(), realtime_path());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Kirana API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Served by the plugins live on this host; generated from their manifests.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {"Error": error_schema()},
        },
    })
}

fn operation(plugin: &str, route: &wit::Route) -> Value {
    let mut op = Map::new();
    op.insert("tags".into(), json!([plugin]));
    op.insert(
        "operationId".into(),
        json!(format!(
            "{plugin}_{}_{}",
            route.method.to_ascii_lowercase(),
            slug(&route.path)
        )),
    );
    if let Some(s) = &route.summary {
        op.insert("summary".into(), json!(s));
    }
    let params: Vec<Value> = path_params(&route.path)
        .into_iter()
        .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    match &route.access {
        wit::Access::Public | wit::Access::Internal => {
            op.insert("security".into(), json!([]));
        }
        wit::Access::Authenticated => {
            op.insert("security".into(), json!([{"bearer": []}]));
        }
        wit::Access::Roles(roles) => {
            op.insert("security".into(), json!([{"bearer": []}]));
            op.insert("x-roles".into(), json!(roles));
        }
    }
    if let Some(schema) = parse(&route.request_schema) {
        let content = content(schema, route.request_schema.as_deref());
        op.insert(
            "requestBody".into(),
            json!({"required": true, "content": content}),
        );
    }
    let success = match parse(&route.response_schema) {
        Some(schema) => json!({
            "description": "Success",
            "content": content(schema, route.response_schema.as_deref()),
        }),
        None => json!({"description": "Success"}),
    };
    op.insert(
        "responses".into(),
        json!({
            "2XX": success,
            "default": {
                "description": "An error in the API error shape",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            }
        }),
    );
    Value::Object(op)
}

/// The host's own `GET /api/v1/realtime` (Server-Sent Events): no plugin declares it.
fn realtime_path() -> Value {
    json!({"get": {
        "tags": ["realtime"],
        "operationId": "realtime_get",
        "summary": "The caller's live events as Server-Sent Events: `ready`, then one `event: <topic>` with JSON `data` per push",
        "security": [{"bearer": []}],
        "parameters": [{
            "name": "access_token", "in": "query", "required": false,
            "description": "The access token, for browsers' EventSource (instead of Authorization)",
            "schema": {"type": "string"}
        }],
        "responses": {
            "200": {
                "description": "An endless event stream",
                "content": {"text/event-stream": {"schema": {"type": "string"}}}
            },
            "default": {
                "description": "An error in the API error shape (401 before any stream starts)",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            }
        }
    }})
}

/// A body's `content` map: JSON, or for a binary schema (a file) each media type it
/// lists (`application/octet-stream` when none).
fn content(schema: serde_json::Value, raw: Option<&str>) -> serde_json::Value {
    match crate::registry::routes::BodyKind::of(raw) {
        crate::registry::routes::BodyKind::Json => json!({"application/json": {"schema": schema}}),
        crate::registry::routes::BodyKind::Raw(types) => {
            let types = if types.is_empty() {
                vec!["application/octet-stream".to_string()]
            } else {
                types
            };
            let bytes = json!({"schema": {"type": "string", "format": "binary"}});
            serde_json::Value::Object(types.into_iter().map(|t| (t, bytes.clone())).collect())
        }
    }
}

fn parse(schema: &Option<String>) -> Option<Value> {
    schema.as_deref().and_then(|s| serde_json::from_str(s).ok())
}

fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn slug(path: &str) -> String {
    path.trim_start_matches("/api/v1/")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .trim_matches('_')
        .to_string()
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error", "request_id"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "object"}
                }
            },
            "request_id": {"type": "string"}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_params_and_ids() {
        assert_eq!(path_params("/api/v1/orders/{id}/cancel"), vec!["id"]);
        assert_eq!(slug("/api/v1/orders/{id}/cancel"), "orders__id__cancel");
    }
}

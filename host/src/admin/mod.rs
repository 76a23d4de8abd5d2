//! The operator API under `/admin` (used by `kirana plugins ...`): list and inspect
//! plugins, upload components, enable (or canary), promote, disable, roll back and
//! delete versions, look at and retry dead-lettered events, and see how outgoing mail
//! is faring (attempts and the last error, which the shop's admin outbox leaves out).
//!
//! Every route needs `Authorization: Bearer` with the operator token from
//! `[admin] operator_token`; a shop admin's access token is 403. Errors use the API
//! error shape.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;

use crate::core::grants::Grants;
use crate::http::error::{error, invalid_field};
use crate::http::RequestId;
use crate::registry::Platform;
use crate::registry::{ops, route_json, store, RegistryError};
use crate::storage::{now_ms, rfc3339_ms};

/// The operator API's routes (nested under `/admin` by the gateway).
pub fn router(platform: Arc<Platform>) -> Router {
    let upload_limit = platform.config.admin.max_upload_mb.saturating_mul(1 << 20);
    let auth = axum::middleware::from_fn_with_state(platform.clone(), require_operator);
    Router::new()
        .route(
            "/plugins",
            get(list)
                .post(upload)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/plugins/{name}", get(inspect))
        .route("/plugins/{name}/enable", post(enable))
        .route("/plugins/{name}/promote", post(promote))
        .route("/plugins/{name}/disable", post(disable))
        .route("/plugins/{name}/rollback", post(rollback))
        .route("/plugins/{name}/versions/{version}", delete(delete_version))
        .route("/events", get(events))
        .route("/events/{id}/retry", post(retry_event))
        .route("/mail", get(mail))
        // Checked before any handler reads a body (uploads are large).
        .route_layer(auth)
        .method_not_allowed_fallback(wrong_method)
        .fallback(unknown)
        .with_state(platform)
}

async fn unknown(
    Extension(RequestId(rid)): Extension<RequestId>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no operator route {method} {}", uri.path()),
        &rid,
    )
}

async fn wrong_method(
    Extension(RequestId(rid)): Extension<RequestId>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
        &rid,
    )
}

/// Who called an operator route (`operator`: the operator token is the only credential).
#[derive(Clone)]
struct Actor(String);

/// Lets only the operator token through, before the handler runs.
async fn require_operator(
    State(p): State<Arc<Platform>>,
    Extension(RequestId(rid)): Extension<RequestId>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match authorize(&p, req.headers(), &rid).await {
        Ok(actor) => {
            req.extensions_mut().insert(Actor(actor));
            next.run(req).await
        }
        Err(resp) => resp,
    }
}

/// The operator token opens the operator API; a shop user's valid token (even an
/// admin's) is 403, since installing and enabling code is not a shop role.
async fn authorize(p: &Platform, headers: &HeaderMap, rid: &str) -> Result<String, Response> {
    let token = crate::http::bearer(headers).ok_or_else(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the operator API needs the operator token as a bearer token ([admin] operator_token, KIRANA_ADMIN_OPERATOR_TOKEN)",
            rid,
        )
    })?;
    let operator = &p.config.admin.operator_token;
    if !operator.is_empty() && tokens_match(operator, token) {
        return Ok("operator".into());
    }
    match p.identity.verify(token).await {
        Ok(_) => Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the operator API needs the operator token; shop accounts (admins included) cannot change plugins",
            rid,
        )),
        Err(_) => Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "not the operator token",
            rid,
        )),
    }
}

/// Compares two tokens in time that depends on neither their contents nor their
/// lengths: both are hashed to 32 bytes first, then compared without early exit.
fn tokens_match(expected: &str, given: &str) -> bool {
    use sha2::{Digest, Sha256};
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(given.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn registry_error(e: RegistryError, rid: &str) -> Response {
    match e {
        RegistryError::Invalid(m) => error(StatusCode::BAD_REQUEST, "validation_failed", m, rid),
        RegistryError::Conflict(m) => error(StatusCode::CONFLICT, "conflict", m, rid),
        RegistryError::NotFound(m) => error(StatusCode::NOT_FOUND, "not_found", m, rid),
        RegistryError::Internal(e) => {
            tracing::error!(request_id = %rid, error = %format!("{e:#}"), "operator action failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the operator action failed; see the host's log",
                rid,
            )
        }
    }
}

fn internal(e: anyhow::Error, rid: &str) -> Response {
    registry_error(RegistryError::Internal(e), rid)
}

/// One plugin as the operator API shows it; `None` when the host knows nothing of it.
async fn entry(p: &Arc<Platform>, name: &str) -> anyhow::Result<Option<Value>> {
    let versions = store::all_versions(&p.db).await?;
    Ok(entry_of(p, name, &versions))
}

/// [`entry`] from already read version rows (of every plugin).
fn entry_of(p: &Platform, name: &str, all_versions: &[store::VersionRow]) -> Option<Value> {
    let snap = p.registry.snapshot();
    let versions: Vec<&store::VersionRow> =
        all_versions.iter().filter(|v| v.name == name).collect();
    let live = snap.plugins.get(name);
    let disabled = snap.disabled.get(name);
    let loaded = live.or(disabled);
    if loaded.is_none() && versions.is_empty() {
        return None;
    }
    let state = match (live, disabled) {
        (Some(_), _) => "live",
        (None, Some(_)) => "disabled",
        (None, None) => "installed",
    };
    let (routes, subscriptions, grants) = match loaded {
        Some(l) => (
            l.manifest.routes.iter().map(route_json).collect::<Vec<_>>(),
            l.manifest.subscriptions.clone(),
            l.ctx.grants.as_list(),
        ),
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    let canary = snap.canaries.get(name).map(|c| {
        let (requests, errors) = c.candidate.get();
        let (stable_requests, stable_errors) = c.stable.get();
        json!({
            "version": c.plugin.version(), "percent": c.percent,
            "started_at": rfc3339_ms(c.started_at_ms),
            "requests": requests, "errors": errors,
            "stable_requests": stable_requests, "stable_errors": stable_errors,
        })
    });
    Some(json!({
        "name": name,
        "live_version": loaded.map(|l| l.version()),
        "state": state,
        "versions": versions,
        "routes": routes,
        "subscriptions": subscriptions,
        "grants": grants,
        "stats": p.metrics.plugin_stats.summary(name),
        "canary": canary,
    }))
}

async fn list(
    State(p): State<Arc<Platform>>,
    Extension(RequestId(rid)): Extension<RequestId>,
) -> Response {
    let snap = p.registry.snapshot();
    let mut names: Vec<String> = snap
        .plugins
        .keys()
        .chain(snap.disabled.keys())
        .cloned()
        .collect();
    let versions = match store::all_versions(&p.db).await {
        Ok(v) => v,
        Err(e) => return internal(e, &rid),
    };
    names.extend(versions.iter().map(|v| v.name.clone()));
    names.sort();
    names.dedup();
    let items: Vec<Value> = names
        .iter()
        .filter_map(|name| entry_of(&p, name, &versions))
        .collect();
    Json(json!({ "items": items })).into_response()
}

async fn inspect(
    State(p): State<Arc<Platform>>,
    Extension(RequestId(rid)): Extension<RequestId>,
    Path(name): Path<String>,
) -> Response {
    answer_entry(&p, &name, &rid, true).await
}

async fn answer_entry(p: &Arc<Platform>, name: &str, rid: &str, with_history: bool) -> Response {
    match entry(p, name).await {
        Ok(Some(mut e)) => {
            if with_history {
                match store::history(&p.db, name, 100).await {
                    Ok(h) => e["history"] = json!(h),
                    Err(err) => return internal(err, rid),
                }
            }
            Json(e).into_response()
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no plugin named {name}"),
            rid,
        ),
        Err(e) => internal(e, rid),
    }
}

/// The media type of a plugin bundle upload (`kirana plugins install --assets`).
pub const BUNDLE_MEDIA_TYPE: &str = "application/x-tar";

async fn upload(
    State(p): State<Arc<Platform>>,
    Extension(RequestId(rid)): Extension<RequestId>,
    Extension(Actor(actor)): Extension<Actor>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    // A bare component, or a bundle (the component and its assets as one tar).
    if essence != "application/wasm" && essence != BUNDLE_MEDIA_TYPE {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("upload a component with Content-Type: application/wasm, or a bundle with Content-Type: {BUNDLE_MEDIA_TYPE}"),
            &rid,
        );
    }
    if body.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "the body is empty; send the component's bytes",
            &rid,
        );
    }
    match ops::install(&p, body.to_vec(), &actor).await {
        Ok(i) => {
            let status = if i.new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (
                status,
                Json(json!({
                    "name": i.name, "version": i.version, "sha256": i.sha256,
                    "requested_grants": i.requested_grants,
                    "unapproved_grants": i.unapproved_grants,
                })),
            )
                .into_response()
        }
        Err(e) => registry_error(e, &rid),
    }
}

/// Why an enable body was refused.
enum BodyError {
    Json(String),
    Field(&'static str, String),
}

/// An enable request: `{version?, canary_percent?, grants?}`.
#[derive(Default)]
struct EnableBody {
    version: Option<String>,
    canary_percent: Option<u8>,
    /// Grants the operator approves with this enable.
    grants: Vec<String>,
}

/// A bad shape is `invalid_json`, a bad field `validation_failed` naming it.
fn enable_body(body: &[u8]) -> Result<EnableBody, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(EnableBody::default());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| BodyError::Json(format!("the body is not JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(BodyError::Json(
            "expected an object {\"version\"?, \"canary_percent\"?, \"grants\"?}".into(),
        ));
    };
    let version = match obj.get("version") {
        None | Some(Value::Null) => None,
        Some(Value::String(v)) if !v.trim().is_empty() => Some(v.trim().to_string()),
        Some(_) => {
            return Err(BodyError::Field(
                "version",
                "must be a version string like 1.2.0".into(),
            ))
        }
    };
    let canary_percent = match obj.get("canary_percent") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().filter(|p| (1..=99).contains(p)) {
            Some(p) => u8::try_from(p).ok(),
            None => {
                return Err(BodyError::Field(
                    "canary_percent",
                    "must be an integer from 1 to 99".into(),
                ))
            }
        },
    };
    let grants = match obj.get("grants") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.len() <= 64 => {
            let mut out = Vec::new();
            for item in items {
                let Some(g) = item.as_str().map(str::trim) else {
                    return Err(BodyError::Field(
                        "grants",
                        "must be a list of strings".into(),
                    ));
                };
                Grants::check_spelling(g)
                    .map_err(|e| BodyError::Field("grants", format!("{e:#}")))?;
                out.push(g.to_string());
            }
            out
        }
        Some(_) => {
            return Err(BodyError::Field(
                "grants",
                "must be a list of at most 64 grants like [\"kv\", \"publish:order.created\"]"
                    .into(),
            ))
        }
    };
    Ok(EnableBody {
        version,
        canary_percent,
        grants,
    })
}

async fn enable(
    State(p): State<Arc<Platform>>,
    Extension(RequestId(rid)): Extension<RequestId>,
    Path(name): Path<String>,
    Extension(Actor(actor)): Extension<Actor>,
    body: Bytes,
) -> Response {
    let b = match enable_body(&body) {
        Ok(b) => b,
        Err(BodyError::Json(m)) => return error(StatusCode::BAD_REQUEST, "invalid_json", m, &rid),
        Err(BodyError::Field(field, m)) => return invalid_field(field, &m, &rid),
    };
    match ops::enable(
        &p,
        &name,
        b.version.as_deref(),
        b.canary_percent,
        &b.grants,
        &actor,
    )
    .await
    {
        Ok(()) => answer_entry(&p, &name, &rid, false).await,
        Err(e) => registry_error(e, &rid),
    }
}

macro_rules! plain_action {
    ($fn_name:ident, $op:path) => {
        async fn $fn_name(
            State(p): State<Arc<Platform>>,
            Extension(RequestId(rid)): Extension<RequestId>,
            Path(name): Path<String>,
            Extension(Actor(actor)): Extension<Actor>,
        ) -> Response {
            match $op(&p, &name, &actor).await {
                Ok(()) => answer_entry(&p, &name, &rid, false).await,
                Err(e) => registry_error(e, &rid),
            }
        }
    };
}

plain_action!(promote, ops::promote);
plain_action!(disable, ops::disable);
plain_action!(rollback, ops::rollback);

async fn delete_version(
    State(p): State<Arc<Platform>>,
    Extension(RequestId(rid)): Extension<RequestId>,
    Path((name, version)): Path<(String, String)>,
    Extension(Actor(actor)): Extension<Actor>,
) -> Response {
    match ops::delete(&p, &name, &version, &actor).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => registry_error(e, &rid),
    }
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    status: Option<String>,
}

/// `GET /admin/events?status=dead|pending|done` (default dead): event deliveries.
async fn events(
    State(p): State<Arc<Platform>>,
    Extension(RequestId(rid)): Extension<RequestId>,
    Query(q): Query<EventsQuery>,
) -> Response {
    let status = match status_filter(q.status, &["dead", "pending", "done"], &rid) {
        Ok(s) => s,
        Err(refused) => return *refused,
    };
    let rows = sqlx::query(
        "SELECT d.event_id, e.topic, e.source, d.subscriber, d.attempts, d.last_error, \
         e.created_at, d.updated_at, e.source_version, d.next_attempt_at, d.locked_until, \
         e.payload FROM deliveries d JOIN events e ON e.id = d.event_id \
         WHERE d.status = $1 ORDER BY d.updated_at DESC LIMIT 500",
    )
    .bind(&status)
    .fetch_all(&p.db.pool)
    .await;
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return internal(e.into(), &rid),
    };
    let now = now_ms();
    let items: Result<Vec<Value>, sqlx::Error> = rows
        .iter()
        .map(|r| {
            Ok(json!({
                "id": r.try_get::<String, _>(0)?,
                "topic": r.try_get::<String, _>(1)?,
                "source": r.try_get::<String, _>(2)?,
                "subscriber": r.try_get::<String, _>(3)?,
                "attempts": r.try_get::<i64, _>(4)?,
                "last_error": r.try_get::<Option<String>, _>(5)?,
                "created_at": rfc3339_ms(r.try_get(6)?),
                "updated_at": rfc3339_ms(r.try_get(7)?),
                "source_version": r.try_get::<Option<String>, _>(8)?,
                // When a pending delivery runs next (a delayed event, a retry's backoff).
                "next_attempt_at": rfc3339_ms(r.try_get(9)?),
                // A dispatcher is running it now.
                "in_progress": r.try_get::<i64, _>(10)? > now,
                "status": status,
                // What the event says, so an operator can judge a dead one before a
                // retry (stored as JSON text; shown as text if it ever is not JSON).
                "payload": payload_json(r.try_get::<String, _>(11)?),
            }))
        })
        .collect();
    items_page(items, &rid)
}

/// The `status` filter of a listing: one of `allowed` (the first when absent), else 400.
fn status_filter(
    given: Option<String>,
    allowed: &[&str],
    rid: &str,
) -> Result<String, Box<Response>> {
    let status = given.unwrap_or_else(|| allowed[0].to_string());
    if allowed.contains(&status.as_str()) {
        return Ok(status);
    }
    let (last, rest) = allowed.split_last().unwrap_or((&"", &[]));
    Err(Box::new(error(
        StatusCode::BAD_REQUEST,
        "validation_failed",
        format!("status must be {} or {last}", rest.join(", ")),
        rid,
    )))
}

/// `{"items": [...]}`, or 500 when a row could not be read.
fn items_page(items: Result<Vec<Value>, sqlx::Error>, rid: &str) -> Response {
    match items {
        Ok(items) => Json(json!({ "items": items })).into_response(),
        Err(e) => internal(e.into(), rid),
    }
}

/// An event's stored payload as JSON (the bus stores JSON text).
fn payload_json(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// `POST /admin/events/{id}/retry`: its dead deliveries are tried again from attempt 1.
async fn retry_event(
    State(p): State<Arc<Platform>>,
    Extension(RequestId(rid)): Extension<RequestId>,
    Path(id): Path<String>,
) -> Response {
    let now = now_ms();
    let changed = sqlx::query(
        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, \
         locked_until = 0, updated_at = $1 WHERE event_id = $2 AND status = 'dead'",
    )
    .bind(now)
    .bind(&id)
    .execute(&p.db.pool)
    .await;
    match changed {
        Ok(r) if r.rows_affected() > 0 => {
            p.events.wake();
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(_) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no dead delivery of event {id}"),
            &rid,
        ),
        Err(e) => internal(e.into(), &rid),
    }
}

#[derive(Debug, Deserialize)]
struct MailQuery {
    status: Option<String>,
}

/// `GET /admin/mail?status=pending|failed|sent|recorded` (default pending): outgoing
/// messages with how their delivery went. Bodies are left out: they may hold one-time
/// codes and reset tokens, and an operator judging delivery needs only the envelope.
async fn mail(
    State(p): State<Arc<Platform>>,
    Extension(RequestId(rid)): Extension<RequestId>,
    Query(q): Query<MailQuery>,
) -> Response {
    let status = match status_filter(q.status, &["pending", "failed", "sent", "recorded"], &rid) {
        Ok(s) => s,
        Err(refused) => return *refused,
    };
    let rows = sqlx::query(
        "SELECT id, plugin, channel, recipient, subject, CAST(attempts AS BIGINT), \
         last_error, created_at, next_attempt_at, sent_at FROM mail_outbox \
         WHERE status = $1 ORDER BY created_at DESC, id DESC LIMIT 500",
    )
    .bind(&status)
    .fetch_all(&p.db.pool)
    .await;
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return internal(e.into(), &rid),
    };
    let items: Result<Vec<Value>, sqlx::Error> = rows
        .iter()
        .map(|r| {
            let pending = status == "pending";
            Ok(json!({
                "id": r.try_get::<String, _>(0)?,
                "plugin": r.try_get::<String, _>(1)?,
                "channel": r.try_get::<String, _>(2)?,
                "to": r.try_get::<String, _>(3)?,
                "subject": r.try_get::<String, _>(4)?,
                "status": status,
                "attempts": r.try_get::<i64, _>(5)?,
                "last_error": r.try_get::<Option<String>, _>(6)?,
                "created_at": rfc3339_ms(r.try_get(7)?),
                // When a pending message is tried next; null once it is settled.
                "next_attempt_at": pending
                    .then(|| r.try_get::<i64, _>(8).map(rfc3339_ms))
                    .transpose()?,
                "sent_at": r.try_get::<Option<i64>, _>(9)?.map(rfc3339_ms),
            }))
        })
        .collect();
    items_page(items, &rid)
}

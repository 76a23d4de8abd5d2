//! The front door: every HTTP request is given an id, matched against the live route
//! table, authenticated and authorised (before any wasm runs), size- and type-checked,
//! and handed to its plugin; whatever fails answers in the API error shape.

pub mod openapi;
pub mod rate_limit;
pub mod realtime;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::json;

use crate::bindings::wit;
use crate::core::{Browser, CallCtx, InvokeError};
use crate::http::error::error;
use crate::http::{bearer, close_after_unread_body, request_id, security_headers, RequestId};
use crate::registry::invoke::HandleError;
use crate::registry::routes::{Access, Match, Refusal};
use crate::registry::Platform;
use rate_limit::{Decision, RateLimiter};

/// What the gateway's handlers share.
pub struct Gateway {
    pub platform: Arc<Platform>,
    pub limiter: Arc<RateLimiter>,
}

/// Builds the host's axum router, with `admin` (the operator API) under `/admin`
/// behind its own rate limit, and `console` (the operator console's own routes,
/// `/console...`) beside it, served by the host whatever the plugins do.
pub fn router(
    platform: Arc<Platform>,
    limiter: Arc<RateLimiter>,
    admin: Router,
    console: Router,
) -> Router {
    let cors = cors_layer(&platform.config.cors);
    let app = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_document))
        .nest_service(
            "/admin",
            admin.layer(middleware::from_fn_with_state(limiter.clone(), limit_admin)),
        )
        .fallback(dispatch)
        .with_state(Arc::new(Gateway { platform, limiter }))
        .merge(console)
        .layer(middleware::from_fn(request_id))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(close_after_unread_body));
    match cors {
        Some(c) => app.layer(c),
        None => app,
    }
}

/// CORS from configuration; `None` (no CORS headers) when no origin is allowed.
/// Preflights are answered here, before rate limits and routing.
fn cors_layer(c: &crate::config::CorsConfig) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if c.allowed_origins.is_empty() {
        return None;
    }
    let origin = if c.allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            c.allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    let methods: Vec<axum::http::Method> = c
        .allowed_methods
        .iter()
        .filter_map(|m| m.parse().ok())
        .collect();
    let headers: Vec<HeaderName> = c
        .allowed_headers
        .iter()
        .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
        .collect();
    let exposed = [
        "x-request-id",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "retry-after",
    ]
    .map(HeaderName::from_static);
    Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods(methods)
            .allow_headers(headers)
            .expose_headers(exposed)
            .allow_credentials(c.allow_credentials)
            .max_age(std::time::Duration::from_secs(c.max_age_secs)),
    )
}

/// Adds the `X-RateLimit-*` headers of `d` to `resp`.
fn rate_headers(resp: &mut Response, d: &Decision) {
    let h = resp.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(d.reset_secs));
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// The OpenAPI 3.1 document of every live public route.
async fn openapi_document(State(g): State<Arc<Gateway>>) -> Json<serde_json::Value> {
    Json(openapi::document(&g.platform.registry.snapshot()))
}

/// The host's metrics: OpenMetrics when the scraper accepts it (Prometheus does),
/// else the classic Prometheus text format.
async fn metrics(State(g): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let (body, content_type) = if openmetrics {
        (
            g.platform.metrics.render(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else {
        (
            g.platform.metrics.render_prometheus_text(),
            "text/plain; version=0.0.4; charset=utf-8",
        )
    };
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// 200 when the host database answers and every enabled plugin is loaded (`degraded`
/// when a shared backend such as Redis is down: the replica still serves).
async fn ready(State(g): State<Arc<Gateway>>) -> Response {
    let p = &g.platform;
    let mut reasons = Vec::new();
    if let Err(e) = sqlx::query("SELECT 1").execute(&p.db.pool).await {
        reasons.push(format!("host database: {e}"));
    }
    let snap = p.registry.snapshot();
    // Live and operator-disabled plugins, and configured ones that failed to load.
    let mut names: Vec<&String> = snap
        .plugins
        .keys()
        .chain(snap.disabled.keys())
        .chain(p.config.plugins.keys())
        .collect();
    names.sort();
    names.dedup();
    let mut plugins = Vec::new();
    for name in names {
        let configured = p.config.plugins.get(name);
        let (state, loaded) = match (snap.plugins.get(name), snap.disabled.get(name)) {
            (Some(l), _) => ("live", Some(l)),
            (None, Some(l)) => ("disabled", Some(l)),
            (None, None) => match configured {
                Some(pc) if !pc.enabled => ("disabled", None),
                Some(pc) if !pc.file.as_os_str().is_empty() => {
                    reasons.push(format!("plugin {name} is not loaded (see the log)"));
                    ("missing", None)
                }
                _ => continue, // only grants configured; nothing installed
            },
        };
        let version = loaded.map(|l| l.version().to_string());
        plugins.push(json!({"name": name, "version": version, "state": state}));
    }
    let open_circuits = p.runtime.caps.services.breakers.open();
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // A shared backend that is down degrades the replica without taking it out of the
    // load balancer: every replica would be out at once.
    let degraded: Vec<String> = p.cluster.degraded().into_iter().collect();
    let label = match (reasons.is_empty(), degraded.is_empty()) {
        (false, _) => "unavailable",
        (true, false) => "degraded",
        (true, true) => "ready",
    };
    let body = json!({
        "status": label,
        "reasons": reasons,
        "degraded": degraded,
        "cluster": {
            "feed": p.cluster.feed.kind(),
            "kv": p.kv.kind(),
            "redis": p.cluster.redis.as_ref().map(|r| if r.is_up() { "up" } else { "down" }),
        },
        "plugins": plugins,
        "pooling_allocator": p.runtime.pooled,
        "open_circuits": open_circuits,
    });
    (status, Json(body)).into_response()
}

/// What the body should have been declared as, when its `Content-Type` does not fit
/// the route.
fn refused_media_type(
    kind: &crate::registry::routes::BodyKind,
    headers: &HeaderMap,
) -> Option<String> {
    use crate::registry::routes::BodyKind;
    match kind {
        BodyKind::Json => (!is_json(headers)).then(|| "application/json".to_string()),
        BodyKind::Raw(types) if types.is_empty() => None,
        BodyKind::Raw(types) => {
            let essence = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|ct| ct.split(';').next())
                .map(|e| e.trim().to_ascii_lowercase())
                .unwrap_or_default();
            (!types.contains(&essence)).then(|| format!("one of {}", types.join(", ")))
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        })
        .unwrap_or(false)
}

/// Headers that never cross between a plugin and the client: credentials (a plugin
/// gets the verified identity instead; cookies are the host's alone, both ways) and
/// hop-by-hop headers.
fn forwarded(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "authorization"
            | "cookie"
            | "set-cookie"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "upgrade"
            | "te"
    )
}

/// The value of the host's cookie `name` in the request's `Cookie` headers.
fn host_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
}

async fn dispatch(
    State(g): State<Arc<Gateway>>,
    Extension(RequestId(rid)): Extension<RequestId>,
    req: Request,
) -> Response {
    let is_realtime = req.uri().path() == realtime::PATH;
    let token = if is_realtime {
        realtime::token(req.headers(), req.uri())
    } else {
        bearer(req.headers()).map(str::to_string)
    };
    // The token is verified once, first: the rate limiter keys on the user it names.
    let verified = match &token {
        Some(t) => Some(g.platform.identity.verify(t).await),
        None => None,
    };
    let user = verified
        .as_ref()
        .and_then(|v| v.as_ref().ok())
        .map(|i| i.user_id.clone());
    let ip = client_ip(&g.limiter, &req);
    let path = req.uri().path().to_string();
    // The route is looked up once, here: the rate limit's budget depends on it.
    let snap = g.platform.registry.snapshot();
    let found = if is_realtime {
        Match::NotFound
    } else {
        snap.routes.find(req.method().as_str(), &path)
    };
    let file = matches!(found, Match::Found(t, _) if t.file);
    let decision = match limit(&g.limiter, ip, &path, user.as_deref(), file, &rid).await {
        Ok(d) => d,
        Err(refused) => return *refused,
    };
    let mut resp = if is_realtime {
        realtime::serve(&g.platform, &rid, req.method(), token, verified)
    } else {
        route(&g.platform, &snap, found, rid, verified, req).await
    };
    if let Some(d) = decision {
        rate_headers(&mut resp, &d);
    }
    resp
}

/// The address the rate limiter counts `req` against.
fn client_ip(limiter: &RateLimiter, req: &Request) -> std::net::IpAddr {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        // A line that is not text counts as garbage (it ends the walk), never skipped.
        .map(|v| v.to_str().unwrap_or("?"));
    limiter.client_ip(peer, forwarded)
}

/// The rate limiter's decision for a request from `ip` (by `user` when
/// authenticated), or the 429 answer when it is over its budget.
async fn limit(
    limiter: &RateLimiter,
    ip: std::net::IpAddr,
    path: &str,
    user: Option<&str>,
    file: bool,
    rid: &str,
) -> Result<Option<Decision>, Box<Response>> {
    let decision = limiter.check(path, ip, user, file).await;
    if decision.is_some_and(|d| !d.allowed && d.uncounted) {
        let mut resp = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "rate_limit_unavailable",
            "the shared rate limiter cannot be reached and this shop refuses uncounted requests (rate_limit.on_backend_error = \"closed\"); retry shortly",
            rid,
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
        return Err(Box::new(resp));
    }
    if let Some(d) = decision.filter(|d| !d.allowed) {
        let mut resp = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "more than {} requests a minute; retry in {} s",
                d.limit, d.reset_secs
            ),
            rid,
        );
        rate_headers(&mut resp, &d);
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(d.reset_secs));
        return Err(Box::new(resp));
    }
    Ok(decision)
}

/// The rate limit of the operator API, before its token is even looked at.
async fn limit_admin(
    State(limiter): State<Arc<RateLimiter>>,
    Extension(RequestId(rid)): Extension<RequestId>,
    req: Request,
    next: Next,
) -> Response {
    // Nesting strips the `/admin` prefix from the path; the budget is the operator API's.
    let ip = client_ip(&limiter, &req);
    let decision = match limit(&limiter, ip, "/admin", None, false, &rid).await {
        Ok(d) => d,
        Err(refused) => return *refused,
    };
    let mut resp = next.run(req).await;
    if let Some(d) = decision {
        rate_headers(&mut resp, &d);
    }
    resp
}

/// Routes, authorises, checks and runs one request (after the rate limit).
/// Serves `req` by the route `found` in `snap` (both read once by [`dispatch`]).
async fn route(
    p: &Arc<Platform>,
    snap: &crate::registry::Snapshot,
    found: Match<'_>,
    rid: String,
    verified: Option<Result<wit::Identity, crate::capabilities::identity::TokenError>>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let (method, path) = (parts.method.as_str(), parts.uri.path());

    let (target, params) = match found {
        Match::Found(t, params) => (t.clone(), params),
        Match::MethodNotAllowed(allowed) => {
            let mut resp = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!(
                    "{method} is not allowed on {path}; use {}",
                    allowed.join(", ")
                ),
                &rid,
            );
            if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                resp.headers_mut().insert(header::ALLOW, v);
            }
            return resp;
        }
        Match::NotFound => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route {method} {path}"),
                &rid,
            )
        }
    };
    let Some(stable) = snap.plugins.get(&target.plugin).cloned() else {
        let why = if snap.disabled.contains_key(&target.plugin) {
            "is disabled by the operator"
        } else {
            "is not available"
        };
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "plugin_unavailable",
            format!("plugin {} {why}; retry later", target.plugin),
            &rid,
        );
    };
    // A running canary takes its share of the requests its candidate exposes, under
    // the candidate's own access rule for the route.
    let canary = snap.canaries.get(&target.plugin).and_then(|c| {
        let access = c.plugin.manifest.routes.iter().find_map(|r| {
            (r.method.eq_ignore_ascii_case(&target.method) && r.path == target.pattern)
                .then(|| Access::exposed(&r.access))
                .flatten()
        })?;
        use rand::Rng;
        let roll: u8 = rand::thread_rng().gen_range(0..100);
        Some((c.clone(), roll < c.percent, access))
    });
    let (plugin, access) = match &canary {
        Some((c, true, access)) => (c.plugin.clone(), access),
        _ => (stable, &target.access),
    };

    let started = std::time::Instant::now();
    let user = verified
        .as_ref()
        .and_then(|v| v.as_ref().ok())
        .map(|i| i.user_id.clone());
    let resp = serve(
        p, &rid, &target, access, params, &plugin, verified, parts, body,
    )
    .await;
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    target
        .metrics
        .get_or_init(|| {
            p.metrics
                .route(&target.plugin, &target.pattern, &target.method)
        })
        .record(status, elapsed);
    if let Some((c, candidate, _)) = canary {
        if candidate {
            c.candidate.record(status);
            crate::registry::ops::check_canary(p, &target.plugin, &c);
        } else {
            c.stable.record(status);
        }
    }
    tracing::info!(
        target: "access",
        request_id = %rid,
        plugin = %target.plugin,
        version = %plugin.version(),
        method = %target.method,
        route = %target.pattern,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        user_id = user.as_deref().unwrap_or("-"),
        "request"
    );
    resp
}

/// Authorises, checks and runs a request whose route is known.
#[allow(clippy::too_many_arguments)]
async fn serve(
    p: &Arc<Platform>,
    rid: &str,
    target: &crate::registry::routes::RouteTarget,
    access: &Access,
    params: Vec<(String, String)>,
    plugin: &Arc<crate::runtime::LoadedPlugin>,
    verified: Option<Result<wit::Identity, crate::capabilities::identity::TokenError>>,
    parts: axum::http::request::Parts,
    body: Body,
) -> Response {
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    // Authentication and authorisation happen here, before any plugin code runs.
    let caller = match (access, verified) {
        (Access::Public, None) => None,
        // A public route ignores a token it cannot verify rather than failing.
        (Access::Public, Some(v)) => v.ok(),
        (_, None) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a bearer token is required",
                rid,
            );
        }
        (_, Some(Ok(id))) => Some(id),
        (_, Some(Err(crate::capabilities::identity::TokenError::Store(e)))) => {
            tracing::error!(request_id = %rid, error = %e, "session store unavailable");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "plugin_unavailable",
                "sessions cannot be checked right now; retry shortly",
                rid,
            );
        }
        (_, Some(Err(e))) => {
            return error(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string(), rid);
        }
    };
    match access.admits(caller.as_ref()) {
        Ok(()) => {}
        Err(Refusal::NeedsCaller) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a bearer token is required",
                rid,
            );
        }
        Err(Refusal::WrongRole(roles)) => {
            return error(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this route needs the role {}", roles.join(" or ")),
                rid,
            );
        }
    }

    // Body: size first (from the header when present), then type.
    let limit = plugin.ctx.body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > limit) {
        // Read a modestly oversized body to its end before refusing it, so the client,
        // still sending, gets the 413 instead of a broken pipe; a huge one is refused
        // at once (and its connection closed).
        if n <= limit.saturating_add(DRAIN_BEYOND_LIMIT) {
            drain(body, n).await;
        }
        return too_large(limit, rid);
    }
    let bytes = match axum::body::to_bytes(Body::new(body), limit).await {
        Ok(b) => b,
        Err(_) => return too_large(limit, rid),
    };
    if !bytes.is_empty() {
        if let Some(wanted) = refused_media_type(&target.body, &parts.headers) {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("send the body as {wanted}"),
                rid,
            );
        }
    }

    let request = wit::Request {
        method,
        path,
        route: target.pattern.clone(),
        params,
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts
            .headers
            .iter()
            .filter(|(k, _)| forwarded(k))
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_string(), v.to_string()))
            })
            .collect(),
        body: bytes.to_vec(),
        caller,
        request_id: rid.to_string(),
    };
    let mut call = CallCtx::new(
        request.request_id.clone(),
        request.caller.clone(),
        0,
        plugin.ctx.timeout,
    );
    // The host's browser cookie serves only OpenID Connect sign-ins, which go through
    // the identity capability: other plugins' requests skip it.
    let browser = plugin.ctx.grants.identity.then(|| {
        Arc::new(Browser {
            cookie: host_cookie(&parts.headers, crate::capabilities::oidc::BROWSER_COOKIE),
            ..Browser::default()
        })
    });
    call.browser = browser.clone();
    // Boxed so the request's future stays small (see `Platform::handle`).
    match Box::pin(p.handle(plugin, call, request)).await {
        Ok(resp) => {
            let mut out = plugin_response(resp, rid);
            if !plugin.ctx.grants.pages {
                // The host's policies apply (crate::http::security_headers).
                out.headers_mut().remove("content-security-policy");
                out.headers_mut().remove("referrer-policy");
            }
            if let Some(v) = browser
                .and_then(|b| b.take_set_cookie())
                .and_then(|c| HeaderValue::from_str(&c).ok())
            {
                out.headers_mut().append(header::SET_COOKIE, v);
            }
            out
        }
        Err(HandleError::NotCommitted(e)) => {
            // Nothing of the call was committed: the client must not take the plugin's
            // answer for done.
            tracing::error!(
                request_id = %rid,
                plugin = %plugin.name(),
                error = %crate::capabilities::error_text(&e),
                "committing the call's work failed"
            );
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "plugin_unavailable",
                format!(
                    "{} could not commit its work; nothing was changed, retry",
                    plugin.name()
                ),
                rid,
            )
        }
        Err(HandleError::Unexpected) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
            rid,
        ),
        Err(HandleError::Invoke(InvokeError::Timeout(limit))) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "plugin_timeout",
            match limit {
                crate::core::Limit::Time => format!(
                    "{} did not answer within {} ms",
                    plugin.name(),
                    plugin.ctx.timeout.as_millis()
                ),
                crate::core::Limit::Fuel => format!(
                    "{} spent its fuel budget ({} units) before answering",
                    plugin.name(),
                    plugin.ctx.fuel.unwrap_or_default()
                ),
                crate::core::Limit::Instances => format!(
                    "{} is busy: all of its instances stayed in use for {} ms",
                    plugin.name(),
                    plugin.ctx.timeout.as_millis()
                ),
            },
            rid,
        ),
        Err(HandleError::Invoke(InvokeError::Instantiate(_))) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "plugin_unavailable",
            format!("{} could not be started", plugin.name()),
            rid,
        ),
        Err(HandleError::Invoke(InvokeError::Trap(_) | InvokeError::MemoryLimit(_))) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
            rid,
        ),
    }
}

/// How far past a route's body limit a declared body is still read (and dropped)
/// before the 413, see [`drain`].
const DRAIN_BEYOND_LIMIT: usize = 8 * 1024 * 1024;

/// Reads and drops up to `max` bytes of `body`, within a few seconds.
async fn drain(body: axum::body::Body, max: usize) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut seen = 0usize;
    let reading = async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                seen += data.len();
                if seen > max {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), reading).await;
}

fn too_large(limit: usize, rid: &str) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body exceeds {limit} bytes"),
        rid,
    )
}

/// Turns a plugin's response into HTTP, dropping headers it may not set.
fn plugin_response(resp: wit::Response, rid: &str) -> Response {
    let status = StatusCode::from_u16(resp.status)
        .ok()
        .filter(|s| (200..=599).contains(&s.as_u16()));
    let Some(status) = status else {
        tracing::error!(request_id = %rid, status = resp.status, "plugin answered an invalid status");
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
            rid,
        );
    };
    let mut out = Response::new(Body::from(resp.body));
    *out.status_mut() = status;
    let headers = out.headers_mut();
    for (k, v) in resp.headers {
        let Ok(name) = HeaderName::from_bytes(k.as_bytes()) else {
            continue;
        };
        if !forwarded(&name) || name == header::CONTENT_LENGTH || name.as_str() == "x-request-id" {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(&v) {
            headers.append(name, value);
        }
    }
    out
}

//! `GET /api/v1/realtime`: a signed-in user's live events as Server-Sent Events.
//!
//! The host serves this route itself (a plugin handles one request and returns; a
//! stream outlives any plugin call). Browsers cannot set headers on `EventSource`, so
//! the token may also come as `?access_token=`. A missing or bad token is 401 before
//! the stream starts. The first event is `ready` (`{"user_id"}`), sent once the
//! connection is subscribed, so a client knows from when on it misses nothing; then
//! every push for the user, named by the pusher (the event topic). The token is
//! checked again every keep-alive interval: a logout or expiry ends the stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Query;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use tokio::sync::{broadcast, watch};

use crate::bindings::wit;
use crate::capabilities::identity::TokenError;
use crate::capabilities::realtime::Push;
use crate::http::error::error;
use crate::registry::Platform;

/// The route's path.
pub const PATH: &str = "/api/v1/realtime";

/// The token of a realtime request: the bearer header, else `?access_token=`.
pub fn token(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(t) = super::bearer(headers) {
        return Some(t.to_string());
    }
    Query::<HashMap<String, String>>::try_from_uri(uri)
        .ok()?
        .0
        .remove("access_token")
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// Answers a realtime request whose token (if any) was verified as `verified`.
pub fn serve(
    p: &Arc<Platform>,
    rid: &str,
    method: &Method,
    token: Option<String>,
    verified: Option<Result<wit::Identity, TokenError>>,
) -> Response {
    if method != Method::GET {
        let mut resp = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {PATH}; use GET"),
            rid,
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return resp;
    }
    let (identity, token) = match (verified, token) {
        (Some(Ok(id)), Some(t)) => (id, t),
        (Some(Err(TokenError::Store(e))), _) => {
            tracing::error!(request_id = %rid, error = %e, "session store unavailable");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "plugin_unavailable",
                "sessions cannot be checked right now; retry shortly",
                rid,
            );
        }
        (Some(Err(e)), _) => {
            return error(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string(), rid)
        }
        _ => {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a bearer token is required (Authorization header or ?access_token=)",
                rid,
            )
        }
    };
    tracing::info!(
        target: "access",
        request_id = %rid,
        plugin = "host",
        method = "GET",
        route = PATH,
        status = 200,
        user_id = %identity.user_id,
        "realtime stream opened"
    );
    let rx = p.realtime.subscribe(&identity.user_id);
    let ready = serde_json::json!({"user_id": identity.user_id}).to_string();
    // At least 100 ms: a smaller setting would only spin.
    let every = Duration::from_millis(p.config.realtime.recheck_ms.max(100));
    let stream = events(
        p.clone(),
        every,
        token,
        rx,
        p.realtime.closing(),
        Event::default().event("ready").data(ready),
    );
    let mut resp = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(every))
        .into_response();
    // Reverse proxies (nginx) must pass events through as they come.
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// The `ready` event, then the user's pushes, until the host closes, the token stops
/// being valid, or the client goes away.
fn events(
    platform: Arc<Platform>,
    every: Duration,
    token: String,
    rx: broadcast::Receiver<Push>,
    closing: watch::Receiver<bool>,
    ready: Event,
) -> impl Stream<Item = Result<Event, Infallible>> {
    struct State {
        platform: Arc<Platform>,
        token: String,
        rx: broadcast::Receiver<Push>,
        closing: watch::Receiver<bool>,
        ready: Option<Event>,
        recheck: tokio::time::Interval,
    }
    let mut recheck = tokio::time::interval(every);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = State {
        platform,
        token,
        rx,
        closing,
        ready: Some(ready),
        recheck,
    };
    futures::stream::unfold(state, |mut s| async move {
        if let Some(ready) = s.ready.take() {
            s.recheck.tick().await; // the first tick is immediate
            return Some((Ok(ready), s));
        }
        loop {
            let got = tokio::select! {
                _ = s.closing.wait_for(|c| *c) => return None,
                _ = s.recheck.tick() => None,
                got = s.rx.recv() => Some(got),
            };
            let Some(got) = got else {
                match s.platform.identity.verify(&s.token).await {
                    // A session-store hiccup is not a logout: keep the stream.
                    Ok(_) | Err(TokenError::Store(_)) => {}
                    Err(_) => return None, // logged out, revoked or expired
                }
                continue;
            };
            let event = match got {
                Ok(push) => Event::default().event(push.event).data(push.data.as_ref()),
                Err(broadcast::error::RecvError::Lagged(missed)) => Event::default()
                    .event("lagged")
                    .data(serde_json::json!({"missed": missed}).to_string()),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            return Some((Ok(event), s));
        }
    })
}

//! What every HTTP answer of the host shares: the error shape, the request id, the
//! security headers, and reading a bearer token. The gateway and the operator API
//! both stand on it.

pub mod error;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The request id of the request in flight (an extension set by [`request_id`]).
#[derive(Clone)]
pub struct RequestId(pub String);

/// Headers every answer carries: no MIME sniffing, and unless the answer set its own,
/// no referrer leaks and a CSP that forbids everything (the API answers JSON, never
/// HTML). Only a plugin with the operator's `pages` grant (the storefront) keeps its
/// own policies; the gateway drops any other plugin's before this runs.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.entry("referrer-policy")
        .or_insert(HeaderValue::from_static("no-referrer"));
    h.entry("content-security-policy")
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    resp
}

/// An incoming `X-Request-Id` of 1–128 characters of `[A-Za-z0-9._:-]` is kept;
/// anything else is replaced by a fresh id.
fn accept_request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            (1..=128).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| format!("req_{}", uuid::Uuid::now_v7().simple()))
}

pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = accept_request_id(req.headers());
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// An answer given before the request's body was read to its end (a refused upload, a
/// 401 before a large body, a 413) says `Connection: close`. The server drops such a
/// connection after answering; without the header a client may send its next request
/// on it and lose that request to the close.
pub async fn close_after_unread_body(req: Request, next: Next) -> Response {
    let h = req.headers();
    let has_body = h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v != "0");
    if !has_body {
        return next.run(req).await;
    }
    let read = Arc::new(AtomicBool::new(false));
    let req = req.map(|inner| {
        Body::new(ReadToEnd {
            inner,
            read: read.clone(),
        })
    });
    let mut resp = next.run(req).await;
    if !read.load(Ordering::Acquire) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// A request body that notes when it has been read to its end.
struct ReadToEnd {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl HttpBody for ReadToEnd {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.read.store(true, Ordering::Release),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => {
                self.read.store(true, Ordering::Release)
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use tower::ServiceExt;

    fn app() -> axum::Router {
        axum::Router::new()
            .route("/ignores", post(|| async { "refused" }))
            .route(
                "/reads",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .layer(axum::middleware::from_fn(close_after_unread_body))
    }

    async fn connection_header(path: &str, body: &'static [u8]) -> Option<String> {
        let req = Request::post(path)
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .expect("request");
        let resp = app().oneshot(req).await.expect("answer");
        resp.headers()
            .get(header::CONNECTION)
            .map(|v| v.to_str().unwrap_or_default().to_string())
    }

    #[tokio::test]
    async fn an_answer_before_the_body_was_read_closes_the_connection() {
        assert_eq!(
            connection_header("/ignores", b"a body").await.as_deref(),
            Some("close")
        );
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_keeps_the_connection() {
        assert_eq!(connection_header("/reads", b"a body").await, None);
        // No body at all: nothing to read.
        assert_eq!(connection_header("/ignores", b"").await, None);
    }
}

//! The operator console at `/console`: a plain HTML/CSS/ES-module page the host serves
//! itself, so it works when plugins are broken or disabled and with no files on disk
//! (every file is compiled into the binary). It talks to the operator API (`/admin`,
//! operator token) and to the shop's REST API (`/api/v1`, an admin's login).
//!
//! Each answer carries the console's own Content-Security-Policy (this origin only,
//! nothing inline, no framing), an ETag (the SHA-256 of the bytes, computed once) that
//! revalidates to 304, and `Cache-Control: no-cache` (the names are not versioned, so a
//! browser asks again but downloads only what changed). Only the exact paths of the
//! table below exist: anything else under `/console`, encoded climbs included, is a
//! 404 in the API error shape.

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::any;
use axum::{Extension, Router};

use crate::http::error::error;
use crate::http::RequestId;

/// Where the console lives.
pub const PREFIX: &str = "/console";

/// The console's policy: its own scripts, styles, API calls and images (product
/// thumbnails, previews of a picked file) from this origin only.
pub const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; \
script-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; \
base-uri 'none'; form-action 'self'";

/// One embedded file: its URL path, media type and bytes.
struct Asset {
    path: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($file:literal, $ty:expr) => {
        Asset {
            path: concat!("/console/", $file),
            media_type: $ty,
            bytes: include_bytes!(concat!("assets/", $file)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the console. `index.html` is served at `/console` and `/console/`.
static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("js/app.js", JS),
    asset!("js/api.js", JS),
    asset!("js/ui.js", JS),
    asset!("js/charts.js", JS),
    asset!("js/views/signin.js", JS),
    asset!("js/views/plugins.js", JS),
    asset!("js/views/events.js", JS),
    asset!("js/views/products.js", JS),
    asset!("js/views/orders.js", JS),
    asset!("js/views/agents.js", JS),
    asset!("js/views/analytics.js", JS),
];

/// The quoted SHA-256 of each asset, in [`ASSETS`] order, computed on first use.
fn etags() -> &'static [HeaderValue] {
    static ETAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        use sha2::{Digest, Sha256};
        ASSETS
            .iter()
            .map(|a| {
                let tag = format!("\"{}\"", hex::encode(Sha256::digest(a.bytes)));
                HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"\""))
            })
            .collect()
    })
}

/// The console's routes, merged into the gateway's router (stateless: nothing here
/// depends on a plugin or the database).
pub fn router() -> Router {
    Router::new()
        .route(PREFIX, any(serve))
        .route("/console/", any(serve))
        .route("/console/{*rest}", any(serve))
}

/// Which asset a request path names: exact matches only, on the raw (still
/// percent-encoded) path, so `..`, `%2e%2e` and the like name nothing.
fn lookup(path: &str) -> Option<usize> {
    let path = if path == PREFIX || path == "/console/" {
        "/console/index.html"
    } else if path == "/console/index.html" {
        // The page has one address; its file name is not a second one.
        return None;
    } else {
        path
    };
    ASSETS.iter().position(|a| a.path == path)
}

async fn serve(Extension(RequestId(rid)): Extension<RequestId>, req: Request) -> Response {
    let path = req.uri().path();
    let Some(i) = lookup(path) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("the console has no file {path}"),
            &rid,
        );
    };
    let method = req.method();
    if method != Method::GET && method != Method::HEAD {
        let mut resp = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path}; use GET"),
            &rid,
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let asset = &ASSETS[i];
    let etag = &etags()[i];
    let fresh = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/").as_bytes() == etag.as_bytes()
        });
    let (status, body) = if fresh {
        (StatusCode::NOT_MODIFIED, Body::empty())
    } else if method == Method::HEAD {
        (StatusCode::OK, Body::empty())
    } else {
        (StatusCode::OK, Body::from(asset.bytes))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::ETAG, etag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if status == StatusCode::OK {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.media_type),
        );
        if method == Method::HEAD {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(asset.bytes.len()));
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under assets/ is embedded (a file added but not listed would be a
    /// 404 in the browser), and nothing is listed twice.
    #[test]
    fn every_asset_file_is_embedded() {
        fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("assets dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    let rel = path.strip_prefix(root).expect("under root");
                    out.push(format!(
                        "/console/{}",
                        rel.to_string_lossy().replace('\\', "/")
                    ));
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console/assets");
        let mut on_disk = Vec::new();
        walk(&root, &root, &mut on_disk);
        on_disk.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
    }

    #[test]
    fn only_exact_paths_name_a_file() {
        assert_eq!(lookup("/console"), lookup("/console/"));
        assert!(lookup("/console").is_some());
        assert!(lookup("/console/js/app.js").is_some());
        for p in [
            "/console/index.html",
            "/console/js/../console.css",
            "/console/js/%2e%2e/console.css",
            "/console/JS/app.js",
            "/console//js/app.js",
            "/console/js/app.js/",
            "/consolex",
        ] {
            assert_eq!(lookup(p), None, "{p}");
        }
    }

    #[test]
    fn etags_are_quoted_sha256() {
        for e in etags() {
            assert_eq!(e.len(), 66);
        }
    }
}

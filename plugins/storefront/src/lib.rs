//! The storefront: the shop's web pages, served from this version's bundle assets.
//!
//! `GET /` (and `GET /reset-password`, where the password-reset email links) answers
//! `index.html`; `GET /sw.js` answers the push service worker; `GET /static/{*path}`
//! answers the asset `static/PATH`. The pages are plain HTML, CSS and ES modules that call the REST API
//! from the browser, so the storefront needs no capability at all: a new look is a new
//! bundle, installed, enabled, canaried and rolled back like any other plugin.
//!
//! Every answer says its content type (from the extension), carries the asset's SHA-256
//! as a strong `ETag` (a matching `If-None-Match` is `304`), and a strict
//! `Content-Security-Policy`: everything from this origin only, no inline script or
//! style, no frames.

use kirana_sdk::prelude::*;
use kirana_sdk::{files, CapError};

pub struct Storefront;

/// Everything from the shop's own origin, nothing inline, nothing framed. Images may
/// also be `data:` URLs (the placeholder drawn for a product without a picture).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page itself is revalidated on every load, so a swapped version shows at once.
const HTML_CACHE: &str = "no-cache";
/// Static files are kept a few minutes, then revalidated with their ETag (cheap: 304).
/// Their names carry no version, so a long lifetime would mix two versions' files
/// after a swap.
const STATIC_CACHE: &str = "public, max-age=300";

/// The service worker's asset, served at `/sw.js` (its scope is then the whole site).
pub const SERVICE_WORKER: &str = "sw.js";

/// The `Content-Type` of an asset, from its extension.
pub fn content_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The asset a `/static/{*path}` request names, or why it cannot name one. Only the
/// `files` rules' plain segments pass (letters, digits, `.`, `_`, `-`, not starting
/// with a dot); anything percent-encoded is refused rather than decoded, so no
/// spelling of `..` or `/` reaches the lookup.
pub fn static_asset_path(raw: &str) -> Result<String, ApiError> {
    let ok_segment = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    if raw.is_empty() || raw.len() > 512 || !raw.split('/').all(ok_segment) {
        return Err(ApiError::invalid_field(
            "path",
            "must be /-separated names of letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(format!("static/{raw}"))
}

/// Whether an `If-None-Match` value matches `etag` (a list, weak forms and `*` too).
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let bare = etag.trim_matches('"');
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t).trim_matches('"') == bare)
}

/// The headers every storefront answer carries.
fn security_headers(resp: Response) -> Response {
    resp.with_header("content-security-policy", CSP)
        .with_header("x-content-type-options", "nosniff")
        .with_header("referrer-policy", "no-referrer")
}

/// Answers one asset: `200` with it, `304` when the client's copy is current.
fn serve(req: &Request, path: &str, cache: &str) -> Result<Response, ApiError> {
    let asset = match files::asset(path) {
        Ok(Some(a)) => a,
        Ok(None) => return Err(ApiError::not_found("file")),
        Err(CapError::Invalid(m)) => return Err(ApiError::invalid_field("path", m)),
        Err(e) => return Err(e.into()),
    };
    let etag = format!("\"{}\"", asset.sha256);
    let fresh = req
        .header("if-none-match")
        .is_some_and(|v| etag_matches(v, &etag));
    let resp = Response {
        status: if fresh { 304 } else { 200 },
        headers: vec![
            ("content-type".into(), content_type(path).into()),
            ("etag".into(), etag),
            ("cache-control".into(), cache.into()),
        ],
        body: if fresh { Vec::new() } else { asset.data },
    };
    Ok(security_headers(resp))
}

fn index(req: &Request) -> Result<Response, ApiError> {
    serve(req, "index.html", HTML_CACHE)
}

/// The reset email links to `<reset_url>?token=…`, by default `/reset-password`: the
/// same page, whose router reads the token from the query.
fn reset_password(req: &Request) -> Result<Response, ApiError> {
    serve(req, "index.html", HTML_CACHE)
}

/// The push service worker. It lives at the root because a worker only controls pages
/// under its own path (a worker under `/static/` could not show the shop's pages), and
/// it is revalidated on every check so a swapped version's worker follows at once.
fn service_worker(req: &Request) -> Result<Response, ApiError> {
    serve(req, SERVICE_WORKER, HTML_CACHE)
}

fn static_file(req: &Request) -> Result<Response, ApiError> {
    let raw: String = req.param("path")?;
    let path = static_asset_path(&raw)?;
    serve(req, &path, STATIC_CACHE)
}

impl Plugin for Storefront {
    const NAME: &'static str = "storefront";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn router() -> Router {
        Router::new()
            .get("/", Access::Public, index)
            .summary("The shop's page (HTML)")
            .file_response(&["text/html"])
            .get("/reset-password", Access::Public, reset_password)
            .summary("The shop's page, opened from a password-reset email (?token=)")
            .file_response(&["text/html"])
            .get("/sw.js", Access::Public, service_worker)
            .summary("The push service worker (scope: the whole shop)")
            .file_response(&["text/javascript"])
            .get("/static/{*path}", Access::Public, static_file)
            .summary("The page's stylesheets, scripts and icons")
            .file_response(&["text/css", "text/javascript", "image/svg+xml"])
    }

    fn capabilities() -> Capabilities {
        Capabilities::new()
    }
}

kirana_sdk::export_plugin!(Storefront);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("static/app.css"), "text/css; charset=utf-8");
        assert_eq!(
            content_type("static/js/app.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("static/icon.SVG"), "image/svg+xml");
        assert_eq!(content_type("static/p.webp"), "image/webp");
        assert_eq!(content_type("static/LICENSE"), "application/octet-stream");
        assert_eq!(content_type("static/x.exe"), "application/octet-stream");
    }

    #[test]
    fn static_paths_are_plain_segments_under_static() {
        assert_eq!(static_asset_path("app.css").unwrap(), "static/app.css");
        assert_eq!(static_asset_path("js/app.js").unwrap(), "static/js/app.js");
        for bad in [
            "",
            "../kirana.toml",
            "js/../../x",
            "..",
            ".hidden",
            "js//app.js",
            "/etc/passwd",
            "%2e%2e/x",
            "..%2fx",
            "a\\b",
            "js/app.js/",
            "a b",
        ] {
            let e = static_asset_path(bad).expect_err(bad);
            assert_eq!((e.status, e.code), (400, "validation_failed"), "{bad}");
        }
        assert!(static_asset_path(&"a/".repeat(300)).is_err());
    }

    #[test]
    fn if_none_match_compares_strong_weak_lists_and_star() {
        let tag = "\"abc\"";
        assert!(etag_matches("\"abc\"", tag));
        assert!(etag_matches("W/\"abc\"", tag));
        assert!(etag_matches("\"x\", \"abc\"", tag));
        assert!(etag_matches("*", tag));
        assert!(!etag_matches("\"abcd\"", tag));
        assert!(!etag_matches("", tag));
    }

    #[test]
    fn html_is_revalidated_and_static_files_are_kept_briefly() {
        assert_eq!(HTML_CACHE, "no-cache");
        assert!(STATIC_CACHE.contains("max-age="));
        let r = security_headers(Response::no_content());
        let get = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("x-content-type-options"), Some("nosniff"));
        assert_eq!(get("referrer-policy"), Some("no-referrer"));
        let csp = get("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("http"));
    }

    #[test]
    fn the_router_serves_the_page_and_static_files() {
        let r = Storefront::router();
        assert!(r.find("GET", "/").is_some());
        assert!(r.find("GET", "/static/{*path}").is_some());
        assert!(r.find("GET", "/reset-password").is_some());
        assert!(r.find("GET", "/sw.js").is_some());
        assert_eq!(
            content_type(SERVICE_WORKER),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            format!("{:?}", Storefront::capabilities()),
            format!("{:?}", Capabilities::new())
        );
    }
}

//! The operator console (host/src/console): the page at `/console` and its files,
//! served by the host itself with the console's own strict policy, cheap revalidation
//! and a small first load; nothing else is reachable under `/console`, and the page is
//! served with every plugin disabled.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// The most the console's first load (page, stylesheet, scripts, icon) may transfer.
const FIRST_LOAD_BUDGET: usize = 150 * 1024;

/// The policy the console's answers carry (kirana::console::CSP).
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; \
script-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; \
base-uri 'none'; form-action 'self'";

fn header<'a>(r: &'a Resp, name: &str) -> &'a str {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name} header: {:?}", r.headers))
}

/// The console's headers: its own policy (not the host's forbid-everything one), no
/// sniffing, no referrer, revalidated every time.
fn assert_console_headers(r: &Resp, path: &str) {
    assert_eq!(header(r, "content-security-policy"), CSP, "{path}");
    assert_eq!(kirana::console::CSP, CSP);
    assert_eq!(header(r, "x-content-type-options"), "nosniff", "{path}");
    assert_eq!(header(r, "referrer-policy"), "no-referrer", "{path}");
    assert_eq!(header(r, "cache-control"), "no-cache", "{path}");
    let etag = header(r, "etag");
    assert_eq!(etag.len(), 66, "the SHA-256 in quotes: {etag}");
}

/// The media type a console file must be served with, from its extension.
fn expected_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js") => "text/javascript",
        Some("css") => "text/css",
        Some("svg") => "image/svg+xml",
        _ => panic!("the console references an unexpected kind of file: {path}"),
    }
}

async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut rb = app.client.get(app.url(path));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb.send().await.expect("request")
}

/// A GET of `path` exactly as written (HTTP clients normalise `..` and `%2e%2e`
/// before sending; an attacker's client does not): the status and the body.
async fn raw_get(app: &TestApp, path: &str) -> (u16, String) {
    let base = app.url("");
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.expect("read");
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Every file of the console's first load, each checked for its type and headers.
async fn first_load(app: &TestApp) -> (usize, Vec<String>) {
    let (total, seen) = crate::helpers::first_load(app, "/console", |url, r| {
        assert!(
            header(r, "content-type").starts_with(expected_type(url)),
            "{url}: {:?}",
            r.header("content-type")
        );
        assert_console_headers(r, url);
    })
    .await;
    (total, seen.into_iter().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_html_with_its_own_strict_policy_and_revalidates() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let page = app.get("/console", None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(header(&page, "content-type").starts_with("text/html"));
    assert_console_headers(&page, "/console");
    assert!(page.text.contains("<main"), "{}", page.text);
    for inline in ["<script>", "<style", "style=", " onclick=", " onload="] {
        assert!(
            !page.text.contains(inline),
            "no inline script, style or handler ({inline}): the policy forbids them"
        );
    }
    // `/console/` is the same page, with the same ETag.
    let slash = app.get("/console/", None).await;
    assert_eq!(slash.status, 200);
    assert_eq!(slash.text, page.text);
    assert_eq!(slash.header("etag"), page.header("etag"));

    let etag = header(&page, "etag").to_string();
    let again = get_with(&app, "/console", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status().as_u16(), 304);
    assert_eq!(
        again.headers().get("etag").and_then(|v| v.to_str().ok()),
        Some(etag.as_str())
    );
    assert!(again.bytes().await.expect("body").is_empty());
    let stale = get_with(&app, "/console", &[("if-none-match", "\"0000\"")]).await;
    assert_eq!(stale.status().as_u16(), 200);

    // A static file revalidates the same way.
    let css = app.get("/console/console.css", None).await;
    let tag = header(&css, "etag").to_string();
    assert_ne!(tag, etag);
    let again = get_with(&app, "/console/console.css", &[("if-none-match", &tag)]).await;
    assert_eq!(again.status().as_u16(), 304);

    // Only reading: a POST is 405 in the error shape.
    app.post("/console", None, json!({}))
        .await
        .assert_error(405, "method_not_allowed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_the_console_loads_is_served_and_the_first_load_is_small() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (total, files) = first_load(&app).await;
    eprintln!(
        "console first load: {total} bytes in {} files: {files:?}",
        files.len() + 1
    );
    // Every view is a module the app imports at once (nothing loads later).
    for view in [
        "signin",
        "plugins",
        "events",
        "products",
        "orders",
        "agents",
        "analytics",
    ] {
        let path = format!("/console/js/views/{view}.js");
        assert!(files.contains(&path), "{path} is not loaded: {files:?}");
    }
    assert!(
        total < FIRST_LOAD_BUDGET,
        "the console's first load is {total} bytes, over {FIRST_LOAD_BUDGET}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_console_paths_and_climbs_are_404_and_reach_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for path in [
        "/console/nope.js",
        "/console/js/nope/deeper.css",
        // The page has one address.
        "/console/index.html",
        "/console/js/app.js/",
        "/console//js/app.js",
        "/console/JS/app.js",
    ] {
        app.get(path, None).await.assert_error(404, "not_found");
    }
    // Sent as written: climbs towards the operator API, the storefront and the disk.
    for path in [
        "/console/../admin/plugins",
        "/console/js/../../admin/plugins",
        "/console/%2e%2e/admin/plugins",
        "/console/%2E%2E/%2e%2e/api/v1/products",
        "/console/..%2f..%2fCargo.toml",
        "/console/js/%2e%2e%2fconsole.css",
        "/console/%2fetc%2fpasswd",
        "/console/js/app.js%00",
        "/console/..",
    ] {
        let (status, body) = raw_get(&app, path).await;
        assert_eq!(status, 404, "{path}: {body}");
        let v: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        assert_eq!(v["error"]["code"], "not_found", "{path}: {body}");
        assert!(v["request_id"].is_string(), "{path}: {body}");
        assert!(v.get("items").is_none(), "{path} reached a listing: {body}");
    }
    // The prefix is a path segment: `/consolex` is not the console.
    let r = app.get("/consolex", None).await;
    assert_eq!(r.status, 404);
    assert!(!r.text.contains("<main"));
    app.stop().await;
}

backend_test!(the_console_is_served_with_every_plugin_disabled, |app| {
    let list = app.get("/admin/plugins", Some(OPERATOR_TOKEN)).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let live: Vec<String> = list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| p["state"] == "live")
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect();
    assert!(live.len() >= 8, "the shop's plugins are live: {live:?}");
    for name in &live {
        plugin_action(app, name, "disable").await;
    }
    // The shop is down: its page and its API answer 503.
    app.get("/", None)
        .await
        .assert_error(503, "plugin_unavailable");
    app.get("/api/v1/products", None)
        .await
        .assert_error(503, "plugin_unavailable");
    // The console and everything it loads are served, and its plugin views' API works.
    let (total, files) = first_load(app).await;
    assert!(total > 0 && files.len() > 5, "{files:?}");
    let list = app.get("/admin/plugins", Some(OPERATOR_TOKEN)).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert!(list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|p| p["state"] != "live"));
    let dead = app
        .get("/admin/events?status=dead", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(dead.status, 200, "{}", dead.text);
    // Enabled again from what the console would send: its live version.
    plugin_action(app, "catalog", "enable").await;
    assert_eq!(app.get("/api/v1/products", None).await.status, 200);
});

#[test]
fn references_are_found_in_html_and_modules() {
    let html = r##"<link rel="stylesheet" href="/console/console.css"><script type="module" src="/console/js/app.js"></script><a href="#/plugins">p</a>"##;
    assert_eq!(
        html_references(html),
        vec!["/console/js/app.js", "/console/console.css"]
    );
    let js = "import { api } from \"../api.js\";\nimport * as x from './views/x.js';\n";
    assert_eq!(
        js_imports("/console/js/views/a.js", js),
        vec!["/console/js/api.js", "/console/js/views/views/x.js"]
    );
}

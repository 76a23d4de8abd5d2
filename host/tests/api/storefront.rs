//! The storefront plugin (plugins/storefront): the shop's page at `/` and its static
//! files, served from the version's bundle assets with strict security headers, cheap
//! revalidation, a small first load, and swapped and rolled back like any plugin.

use std::collections::BTreeMap;
use std::path::Path;

use kirana::registry::bundle;

use crate::helpers::*;

/// The most a first visit may transfer before product images (the issue's budget).
const FIRST_LOAD_BUDGET: usize = 150 * 1024;

/// The modules a script loads on demand (`import("./x.js")` anywhere on a line), resolved
/// against the script's own URL: pages the first load does not carry.
fn js_dynamic_imports(base: &str, js: &str) -> Vec<String> {
    let dir = &base[..base.rfind('/').map(|i| i + 1).unwrap_or(0)];
    let mut out = Vec::new();
    for quote in ["import(\"", "import('"] {
        let mut rest = js;
        while let Some(at) = rest.find(quote) {
            rest = &rest[at + quote.len()..];
            let Some(end) = rest.find(['"', '\'']) else {
                break;
            };
            let spec = &rest[..end];
            if spec.starts_with("./") || spec.starts_with("../") || spec.starts_with('/') {
                out.push(resolve(dir, spec));
            }
        }
    }
    out
}

async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut rb = app.client.get(app.url(path));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb.send().await.expect("request")
}

fn header<'a>(r: &'a Resp, name: &str) -> &'a str {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name} header: {:?}", r.headers))
}

/// The headers every storefront answer carries: no sniffing, no referrer, and a policy
/// that allows nothing inline, nothing from another host and no framing.
fn assert_strict_headers(r: &Resp) {
    let csp = header(r, "content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-"), "CSP allows unsafe sources: {csp}");
    assert!(!csp.contains("http"), "CSP names another host: {csp}");
    assert!(!csp.contains('*'), "CSP allows any host: {csp}");
    assert_eq!(header(r, "x-content-type-options"), "nosniff");
    assert_eq!(header(r, "referrer-policy"), "no-referrer");
}

/// The storefront's own policy, which the host keeps: its scripts, styles and API
/// calls from this origin only.
fn assert_storefront_policy(r: &Resp) {
    let csp = header(r, "content-security-policy");
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "CSP lacks {part}: {csp}");
    }
}

backend_test!(
    without_the_pages_grant_a_plugins_own_policy_is_replaced_by_the_hosts,
    "[plugins.storefront]\ngrants = []",
    |app| {
        // The same plugin, not trusted with pages: its scripts could run next to the
        // shoppers' tokens, so the host's forbid-everything policy wins.
        let page = app.get("/", None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let csp = header(&page, "content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("'self'"), "{csp}");
        assert_eq!(header(&page, "referrer-policy"), "no-referrer");
    }
);

backend_test!(the_page_is_html_with_a_strict_policy, |app| {
    let page = app.get("/", None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(header(&page, "content-type").starts_with("text/html"));
    assert_eq!(header(&page, "cache-control"), "no-cache");
    assert!(header(&page, "etag").starts_with('"'));
    assert_strict_headers(&page);
    assert_storefront_policy(&page);
    assert!(page.text.contains("<main"), "{}", page.text);
    assert!(
        !page.text.contains("<script>") && !page.text.contains("style="),
        "no inline script or style: the policy forbids them"
    );
});

backend_test!(
    static_files_have_their_type_an_etag_and_revalidate_to_304,
    |app| {
        for (path, ty) in [
            ("/static/app.css", "text/css"),
            ("/static/js/app.js", "text/javascript"),
            ("/static/icon.svg", "image/svg+xml"),
        ] {
            let r = app.get(path, None).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            assert!(header(&r, "content-type").starts_with(ty), "{path}");
            assert!(header(&r, "cache-control").contains("max-age="), "{path}");
            assert_strict_headers(&r);
            assert_storefront_policy(&r);
            let etag = header(&r, "etag").to_string();
            assert_eq!(etag.len(), 66, "the SHA-256 in quotes: {etag}");

            let again = get_with(app, path, &[("if-none-match", &etag)]).await;
            assert_eq!(again.status().as_u16(), 304, "{path}");
            assert_eq!(
                again.headers().get("etag").and_then(|v| v.to_str().ok()),
                Some(etag.as_str())
            );
            assert!(again.bytes().await.expect("body").is_empty());

            let stale = get_with(app, path, &[("if-none-match", "\"0000\"")]).await;
            assert_eq!(stale.status().as_u16(), 200, "{path}");
        }
        let page = app.get("/", None).await;
        let etag = header(&page, "etag").to_string();
        let again = get_with(app, "/", &[("if-none-match", &etag)]).await;
        assert_eq!(again.status().as_u16(), 304);
    }
);

backend_test!(
    missing_files_are_404_and_climbing_paths_are_refused,
    |app| {
        app.get("/static/nope.js", None)
            .await
            .assert_error(404, "not_found");
        app.get("/static/js/nope/deeper.css", None)
            .await
            .assert_error(404, "not_found");
        // reqwest normalises a literal `..`; these arrive as written.
        for path in [
            "/static/%2e%2e/%2e%2e/config/kirana.toml",
            "/static/..%2f..%2fCargo.toml",
            "/static/js/%2E%2E%2Findex.html",
            "/static/.hidden",
            "/static/js//app.js",
            "/static/a%00b",
        ] {
            let r = app.get(path, None).await;
            assert!(
                (400..500).contains(&r.status),
                "{path}: {} {}",
                r.status,
                r.text
            );
            assert!(r.body["error"]["code"].is_string(), "{path}: {}", r.text);
        }
        // The page is only at `/`: index.html is not a static file.
        app.get("/static/index.html", None)
            .await
            .assert_error(404, "not_found");
    }
);

backend_test!(
    the_first_load_is_small_and_every_referenced_file_exists,
    |app| {
        let (total, seen) = crate::helpers::first_load(app, "/", |_, _| {}).await;
        eprintln!(
            "storefront first load: {total} bytes in {} files",
            seen.len() + 1
        );
        // The pages loaded on demand exist, are scripts, and stay out of the first load.
        let mut lazy = std::collections::BTreeSet::new();
        for url in seen.iter().filter(|u| u.ends_with(".js")) {
            let js = app.get(url, None).await.text;
            lazy.extend(js_dynamic_imports(url, &js));
        }
        for url in ["/static/js/pages/security.js", "/static/js/pages/push.js"] {
            assert!(lazy.contains(url), "{url} is loaded on demand: {lazy:?}");
        }
        for url in &lazy {
            assert!(!seen.contains(url), "{url} is in the first load");
            let r = app.get(url, None).await;
            assert_eq!(r.status, 200, "{url} is imported but answers {}", r.status);
            assert!(
                header(&r, "content-type").starts_with("text/javascript"),
                "{url}"
            );
        }
        assert!(
            total < FIRST_LOAD_BUDGET,
            "first load is {total} bytes, over {FIRST_LOAD_BUDGET}: {seen:?}"
        );
    }
);

backend_test!(
    the_push_service_worker_is_served_at_the_root_as_a_script,
    |app| {
        // At /sw.js the worker's scope is the whole shop (a worker under /static/ would
        // control only /static/), so no Service-Worker-Allowed header is needed.
        let r = app.get("/sw.js", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(header(&r, "content-type"), "text/javascript; charset=utf-8");
        assert_eq!(header(&r, "cache-control"), "no-cache");
        assert!(r.header("service-worker-allowed").is_none());
        assert_strict_headers(&r);
        assert_storefront_policy(&r);
        // The policy lets this origin's worker run: worker-src falls back to
        // script-src 'self' unless it is set, and then it must allow 'self'.
        let csp = header(&r, "content-security-policy");
        assert!(
            !csp.contains("worker-src") || csp.contains("worker-src 'self'"),
            "{csp}"
        );
        for handler in [
            "addEventListener(\"push\"",
            "showNotification(",
            "addEventListener(\"notificationclick\"",
            "/#/orders/",
        ] {
            assert!(r.text.contains(handler), "sw.js lacks {handler}");
        }
        // Revalidated cheaply like every other file.
        let etag = header(&r, "etag").to_string();
        let again = get_with(app, "/sw.js", &[("if-none-match", &etag)]).await;
        assert_eq!(again.status().as_u16(), 304);
        // Only the worker is at the root: other scripts stay under /static/.
        assert_eq!(app.get("/app.js", None).await.status, 404);
    }
);

backend_test!(the_password_reset_link_opens_the_shops_page, |app| {
    // [notifications] reset_url points at /reset-password; the email appends ?token=.
    let page = app.get("/", None).await;
    let token = "ab".repeat(32);
    let r = app
        .get(&format!("/reset-password?token={token}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(header(&r, "content-type").starts_with("text/html"));
    assert_eq!(header(&r, "cache-control"), "no-cache");
    assert_strict_headers(&r);
    assert_storefront_policy(&r);
    assert_eq!(r.text, page.text, "the same page as /");
    assert_eq!(r.header("etag"), page.header("etag"));
    // The page's router knows the address (app.js turns it into #/reset-password).
    let app_js = app.get("/static/js/app.js", None).await.text;
    assert!(
        app_js.contains("\"/reset-password\""),
        "app.js handles the link"
    );
});

/// Every asset file on disk, as a bundle's asset map.
fn assets_on_disk() -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("assets dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                let rel = rel.to_string_lossy().replace('\\', "/");
                if !rel.split('/').any(|s| s.starts_with('.')) {
                    out.insert(rel, std::fs::read(&path).expect("asset"));
                }
            }
        }
    }
    let root = workspace().join("plugins/storefront/assets");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// The storefront component as version `version` (same length as the built one): the
/// bytes of a rebuild with a bumped version, without a second crate to build.
fn storefront_as(version: &str) -> Vec<u8> {
    let mut wasm = std::fs::read(plugin_dir().join("storefront.wasm"))
        .expect("storefront.wasm (./scripts/test builds it)");
    let manifest = std::fs::read_to_string(workspace().join("plugins/storefront/Cargo.toml"))
        .expect("plugins/storefront/Cargo.toml");
    let built_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("the crate's version");
    let built = format!("storefront{built_version}");
    let wanted = format!("storefront{version}");
    assert_eq!(built.len(), wanted.len());
    let hits: Vec<usize> = wasm
        .windows(built.len())
        .enumerate()
        .filter(|(_, w)| *w == built.as_bytes())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "the name and version sit together once in the component's data"
    );
    wasm[hits[0]..hits[0] + wanted.len()].copy_from_slice(wanted.as_bytes());
    wasm
}

backend_test!(
    a_new_storefront_bundle_swaps_the_page_and_rollback_restores_it,
    |app| {
        let before = app.get("/", None).await;
        assert_eq!(before.status, 200);
        assert!(!before.text.contains("Diwali sale"));

        let mut assets = assets_on_disk();
        let html = String::from_utf8(assets["index.html"].clone()).expect("utf-8");
        let changed = html.replacen("<main", "<p class=\"banner\">Diwali sale</p><main", 1);
        assets.insert("index.html".into(), changed.into_bytes());
        let next = bundle::pack(&storefront_as("0.1.1"), &assets).expect("pack");

        let r = app
            .raw(
                "POST",
                "/admin/plugins",
                Some(OPERATOR_TOKEN),
                Some("application/x-tar"),
                next,
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["version"], "0.1.1");
        let r = app
            .post(
                "/admin/plugins/storefront/enable",
                Some(OPERATOR_TOKEN),
                json!({"version": "0.1.1"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);

        let after = app.get("/", None).await;
        assert_eq!(after.status, 200);
        assert!(after.text.contains("Diwali sale"), "{}", after.text);
        assert_ne!(after.header("etag"), before.header("etag"));
        // The old page's ETag no longer matches: browsers fetch the new page.
        let etag = header(&before, "etag").to_string();
        let r = get_with(app, "/", &[("if-none-match", &etag)]).await;
        assert_eq!(r.status().as_u16(), 200);
        // Static files came along unchanged.
        assert_eq!(app.get("/static/app.css", None).await.status, 200);

        let r = app
            .post(
                "/admin/plugins/storefront/rollback",
                Some(OPERATOR_TOKEN),
                json!({}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let back = app.get("/", None).await;
        assert_eq!(back.text, before.text);
        assert_eq!(back.header("etag"), before.header("etag"));
    }
);

#[test]
fn references_are_found_in_html_and_modules() {
    let html = r##"<link rel="stylesheet" href="/static/app.css"><script type="module" src="/static/js/app.js"></script><a href="https://x.test/">x</a><a href="#/cart">c</a>"##;
    assert_eq!(
        html_references(html),
        vec!["/static/js/app.js", "/static/app.css"]
    );
    let js = "import { api } from \"./api.js\";\nimport './ui/dom.js';\nexport { x } from '../lib/x.js';\nconst m = import(\"./lazy.js\");\n";
    assert_eq!(
        js_imports("/static/js/pages/home.js", js),
        vec![
            "/static/js/pages/api.js",
            "/static/js/pages/ui/dom.js",
            "/static/js/lib/x.js"
        ]
    );
    let lazy =
        "const m = await import(\"./security.js\");\nreturn (await import('../x/push.js')).f;";
    assert_eq!(
        js_dynamic_imports("/static/js/pages/account.js", lazy),
        vec!["/static/js/pages/security.js", "/static/js/x/push.js"]
    );
}

/// The link in a password-reset email (`[notifications] reset_url` unset): the
/// storefront's `/reset-password` at the shop's public address.
async fn reset_link(app: &TestApp) -> String {
    let c = app.customer().await;
    let r = app
        .post(
            "/api/v1/auth/password/forgot",
            None,
            serde_json::json!({ "email": c.email }),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let body = crate::shop::reset_email(app, &c.email).await;
    body.split_whitespace()
        .find(|w| w.contains("/reset-password?token="))
        .unwrap_or_else(|| panic!("a reset link in {body}"))
        .to_string()
}

backend_test!(
    the_reset_email_links_to_the_address_the_shop_listens_on,
    |app| {
        // In development without public_url: the address kirana listens on, whatever port.
        let link = reset_link(app).await;
        let prefix = format!("{}/reset-password?token=", app.base);
        assert!(link.starts_with(&prefix), "{link} starts with {prefix}");
        let path = link.strip_prefix(&app.base).expect("on this host");
        let page = app.get(path, None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert!(header(&page, "content-type").starts_with("text/html"));
    }
);

backend_test!(
    the_reset_email_links_to_the_public_url,
    "public_url = \"https://shop.example\"\n",
    |app| {
        let link = reset_link(app).await;
        assert!(
            link.starts_with("https://shop.example/reset-password?token="),
            "{link}"
        );
    }
);

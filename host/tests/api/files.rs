//! The `files` capability through the `faulty` plugin, which tries what a hostile
//! plugin would: paths out of its tree, symlinks planted in it, more than its quota,
//! files over the host's size limit, many writes at once. Every refusal is the host's
//! (the plugin echoes the capability error as `{"refused": "kind: message"}`).

use crate::helpers::*;

const MIB: usize = 1024 * 1024;
/// Bodies up to 4 MiB reach the plugin; a file may be 1 MiB; faulty's grant is
/// `files:2` (helpers.rs).
const CONFIG: &str = "[limits]\nbody_bytes = 4194304\n[files]\nmax_file_mb = 1";

async fn put(app: &TestApp, path: &str, body: Vec<u8>) -> Resp {
    app.raw(
        "PUT",
        &format!("/api/v1/faulty/file?path={}", urlencode(path)),
        None,
        Some("application/octet-stream"),
        body,
    )
    .await
}

async fn listing(app: &TestApp, prefix: &str) -> serde_json::Value {
    let r = app
        .get(
            &format!("/api/v1/faulty/files?prefix={}", urlencode(prefix)),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["ok"].clone()
}

/// Asserts the capability refused with this kind (`invalid`, `conflict`, `denied`).
fn refused(r: &Resp, kind: &str) {
    assert_eq!(r.status, 200, "{}", r.text);
    let why = r.body["refused"].as_str().unwrap_or_default();
    assert!(
        why.starts_with(&format!("{kind}: ")),
        "expected {kind}: {}",
        r.text
    );
}

backend_test!(
    a_plugin_reads_and_writes_only_its_own_tree_within_its_quota,
    CONFIG,
    |app| {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let r = put(app, "images/p_1/large.webp", bytes.clone()).await;
        assert_eq!(r.body["ok"], serde_json::Value::Null, "{}", r.text);
        let got = app
            .get("/api/v1/faulty/file?path=images/p_1/large.webp", None)
            .await;
        assert_eq!(got.status, 200, "{}", got.text);
        let raw = app
            .client
            .get(app.url("/api/v1/faulty/file?path=images/p_1/large.webp"))
            .send()
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(raw.as_ref(), bytes.as_slice());
        let l = listing(app, "images/").await;
        assert_eq!(l["items"].as_array().map(Vec::len), Some(1), "{l}");
        assert_eq!(l["items"][0]["path"], "images/p_1/large.webp");
        assert_eq!(l["items"][0]["size"], 1000);
        assert_eq!(l["usage"]["used"], 1000);
        assert_eq!(l["usage"]["quota"], 2 * MIB);
        app.get("/api/v1/faulty/file?path=images/none", None)
            .await
            .assert_error(404, "not_found");

        // Ways out of the tree are refused before any store is asked.
        for bad in [
            "../secret",
            "/etc/passwd",
            "images/../../kirana.toml",
            "images//x",
            ".hidden",
            "images\\..\\x",
            "",
        ] {
            refused(&put(app, bad, b"x".to_vec()).await, "invalid");
            let r = app
                .get(
                    &format!("/api/v1/faulty/file?path={}", urlencode(bad)),
                    None,
                )
                .await;
            refused(&r, "invalid");
        }

        // One file over the host's limit; then the quota, exactly.
        refused(&put(app, "big", vec![7; MIB + 1]).await, "invalid");
        assert_eq!(
            put(app, "a", vec![1; MIB]).await.body["ok"],
            serde_json::Value::Null
        );
        let over = put(app, "b", vec![2; MIB]).await;
        refused(&over, "conflict");
        app.get("/api/v1/faulty/file?path=b", None)
            .await
            .assert_error(404, "not_found");
        // Replacing a file counts only the difference: filling to the byte is fine.
        let fill = put(app, "b", vec![2; MIB - 1000]).await;
        assert_eq!(fill.body["ok"], serde_json::Value::Null, "{}", fill.text);
        assert_eq!(listing(app, "").await["usage"]["used"], 2 * MIB);
        refused(&put(app, "c", vec![3; 1]).await, "conflict");
        let r = app.delete("/api/v1/faulty/file?path=a", None).await;
        assert_eq!(r.body["ok"], true, "{}", r.text);
        let r = app.delete("/api/v1/faulty/file?path=a", None).await;
        assert_eq!(r.body["ok"], false, "{}", r.text);
        assert_eq!(listing(app, "").await["usage"]["used"], MIB);
        assert_eq!(app.get("/health", None).await.status, 200);
    }
);

backend_test!(
    concurrent_writes_never_pass_the_quota_and_keep_usage_exact,
    CONFIG,
    |app| {
        let paths: Vec<String> = (0..24).map(|i| format!("burst/{i}")).collect();
        let writes = paths
            .iter()
            .enumerate()
            .map(|(i, p)| put(app, p, vec![i as u8; 200 * 1024]));
        let answers = futures::future::join_all(writes).await;
        let stored = answers
            .iter()
            .filter(|r| r.body.get("ok").is_some())
            .count();
        for r in &answers {
            if r.body.get("ok").is_none() {
                refused(r, "conflict");
            }
        }
        // 2 MiB holds ten 200 KiB files and not eleven.
        assert_eq!(stored, 10, "{answers:?}");
        let l = listing(app, "burst/").await;
        let sizes: u64 = l["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|f| f["size"].as_u64().expect("size"))
            .sum();
        assert_eq!(l["usage"]["used"].as_u64(), Some(sizes), "{l}");
        assert_eq!(sizes, 10 * 200 * 1024);
    }
);

backend_test!(
    files_need_the_operators_grant,
    "[plugins.faulty]\ngrants = [\"sql\", \"kv\", \"publish:faulty.flaky\", \"call:faulty\", \"subscribe:faulty.flaky\"]",
    |app| {
        let r = put(app, "a", b"x".to_vec()).await;
        refused(&r, "denied");
        assert!(r.text.contains("files:MiB"), "{}", r.text);
        refused(&app.get("/api/v1/faulty/file?path=a", None).await, "denied");
        refused(&app.get("/api/v1/faulty/files", None).await, "denied");
    }
);

/// On SQLite the files are a directory under data_dir: a symlink planted there (by a
/// careless script, say) still leads nowhere outside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_planted_in_a_plugins_tree_does_not_lead_out_of_it() {
    let app = TestApp::spawn_with(Backend::Sqlite, CONFIG).await;
    assert_eq!(
        put(&app, "mine", b"ok".to_vec()).await.body["ok"],
        serde_json::Value::Null
    );
    let tree = app.data_dir().join("files/faulty");
    assert!(tree.join("mine").is_file(), "the directory store is in use");
    let config = app.data_dir().join("kirana.toml");
    std::os::unix::fs::symlink(&config, tree.join("config")).expect("symlink");
    std::os::unix::fs::symlink(app.data_dir(), tree.join("up")).expect("symlink");
    for path in ["config", "up/kirana.toml"] {
        let r = app
            .get(&format!("/api/v1/faulty/file?path={path}"), None)
            .await;
        refused(&r, "denied");
        assert!(!r.text.contains("operator_token"), "{}", r.text);
    }
    refused(
        &put(&app, "up/kirana.toml", b"pwned".to_vec()).await,
        "denied",
    );
    assert!(std::fs::read_to_string(&config)
        .expect("config")
        .contains("operator_token"));
    let l = listing(&app, "").await;
    assert_eq!(l["items"].as_array().map(Vec::len), Some(1), "{l}");
    app.stop().await;
}

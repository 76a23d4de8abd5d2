//! The `kirana` CLI as an operator runs it: `kirana new plugin` in a scratch workspace,
//! and `kirana plugins ...` against hosts that are down, refuse the token, or answer.

use std::path::Path;
use std::process::Command;

use crate::helpers::*;

/// What one run of the CLI did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "kirana failed: {self:?}");
        self
    }

    /// Asserts exit status 1 with `text` in the error output.
    fn fails_with(&self, text: &str) -> &Self {
        assert_eq!(self.code, Some(1), "expected exit 1: {self:?}");
        assert!(
            self.stderr.contains(text),
            "expected {text:?} in stderr: {self:?}"
        );
        self
    }
}

/// The CLI with `args`, ignoring any KIRANA_URL / KIRANA_TOKEN of the test's environment.
fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kirana"));
    cmd.args(args)
        .env_remove("KIRANA_URL")
        .env_remove("KIRANA_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn into_run(out: std::process::Output) -> Run {
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn kirana(args: &[&str]) -> Run {
    into_run(command(args, &[]).output().expect("running kirana"))
}

/// The same, without blocking the runtime the test host is serving on.
async fn kirana_async(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = tokio::process::Command::from(command(args, env))
        .output()
        .await
        .expect("running kirana");
    into_run(out)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A scratch workspace: a root manifest listing `host` and `examples/hello` (a package
/// named `hello`), one member per line with a comment, like a hand-kept file.
fn scratch_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\n    \"host\",\n    # examples\n    \"examples/hello\",\n]\n\n\
         [workspace.dependencies]\nkirana-sdk = { path = \"plugin-sdk\" }\nserde = \"1\"\n",
    )
    .expect("writing Cargo.toml");
    std::fs::create_dir_all(dir.path().join("examples/hello")).expect("mkdir");
    std::fs::write(
        dir.path().join("examples/hello/Cargo.toml"),
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\n",
    )
    .expect("writing hello's Cargo.toml");
    dir
}

#[test]
fn new_plugin_writes_a_ready_crate_and_adds_it_to_the_workspace() {
    let ws = scratch_workspace();
    let root = ws.path().to_str().expect("utf-8 temp path");
    let run = kirana(&["new", "plugin", "gift_cards", "--root", root]);
    run.ok();
    for step in [
        "cargo build --release --target wasm32-wasip2 -p gift_cards",
        "[plugins.gift_cards]",
        "file = \"gift_cards.wasm\"",
        "kirana plugins install target/wasm32-wasip2/release/gift_cards.wasm",
        "kirana plugins enable gift_cards",
        "/api/v1/gift_cards/hello",
    ] {
        assert!(
            run.stdout.contains(step),
            "missing {step:?} in {}",
            run.stdout
        );
    }

    let crate_dir = ws.path().join("plugins/gift_cards");
    let manifest = read(&crate_dir.join("Cargo.toml"));
    let parsed: toml::Value = toml::from_str(&manifest).expect("the crate's Cargo.toml parses");
    assert_eq!(parsed["package"]["name"].as_str(), Some("gift_cards"));
    assert_eq!(
        parsed["lib"]["crate-type"],
        toml::Value::Array(vec!["cdylib".into(), "rlib".into()])
    );
    assert_eq!(
        parsed["dependencies"]["kirana-sdk"]["workspace"].as_bool(),
        Some(true)
    );
    assert_eq!(
        parsed["dependencies"]["serde"]["workspace"].as_bool(),
        Some(true)
    );
    let lib = read(&crate_dir.join("src/lib.rs"));
    for part in [
        "pub struct GiftCardsPlugin;",
        "const NAME: &'static str = \"gift_cards\";",
        ".get(\"/api/v1/gift_cards/hello\", Access::Public, hello)",
        ".summary(",
        ".response_schema(",
        "format!(\"hello from {}\", GiftCardsPlugin::NAME)",
        "kirana_sdk::export_plugin!(GiftCardsPlugin);",
    ] {
        assert!(lib.contains(part), "missing {part:?} in:\n{lib}");
    }
    assert!(!lib.contains("{{"), "unfilled placeholder in:\n{lib}");

    // The member is added in the file's own style; the comment and the rest stay.
    assert_eq!(
        read(&ws.path().join("Cargo.toml")),
        "[workspace]\nresolver = \"2\"\nmembers = [\n    \"host\",\n    # examples\n    \"examples/hello\",\n    \"plugins/gift_cards\",\n]\n\n\
         [workspace.dependencies]\nkirana-sdk = { path = \"plugin-sdk\" }\nserde = \"1\"\n"
    );

    // Twice is refused, and nothing changes.
    let before = read(&ws.path().join("Cargo.toml"));
    kirana(&["new", "plugin", "gift_cards", "--root", root]).fails_with("already exists");
    assert_eq!(read(&ws.path().join("Cargo.toml")), before);
    assert_eq!(read(&crate_dir.join("src/lib.rs")), lib);
}

/// A Python plugin: scaffolded into a scratch workspace that has the real
/// `scripts/build-python`, `wit/` and Python SDK, its generated test passes there, one
/// command builds it into a component, and a running host installs, enables and
/// serves it.
#[tokio::test(flavor = "multi_thread")]
async fn new_plugin_in_python_builds_serves_and_is_canaried_promoted_and_rolled_back() {
    let ws = scratch_workspace();
    let root = ws.path().to_str().expect("utf-8 temp path");
    for shared in ["scripts", "wit", "plugin-sdk-python"] {
        std::os::unix::fs::symlink(workspace().join(shared), ws.path().join(shared))
            .expect("linking the workspace's build inputs");
    }
    let manifest = read(&ws.path().join("Cargo.toml"));
    let run = kirana(&[
        "new",
        "plugin",
        "gift_cards",
        "--lang",
        "python",
        "--root",
        root,
    ]);
    run.ok();
    for step in [
        "scripts/build-python gift_cards",
        "scripts/build-python --test",
        "[plugins.gift_cards]",
        "kirana plugins install target/wasm32-wasip2/release/gift_cards.wasm",
        "/api/v1/gift_cards/hello",
        "plugins/gift_cards/gift_cards/plugin.py",
    ] {
        assert!(
            run.stdout.contains(step),
            "missing {step:?} in {}",
            run.stdout
        );
    }
    // Not a crate: the workspace manifest is left alone.
    assert_eq!(read(&ws.path().join("Cargo.toml")), manifest);
    let dir = ws.path().join("plugins/gift_cards");
    let plugin = read(&dir.join("gift_cards/plugin.py"));
    for part in [
        "class GiftCardsPlugin(Plugin):",
        "NAME = \"gift_cards\"",
        "@router.get(\n    \"/api/v1/gift_cards/hello\",",
    ] {
        assert!(plugin.contains(part), "missing {part:?} in:\n{plugin}");
    }
    assert!(read(&dir.join("app.py")).contains("WitWorld = export(GiftCardsPlugin)"));
    for file in ["app.py", "gift_cards/plugin.py", "tests/test_plugin.py"] {
        assert!(
            !read(&dir.join(file)).contains("{{"),
            "unfilled placeholder in {file}"
        );
    }

    let script = |args: &[&str]| {
        let out = Command::new(ws.path().join("scripts/build-python"))
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .expect("running scripts/build-python (componentize-py: ./scripts/test installs it)");
        let run = into_run(out);
        assert_eq!(run.code, Some(0), "scripts/build-python {args:?}: {run:?}");
        run
    };
    let tests = script(&["--test"]);
    assert!(
        tests
            .stdout
            .contains("python unit tests: plugins/gift_cards"),
        "{tests:?}"
    );
    assert!(tests.stderr.contains("Ran 2 tests"), "{tests:?}");
    script(&["gift_cards"]);
    let wasm = std::fs::read(
        ws.path()
            .join("target/wasm32-wasip2/release/gift_cards.wasm"),
    )
    .expect("the built component");
    // A component (layer 1), not a core module.
    assert_eq!(&wasm[..8], b"\0asm\x0d\0\x01\0");

    let app = TestApp::spawn(Backend::Sqlite).await;
    let r = app.upload_component(Some(OPERATOR_TOKEN), wasm).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            "/admin/plugins/gift_cards/enable",
            Some(OPERATOR_TOKEN),
            serde_json::json!({ "version": "0.1.0" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.get("/api/v1/gift_cards/hello", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        serde_json::json!({"message": "hello from gift_cards"})
    );

    // A second version, built the same way, goes through the operator's steps as a
    // Rust plugin does: installed, canaried, promoted, rolled back.
    let plugin_py = dir.join("gift_cards/plugin.py");
    let v2 = read(&plugin_py)
        .replace("version = \"0.1.0\"", "version = \"0.2.0\"")
        .replace("\"hello from \" + NAME", "\"hello again from \" + NAME");
    assert!(v2.contains("0.2.0") && v2.contains("hello again"), "{v2}");
    std::fs::write(&plugin_py, v2).expect("writing version 0.2.0");
    let building = std::time::Instant::now();
    script(&["gift_cards"]);
    let build_time = building.elapsed();
    let v2_path = ws
        .path()
        .join("target/wasm32-wasip2/release/gift_cards.wasm");
    let v2_path = v2_path.to_str().expect("utf-8 temp path");
    let env = [
        ("KIRANA_URL", app.base.as_str()),
        ("KIRANA_TOKEN", OPERATOR_TOKEN),
    ];
    let installing = std::time::Instant::now();
    let run = kirana_async(&["plugins", "install", v2_path], &env).await;
    run.ok();
    let install_time = installing.elapsed();
    assert!(
        run.stdout
            .starts_with("installed gift_cards 0.2.0 (sha256 "),
        "{run:?}"
    );
    let answers = |n: usize| {
        let app = &app;
        async move {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..n {
                let r = app.get("/api/v1/gift_cards/hello", None).await;
                assert_eq!(r.status, 200, "{}", r.text);
                seen.insert(r.body["message"].as_str().unwrap_or_default().to_string());
            }
            seen.into_iter().collect::<Vec<_>>()
        }
    };
    assert_eq!(
        answers(5).await,
        ["hello from gift_cards"],
        "installed is not live"
    );
    let run = kirana_async(
        &["plugins", "enable", "gift_cards@0.2.0", "--canary", "50"],
        &env,
    )
    .await;
    run.ok();
    assert!(
        run.stdout
            .starts_with("gift_cards: canary 0.2.0 at 50% (stable 0.1.0)"),
        "{run:?}"
    );
    // Half the requests each way: 60 requests all on one side would be a 1 in 2^59 chance.
    assert_eq!(
        answers(60).await,
        ["hello again from gift_cards", "hello from gift_cards"]
    );
    let run = kirana_async(&["plugins", "promote", "gift_cards"], &env).await;
    run.ok();
    assert_eq!(
        run.stdout,
        "gift_cards 0.2.0 is live (was 0.1.0, canary 0.2.0 at 50%)\n"
    );
    assert_eq!(answers(10).await, ["hello again from gift_cards"]);
    let run = kirana_async(&["plugins", "rollback", "gift_cards"], &env).await;
    run.ok();
    assert_eq!(run.stdout, "gift_cards rolled back to 0.1.0 (was 0.2.0)\n");
    assert_eq!(answers(10).await, ["hello from gift_cards"]);
    // A canary stopped by rollback leaves the stable version answering.
    kirana_async(
        &["plugins", "enable", "gift_cards@0.2.0", "--canary", "20"],
        &env,
    )
    .await
    .ok();
    let run = kirana_async(&["plugins", "rollback", "gift_cards"], &env).await;
    run.ok();
    assert_eq!(
        run.stdout,
        "gift_cards: canary 0.2.0 stopped; 0.1.0 stays live\n"
    );
    assert_eq!(answers(10).await, ["hello from gift_cards"]);
    // For the record (shown with --nocapture).
    eprintln!(
        "python plugin 0.2.0: built in {:.1} s, installed (uploaded and compiled) in {:.1} s",
        build_time.as_secs_f64(),
        install_time.as_secs_f64()
    );
    app.stop().await;

    // The name rules of Python on top of Rust's.
    for (name, message) in [
        ("lambda", "Python keyword"),
        ("json", "shadow the standard library's json module"),
        ("wit_world", "a module the build uses"),
    ] {
        kirana(&["new", "plugin", name, "--lang", "python", "--root", root]).fails_with(message);
        assert!(!ws.path().join("plugins").join(name).exists(), "{name}");
    }
}

#[test]
fn new_plugin_refuses_bad_and_taken_names_and_changes_nothing() {
    let ws = scratch_workspace();
    let root = ws.path().to_str().expect("utf-8 temp path");
    let manifest = read(&ws.path().join("Cargo.toml"));
    let long = "a".repeat(33);
    for (name, message) in [
        ("Gift-Cards", "did you mean gift_cards?"),
        ("9lives", "invalid plugin name \"9lives\""),
        ("a-b", "invalid plugin name"),
        ("_x", "invalid plugin name"),
        (long.as_str(), "use 1 to 32 characters"),
        ("", "invalid plugin name \"\""),
        ("fn", "cannot be a plugin name"),
        ("serde", "cannot be a plugin name"),
        (
            "hello",
            "already has a package named hello (in examples/hello)",
        ),
    ] {
        kirana(&["new", "plugin", name, "--root", root]).fails_with(message);
        assert_eq!(read(&ws.path().join("Cargo.toml")), manifest, "{name}");
    }
    assert!(
        !ws.path().join("plugins").exists(),
        "no plugin directory may be left behind"
    );

    std::fs::create_dir_all(ws.path().join("plugins/shelf")).expect("mkdir");
    kirana(&["new", "plugin", "shelf", "--root", root]).fails_with("plugins/shelf already exists");
    assert_eq!(read(&ws.path().join("Cargo.toml")), manifest);

    // A root that is not a workspace.
    let not_ws = tempfile::tempdir().expect("temp dir");
    let not_ws_root = not_ws.path().to_str().expect("utf-8 temp path");
    kirana(&["new", "plugin", "shelf", "--root", not_ws_root]).fails_with("cannot read");
    std::fs::write(
        not_ws.path().join("Cargo.toml"),
        "[package]\nname = \"x\"\n",
    )
    .expect("writing Cargo.toml");
    kirana(&["new", "plugin", "shelf", "--root", not_ws_root])
        .fails_with("no `[workspace] members = [...]` list");
    assert!(!not_ws.path().join("plugins/shelf").exists());
}

#[test]
fn plugins_commands_say_how_to_reach_a_host_that_is_down() {
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let hint = format!("is kirana running at {url}? start it with `kirana serve` or pass --url");
    let run = kirana(&["plugins", "list", "--url", &url]);
    run.fails_with(&hint);
    assert!(
        run.stderr.starts_with("error: cannot reach kirana at"),
        "{run:?}"
    );
    assert!(run.stdout.is_empty(), "{run:?}");
    kirana(&["plugins", "inspect", "cart", "--json", "--url", &url]).fails_with(&hint);
    let run = into_run(
        command(
            &["plugins", "disable", "cart"],
            &[("KIRANA_URL", &url), ("KIRANA_TOKEN", "t")],
        )
        .output()
        .expect("running kirana"),
    );
    run.fails_with(&hint);

    // Usage mistakes are caught before any request.
    let run = kirana(&[
        "plugins", "enable", "cart", "--canary", "100", "--url", &url,
    ]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("100 is not in 1..=99"), "{run:?}");
    kirana(&["plugins", "delete", "cart", "--url", &url]).fails_with("delete takes NAME@VERSION");
    kirana(&["plugins", "enable", "cart@", "--url", &url]).fails_with("bad version");
    kirana(&["plugins", "list", "--url", "ftp://x"])
        .fails_with("must be an http:// or https:// address");
    kirana(&["plugins", "install", "/no/such/shelf.wasm", "--url", &url])
        .fails_with("cargo build --release --target wasm32-wasip2 -p shelf");
    let not_wasm = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(not_wasm.path(), b"not a component").expect("writing");
    kirana(&[
        "plugins",
        "install",
        not_wasm.path().to_str().expect("utf-8 temp path"),
        "--url",
        &url,
    ])
    .fails_with("is neither a WebAssembly file nor a plugin bundle");
}

/// `text` without the whitespace outside strings: the CLI's `--json` output, minified,
/// equals the host's compact answer when the CLI kept its key order and numbers.
fn minify(text: &str) -> String {
    let mut out = String::new();
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

backend_test!(plugins_list_and_inspect_need_the_operator, |app| {
    let url = app.base.clone();
    let hint = "set KIRANA_TOKEN to the operator token (config [admin] operator_token, \
                KIRANA_ADMIN_OPERATOR_TOKEN; `kirana up` keeps one in data/operator-token), or pass --token";
    kirana_async(&["plugins", "list", "--url", &url], &[])
        .await
        .fails_with("no token given")
        .fails_with(hint);
    kirana_async(
        &["plugins", "list", "--url", &url, "--token", "not-a-token"],
        &[],
    )
    .await
    .fails_with("unauthorized (401)")
    .fails_with(hint);
    let customer = app.customer().await;
    kirana_async(
        &[
            "plugins",
            "inspect",
            "catalog",
            "--url",
            &url,
            "--token",
            &customer.token,
        ],
        &[],
    )
    .await
    .fails_with("forbidden (403)")
    .fails_with("not the operator's");
    // A shop admin is not the operator either.
    let admin = app.admin_token().await;
    kirana_async(&["plugins", "list", "--url", &url, "--token", &admin], &[])
        .await
        .fails_with("forbidden (403)")
        .fails_with("not the operator's");

    let env = [
        ("KIRANA_URL", url.as_str()),
        ("KIRANA_TOKEN", OPERATOR_TOKEN),
    ];
    let run = kirana_async(&["plugins", "list", "--json"], &env).await;
    run.ok();
    let listed: Value = serde_json::from_str(&run.stdout).expect("--json prints JSON");
    let items = listed["items"].as_array().expect("items");
    let catalog = items
        .iter()
        .find(|p| p["name"] == "catalog")
        .unwrap_or_else(|| panic!("catalog is not listed: {}", run.stdout));
    assert_eq!(catalog["state"], "live", "{catalog}");
    assert!(catalog["live_version"].is_string(), "{catalog}");
    for name in ["auth", "orders", "hello"] {
        assert!(items.iter().any(|p| p["name"] == name), "{name} missing");
    }

    let run = kirana_async(&["plugins", "list"], &env).await;
    run.ok();
    let mut lines = run.stdout.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "STATE", "LIVE", "VERSIONS", "REQUESTS", "ERRORS", "P50", "P99", "CANARY"]
    );
    let row: Vec<&str> = lines
        .find(|l| l.starts_with("catalog "))
        .unwrap_or_else(|| panic!("no catalog row: {}", run.stdout))
        .split_whitespace()
        .collect();
    assert_eq!(row[1], "live", "{row:?}");
    assert_eq!(Some(row[2]), catalog["live_version"].as_str(), "{row:?}");

    let run = kirana_async(&["plugins", "inspect", "catalog"], &env).await;
    run.ok();
    let text = &run.stdout;
    assert!(
        text.lines()
            .any(|l| l.starts_with("name ") && l.ends_with(" catalog")),
        "{text}"
    );
    assert!(text.contains("\nroutes ("), "{text}");
    let route_line = |method: &str, path: &str, role: &str| {
        text.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells == [method, path, role]
        })
    };
    assert!(route_line("GET", "/api/v1/products", "public"), "{text}");
    assert!(route_line("POST", "/api/v1/products", "admin"), "{text}");

    // --json prints the host's answer itself: same keys, same order, same numbers.
    let run = kirana_async(&["plugins", "inspect", "catalog", "--json"], &env).await;
    run.ok();
    let direct = app
        .get("/admin/plugins/catalog", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(direct.status, 200, "{}", direct.text);
    assert_eq!(minify(&run.stdout), direct.text);
    assert!(
        run.stdout.contains("\n  \"name\": \"catalog\""),
        "{}",
        run.stdout
    );

    kirana_async(&["plugins", "inspect", "nope"], &env)
        .await
        .fails_with("not_found (404)");
});

/// A built test component (the `swap` builds of test-plugins/).
fn component(file: &str) -> String {
    let path = plugin_dir().join(file);
    assert!(
        path.exists(),
        "{} is missing: cargo build --release --target wasm32-wasip2 -p swap-v1 -p swap-v2 -p swap-bad",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// The `swap` plugin's answer: which version served, or the status when it failed.
async fn swap_version(app: &TestApp) -> Result<String, u16> {
    let r = app.get("/api/v1/swap", None).await;
    match r.status {
        200 => Ok(r.body["version"].as_str().unwrap_or_default().to_string()),
        status => Err(status),
    }
}

backend_test!(
    plugins_install_canary_promote_rollback_disable_delete,
    "[plugins.swap]\ngrants = [\"sql\", \"subscribe:faulty.flaky\"]\n\n[admin]\noperator_token = \"operator-token-for-the-cli-tests\"",
    |app| {
        let url = app.base.clone();
        let env = [
            ("KIRANA_URL", url.as_str()),
            ("KIRANA_TOKEN", "operator-token-for-the-cli-tests"),
        ];
        let (v1, v2, bad) = (
            component("swap_v1.wasm"),
            component("swap_v2.wasm"),
            component("swap_bad.wasm"),
        );

        let run = kirana_async(&["plugins", "install", &v1], &env).await;
        run.ok();
        assert!(
            run.stdout.starts_with("installed swap 1.0.0 (sha256 "),
            "{run:?}"
        );
        assert!(
            run.stdout
                .contains("make it live with `kirana plugins enable swap@1.0.0`"),
            "{run:?}"
        );
        assert!(run.stderr.starts_with("uploading "), "{run:?}");
        assert!(
            run.stderr.contains(" kB) to ") || run.stderr.contains(" MB) to "),
            "{run:?}"
        );
        let run = kirana_async(&["plugins", "install", &v1], &env).await;
        run.ok();
        assert!(
            run.stdout
                .starts_with("swap 1.0.0 was already installed with these bytes"),
            "{run:?}"
        );
        assert_eq!(swap_version(app).await, Err(404), "installed is not live");

        // A canary needs a live version to compare with.
        kirana_async(&["plugins", "enable", "swap", "--canary", "10"], &env)
            .await
            .fails_with("conflict (409): swap has no live version to compare a canary with");
        let run = kirana_async(&["plugins", "enable", "swap"], &env).await;
        run.ok();
        assert_eq!(run.stdout, "swap 1.0.0 is live\n");
        assert_eq!(swap_version(app).await.as_deref(), Ok("1.0.0"));

        kirana_async(&["plugins", "install", &v2], &env).await.ok();
        let run = kirana_async(&["plugins", "enable", "swap@2.0.0", "--canary", "50"], &env).await;
        run.ok();
        assert!(
            run.stdout.starts_with(
                "swap: canary 2.0.0 at 50% (stable 1.0.0); `kirana plugins promote swap`"
            ),
            "{run:?}"
        );
        let run = kirana_async(&["plugins", "list"], &env).await;
        run.ok();
        let row: Vec<&str> = run
            .stdout
            .lines()
            .find(|l| l.starts_with("swap "))
            .unwrap_or_else(|| panic!("no swap row: {}", run.stdout))
            .split_whitespace()
            .collect();
        assert_eq!(row[..4], ["swap", "live", "1.0.0", "2.0.0,"], "{row:?}");
        assert_eq!(row[row.len() - 3..], ["2.0.0", "at", "50%"], "{row:?}");
        let run = kirana_async(&["plugins", "inspect", "swap"], &env).await;
        run.ok();
        let text = &run.stdout;
        let has_line = |words: &[&str]| {
            text.lines().any(|l| {
                l.split_whitespace()
                    .take(words.len())
                    .eq(words.iter().copied())
            })
        };
        assert!(
            has_line(&["canary", "2.0.0", "at", "50%", "since"]),
            "{text}"
        );
        assert!(has_line(&["canary", "traffic"]), "{text}");
        assert!(has_line(&["2.0.0", "canary"]), "{text}");
        assert!(has_line(&["1.0.0", "live"]), "{text}");
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("1.0.0") && l.ends_with(" operator")),
            "installed_by is the operator: {text}"
        );
        assert!(has_line(&["GET", "/api/v1/swap", "public"]), "{text}");

        let run = kirana_async(&["plugins", "promote", "swap"], &env).await;
        run.ok();
        assert_eq!(
            run.stdout,
            "swap 2.0.0 is live (was 1.0.0, canary 2.0.0 at 50%)\n"
        );
        assert_eq!(swap_version(app).await.as_deref(), Ok("2.0.0"));
        kirana_async(&["plugins", "promote", "swap"], &env)
            .await
            .fails_with("conflict (409): swap has no canary running");
        kirana_async(&["plugins", "delete", "swap@2.0.0"], &env)
            .await
            .fails_with("conflict (409): swap 2.0.0 is live");

        let run = kirana_async(&["plugins", "rollback", "swap"], &env).await;
        run.ok();
        assert_eq!(run.stdout, "swap rolled back to 1.0.0 (was 2.0.0)\n");
        assert_eq!(swap_version(app).await.as_deref(), Ok("1.0.0"));

        // A canary ended by rollback leaves the stable version serving.
        kirana_async(&["plugins", "enable", "swap@2.0.0", "--canary", "5"], &env)
            .await
            .ok();
        let run = kirana_async(&["plugins", "rollback", "swap"], &env).await;
        run.ok();
        assert_eq!(run.stdout, "swap: canary 2.0.0 stopped; 1.0.0 stays live\n");

        let run = kirana_async(&["plugins", "disable", "swap"], &env).await;
        run.ok();
        assert_eq!(
            run.stdout,
            "swap is disabled (was 1.0.0); its routes answer 503 until `kirana plugins enable swap`\n"
        );
        assert_eq!(swap_version(app).await, Err(503));
        let run = kirana_async(&["plugins", "disable", "swap"], &env).await;
        run.ok();
        assert_eq!(run.stdout, "swap was already disabled\n");
        let run = kirana_async(&["plugins", "enable", "swap@1.0.0"], &env).await;
        run.ok();
        assert_eq!(run.stdout, "swap 1.0.0 is live (was disabled)\n");
        assert_eq!(swap_version(app).await.as_deref(), Ok("1.0.0"));

        // --json prints the host's entry; delete prints nothing with --json.
        let run = kirana_async(&["plugins", "enable", "swap", "--json"], &env).await;
        run.ok();
        let entry: Value = serde_json::from_str(&run.stdout).expect("JSON entry");
        assert_eq!(entry["name"], "swap");
        assert_eq!(
            entry["live_version"], "2.0.0",
            "enable alone takes the newest"
        );
        kirana_async(&["plugins", "enable", "swap@1.0.0"], &env)
            .await
            .ok();
        let run = kirana_async(&["plugins", "delete", "swap@2.0.0", "--json"], &env).await;
        run.ok();
        assert_eq!(run.stdout, "");
        let run = kirana_async(&["plugins", "delete", "swap@2.0.0"], &env).await;
        run.fails_with("not_found (404): swap 2.0.0 is not installed");

        // A failed migration leaves the live version serving and says why.
        kirana_async(&["plugins", "install", &bad], &env).await.ok();
        kirana_async(&["plugins", "enable", "swap@3.0.0"], &env)
            .await
            .fails_with("conflict (409): swap 3.0.0 was not enabled: ");
        assert_eq!(swap_version(app).await.as_deref(), Ok("1.0.0"));
        kirana_async(&["plugins", "enable", "swap@9.9.9"], &env)
            .await
            .fails_with("not_found (404): swap 9.9.9 is not installed");

        // Something that starts like wasm but is not a component.
        let junk = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(junk.path(), b"\0asm\x01\0\0\0 not really").expect("writing");
        kirana_async(
            &[
                "plugins",
                "install",
                junk.path().to_str().expect("utf-8 temp path"),
            ],
            &env,
        )
        .await
        .fails_with("validation_failed (400): ");

        let run = kirana_async(&["plugins", "inspect", "swap"], &env).await;
        run.ok();
        let history = run
            .stdout
            .split("\nhistory (")
            .nth(1)
            .unwrap_or_else(|| panic!("no history: {}", run.stdout));
        for action in [
            "install",
            "enable",
            "canary",
            "promote",
            "rollback",
            "canary_rollback",
            "disable",
            "delete",
            "enable_failed",
        ] {
            assert!(
                history
                    .lines()
                    .any(|l| l.split_whitespace().nth(2) == Some(action)),
                "no {action} in history:\n{history}"
            );
        }
    }
);

backend_test!(
    plugins_enable_grant_approves_what_install_lists,
    "[plugins.swap]\ngrants = []",
    |app| {
        let url = app.base.clone();
        let env = [
            ("KIRANA_URL", url.as_str()),
            ("KIRANA_TOKEN", OPERATOR_TOKEN),
        ];
        let run = kirana_async(&["plugins", "install", &component("swap_v1.wasm")], &env).await;
        run.ok();
        assert!(
            run.stdout
                .contains("\nit asks for: sql, subscribe:faulty.flaky\n"),
            "{run:?}"
        );
        assert!(
            run.stdout.contains(
                "not approved yet: sql, subscribe:faulty.flaky\nreview them, then approve and make it live with `kirana plugins enable swap@1.0.0 --grant sql,subscribe:faulty.flaky`"
            ),
            "{run:?}"
        );
        kirana_async(&["plugins", "enable", "swap"], &env)
            .await
            .fails_with(
                "conflict (409): swap 1.0.0 asks for grants the operator has not approved: sql, subscribe:faulty.flaky",
            );
        assert_eq!(swap_version(app).await, Err(404));
        kirana_async(&["plugins", "enable", "swap", "--grant", "sql,root"], &env)
            .await
            .fails_with("validation_failed (400)");
        let run = kirana_async(
            &[
                "plugins",
                "enable",
                "swap",
                "--grant",
                "sql,subscribe:faulty.flaky",
            ],
            &env,
        )
        .await;
        run.ok();
        assert_eq!(run.stdout, "swap 1.0.0 is live\n");
        assert_eq!(swap_version(app).await.as_deref(), Ok("1.0.0"));
    }
);

/// `kirana serve` with only `env` (and a scratch data directory): how it exited and what
/// it printed, or None when it was still serving after it said so (then it is killed).
fn serve_with(env: &[(&str, &str)]) -> Run {
    let data = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kirana"));
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KIRANA_DATA_DIR", data.path())
        .env("KIRANA_LISTEN", "127.0.0.1:0")
        .env("KIRANA_PLUGIN_DIR", plugin_dir())
        .env("KIRANA_LOG_LEVEL", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("running kirana serve");
    // A refusal exits at once; a start prints "kirana is serving" (then it is stopped).
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut seen = String::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            seen.push_str(&line);
            seen.push('\n');
            if line.starts_with("kirana is serving") {
                break;
            }
        }
        seen
    });
    let stdout = reader.join().expect("reading stdout");
    let served = stdout.contains("kirana is serving");
    if served {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("waiting for kirana");
    Run {
        code: if served { None } else { out.status.code() },
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const OWN_SECRETS: [(&str, &str); 4] = [
    (
        "KIRANA_ADMIN_OPERATOR_TOKEN",
        "this-shops-own-operator-token-4711",
    ),
    ("KIRANA_ADMIN_PASSWORD", "this-shops-own-admin-password"),
    ("KIRANA_PAYMENTS_KEY_SECRET", "this-shops-own-key-secret"),
    (
        "KIRANA_PAYMENTS_WEBHOOK_SECRET",
        "this-shops-own-webhook-secret",
    ),
];

#[test]
fn serve_refuses_to_start_with_missing_or_published_secrets() {
    // The shipped configuration alone: refused, naming the setting and how to set it.
    let run = serve_with(&[]);
    run.fails_with("admin.operator_token is not set")
        .fails_with("KIRANA_ADMIN_OPERATOR_TOKEN");
    // Each published development value is refused by name.
    for (var, published) in [
        ("KIRANA_ADMIN_PASSWORD", "kirana-admin-123"),
        ("KIRANA_PAYMENTS_KEY_SECRET", "kirana_sandbox_key_secret"),
        (
            "KIRANA_PAYMENTS_WEBHOOK_SECRET",
            "kirana_sandbox_webhook_secret",
        ),
    ] {
        let mut env: Vec<(&str, &str)> = OWN_SECRETS.to_vec();
        env.retain(|(k, _)| *k != var);
        env.push((var, published));
        serve_with(&env)
            .fails_with("is the published development value")
            .fails_with(var);
    }
    // Development mode is loopback-only.
    serve_with(&[("KIRANA_DEV", "true"), ("KIRANA_LISTEN", "0.0.0.0:0")]).fails_with("loopback");
}

#[test]
fn serve_starts_with_the_operators_own_secrets() {
    let run = serve_with(&OWN_SECRETS);
    assert_eq!(run.code, None, "it should have served: {run:?}");
    assert!(!run.stderr.contains("DEVELOPMENT MODE"), "{run:?}");
}

#[test]
fn development_mode_says_so_and_keeps_an_operator_token() {
    let run = serve_with(&[("KIRANA_DEV", "true")]);
    assert_eq!(run.code, None, "it should have served: {run:?}");
    assert!(run.stderr.contains("DEVELOPMENT MODE"), "{run:?}");
    assert!(run.stderr.contains("operator-token"), "{run:?}");
}

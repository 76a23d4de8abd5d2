//! `kirana dev` on a scratch workspace holding a copy of `examples/hello` (as the
//! package `hello_dev`, so its build never replaces the `hello.wasm` other tests load):
//! an edit is rebuilt and swapped in while a client keeps calling, with no failed
//! request, while a signed-in user's session and live stream stay up across the swap;
//! a build that fails leaves the running build live.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::*;

/// Everything the dev process printed, as it comes.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<String>>);

impl Output {
    fn follow(&self, stream: impl tokio::io::AsyncRead + Unpin + Send + 'static) {
        let out = self.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut text) = out.0.lock() {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        });
    }

    fn text(&self) -> String {
        self.0.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Waits (up to `limit`) until the output contains `needle`.
    async fn wait_for(&self, needle: &str, limit: Duration) {
        let began = Instant::now();
        while !self.text().contains(needle) {
            assert!(
                began.elapsed() < limit,
                "kirana dev did not print {needle:?} within {limit:?}; it printed:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An open `GET /api/v1/realtime` stream, read as raw text.
struct Stream {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    text: String,
}

impl Stream {
    async fn open(http: &reqwest::Client, base: &str, token: &str) -> Self {
        let r = http
            .get(format!("{base}/api/v1/realtime"))
            .bearer_auth(token)
            .send()
            .await
            .expect("opening the realtime stream");
        assert_eq!(r.status(), 200, "the realtime stream was refused");
        let mut stream = Self {
            body: Box::pin(r.bytes_stream()),
            text: String::new(),
        };
        stream
            .wait_for("event: ready", Duration::from_secs(10))
            .await;
        stream
    }

    /// Reads until what the stream sent contains `needle`; panics when the stream ends
    /// or `limit` passes first.
    async fn wait_for(&mut self, needle: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.text.contains(needle) {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Some(Err(e))) => panic!("the stream broke: {e}; it sent:\n{}", self.text),
                Ok(None) => panic!("the stream ended; it sent:\n{}", self.text),
                Err(_) => panic!(
                    "no {needle:?} within {limit:?}; the stream sent:\n{}",
                    self.text
                ),
            }
        }
    }
}

/// A workspace with one member, `plugins/hello_dev` (a copy of examples/hello), on the
/// real SDK; it builds into the real target directory, so the SDK and its
/// dependencies are already compiled.
fn scratch_workspace() -> tempfile::TempDir {
    let real = workspace();
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let manifest = std::fs::read_to_string(real.join("Cargo.toml")).expect("the real Cargo.toml");
    let release = manifest
        .split("[profile.release]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("the real workspace has a [profile.release]");
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [\"plugins/hello_dev\"]\n\n\
             [workspace.package]\nedition = \"2021\"\nlicense = \"Apache-2.0\"\n\n\
             [workspace.dependencies]\nkirana-sdk = {{ path = \"{sdk}\" }}\n\
             serde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\"\n\n\
             [profile.release]{release}\n",
            sdk = real.join("plugin-sdk").display(),
        ),
    )
    .expect("writing Cargo.toml");
    std::fs::copy(real.join("Cargo.lock"), root.join("Cargo.lock")).expect("Cargo.lock");
    std::os::unix::fs::symlink(real.join("wit"), root.join("wit")).expect("linking wit/");
    let crate_dir = root.join("plugins/hello_dev");
    std::fs::create_dir_all(crate_dir.join("src")).expect("mkdir");
    let cargo = std::fs::read_to_string(real.join("examples/hello/Cargo.toml"))
        .expect("hello's Cargo.toml")
        .replace("name = \"hello\"", "name = \"hello_dev\"");
    std::fs::write(crate_dir.join("Cargo.toml"), cargo).expect("writing the crate manifest");
    std::fs::copy(
        real.join("examples/hello/src/lib.rs"),
        crate_dir.join("src/lib.rs"),
    )
    .expect("copying hello");
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("reading the source");
    assert!(text.contains(from), "{from:?} is not in {}", path.display());
    std::fs::write(path, text.replace(from, to)).expect("writing the source");
}

/// Starts `kirana dev --config kirana.toml` in `root` and waits (up to 300 s) until it
/// watches `watching`; its process, its output and the address it serves on.
async fn start_dev(root: &Path, watching: &str) -> (tokio::process::Child, Output, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kirana"))
        .args(["dev", "--config", "kirana.toml"])
        .current_dir(root)
        .env("CARGO_TARGET_DIR", workspace().join("target"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("KIRANA_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running kirana dev");
    let out = Output::default();
    out.follow(child.stdout.take().expect("stdout"));
    out.follow(child.stderr.take().expect("stderr"));
    out.wait_for(
        &format!("kirana dev: watching {watching}"),
        Duration::from_secs(300),
    )
    .await;
    let text = out.text();
    let base = text
        .split("kirana is serving on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the address kirana dev serves on")
        .to_string();
    (child, out, base)
}

/// The `message` a GET of `url` answers with, or what came back instead.
async fn message_at(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let r = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| e.to_string())?;
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    match (status, body["message"].as_str()) {
        (200, Some(m)) => Ok(m.to_string()),
        _ => Err(format!("{status} {text}")),
    }
}

/// A client calling `url` through the whole swap, `pause` between calls, counting what
/// it sent and what failed.
struct Caller {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    first_failure: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Caller {
    fn start(http: &reqwest::Client, url: String, pause: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let first_failure: Arc<Mutex<Option<String>>> = Arc::default();
        let task = {
            let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
            let first_failure = first_failure.clone();
            let http = http.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    sent.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = message_at(&http, &url).await {
                        failed.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut first) = first_failure.lock() {
                            first.get_or_insert(e);
                        }
                    }
                    tokio::time::sleep(pause).await;
                }
            })
        };
        Self {
            stop,
            sent,
            failed,
            first_failure,
            task,
        }
    }

    /// Stops calling; none of the calls may have failed. Prints (with --nocapture) the
    /// edit-to-live figures for the record.
    async fn finish(self, out: &Output, edit_to_live: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the client task");
        let sent = self.sent.load(Ordering::Relaxed);
        assert!(sent > 0);
        assert_eq!(
            self.failed.load(Ordering::Relaxed),
            0,
            "requests failed during the swap, the first: {:?}; kirana dev printed:\n{}",
            self.first_failure
                .lock()
                .map(|f| f.clone())
                .unwrap_or_default(),
            out.text()
        );
        for line in out.text().lines().filter(|l| l.contains("is live:")) {
            eprintln!(
                "{line}; edit to live {:.1} s ({sent} requests, none failed)",
                edit_to_live.as_secs_f64()
            );
        }
    }
}

/// Waits (at most `limit` from `edited`) until `url` answers `want`; how long it took.
async fn live_after_edit(
    http: &reqwest::Client,
    url: &str,
    want: &str,
    edited: Instant,
    limit: Duration,
    out: &Output,
) -> Duration {
    loop {
        if message_at(http, url).await.as_deref() == Ok(want) {
            return edited.elapsed();
        }
        assert!(
            edited.elapsed() < limit,
            "the edit was not live within {limit:?}; kirana dev printed:\n{}",
            out.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kirana_dev_swaps_an_edit_in_place_keeping_requests_sessions_and_streams() {
    let ws = scratch_workspace();
    let root = ws.path();
    let data = root.join("data");
    std::fs::write(
        root.join("kirana.toml"),
        format!(
            r#"listen = "127.0.0.1:0"
data_dir = "{data}"
plugin_dir = "{plugins}"
cache_dir = "{cache}"
log_level = "warn"

[identity]
argon2_memory_kib = 1024
argon2_iterations = 1

# The client below calls back to back.
[rate_limit]
enabled = false

[plugins.hello]
file = "hello_dev.wasm"
instances = "reuse"
grants = ["kv", "realtime", "mail"]
"#,
            data = data.display(),
            plugins = plugin_dir().display(),
            cache = workspace().join("target/kirana-test-cache").display(),
        ),
    )
    .expect("writing kirana.toml");

    let (mut child, out, base) = start_dev(root, "hello (plugins/hello_dev)").await;
    let http = reqwest::Client::new();
    let greet_url = format!("{base}/api/v1/hello?name=Asha");
    assert_eq!(
        message_at(&http, &greet_url).await.as_deref(),
        Ok("Namaste, Asha!")
    );

    // A signed-in customer with a live stream open, both kept through the swap.
    let r = http
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&serde_json::json!({
            "email": "dev-loop@example.in", "password": "password123", "name": "Dev Loop"
        }))
        .send()
        .await
        .expect("signing up");
    assert_eq!(r.status(), 201, "signup failed");
    let account: serde_json::Value = r.json().await.expect("the signup answer");
    let token = account["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let user_id = account["user"]["id"].as_str().expect("user.id").to_string();
    let mut stream = Stream::open(&http, &base, &token).await;
    // hello pushes `hello.wave` to a user's streams: to this customer's own, here.
    let wave = |message: &'static str| {
        let (http, base, token, user_id) =
            (http.clone(), base.clone(), token.clone(), user_id.clone());
        async move {
            let r = http
                .post(format!("{base}/api/v1/hello/wave"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"user_id": user_id, "message": message}))
                .send()
                .await
                .expect("waving");
            r.status().as_u16()
        }
    };
    assert_eq!(wave("before the swap").await, 204);
    stream
        .wait_for("before the swap", Duration::from_secs(10))
        .await;

    // A client calling back to back through the whole swap.
    let caller = Caller::start(&http, greet_url.clone(), Duration::ZERO);

    let lib = root.join("plugins/hello_dev/src/lib.rs");
    let edited = Instant::now();
    edit(
        &lib,
        "format!(\"Namaste, {name}!\")",
        "format!(\"Vanakkam, {name}!\")",
    );
    // The new answer, within a bounded time (the build is incremental: one crate).
    let edit_to_live = live_after_edit(
        &http,
        &greet_url,
        "Vanakkam, Asha!",
        edited,
        Duration::from_secs(300),
        &out,
    )
    .await;
    out.wait_for("hello 0.1.0 is live: built in", Duration::from_secs(10))
        .await;
    // Each long step said when it started and how it ended, in order (plain lines:
    // the output is not a terminal).
    let text = out.text();
    let mut at = 0;
    for step in [
        "==> hello: sources changed, building (cargo)\n",
        "==> hello: built in ",
        "==> hello: compiling the component and swapping it in\n",
        "==> hello 0.1.0 is live: built in ",
    ] {
        at += text[at..]
            .find(step)
            .unwrap_or_else(|| panic!("no {step:?} after the edit; kirana dev printed:\n{text}"));
    }

    // The session and the stream opened before the swap outlived it: the same token
    // is still accepted, and the same connection carries the new build's push.
    assert_eq!(wave("after the swap").await, 204);
    stream
        .wait_for("after the swap", Duration::from_secs(10))
        .await;
    let r = http
        .get(format!("{base}/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("reading the account");
    assert_eq!(r.status(), 200, "the session ended with the swap");

    // A change that does not compile: the build fails, the running build stays live.
    edit(
        &lib,
        "format!(\"Vanakkam, {name}!\")",
        "format!(\"Vanakkam, {nme}!\")",
    );
    out.wait_for("the running build stays live", Duration::from_secs(300))
        .await;
    assert!(out.text().contains("error"), "{}", out.text());
    assert_eq!(
        message_at(&http, &greet_url).await.as_deref(),
        Ok("Vanakkam, Asha!")
    );

    caller.finish(&out, edit_to_live).await;
    child.kill().await.expect("stopping kirana dev");
}

/// A Python plugin under `kirana dev`: built at start without any crate in the
/// workspace, then an edit is rebuilt with componentize-py and swapped in while a
/// client keeps calling, with no failed request. (One test, SQLite: a Python build
/// takes 20-35 s and its first compile about as long.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kirana_dev_swaps_a_python_plugin_in_place() {
    let ws = tempfile::tempdir().expect("temp dir");
    let root = ws.path();
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = []\n",
    )
    .expect("writing Cargo.toml");
    for shared in ["scripts", "wit", "plugin-sdk-python"] {
        std::os::unix::fs::symlink(workspace().join(shared), root.join(shared))
            .expect("linking the workspace's build inputs");
    }
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_kirana"))
        .args(["new", "plugin", "greeter", "--lang", "python", "--root"])
        .arg(root)
        .output()
        .expect("running kirana new");
    assert!(made.status.success(), "kirana new failed: {made:?}");
    let data = root.join("data");
    // Only the greeter: the shop's plugins are switched off, so nothing else loads.
    let mut config = format!(
        r#"listen = "127.0.0.1:0"
data_dir = "{data}"
plugin_dir = "{plugins}"
cache_dir = "{cache}"
log_level = "warn"

[identity]
argon2_memory_kib = 1024
argon2_iterations = 1

[rate_limit]
enabled = false

[plugins.greeter]
file = "greeter.wasm"
instances = "reuse"
"#,
        data = data.display(),
        plugins = root.join("target/wasm32-wasip2/release").display(),
        cache = workspace().join("target/kirana-test-cache").display(),
    );
    let defaults = std::fs::read_to_string(workspace().join("config/kirana.toml"))
        .expect("the embedded defaults");
    for line in defaults.lines() {
        if let Some(name) = line
            .strip_prefix("[plugins.")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            config.push_str(&format!("\n[plugins.{name}]\nenabled = false\n"));
        }
    }
    std::fs::write(root.join("kirana.toml"), config).expect("writing kirana.toml");

    let (mut child, out, base) = start_dev(root, "greeter (plugins/greeter)").await;
    let http = reqwest::Client::new();
    let hello_url = format!("{base}/api/v1/greeter/hello");
    assert_eq!(
        message_at(&http, &hello_url).await.as_deref(),
        Ok("hello from greeter"),
        "kirana dev printed:\n{}",
        out.text()
    );

    // A Python instance answers in a few ms; no need to flood it.
    let caller = Caller::start(&http, hello_url.clone(), Duration::from_millis(5));

    let edited = Instant::now();
    edit(
        &root.join("plugins/greeter/greeter/plugin.py"),
        "\"hello from \" + NAME",
        "\"namaste from \" + NAME",
    );
    let edit_to_live = live_after_edit(
        &http,
        &hello_url,
        "namaste from greeter",
        edited,
        Duration::from_secs(400),
        &out,
    )
    .await;
    out.wait_for("greeter 0.1.0 is live: built in", Duration::from_secs(10))
        .await;
    assert!(
        out.text()
            .contains("==> greeter: sources changed, building (componentize-py)\n"),
        "{}",
        out.text()
    );

    caller.finish(&out, edit_to_live).await;
    child.kill().await.expect("stopping kirana dev");
}

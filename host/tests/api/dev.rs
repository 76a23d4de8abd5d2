//! `kirana dev` on a scratch workspace holding a copy of `examples/hello` (as the
//! package `hello_dev`, so its build never replaces the `hello.wasm` other tests load):
//! an edit is rebuilt and swapped in while a client keeps calling, with no failed
//! request, and a build that fails leaves the running build live.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kirana_dev_swaps_an_edit_in_place_with_no_failed_request() {
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

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kirana"))
        .args(["dev", "--config", "kirana.toml"])
        .current_dir(root)
        .env("CARGO_TARGET_DIR", workspace().join("target"))
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
        "kirana dev: watching hello (plugins/hello_dev)",
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
    let http = reqwest::Client::new();
    // The greeting, or what came back instead.
    let greet = |http: reqwest::Client, base: String| async move {
        let r = http
            .get(format!("{base}/api/v1/hello?name=Asha"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let text = r.text().await.map_err(|e| e.to_string())?;
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        match (status, body["message"].as_str()) {
            (200, Some(m)) => Ok(m.to_string()),
            _ => Err(format!("{status} {text}")),
        }
    };
    assert_eq!(
        greet(http.clone(), base.clone()).await.as_deref(),
        Ok("Namaste, Asha!")
    );

    // A client calling back to back through the whole swap.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let first_failure: Arc<Mutex<Option<String>>> = Arc::default();
    let client = {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        let first_failure = first_failure.clone();
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                sent.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = greet(http.clone(), base.clone()).await {
                    failed.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut first) = first_failure.lock() {
                        first.get_or_insert(e);
                    }
                }
            }
        })
    };

    let lib = root.join("plugins/hello_dev/src/lib.rs");
    edit(
        &lib,
        "format!(\"Namaste, {name}!\")",
        "format!(\"Vanakkam, {name}!\")",
    );
    out.wait_for("hello 0.1.0 is live: built in", Duration::from_secs(300))
        .await;
    assert_eq!(
        greet(http.clone(), base.clone()).await.as_deref(),
        Ok("Vanakkam, Asha!")
    );

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
        greet(http.clone(), base.clone()).await.as_deref(),
        Ok("Vanakkam, Asha!")
    );

    stop.store(true, Ordering::Relaxed);
    client.await.expect("the client task");
    assert!(sent.load(Ordering::Relaxed) > 0);
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the swap, the first: {:?}; kirana dev printed:\n{}",
        first_failure.lock().map(|f| f.clone()).unwrap_or_default(),
        out.text()
    );
    // For the record (shown with --nocapture): the edit-to-live figures.
    for line in out.text().lines().filter(|l| l.contains("is live:")) {
        eprintln!(
            "{line} ({} requests, none failed)",
            sent.load(Ordering::Relaxed)
        );
    }
    child.kill().await.expect("stopping kirana dev");
}

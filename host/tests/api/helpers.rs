//! The test harness: every test starts the real host on a random port, with the real
//! plugins built to wasm, on a fresh SQLite directory or a fresh PostgreSQL database,
//! and talks HTTP to it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use kirana::app::App;
use kirana::config::Config;
pub use serde_json::{json, Value};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body once on SQLite and once on PostgreSQL, each with a fresh host;
/// `backend_test!(name, "TOML", |app| ...)` merges TOML into the host's configuration.
/// With `|mut app|` the body gets `&mut TestApp`, to `restart()` the host (or
/// `restart_with` another configuration) on the same data directory and database.
#[macro_export]
macro_rules! backend_test {
    ($name:ident, |mut $app:ident| $body:block) => {
        backend_test!($name, "", |mut $app| $body);
    };
    ($name:ident, $toml:expr, |mut $app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run(backend: $crate::helpers::Backend) {
                let mut app = $crate::helpers::TestApp::spawn_with(backend, $toml).await;
                {
                    let $app = &mut app;
                    $body
                }
                app.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run($crate::helpers::Backend::Postgres).await;
            }
        }
    };
    ($name:ident, |$app:ident| $body:block) => {
        backend_test!($name, "", |$app| $body);
    };
    ($name:ident, $toml:expr, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run(backend: $crate::helpers::Backend) {
                let app = $crate::helpers::TestApp::spawn_with(backend, $toml).await;
                {
                    let $app = &app;
                    $body
                }
                app.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run($crate::helpers::Backend::Postgres).await;
            }
        }
    };
}

/// An HTTP answer, with the body parsed as JSON when it is JSON (`Value::Null` otherwise).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `field`s of a `validation_failed` error's `details.fields`, in order.
    pub fn fields(&self) -> Vec<String> {
        self.body["error"]["details"]["fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts `400 validation_failed` naming `field`.
    pub fn assert_invalid_field(&self, field: &str) {
        self.assert_error(400, "validation_failed");
        assert!(
            self.fields().iter().any(|f| f == field),
            "expected field {field} in {}",
            self.text
        );
    }

    /// Asserts the API error shape with `status` and `code`, and that the body's
    /// request id matches the header.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "expected {status} {code}, got {}: {}",
            self.status, self.text
        );
        assert_eq!(
            self.body["error"]["code"], code,
            "wrong code: {}",
            self.text
        );
        assert!(
            self.body["error"]["message"].is_string(),
            "no message: {}",
            self.text
        );
        assert!(
            self.body["error"]["details"].is_object(),
            "no details: {}",
            self.text
        );
        assert_eq!(
            self.body["request_id"].as_str(),
            self.header("x-request-id"),
            "request_id must equal X-Request-Id: {}",
            self.text
        );
    }
}

/// The `field`s of a `validation_failed` error's `details.fields`, in order.
pub fn fields(r: &Resp) -> Vec<String> {
    r.fields()
}

/// Asserts the API error shape with `status` and `code`.
pub fn assert_error(r: &Resp, status: u16, code: &str) {
    r.assert_error(status, code);
}

/// Asserts `400 validation_failed` naming `field`.
pub fn assert_invalid_field(r: &Resp, field: &str) {
    r.assert_invalid_field(field);
}

/// A customer made by [`TestApp::customer`].
#[derive(Debug, Clone)]
pub struct Customer {
    pub token: String,
    pub refresh_token: String,
    pub user_id: String,
    pub email: String,
    pub password: String,
}

/// The JWT key of every test host, so tests can forge and expire tokens.
pub const TEST_JWT_SECRET: &str = "kirana-test-signing-key-0123456789abcdef";
pub const ADMIN_EMAIL: &str = "admin@kirana.test";
pub const ADMIN_PASSWORD: &str = "admin-password-123";
/// The operator credential of every test host (`/admin/...`).
pub const OPERATOR_TOKEN: &str = "test-operator-token-0123456789";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub backend: Backend,
    app: Option<App>,
    config_path: PathBuf,
    base_toml: String,
    /// The test's own PostgreSQL database, dropped by [`TestApp::stop`].
    postgres_database: Option<String>,
    /// Empty on SQLite.
    database_url: String,
    _dir: tempfile::TempDir,
}

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

pub fn plugin_dir() -> PathBuf {
    std::env::var("KIRANA_TEST_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target/wasm32-wasip2/release"))
}

/// The plugins every test host loads.
pub const PLUGINS: &[&str] = &[
    "auth",
    "catalog",
    "cart",
    "orders",
    "payments",
    "delivery",
    "notifications",
    "analytics",
    "storefront",
    "hello",
    "faulty",
    "promotions",
];

fn check_plugins_built() {
    for p in PLUGINS {
        let f = plugin_dir().join(format!("{p}.wasm"));
        assert!(
            f.exists(),
            "{} is missing: build the plugins first (./scripts/test does it, or \
             cargo build --release --target wasm32-wasip2 -p auth -p catalog -p cart -p orders -p payments -p delivery -p notifications -p analytics -p storefront -p hello -p faulty, \
             and ./scripts/build-python for promotions)",
            f.display()
        );
    }
}

/// A fresh, empty PostgreSQL database for one test; its URL and name.
async fn fresh_postgres_database() -> (String, String) {
    let base = std::env::var("KIRANA_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "KIRANA_TEST_POSTGRES_URL is not set: PostgreSQL tests need a server \
             (./scripts/test starts one, or export KIRANA_TEST_POSTGRES_URL=postgres://user:pass@127.0.0.1:5432/postgres)"
        )
    });
    sqlx::any::install_default_drivers();
    let name = format!("kirana_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&base)
        .await
        .expect("connecting to KIRANA_TEST_POSTGRES_URL");
    sqlx::Executor::execute(
        &mut conn,
        format!("CREATE DATABASE {name} TEMPLATE template0").as_str(),
    )
    .await
    .expect("creating a test database");
    let _ = sqlx::Connection::close(conn).await;
    let (server, _) = base
        .rsplit_once('/')
        .filter(|(server, _)| server.contains("://") && !server.ends_with('/'))
        .expect("KIRANA_TEST_POSTGRES_URL must name a database, like postgres://user:pass@127.0.0.1:5432/postgres");
    (format!("{server}/{name}"), name)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, "").await
    }

    /// Starts a host whose configuration is the test defaults plus `extra_toml`
    /// (which may override any key, e.g. `"[cart]\ndelivery_fee = 3000"`).
    pub async fn spawn_with(backend: Backend, extra_toml: &str) -> Self {
        Self::spawn_on(backend, None, extra_toml).await
    }

    /// Another replica of this shop: a second host on the same PostgreSQL database
    /// (its own data directory), with the test defaults plus `extra_toml`. The first
    /// host owns the database: stop the replicas first.
    pub async fn replica(&self, extra_toml: &str) -> Self {
        assert_eq!(
            self.backend,
            Backend::Postgres,
            "replicas share a PostgreSQL database"
        );
        let url = self.database_url.clone();
        Self::spawn_on(Backend::Postgres, Some(url), extra_toml).await
    }

    async fn spawn_on(backend: Backend, shared_database: Option<String>, extra_toml: &str) -> Self {
        check_plugins_built();
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, postgres_database) = match (backend, shared_database) {
            (Backend::Sqlite, _) => (String::new(), None),
            (Backend::Postgres, Some(url)) => (url, None),
            (Backend::Postgres, None) => {
                let (url, name) = fresh_postgres_database().await;
                (url, Some(name))
            }
        };
        let cache = workspace().join("target/kirana-test-cache");
        let base_toml = format!(
            r#"
listen = "127.0.0.1:0"
data_dir = "{data}"
database_url = "{database_url}"
plugin_dir = "{plugins}"
cache_dir = "{cache}"
log_level = "warn"
# Test hosts run like `kirana up`: the development values of config/development.toml
# (payment sandbox secrets, outbox showing OTP codes) fill what this file leaves unset.
dev = true

[admin]
operator_token = "{OPERATOR_TOKEN}"

[runtime]
pool_instances = 64

[limits]
db_connections = 4

[identity]
jwt_secret = "{TEST_JWT_SECRET}"
# Cheap hashing keeps the suite fast; production uses the defaults.
argon2_memory_kib = 1024
argon2_iterations = 1

[events]
backoff_ms = 50
max_backoff_ms = 400
poll_ms = 20
max_attempts = 4
lease_ms = 3000

# Tests share 127.0.0.1; rate-limit tests set their own low budgets.
[rate_limit]
per_minute = 1000000
auth_per_minute = 1000000
admin_per_minute = 1000000

[auth]
admin_email = "{ADMIN_EMAIL}"
admin_password = "{ADMIN_PASSWORD}"

# The embedded default names the assets relative to the working directory.
[plugins.storefront]
assets = "{storefront_assets}"
grants = ["pages"]

[plugins.hello]
file = "hello.wasm"
instances = "reuse"
grants = ["kv", "realtime", "mail"]

[plugins.faulty]
file = "faulty.wasm"
timeout_ms = 1000
memory_mb = 32
grants = ["sql", "kv", "publish:faulty.flaky", "call:faulty", "subscribe:faulty.flaky", "files:2"]
"#,
            data = dir.path().display(),
            plugins = plugin_dir().display(),
            cache = cache.display(),
            storefront_assets = workspace().join("plugins/storefront/assets").display(),
        );
        let config_path = dir.path().join("kirana.toml");
        let doc = merge_toml(&base_toml, extra_toml);
        std::fs::write(&config_path, doc).expect("writing the test config");
        let mut app = Self {
            base: String::new(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            backend,
            app: None,
            config_path,
            base_toml,
            postgres_database,
            database_url,
            _dir: dir,
        };
        app.start().await;
        app
    }

    async fn start(&mut self) {
        let config = Config::load_with_env(Some(&self.config_path), &[]).expect("test config");
        let app = App::start(config).await.expect("the host starts");
        self.base = format!("http://{}", app.addr);
        self.app = Some(app);
    }

    /// Stops the host gracefully and starts it again on the same data.
    pub async fn restart(&mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await.expect("graceful stop");
        }
        self.start().await;
    }

    /// Stops the host and starts it again on the same data with the test defaults plus
    /// `extra_toml` (replacing the configuration it was spawned with).
    pub async fn restart_with(&mut self, extra_toml: &str) {
        let doc = merge_toml(&self.base_toml, extra_toml);
        std::fs::write(&self.config_path, doc).expect("writing the test config");
        self.restart().await;
    }

    /// Stops the host and drops the test's PostgreSQL database and roles (a test that
    /// panics leaves them; `./scripts/test`'s throw-away server goes as a whole).
    pub async fn stop(mut self) {
        let stopped = match self.app.take() {
            Some(app) => app.stop().await,
            None => Ok(()),
        };
        if let (Some(name), Ok(admin)) = (
            self.postgres_database.take(),
            std::env::var("KIRANA_TEST_POSTGRES_URL"),
        ) {
            if let Err(e) = kirana::storage::drop_postgres_database(&admin, &name).await {
                eprintln!("dropping test database {name}: {e:#}");
            }
        }
        // A stop that is not graceful (requests or streams left hanging) fails the test
        // that caused it.
        stopped.expect("the host stops gracefully");
    }

    /// The running host (for looking at its state directly).
    pub fn app(&self) -> &App {
        self.app.as_ref().expect("the host is running")
    }

    /// The host's `data_dir` (SQLite files, plugin files on SQLite).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A string unique within the test process (for emails, SKUs, slugs).
    pub fn unique(&self, prefix: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!(
            "{prefix}{}{n}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.client.request(method, self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        into_resp(rb.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.request("GET", path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.request("POST", path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.request("PUT", path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.request("PATCH", path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.request("DELETE", path, token, None).await
    }

    /// A request with an exact body and content type, for bad-input tests.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.client.request(method, self.url(path)).body(body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        into_resp(rb.send().await.expect("request sent")).await
    }

    /// A JSON route refuses, before any of its logic, a body that is not JSON (`400
    /// invalid_json`) and the good body `good` sent with no Content-Type or as
    /// `text/plain` (`415 unsupported_media_type`).
    pub async fn assert_rejects_bad_bodies(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        good: &[u8],
    ) {
        self.raw(
            method,
            path,
            token,
            Some("application/json"),
            b"{nope".to_vec(),
        )
        .await
        .assert_error(400, "invalid_json");
        for content_type in [None, Some("text/plain")] {
            self.raw(method, path, token, content_type, good.to_vec())
                .await
                .assert_error(415, "unsupported_media_type");
        }
    }

    /// Uploads component bytes to the operator API (`POST /admin/plugins`), as
    /// `kirana plugins install` does.
    pub async fn upload_component(&self, token: Option<&str>, bytes: Vec<u8>) -> Resp {
        self.raw(
            "POST",
            "/admin/plugins",
            token,
            Some("application/wasm"),
            bytes,
        )
        .await
    }

    /// A unique lower-case alphanumeric word (usable in slugs and search terms).
    pub fn word(&self, prefix: &str) -> String {
        self.unique(prefix)
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect()
    }

    /// A fresh category made by `admin` (so test products never mix with the seeded
    /// ones); returns its id and slug.
    pub async fn new_category(&self, admin: &str) -> (String, String) {
        let slug = self.word("cat");
        let r = self
            .post(
                "/api/v1/categories",
                Some(admin),
                json!({"name": format!("Test {slug}"), "slug": slug}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.body["id"].as_str().expect("category id").to_string();
        (id, slug)
    }

    /// Logs in the configured first admin.
    pub async fn admin_token(&self) -> String {
        let r = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200, "admin login failed: {}", r.text);
        r.body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// Signs up a fresh customer.
    pub async fn customer(&self) -> Customer {
        let email = format!("{}@example.in", self.unique("cust"));
        let password = "password123".to_string();
        let r = self
            .post(
                "/api/v1/auth/signup",
                None,
                json!({"email": email, "password": password, "name": "Test Customer"}),
            )
            .await;
        assert_eq!(r.status, 201, "signup failed: {}", r.text);
        Customer {
            token: r.body["access_token"]
                .as_str()
                .expect("access_token")
                .to_string(),
            refresh_token: r.body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_string(),
            user_id: r.body["user"]["id"].as_str().expect("user.id").to_string(),
            email,
            password,
        }
    }

    /// Signs a token with the test key: any subject, role, session and expiry.
    pub fn sign(&self, user_id: &str, role: &str, sid: &str, exp: i64) -> String {
        let claims =
            json!({"sub": user_id, "role": role, "sid": sid, "iat": exp - 3600, "exp": exp});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
        )
        .expect("signing")
    }

    /// Polls `f` every 25 ms until it returns `Some`, for at most `secs` seconds.
    pub async fn eventually<T, F, Fut>(&self, secs: u64, mut f: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if let Some(v) = f().await {
                return Some(v);
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        None
    }
}

/// A fresh E.164 Indian mobile number (`+919…`), unique across tests.
/// Moves every committed event from the plugins' outboxes to the bus now (the relay
/// runs in the background), so a test can read the bus.
pub async fn relay(app: &TestApp) {
    kirana::registry::effects::relay_all(&app.app().platform).await;
}

/// The operator takes plugin `name` out of service (`"disable"`) or puts it back
/// (`"enable"`, its live version), asserting 200.
pub async fn plugin_action(app: &TestApp, name: &str, action: &str) {
    let r = app
        .post(
            &format!("/admin/plugins/{name}/{action}"),
            Some(OPERATOR_TOKEN),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{action} {name}: {}", r.text);
}

/// The sum of the `/metrics` samples whose line starts with `series` (a name, or a name
/// with its labels as the host writes them: `kirana_traps_total{plugin="faulty"}`).
pub async fn metric(app: &TestApp, series: &str) -> f64 {
    let r = app.get("/metrics", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.text
        .lines()
        .filter(|l| l.starts_with(series) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until the asynchronous work is done, as the operator API shows it: every
/// committed event is on the bus and no delivery is due (or due within 2 s), running or
/// being retried (timers scheduled for later may wait). Panics after 20 s naming what is left, so a
/// "nothing happened" check after it cannot pass merely because the work was late.
pub async fn settled(app: &TestApp) {
    use time::format_description::well_known::Rfc3339;
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        relay(app).await;
        let r = app
            .get("/admin/events?status=pending", Some(OPERATOR_TOKEN))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let now = time::OffsetDateTime::now_utc();
        let busy: Vec<&Value> = r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|d| {
                let next = d["next_attempt_at"]
                    .as_str()
                    .and_then(|t| time::OffsetDateTime::parse(t, &Rfc3339).ok())
                    .expect("next_attempt_at");
                // A timer due within two seconds counts as work still to come.
                d["in_progress"] == true
                    || d["attempts"] != 0
                    || next <= now + time::Duration::seconds(2)
            })
            .collect();
        if busy.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "the event work did not settle: {busy:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Puts an event on the bus as if plugin `source` had published it (what an
/// at-least-once bus may deliver again), due after `delay_ms`, for every subscriber.
pub async fn inject_event(
    app: &TestApp,
    id: &str,
    source: &str,
    topic: &str,
    payload: &Value,
    delay_ms: u64,
) {
    let platform = app.app().platform.clone();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is past 1970")
            .as_millis(),
    )
    .expect("milliseconds fit");
    let event = kirana::capabilities::events::NewEvent {
        id: id.to_string(),
        topic: topic.to_string(),
        payload: payload.to_string(),
        source: source.to_string(),
        source_version: "0.0.0-test".to_string(),
        created_at: now,
        deliver_at: now + i64::try_from(delay_ms).expect("a small delay"),
    };
    platform
        .events
        .commit(&[event], |t| platform.registry.subscribers(t))
        .await
        .expect("putting a test event on the bus");
}

/// `s` percent-encoded for a query value (every byte but the unreserved ones).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn unique_phone() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 1_000_000_000;
    format!("+919{n:09}")
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub async fn into_resp(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        text,
    }
}

/// `extra` merged over `base`, both TOML documents (tables merge, values replace).
fn merge_toml(base: &str, extra: &str) -> String {
    fn merge(a: &mut toml::Table, b: toml::Table) {
        for (k, v) in b {
            match (a.get_mut(&k), v) {
                (Some(toml::Value::Table(x)), toml::Value::Table(y)) => merge(x, y),
                (_, v) => {
                    a.insert(k, v);
                }
            }
        }
    }
    let mut a: toml::Table = base.parse().expect("base test config");
    let b: toml::Table = extra.parse().expect("extra test config");
    merge(&mut a, b);
    toml::to_string(&a).expect("serialising the test config")
}

/// A fresh, empty PostgreSQL database (its URL and name) for a test that runs the host
/// binary itself rather than through [`TestApp`] (the crash test); drop it afterwards
/// with `kirana::storage::drop_postgres_database`.
pub async fn new_postgres_database() -> (String, String) {
    fresh_postgres_database().await
}

/// The `src=`/`href=` values of an HTML page that name files of this origin.
pub fn html_references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let Some(end) = rest.find('"') else { break };
            let url = &rest[..end];
            if url.starts_with('/') && !url.starts_with("//") {
                out.push(url.to_string());
            }
        }
    }
    out
}

/// The modules a script imports statically (`import … from "x"`, `import "x"`,
/// `export … from "x"`), resolved against the script's own URL.
pub fn js_imports(base: &str, js: &str) -> Vec<String> {
    let dir = &base[..base.rfind('/').map(|i| i + 1).unwrap_or(0)];
    let mut out = Vec::new();
    for line in js.lines() {
        let line = line.trim();
        let is_import = line.starts_with("import ") || line.starts_with("import\"");
        let is_reexport = line.starts_with("export ") && line.contains(" from ");
        if !(is_import || is_reexport) || line.starts_with("import(") {
            continue;
        }
        let quoted = line
            .rsplit(['"', '\''])
            .nth(1)
            .filter(|s| s.starts_with("./") || s.starts_with("../") || s.starts_with('/'));
        if let Some(spec) = quoted {
            out.push(resolve(dir, spec));
        }
    }
    out
}

/// `spec` (a module path) resolved against the directory URL `dir`.
pub fn resolve(dir: &str, spec: &str) -> String {
    if spec.starts_with('/') {
        return spec.to_string();
    }
    let mut parts: Vec<&str> = dir.trim_end_matches('/').split('/').collect();
    for seg in spec.split('/') {
        match seg {
            "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// Walks a page's first load: the page at `path`, the files it references and the
/// modules they import, each asserted to answer 200 and handed to `check`. Returns the
/// bytes of them all and the files' URLs (the page itself not among them).
pub async fn first_load(
    app: &TestApp,
    path: &str,
    check: impl Fn(&str, &Resp),
) -> (usize, std::collections::BTreeSet<String>) {
    let page = app.get(path, None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let mut total = page.text.len();
    let mut seen = std::collections::BTreeSet::new();
    let mut queue = html_references(&page.text);
    assert!(
        queue.iter().any(|u| u.ends_with(".js")) && queue.iter().any(|u| u.ends_with(".css")),
        "the page references its script and stylesheet: {queue:?}"
    );
    while let Some(url) = queue.pop() {
        if !seen.insert(url.clone()) {
            continue;
        }
        let r = app.get(&url, None).await;
        assert_eq!(
            r.status, 200,
            "{url} is referenced but answers {}",
            r.status
        );
        check(&url, &r);
        total += r.text.len();
        if url.ends_with(".js") {
            queue.extend(js_imports(&url, &r.text));
        }
    }
    (total, seen)
}

//! The crash test of issue 14 ("nothing acknowledged is ever lost"): the real `kirana
//! serve` binary as a child process, concurrent keyed COD and online checkouts from a
//! dozen customers, SIGKILL at random moments and a restart on the same data each
//! time, every unanswered checkout retried with its Idempotency-Key, and then the
//! ledger of what clients were told checked against what the shop holds:
//!
//! - every acknowledged order is there with the same id, total and items;
//! - no key made two orders (orders == distinct acknowledged keys, same ids);
//! - for every product `initial stock == available + held + in live orders`, and no
//!   hold is still `held` after its expiry;
//! - every order reached analytics (the dashboard's counts by status) and notifications
//!   (exactly one "order.placed" per order, for its customer), and no event delivery
//!   is dead.
//!
//! Online orders are paid for half the time (sandbox intent + signed verify); the rest
//! are cancelled by the payment timeout, so cancellation returns stock under crashes
//! too. The figures are printed (`--nocapture`) for the issue's closing note; on a
//! failure the tail of the killed hosts' log is printed with them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::helpers::*;
use crate::shop::payment_signature;

/// The development overlay's admin (config/development.toml); payments are signed with
/// its sandbox key by [`payment_signature`].
const DEV_ADMIN_EMAIL: &str = "admin@kirana.local";
const DEV_ADMIN_PASSWORD: &str = "kirana-admin-123";

const CUSTOMERS: usize = 12;
const KILLS: usize = 8;
/// Short enough that holds of checkouts killed before their order expire within the
/// test, and unpaid online orders are cancelled by the payment timeout.
const HOLD_TTL_SECS: u64 = 3;
const PAYMENT_TIMEOUT_SECS: u64 = 3;
/// Products and their initial stock; the last one runs out (checkouts meet
/// `insufficient_stock` under contention).
const STOCKS: [i64; 4] = [5000, 5000, 5000, 40];
const PRICES: [i64; 4] = [4500, 2700, 9900, 12000];

/// The plugins `kirana serve` loads with the shipped configuration.
const SHOP_PLUGINS: [&str; 9] = [
    "auth",
    "catalog",
    "cart",
    "orders",
    "payments",
    "delivery",
    "notifications",
    "analytics",
    "storefront",
];

/// A port free now and below the kernel's ephemeral range, so that no client socket
/// (of this test or another) can be holding it when the host binds it again after a
/// kill.
fn free_port() -> u16 {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let mut rng = rand::thread_rng();
    for _ in 0..1000 {
        let port = rng.gen_range(10000..ephemeral_low.max(10001));
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below {ephemeral_low}");
}

/// The last `n` lines of `path`.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One `kirana serve` child process at a time, on one data directory / database.
struct Host {
    dir: tempfile::TempDir,
    config: PathBuf,
    /// The hosts' stdout and stderr (their logs), every start appended.
    log: PathBuf,
    base: String,
    child: Option<tokio::process::Child>,
    starts: usize,
    /// Seconds each start took until `/ready` answered 200.
    start_secs: Vec<f64>,
    /// `kirana_recovered_total` after each start.
    recovered: Vec<f64>,
    /// The backend, naming the kept log.
    label: String,
}

impl Drop for Host {
    /// A failing test shows the end of the hosts' log; `KIRANA_CRASH_LOG_DIR` keeps the
    /// whole log (the temp dir goes with the test).
    fn drop(&mut self) {
        if let Ok(dir) = std::env::var("KIRANA_CRASH_LOG_DIR") {
            let to = Path::new(&dir).join(format!("crash-{}.log", self.label));
            let copied = std::fs::create_dir_all(&dir).and_then(|_| std::fs::copy(&self.log, &to));
            if let Err(e) = copied {
                eprintln!("keeping the host log in {}: {e}", to.display());
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of the hosts' log ({}) ---\n{}",
                self.log.display(),
                tail(&self.log, 80)
            );
        }
    }
}

impl Host {
    fn new(backend: Backend, database_url: &str) -> Self {
        for p in SHOP_PLUGINS {
            let f = plugin_dir().join(format!("{p}.wasm"));
            assert!(
                f.exists(),
                "{} is missing: build the plugins first (./scripts/test does it)",
                f.display()
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let cache = workspace().join("target/kirana-test-cache");
        // What the harness writes (helpers.rs TestApp::spawn_with), for the shop's own
        // plugins only, plus short hold and payment lifetimes.
        let toml = format!(
            r#"
listen = "127.0.0.1:{port}"
data_dir = "{data}"
database_url = "{database_url}"
plugin_dir = "{plugins}"
cache_dir = "{cache}"
log_level = "warn,kirana=info,access=info"
log_format = "json"
# Development mode: the published sandbox secrets and admin of config/development.toml.
dev = true

[admin]
operator_token = "{OPERATOR_TOKEN}"

[limits]
db_connections = 4

[identity]
jwt_secret = "{TEST_JWT_SECRET}"
argon2_memory_kib = 1024
argon2_iterations = 1

[events]
backoff_ms = 100
max_backoff_ms = 1000
poll_ms = 20
lease_ms = 3000

[rate_limit]
per_minute = 1000000
auth_per_minute = 1000000
admin_per_minute = 1000000

# The shipped configuration names the storefront's pages relative to the working
# directory, which is the test's own here.
[plugins.storefront]
assets = "{storefront_assets}"

[catalog]
seed = false
hold_ttl_seconds = {HOLD_TTL_SECS}

[orders]
payment_timeout_seconds = {PAYMENT_TIMEOUT_SECS}
"#,
            data = dir.path().display(),
            plugins = plugin_dir().display(),
            cache = cache.display(),
            storefront_assets = workspace().join("plugins/storefront/assets").display(),
        );
        let config = dir.path().join("kirana.toml");
        std::fs::write(&config, toml).expect("writing the config");
        Self {
            log: dir.path().join("kirana.log"),
            config,
            base: format!("http://127.0.0.1:{port}"),
            dir,
            child: None,
            starts: 0,
            start_secs: Vec::new(),
            recovered: Vec::new(),
            label: format!("{backend:?}"),
        }
    }

    /// Log lines of the hosts at `level` (`ERROR`, `WARN`), for the figures.
    fn log_lines(&self, level: &str) -> usize {
        let field = format!("\"level\":\"{level}\"");
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&field))
            .count()
    }

    /// Starts `kirana serve` and waits until `/ready` answers 200.
    async fn start(&mut self, http: &reqwest::Client) {
        use std::io::Write;
        assert!(self.child.is_none(), "a host is already running");
        self.starts += 1;
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("opening the host log");
        let _ = writeln!(out, "=== crash test: start {} ===", self.starts);
        let err = out.try_clone().expect("the host log again");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kirana"));
        cmd.arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let began = Instant::now();
        self.child = Some(cmd.spawn().expect("running kirana serve"));
        loop {
            let ready = http
                .get(format!("{}/ready", self.base))
                .send()
                .await
                .map(|r| r.status().as_u16() == 200)
                .unwrap_or(false);
            if ready {
                break;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("kirana serve exited ({status}) at start {}", self.starts);
            }
            assert!(
                began.elapsed() < Duration::from_secs(90),
                "kirana was not ready 90 s after start {}",
                self.starts
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.start_secs.push(began.elapsed().as_secs_f64());
        let metrics = http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("GET /metrics");
        let text = metrics.text().await.unwrap_or_default();
        let recovered = text
            .lines()
            .filter(|l| l.starts_with("kirana_recovered_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .fold(0.0, |a, b| a + b);
        self.recovered.push(recovered);
    }

    /// SIGKILL (`Child::kill` on unix), and waits for the process to be gone.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("killing kirana");
        }
    }
}

/// An answer whose body arrived whole; anything less is no answer.
fn answered(status: u16, headers: &reqwest::header::HeaderMap, bytes: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(bytes).into_owned();
    Resp {
        status,
        headers: headers.clone(),
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

#[derive(Clone)]
struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    /// `Err` when no whole answer came back (refused, reset, timed out).
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Resp, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await.map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.map_err(|e| e.to_string())?;
        Ok(answered(status, &headers, &bytes))
    }

    /// A request that must answer `want` now (setup and checks, host up).
    async fn expect(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        want: u16,
    ) -> Value {
        let r = self
            .send(method, path, token, &[], body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
        assert_eq!(r.status, want, "{method} {path}: {}", r.text);
        r.body
    }

    /// Every item of a paged list (`page_size` 100).
    async fn all_pages(&self, path: &str, token: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        for page in 1.. {
            let body = self
                .expect(
                    "GET",
                    &format!("{path}{sep}page={page}&page_size=100"),
                    Some(token),
                    None,
                    200,
                )
                .await;
            let got = body["items"].as_array().cloned().unwrap_or_default();
            let total = body["total"].as_u64().unwrap_or(0) as usize;
            let done = got.is_empty();
            items.extend(got);
            if done || items.len() >= total {
                break;
            }
        }
        items
    }
}

#[derive(Debug, Clone)]
struct Shopper {
    token: String,
    user_id: String,
    address: String,
}

/// A checkout whose answer never came (or was a 5xx), to be retried with its key.
#[derive(Debug, Clone)]
struct Unanswered {
    key: String,
    who: usize,
    body: Value,
}

/// What clients were told.
#[derive(Default)]
struct Ledger {
    /// Key → (customer, the order as acknowledged).
    acked: HashMap<String, (usize, Value)>,
    /// Keys answered with a 201 naming another order than a previous 201 for the key.
    two_answers: Vec<String>,
    unanswered: Vec<Unanswered>,
    /// 4xx answers by error code (nothing was made).
    refused: BTreeMap<String, u64>,
}

impl Ledger {
    fn ack(&mut self, key: &str, who: usize, order: Value) {
        if let Some((_, first)) = self.acked.get(key) {
            if first["id"] != order["id"] {
                self.two_answers.push(key.to_string());
            }
            return;
        }
        self.acked.insert(key.to_string(), (who, order));
    }

    fn refuse(&mut self, r: &Resp) {
        let code = r.body["error"]["code"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| r.status.to_string());
        *self.refused.entry(code).or_default() += 1;
    }
}

#[derive(Default)]
struct Counters {
    checkouts: AtomicU64,
    unanswered: AtomicU64,
    retried_in_run: AtomicU64,
    replayed: AtomicU64,
    paid: AtomicU64,
    cart_adds: AtomicU64,
}

struct Shared {
    http: Http,
    shoppers: Vec<Shopper>,
    products: Vec<String>,
    stop: AtomicBool,
    ledger: Mutex<Ledger>,
    n: Counters,
}

enum Outcome {
    Acked(Value),
    Refused(Resp),
    NoAnswer,
}

impl Shared {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the host answers again; false when the test is stopping instead.
    async fn wait_up(&self) -> bool {
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            if let Ok(r) = self.http.send("GET", "/health", None, &[], None).await {
                if r.status == 200 {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn checkout(&self, who: usize, key: &str, body: &Value) -> Outcome {
        self.n.checkouts.fetch_add(1, Ordering::Relaxed);
        let token = &self.shoppers[who].token;
        let r = self
            .http
            .send(
                "POST",
                "/api/v1/orders",
                Some(token),
                &[("idempotency-key", key)],
                Some(body),
            )
            .await;
        match r {
            Ok(r) if r.status == 201 && r.body["id"].is_string() => {
                if r.header("idempotent-replayed").is_some() {
                    self.n.replayed.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Acked(r.body)
            }
            // Someone else holds the key's claim (a request still running): ask again.
            Ok(r) if r.status == 409 && r.body["error"]["code"] == "idempotency_in_progress" => {
                Outcome::NoAnswer
            }
            Ok(r) if r.status >= 500 || r.status == 201 => Outcome::NoAnswer,
            Ok(r) => Outcome::Refused(r),
            Err(_) => Outcome::NoAnswer,
        }
    }

    /// Pays an online order in the sandbox (intent, then a signed verify); errors are
    /// left to the payment timeout.
    async fn pay(&self, who: usize, order_id: &str) {
        let token = &self.shoppers[who].token;
        let key = format!("intent-{}", uuid::Uuid::new_v4().simple());
        let Ok(intent) = self
            .http
            .send(
                "POST",
                "/api/v1/payments/intents",
                Some(token),
                &[("idempotency-key", &key)],
                Some(&json!({ "order_id": order_id })),
            )
            .await
        else {
            return;
        };
        let Some(provider_order_id) = intent.body["provider_order_id"].as_str() else {
            return;
        };
        let pid = format!("pay_{}", uuid::Uuid::new_v4().simple());
        let signature = payment_signature(provider_order_id, &pid);
        let verified = self
            .http
            .send(
                "POST",
                "/api/v1/payments/verify",
                Some(token),
                &[],
                Some(&json!({"order_id": order_id, "provider_payment_id": pid,
                             "signature": signature})),
            )
            .await;
        if matches!(verified, Ok(r) if r.status == 200) {
            self.n.paid.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One customer's loop: fill the cart, check out with a fresh key (COD or online),
/// maybe pay. An unanswered checkout is retried with its key once the host is back,
/// or (half the time) left for the end, while the customer carries on.
async fn worker(s: Arc<Shared>, who: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let token = s.shoppers[who].token.clone();
    let address = s.shoppers[who].address.clone();
    while !s.stop.load(Ordering::SeqCst) {
        for _ in 0..rng.gen_range(1..=2) {
            let product = &s.products[rng.gen_range(0..s.products.len())];
            let line = json!({"product_id": product, "quantity": rng.gen_range(1..=2)});
            // 409 (out of stock) and 400 (a full line) are fine: the cart is as it is.
            match s
                .http
                .send("POST", "/api/v1/cart/items", Some(&token), &[], Some(&line))
                .await
            {
                Ok(_) => {
                    s.n.cart_adds.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    if !s.wait_up().await {
                        return;
                    }
                }
            }
        }
        let key = format!("crash-{who}-{}", uuid::Uuid::new_v4().simple());
        let method = if rng.gen_bool(0.5) { "cod" } else { "online" };
        let body = json!({"address_id": address, "payment_method": method});
        let defer = rng.gen_bool(0.5);
        let mut retried = false;
        loop {
            match s.checkout(who, &key, &body).await {
                Outcome::Acked(order) => {
                    let id = order["id"].as_str().unwrap_or_default().to_string();
                    s.ledger().ack(&key, who, order);
                    if method == "online" && rng.gen_bool(0.5) {
                        s.pay(who, &id).await;
                    }
                    break;
                }
                Outcome::Refused(r) => {
                    s.ledger().refuse(&r);
                    // What a shopper does: drop the lines that ran out, keep the rest.
                    let short = r.body["error"]["details"]["items"].as_array().cloned();
                    for product in short.unwrap_or_default().iter().filter_map(Value::as_str) {
                        let path = format!("/api/v1/cart/items/{product}");
                        let _ = s.http.send("DELETE", &path, Some(&token), &[], None).await;
                    }
                    break;
                }
                Outcome::NoAnswer => {
                    if !retried {
                        s.n.unanswered.fetch_add(1, Ordering::Relaxed);
                    }
                    if defer || s.stop.load(Ordering::SeqCst) || !s.wait_up().await {
                        s.ledger().unanswered.push(Unanswered {
                            key: key.clone(),
                            who,
                            body: body.clone(),
                        });
                        break;
                    }
                    if !retried {
                        s.n.retried_in_run.fetch_add(1, Ordering::Relaxed);
                    }
                    retried = true;
                }
            }
        }
    }
}

/// Everything the checks found, printed whole.
#[derive(Debug, Default)]
struct Figures {
    orders: usize,
    acknowledged_keys: usize,
    acknowledged_lost: usize,
    acknowledged_changed: usize,
    orders_without_acknowledged_key: usize,
    keys_with_two_orders: usize,
    live_orders: usize,
    cancelled_orders: usize,
    paid_orders: usize,
    held_holds: usize,
    held_past_expiry: usize,
    /// Product → initial − (available + held + in live orders): leaked (> 0) or
    /// oversold (< 0) units.
    stock_off: BTreeMap<String, i64>,
    dead_deliveries: usize,
    pending_deliveries: usize,
    analytics_orders_today: i64,
    orders_today: i64,
    analytics_status_mismatches: Vec<String>,
    orders_not_notified: usize,
    orders_notified_more_than_once: usize,
    stray_placed_notifications: usize,
}

impl Figures {
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.acknowledged_lost > 0 {
            p.push(format!(
                "{} acknowledged orders lost",
                self.acknowledged_lost
            ));
        }
        if self.acknowledged_changed > 0 {
            p.push(format!(
                "{} acknowledged orders changed",
                self.acknowledged_changed
            ));
        }
        if self.orders != self.acknowledged_keys {
            p.push(format!(
                "{} orders for {} acknowledged keys",
                self.orders, self.acknowledged_keys
            ));
        }
        if self.orders_without_acknowledged_key > 0 {
            p.push(format!(
                "{} orders without an acknowledged key",
                self.orders_without_acknowledged_key
            ));
        }
        if self.keys_with_two_orders > 0 {
            p.push(format!(
                "{} keys answered with two orders",
                self.keys_with_two_orders
            ));
        }
        for (product, off) in &self.stock_off {
            if *off != 0 {
                let what = if *off > 0 { "leaked" } else { "oversold" };
                p.push(format!("{product}: {} units {what}", off.abs()));
            }
        }
        if self.held_past_expiry > 0 {
            p.push(format!(
                "{} holds still held past their expiry",
                self.held_past_expiry
            ));
        }
        if self.dead_deliveries > 0 {
            p.push(format!("{} dead event deliveries", self.dead_deliveries));
        }
        if self.analytics_orders_today != self.orders_today {
            p.push(format!(
                "analytics counts {} orders today, the shop has {}",
                self.analytics_orders_today, self.orders_today
            ));
        }
        p.extend(self.analytics_status_mismatches.iter().cloned());
        if self.orders_not_notified > 0 {
            p.push(format!(
                "{} orders without an order.placed notification",
                self.orders_not_notified
            ));
        }
        if self.orders_notified_more_than_once > 0 {
            p.push(format!(
                "{} orders notified more than once",
                self.orders_notified_more_than_once
            ));
        }
        if self.stray_placed_notifications > 0 {
            p.push(format!(
                "{} order.placed notifications for no order of that customer",
                self.stray_placed_notifications
            ));
        }
        p
    }
}

fn units(lines: &Value, product_id: &str) -> i64 {
    lines
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|l| l["product_id"] == product_id)
                .filter_map(|l| l["quantity"].as_i64())
                .sum()
        })
        .unwrap_or(0)
}

fn rfc3339(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

fn utc_day(t: time::OffsetDateTime) -> String {
    let d = t.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Reads the shop back and compares it with the ledger.
async fn measure(s: &Shared, admin: &str, initial: &[(String, i64)]) -> Figures {
    let http = &s.http;
    let mut f = Figures::default();
    let acked: Vec<(String, usize, Value)> = {
        let ledger = s.ledger();
        f.keys_with_two_orders = ledger.two_answers.len();
        ledger
            .acked
            .iter()
            .map(|(k, (who, o))| (k.clone(), *who, o.clone()))
            .collect()
    };
    f.acknowledged_keys = acked.len();

    // Every acknowledged order, as its customer sees it.
    for (_, who, order) in &acked {
        let id = order["id"].as_str().unwrap_or_default();
        let r = http
            .send(
                "GET",
                &format!("/api/v1/orders/{id}"),
                Some(&s.shoppers[*who].token),
                &[],
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("GET order {id}: {e}"));
        if r.status == 404 {
            f.acknowledged_lost += 1;
            continue;
        }
        assert_eq!(r.status, 200, "GET order {id}: {}", r.text);
        let same = [
            "id",
            "user_id",
            "total",
            "subtotal",
            "items",
            "payment_method",
            "created_at",
        ]
        .iter()
        .all(|k| r.body[*k] == order[*k]);
        if !same {
            f.acknowledged_changed += 1;
            eprintln!("changed: acknowledged {order}\n  now {}", r.text);
        }
    }

    // Every order the shop has, against the acknowledged ones.
    let orders = http.all_pages("/api/v1/admin/orders", admin).await;
    f.orders = orders.len();
    let acked_ids: HashSet<&str> = acked
        .iter()
        .filter_map(|(_, _, o)| o["id"].as_str())
        .collect();
    f.orders_without_acknowledged_key = orders
        .iter()
        .filter(|o| !acked_ids.contains(o["id"].as_str().unwrap_or_default()))
        .count();
    if acked_ids.len() != acked.len() {
        f.keys_with_two_orders += acked.len() - acked_ids.len();
    }
    let live: Vec<&Value> = orders
        .iter()
        .filter(|o| o["status"] != "cancelled")
        .collect();
    f.live_orders = live.len();
    f.cancelled_orders = orders.len() - live.len();
    f.paid_orders = orders
        .iter()
        .filter(|o| o["payment_status"] == "paid")
        .count();

    // Stock: initial == available + held + in live orders; no hold held past expiry.
    let held = http
        .all_pages("/api/v1/admin/stock-holds?status=held", admin)
        .await;
    f.held_holds = held.len();
    let now = time::OffsetDateTime::now_utc();
    f.held_past_expiry = held
        .iter()
        .filter(|h| {
            h["expires_at"]
                .as_str()
                .and_then(rfc3339)
                .is_none_or(|t| t < now)
        })
        .count();
    for (product, stock) in initial {
        let available = http
            .expect(
                "GET",
                &format!("/api/v1/products/{product}"),
                None,
                None,
                200,
            )
            .await["stock"]
            .as_i64()
            .expect("stock");
        let in_holds: i64 = held.iter().map(|h| units(&h["items"], product)).sum();
        let in_orders: i64 = live.iter().map(|o| units(&o["items"], product)).sum();
        f.stock_off
            .insert(product.clone(), stock - available - in_holds - in_orders);
    }

    // Event deliveries: none dead, none left.
    for (status, slot) in [
        ("dead", &mut f.dead_deliveries),
        ("pending", &mut f.pending_deliveries),
    ] {
        let r = http
            .expect(
                "GET",
                &format!("/admin/events?status={status}"),
                Some(OPERATOR_TOKEN),
                None,
                200,
            )
            .await;
        *slot = r["items"].as_array().map(Vec::len).unwrap_or(0);
    }

    // Analytics: today's orders by status, as the dashboard counts them.
    loop {
        let before = utc_day(time::OffsetDateTime::now_utc());
        let d = http
            .expect("GET", "/api/v1/analytics/dashboard", Some(admin), None, 200)
            .await;
        if utc_day(time::OffsetDateTime::now_utc()) != before {
            continue; // midnight passed during the call
        }
        let today: Vec<&Value> = orders
            .iter()
            .filter(|o| {
                o["created_at"]
                    .as_str()
                    .and_then(rfc3339)
                    .is_some_and(|t| utc_day(t) == before)
            })
            .collect();
        f.orders_today = today.len() as i64;
        f.analytics_orders_today = d["orders_today"].as_i64().unwrap_or(-1);
        let mut by_status: BTreeMap<&str, i64> = BTreeMap::new();
        for o in &today {
            *by_status
                .entry(o["status"].as_str().unwrap_or_default())
                .or_default() += 1;
        }
        if let Some(shown) = d["orders_by_status"].as_object() {
            for (status, n) in shown {
                let want = by_status.get(status.as_str()).copied().unwrap_or(0);
                if n.as_i64() != Some(want) {
                    f.analytics_status_mismatches.push(format!(
                        "analytics shows {n} {status} orders today, the shop has {want}"
                    ));
                }
            }
        }
        break;
    }

    // Notifications: one order.placed per order, for its customer.
    for sh in &s.shoppers {
        let notes = http.all_pages("/api/v1/notifications", &sh.token).await;
        let mut placed: HashMap<String, usize> = HashMap::new();
        for n in notes.iter().filter(|n| n["type"] == "order.placed") {
            let id = n["data"]["order_id"].as_str().unwrap_or_default();
            *placed.entry(id.to_string()).or_default() += 1;
        }
        let mine: Vec<&str> = orders
            .iter()
            .filter(|o| o["user_id"] == sh.user_id.as_str())
            .filter_map(|o| o["id"].as_str())
            .collect();
        for id in &mine {
            match placed.get(*id).copied().unwrap_or(0) {
                0 => f.orders_not_notified += 1,
                1 => {}
                _ => f.orders_notified_more_than_once += 1,
            }
        }
        f.stray_placed_notifications += placed
            .keys()
            .filter(|id| !mine.contains(&id.as_str()))
            .count();
    }
    f
}

/// Logs in, or signs up, through the API; the access token.
async fn token_of(http: &Http, path: &str, body: Value, want: u16) -> (String, Value) {
    let b = http.expect("POST", path, None, Some(&body), want).await;
    let t = b["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    (t, b)
}

async fn crash_test(backend: Backend) {
    let began = Instant::now();
    let postgres = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(new_postgres_database().await),
    };
    let url = postgres.as_ref().map(|(u, _)| u.as_str()).unwrap_or("");
    let mut host = Host::new(backend, url);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");
    let http = Http {
        client: client.clone(),
        base: host.base.clone(),
    };
    host.start(&client).await;

    // The shop: a category, products with known stock, customers with an address.
    let (admin, _) = token_of(
        &http,
        "/api/v1/auth/login",
        json!({"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD}),
        200,
    )
    .await;
    let slug = format!("crash{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let category = http
        .expect(
            "POST",
            "/api/v1/categories",
            Some(&admin),
            Some(&json!({"name": "Crash test", "slug": slug})),
            201,
        )
        .await["id"]
        .as_str()
        .expect("category id")
        .to_string();
    let mut initial = Vec::new();
    for (i, (stock, price)) in STOCKS.iter().zip(PRICES).enumerate() {
        let sku = format!("CRASH-{i}-{slug}");
        let p = http
            .expect(
                "POST",
                "/api/v1/products",
                Some(&admin),
                Some(&json!({
                    "sku": sku, "name": format!("Crash test atta {i}"),
                    "description": "Chakki atta", "category_id": category,
                    "brand": "Test Mills", "unit": "5 kg", "price": price, "mrp": price + 500,
                    "stock": stock, "image_url": "https://img.example/atta.jpg"
                })),
                201,
            )
            .await;
        initial.push((p["id"].as_str().expect("product id").to_string(), *stock));
    }
    let mut shoppers = Vec::new();
    for i in 0..CUSTOMERS {
        let email = format!("crash{i}-{slug}@example.in");
        let (token, b) = token_of(
            &http,
            "/api/v1/auth/signup",
            json!({"email": email, "password": "password123", "name": format!("Crash {i}")}),
            201,
        )
        .await;
        let address = http
            .expect(
                "POST",
                "/api/v1/addresses",
                Some(&token),
                Some(
                    &json!({"label": "Home", "line1": "12 MG Road", "city": "Bengaluru",
                             "pincode": "560001", "lat": 12.97, "lon": 77.59}),
                ),
                201,
            )
            .await["id"]
            .as_str()
            .expect("address id")
            .to_string();
        shoppers.push(Shopper {
            token,
            user_id: b["user"]["id"].as_str().expect("user id").to_string(),
            address,
        });
    }
    let setup_secs = began.elapsed().as_secs_f64();

    // The load, and the kills.
    let shared = Arc::new(Shared {
        http: http.clone(),
        shoppers,
        products: initial.iter().map(|(p, _)| p.clone()).collect(),
        stop: AtomicBool::new(false),
        ledger: Mutex::new(Ledger::default()),
        n: Counters::default(),
    });
    let seed: u64 = rand::random();
    let workers: Vec<_> = (0..CUSTOMERS)
        .map(|who| tokio::spawn(worker(shared.clone(), who, seed.wrapping_add(who as u64))))
        .collect();
    let load_began = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kills = 0;
    for k in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1000..2500))).await;
        host.kill().await;
        kills += 1;
        if k + 1 < KILLS {
            host.start(&client).await;
        }
    }
    // The last kill leaves the host down: the workers stop, what was in flight stays
    // unanswered.
    shared.stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.expect("a worker panicked");
    }
    let load_secs = load_began.elapsed().as_secs_f64();

    // Restart once more and retry every unanswered checkout with its key until answered.
    host.start(&client).await;
    let pending: Vec<Unanswered> = std::mem::take(&mut shared.ledger().unanswered);
    let (mut retried_acked, mut retried_refused) = (0, 0);
    for u in &pending {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match shared.checkout(u.who, &u.key, &u.body).await {
                Outcome::Acked(order) => {
                    shared.ledger().ack(&u.key, u.who, order);
                    retried_acked += 1;
                    break;
                }
                Outcome::Refused(r) => {
                    shared.ledger().refuse(&r);
                    retried_refused += 1;
                    break;
                }
                Outcome::NoAnswer => {
                    assert!(
                        Instant::now() < deadline,
                        "checkout key {} unanswered 30 s after the restart",
                        u.key
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    // Wait for the async work (events, hold expiries, payment timeouts) to finish, then
    // read the shop back. Figures that disagree are read again for a while (the relay
    // sweeps every 5 s at the latest) before the test fails on them.
    let settle_began = Instant::now();
    let mut quiet = 0;
    while quiet < 3 && settle_began.elapsed() < Duration::from_secs(40) {
        let r = http
            .expect(
                "GET",
                "/admin/events?status=pending",
                Some(OPERATOR_TOKEN),
                None,
                200,
            )
            .await;
        let left = r["items"].as_array().map(Vec::len).unwrap_or(0);
        quiet = if left == 0 { quiet + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut figures = measure(&shared, &admin, &initial).await;
    while !figures.problems().is_empty() && settle_began.elapsed() < Duration::from_secs(50) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        figures = measure(&shared, &admin, &initial).await;
    }
    let settle_secs = settle_began.elapsed().as_secs_f64();
    let refused = shared.ledger().refused.clone();
    let n = &shared.n;
    println!(
        "crash test [{backend:?}]: {} orders, {} acknowledged keys ({} on the final retry), \
         {kills} kills + final restart; checkouts sent {} (cart adds {}), unanswered {} \
         (retried during the run {}, left for the end {}: {} acknowledged and {} refused on \
         retry), replayed answers {}, refused {:?}; {} live / {} cancelled / {} paid orders \
         ({} verified payments)",
        figures.orders,
        figures.acknowledged_keys,
        retried_acked,
        n.checkouts.load(Ordering::Relaxed),
        n.cart_adds.load(Ordering::Relaxed),
        n.unanswered.load(Ordering::Relaxed),
        n.retried_in_run.load(Ordering::Relaxed),
        pending.len(),
        retried_acked,
        retried_refused,
        n.replayed.load(Ordering::Relaxed),
        refused,
        figures.live_orders,
        figures.cancelled_orders,
        figures.paid_orders,
        n.paid.load(Ordering::Relaxed),
    );
    println!(
        "crash test [{backend:?}]: lost {}, changed {}, orders without an acknowledged key {}, \
         keys with two orders {}, stock off by product {:?} (held holds {}, held past expiry \
         {}), dead deliveries {}, pending deliveries {}, analytics {} of {} orders today \
         (status mismatches {}), orders not notified {}, notified twice {}, stray \
         notifications {}",
        figures.acknowledged_lost,
        figures.acknowledged_changed,
        figures.orders_without_acknowledged_key,
        figures.keys_with_two_orders,
        figures.stock_off.values().collect::<Vec<_>>(),
        figures.held_holds,
        figures.held_past_expiry,
        figures.dead_deliveries,
        figures.pending_deliveries,
        figures.analytics_orders_today,
        figures.orders_today,
        figures.analytics_status_mismatches.len(),
        figures.orders_not_notified,
        figures.orders_notified_more_than_once,
        figures.stray_placed_notifications,
    );
    println!(
        "crash test [{backend:?}]: {:.1} s in all (setup {setup_secs:.1}, load {load_secs:.1}, \
         settle and checks {settle_secs:.1}); starts took {:?} s; kirana_recovered_total \
         after each start {:?}; host log: {} ERROR and {} WARN lines",
        began.elapsed().as_secs_f64(),
        host.start_secs
            .iter()
            .map(|s| (s * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        host.recovered,
        host.log_lines("ERROR"),
        host.log_lines("WARN"),
    );
    let problems = figures.problems();
    if !problems.is_empty() {
        panic!("crash test [{backend:?}] found losses: {problems:#?}\n{figures:#?}");
    }
    assert!(
        figures.orders > 0 && kills >= 3,
        "the test placed no order or killed too little"
    );

    host.kill().await;
    if let (Some((_, name)), Ok(admin_url)) = (postgres, std::env::var("KIRANA_TEST_POSTGRES_URL"))
    {
        if let Err(e) = kirana::storage::drop_postgres_database(&admin_url, &name).await {
            eprintln!("dropping test database {name}: {e:#}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    crash_test(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    crash_test(Backend::Postgres).await;
}

/// The access log (target `access`) names each request's user, never what proves who
/// they are: no password, access token or refresh token reaches the host's log, even
/// when a client puts one in the query string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_never_holds_secrets() {
    let mut host = Host::new(Backend::Sqlite, "");
    let client = reqwest::Client::new();
    let http = Http {
        client: client.clone(),
        base: host.base.clone(),
    };
    host.start(&client).await;
    let (token, pair) = token_of(
        &http,
        "/api/v1/auth/login",
        json!({"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD}),
        200,
    )
    .await;
    let refresh = pair["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string();
    let user_id = pair["user"]["id"]
        .as_str()
        .or_else(|| pair["user_id"].as_str())
        .expect("the user's id")
        .to_string();
    http.expect("GET", "/api/v1/auth/me", Some(&token), None, 200)
        .await;
    let leaky = format!("/api/v1/products?access_token={token}&password={DEV_ADMIN_PASSWORD}");
    http.expect("GET", &leaky, None, None, 200).await;
    http.expect(
        "POST",
        "/api/v1/auth/refresh",
        None,
        Some(&json!({ "refresh_token": refresh })),
        200,
    )
    .await;
    host.kill().await;
    let log = std::fs::read_to_string(&host.log).expect("the host's log");
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"target\":\"access\""))
        .collect();
    assert!(
        access.iter().any(|l| l.contains(&user_id)),
        "the access log names the signed-in user: {access:?}"
    );
    assert!(access.len() >= 4, "one line per request: {access:?}");
    for secret in [token.as_str(), refresh.as_str(), DEV_ADMIN_PASSWORD] {
        assert!(
            !log.contains(secret),
            "the log holds a secret ({}...): {}",
            &secret[..6.min(secret.len())],
            tail(&host.log, 20)
        );
    }
}

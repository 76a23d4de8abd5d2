//! Many replicas, one shop: two real hosts on one PostgreSQL database, with one Redis
//! (everything shared) and without (revocations and plugin switches over
//! LISTEN/NOTIFY), and Redis stopped and started again under load.
//!
//! The propagation bounds (1 s, 2 s) are the behaviour under test: a replica that
//! serves a revoked token or a disabled plugin past its bound is wrong, not slow.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;
use crate::messaging::{wave, Sse};
use crate::shop::*;

/// A real `redis-server` on a free port, killed when dropped.
struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self { port, child: None };
        server.run().await;
        server
    }

    async fn run(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for the replica tests (apt-get install redis-server)");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn config(&self, extra: &str) -> String {
        format!("redis_url = \"{}\"\n{extra}", self.url())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it holds or `bound` passes; how long it took, or `None`.
async fn within<F, Fut>(bound: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > bound {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn two_replicas(extra: &str) -> (TestApp, TestApp) {
    let a = TestApp::spawn_with(Backend::Postgres, extra).await;
    let b = a.replica(extra).await;
    (a, b)
}

async fn stop_both(a: TestApp, b: TestApp) {
    b.stop().await;
    a.stop().await;
}

/// A token from A works on B; a logout on A is refused on A at once and on B within
/// 1 s, although B had just checked (and cached) the session as live.
async fn logout_reaches_the_other_replica(a: &TestApp, b: &TestApp) {
    let c = a.customer().await;
    assert_eq!(
        b.get("/api/v1/auth/me", Some(&c.token)).await.status,
        200,
        "a token from A works on B"
    );
    let r = a
        .post("/api/v1/auth/logout", Some(&c.token), json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        a.get("/api/v1/auth/me", Some(&c.token)).await.status,
        401,
        "refused at once where it happened"
    );
    let took = within(Duration::from_secs(1), || async {
        b.get("/api/v1/auth/me", Some(&c.token)).await.status == 401
    })
    .await;
    assert!(
        took.is_some(),
        "B still accepted the logged-out token after 1 s"
    );
    eprintln!("logout propagation: {:?}", took.unwrap_or_default());
}

/// Disabling on A takes the plugin's routes out on B within 1 s; enabling brings them
/// back within 1 s.
async fn plugin_switches_reach_the_other_replica(a: &TestApp, b: &TestApp) {
    assert_eq!(b.get("/api/v1/hello/ping", None).await.status, 200);
    plugin_action(a, "hello", "disable").await;
    let took = within(Duration::from_secs(1), || async {
        b.get("/api/v1/hello/ping", None).await.status == 503
    })
    .await;
    assert!(
        took.is_some(),
        "B still served the plugin A disabled after 1 s"
    );
    eprintln!("disable propagation: {:?}", took.unwrap_or_default());
    plugin_action(a, "hello", "enable").await;
    let took = within(Duration::from_secs(1), || async {
        b.get("/api/v1/hello/ping", None).await.status == 200
    })
    .await;
    assert!(
        took.is_some(),
        "B did not serve the plugin A enabled within 1 s"
    );
    eprintln!("enable propagation: {:?}", took.unwrap_or_default());
}

#[tokio::test]
async fn two_replicas_with_redis_are_one_shop() {
    let redis = RedisServer::start().await;
    // Listings stay cached for 5 minutes unless a write invalidates them; one user's
    // budget is 12 requests a minute.
    let extra = redis.config("[catalog]\nlisting_cache_secs = 300\n");
    let (a, b) = two_replicas(&extra).await;
    for app in [&a, &b] {
        let ready = app.get("/ready", None).await;
        assert_eq!(ready.status, 200, "{}", ready.text);
        assert_eq!(ready.body["cluster"]["redis"], "up");
        assert_eq!(ready.body["cluster"]["kv"], "redis");
    }

    // 1, 2: tokens and logout.
    logout_reaches_the_other_replica(&a, &b).await;

    // 3: a push made on A reaches the user's stream held on B within 2 s.
    let asha = a.customer().await;
    let ravi = a.customer().await;
    let mut on_b = Sse::open(&b, &asha.token, false).await;
    let sent = Instant::now();
    wave(&a, &ravi.token, &asha.user_id, "from replica A").await;
    let e = on_b
        .next_named("hello.wave", Duration::from_secs(2))
        .await
        .expect("the push made on A reached the stream on B within 2 s");
    assert_eq!(e.data["message"], "from replica A");
    eprintln!("realtime propagation: {:?}", sent.elapsed());

    // 4: plugin switches.
    plugin_switches_reach_the_other_replica(&a, &b).await;

    // 5: a price changed on A shows in B's cached listing within 1 s.
    let admin = a.admin_token().await;
    let (category, _) = a.new_category(&admin).await;
    let created = a
        .post(
            "/api/v1/products",
            Some(&admin),
            json!({"sku": a.unique("SKU"), "name": "Replica Rice", "category_id": category,
                   "unit": "1 kg", "price": 1000, "mrp": 1200, "stock": 5}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let listing = format!("/api/v1/products?category={category}");
    let price_on_b = || async {
        let r = b.get(&listing, None).await;
        r.body["items"][0]["price"].as_i64()
    };
    assert_eq!(
        price_on_b().await,
        Some(1000),
        "B lists (and caches) the product"
    );
    let mut product = created.body.clone();
    product["price"] = json!(900);
    let path = format!("/api/v1/products/{}", product["id"].as_str().expect("id"));
    let r = a.put(&path, Some(&admin), product).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let took = within(Duration::from_secs(1), || async {
        price_on_b().await == Some(900)
    })
    .await;
    assert!(
        took.is_some(),
        "B's cached listing kept the old price past 1 s"
    );
    eprintln!("listing invalidation: {:?}", took.unwrap_or_default());

    // KV is one store: the greeting counter counts on both replicas.
    let first = a.get("/api/v1/hello", None).await.body["count"]
        .as_i64()
        .expect("count");
    let second = b.get("/api/v1/hello", None).await.body["count"]
        .as_i64()
        .expect("count");
    assert_eq!(second, first + 1, "B counts on from A's count");

    // 6: a cart's cached read lives in that one store too, so a change made on B is
    // what A reads next (B moved the cart's version before it answered).
    let rice = new_product(&a, &admin, 700, 20).await;
    let cook = a.customer().await;
    add_to_cart(&a, &cook.token, &rice, 1).await;
    for _ in 0..2 {
        let read = cart(&a, &cook.token).await;
        assert_eq!(read["items"][0]["quantity"], 1, "{read}");
    }
    add_to_cart(&b, &cook.token, &rice, 2).await;
    let read = cart(&a, &cook.token).await;
    assert_eq!(
        read["items"][0]["quantity"], 3,
        "A served its cached cart after B changed it: {read}"
    );

    // 7: each event is handled once per subscriber, whichever replica runs the
    // dispatcher: orders placed on both replicas are each counted once by analytics.
    let mut placed = 0;
    for (i, app) in [&a, &b, &a, &b].into_iter().enumerate() {
        let product = new_product(app, &admin, 500 + i as i64, 10).await;
        let (shopper, address) = shopper(app, &product, 1).await;
        place(app, &shopper, &address, "cod").await;
        placed += 1;
    }
    settled(&a).await;
    settled(&b).await;
    let dashboard = a.get("/api/v1/analytics/dashboard", Some(&admin)).await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.text);
    assert_eq!(
        dashboard.body["orders_today"].as_i64(),
        Some(placed),
        "each order.placed handled once by analytics: {}",
        dashboard.text
    );
    drop(on_b);
    stop_both(a, b).await;
}

#[tokio::test]
async fn a_users_rate_budget_is_shared_by_the_replicas() {
    let redis = RedisServer::start().await;
    let extra = redis.config("[rate_limit]\nper_minute = 6\n");
    let (a, b) = two_replicas(&extra).await;
    let c = a.customer().await;
    let mut answers = Vec::new();
    for i in 0..8 {
        let app = if i % 2 == 0 { &a } else { &b };
        answers.push(app.get("/api/v1/cart", Some(&c.token)).await.status);
    }
    assert_eq!(
        answers,
        vec![200, 200, 200, 200, 200, 200, 429, 429],
        "six requests a minute in all, not six per replica"
    );
    stop_both(a, b).await;
}

#[tokio::test]
async fn postgres_alone_carries_logouts_and_plugin_switches() {
    let (a, b) = two_replicas("").await;
    let ready = b.get("/ready", None).await;
    assert_eq!(ready.body["cluster"]["feed"], "postgres", "{}", ready.text);
    logout_reaches_the_other_replica(&a, &b).await;
    plugin_switches_reach_the_other_replica(&a, &b).await;
    stop_both(a, b).await;
}

#[tokio::test]
async fn redis_stopped_and_started_again_under_load() {
    let mut redis = RedisServer::start().await;
    let (a, b) = two_replicas(&redis.config("")).await;
    let c = a.customer().await;
    // Load on both replicas through the whole outage.
    let stop_load = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for app in [a.base.clone(), b.base.clone()] {
        let stop = stop_load.clone();
        let client = reqwest::Client::new();
        load.push(tokio::spawn(async move {
            let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(r) = client.get(format!("{app}/api/v1/products")).send().await {
                    *statuses.entry(r.status().as_u16()).or_default() += 1;
                }
            }
            statuses
        }));
    }
    assert_eq!(b.get("/api/v1/auth/me", Some(&c.token)).await.status, 200);
    let admin = a.admin_token().await;
    let rice = new_product(&a, &admin, 700, 20).await;
    add_to_cart(&a, &c.token, &rice, 1).await;
    let read = cart(&b, &c.token).await;
    assert_eq!(read["items"][0]["quantity"], 1, "{read}");

    redis.kill();
    // /ready turns degraded (still 200: the replica serves) once the pinger notices.
    let degraded = within(Duration::from_secs(3), || async {
        b.get("/ready", None).await.body["status"] == "degraded"
    })
    .await;
    assert!(degraded.is_some(), "B's /ready did not report Redis down");
    let ready = b.get("/ready", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    // KV calls fail as a capability error the plugin turns into a clear answer.
    let r = a.get("/api/v1/hello", None).await;
    assert!(
        r.status == 503,
        "a KV call with Redis down: {} {}",
        r.status,
        r.text
    );
    assert!(r.body["error"]["code"].is_string(), "{}", r.text);
    // The cart works without its cached reads: the database answers, and the change's
    // increment after commit fails (logged) without failing the change.
    let started = Instant::now();
    add_to_cart(&a, &c.token, &rice, 2).await;
    let read = cart(&b, &c.token).await;
    assert_eq!(read["items"][0]["quantity"], 3, "{read}");
    eprintln!(
        "a cart change and read with Redis down: {:?}",
        started.elapsed()
    );
    // Revocation falls back to the database: a logout on A is refused on B at once.
    let r = a
        .post("/api/v1/auth/logout", Some(&c.token), json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(b.get("/api/v1/auth/me", Some(&c.token)).await.status, 401);

    // A plugin switched off while the feed is down: B misses the message, and catches
    // up from the database when the feed reconnects.
    plugin_action(&a, "hello", "disable").await;
    assert_eq!(a.get("/api/v1/hello/ping", None).await.status, 503);

    redis.run().await;
    let back = within(Duration::from_secs(5), || async {
        a.get("/ready", None).await.body["status"] == "ready"
            && b.get("/ready", None).await.body["status"] == "ready"
    })
    .await;
    assert!(back.is_some(), "the replicas did not see Redis come back");
    eprintln!("reconnected after {:?}", back.unwrap_or_default());
    let caught_up = within(Duration::from_secs(1), || async {
        b.get("/api/v1/hello/ping", None).await.status == 503
    })
    .await;
    assert!(
        caught_up.is_some(),
        "B did not reconcile the change it missed"
    );
    plugin_action(&a, "hello", "enable").await;
    let enabled = within(Duration::from_secs(1), || async {
        b.get("/api/v1/hello/ping", None).await.status == 200
    })
    .await;
    assert!(enabled.is_some(), "B did not follow the enable");
    // Everything works again without a restart.
    assert_eq!(a.get("/api/v1/hello", None).await.status, 200);
    let asha = a.customer().await;
    let ravi = a.customer().await;
    let mut on_b = Sse::open(&b, &asha.token, false).await;
    let pushed = within(Duration::from_secs(5), || async {
        wave(&a, &ravi.token, &asha.user_id, "after the outage").await;
        true
    });
    pushed.await;
    assert!(
        on_b.next_named("hello.wave", Duration::from_secs(2))
            .await
            .is_some(),
        "pushes cross replicas again"
    );
    plugin_switches_reach_the_other_replica(&a, &b).await;

    stop_load.store(true, std::sync::atomic::Ordering::Relaxed);
    for (name, handle) in ["A", "B"].into_iter().zip(load) {
        let statuses = handle.await.expect("load task");
        eprintln!("load on {name} during the outage: {statuses:?}");
        assert!(
            statuses.keys().all(|s| *s == 200),
            "browsing kept answering 200 on {name} through the outage: {statuses:?}"
        );
    }
    drop(on_b);
    stop_both(a, b).await;
}

#[tokio::test]
async fn replicas_starting_together_each_load_every_plugin() {
    // Plugin roles and migrations run at every start; two replicas doing them at the
    // same moment must not leave either one without a plugin.
    let a = TestApp::spawn_with(Backend::Postgres, "").await;
    let (b, c) = tokio::join!(a.replica(""), a.replica(""));
    for app in [&a, &b, &c] {
        let ready = app.get("/ready", None).await;
        assert_eq!(ready.status, 200, "{}", ready.text);
        let states: Vec<&str> = ready.body["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .filter_map(|p| p["state"].as_str())
            .collect();
        assert!(
            !states.is_empty() && states.iter().all(|s| *s == "live"),
            "{}",
            ready.text
        );
    }
    c.stop().await;
    stop_both(a, b).await;
}

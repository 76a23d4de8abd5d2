//! The platform itself: gateway errors, request ids, limits, faults, events.

use std::time::Duration;

use crate::helpers::*;

backend_test!(health_and_ready, |app| {
    let r = app.get("/health", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"status": "ok"}));
    let r = app.get("/ready", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "ready");
    let live: Vec<&str> = r.body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["state"] == "live")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in PLUGINS {
        assert!(live.contains(p), "{p} not live: {}", r.text);
    }
});

backend_test!(request_ids_are_echoed_or_replaced, |app| {
    let r = app
        .client
        .get(app.url("/api/v1/hello/ping"))
        .header("x-request-id", "abc.DEF:12-3_x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc.DEF:12-3_x");
    for bad in ["has space", "ünïcode", &"x".repeat(129)] {
        let r = app
            .client
            .get(app.url("/api/v1/nope"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_ne!(id, bad);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["request_id"], id.as_str());
    }
    let r = app.get("/api/v1/hello/ping", None).await;
    assert!(r.header("x-request-id").is_some_and(|v| !v.is_empty()));
});

backend_test!(unknown_routes_and_methods, |app| {
    app.get("/api/v1/does-not-exist", None)
        .await
        .assert_error(404, "not_found");
    let r = app.request("DELETE", "/api/v1/hello", None, None).await;
    r.assert_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET"));
    // Internal routes are never reachable through the gateway.
    app.post("/internal/products/lookup", None, json!({"ids": []}))
        .await
        .assert_error(404, "not_found");
});

backend_test!(body_type_and_size_limits, |app| {
    let c = app.customer().await;
    let r = app
        .raw(
            "POST",
            "/api/v1/cart/items",
            Some(&c.token),
            Some("text/plain"),
            b"{\"a\":1}".to_vec(),
        )
        .await;
    r.assert_error(415, "unsupported_media_type");
    let r = app
        .raw(
            "POST",
            "/api/v1/cart/items",
            Some(&c.token),
            None,
            b"{\"a\":1}".to_vec(),
        )
        .await;
    r.assert_error(415, "unsupported_media_type");
    let big = vec![b' '; 1_048_577];
    let r = app
        .raw(
            "POST",
            "/api/v1/cart/items",
            Some(&c.token),
            Some("application/json"),
            big,
        )
        .await;
    r.assert_error(413, "payload_too_large");
});

backend_test!(tokens_are_checked_before_the_plugin, |app| {
    app.get("/api/v1/cart", None)
        .await
        .assert_error(401, "unauthorized");
    let r = app
        .raw("GET", "/api/v1/cart", Some("not-a-jwt"), None, vec![])
        .await;
    r.assert_error(401, "unauthorized");
    // Signed with another key.
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "usr_x", "role": "admin", "sid": "ses_x", "iat": now_secs(), "exp": now_secs() + 600}),
        &jsonwebtoken::EncodingKey::from_secret(b"someone-elses-key"),
    )
    .unwrap();
    app.get("/api/v1/cart", Some(&forged))
        .await
        .assert_error(401, "unauthorized");
    // Right key, but no such session.
    let orphan = app.sign("usr_x", "customer", "ses_missing", now_secs() + 600);
    app.get("/api/v1/cart", Some(&orphan))
        .await
        .assert_error(401, "unauthorized");
    // A real session, expired token.
    let c = app.customer().await;
    let me = app.get("/api/v1/auth/me", Some(&c.token)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    let sessions = app.get("/api/v1/auth/sessions", Some(&c.token)).await;
    let sid = sessions.body["items"][0]["id"]
        .as_str()
        .unwrap_or("ses_unknown")
        .to_string();
    let expired = app.sign(&c.user_id, "customer", &sid, now_secs() - 10);
    app.get("/api/v1/cart", Some(&expired))
        .await
        .assert_error(401, "unauthorized");
    // Wrong role.
    app.get("/api/v1/admin/users", Some(&c.token))
        .await
        .assert_error(403, "forbidden");
});

backend_test!(
    a_revocation_the_feed_missed_is_seen_once_the_cache_expires,
    "[identity]\nsession_cache_secs = 1",
    |app| {
        let c = app.customer().await;
        // The gateway checks the session and caches "live".
        let me = app.get("/api/v1/auth/me", Some(&c.token)).await;
        assert_eq!(me.status, 200, "{}", me.text);
        // Revoked behind the host's back (what a lost change-feed message amounts to):
        // the point here is the cache's bound, so the test writes the host's table.
        let changed = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2")
            .bind(now_secs() * 1000)
            .bind(&c.user_id)
            .execute(&app.app().platform.db.pool)
            .await
            .expect("revoke in the database")
            .rows_affected();
        assert_eq!(changed, 1);
        // Past the cache's lifetime the database is asked again and the token refused.
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        app.get("/api/v1/auth/me", Some(&c.token))
            .await
            .assert_error(401, "unauthorized");
    }
);

backend_test!(
    a_plugin_keeps_only_its_own_number_of_warm_instances,
    "[plugins.hello]\nwarm_instances = 0",
    |app| {
        let created = r#"kirana_instantiations_total{plugin="hello"}"#;
        let reused = r#"kirana_instance_reuses_total{plugin="hello"}"#;
        let (created_before, reused_before) =
            (metric(app, created).await, metric(app, reused).await);
        for _ in 0..3 {
            let r = app.get("/api/v1/hello/ping", None).await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        // None kept: every call had a new instance.
        assert_eq!(metric(app, created).await - created_before, 3.0);
        assert_eq!(metric(app, reused).await, reused_before);

        // The cart keeps the default number: calls one after another reuse one.
        let c = app.customer().await;
        let cart_reused = r#"kirana_instance_reuses_total{plugin="cart"}"#;
        let before = metric(app, cart_reused).await;
        for _ in 0..3 {
            let r = app.get("/api/v1/cart", Some(&c.token)).await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        assert!(metric(app, cart_reused).await - before >= 2.0);
    }
);

backend_test!(
    a_plugin_never_has_more_instances_alive_than_its_cap,
    "[plugins.faulty]\nmax_instances = 1\ntimeout_ms = 1000",
    |app| {
        // `relay` holds faulty's only instance while it calls faulty again: the nested
        // call waits for an instance that cannot come free until the deadline ends
        // both (without the cap it gets a second instance and the relay answers 200).
        let r = app.get("/api/v1/faulty/relay?to=ok", None).await;
        r.assert_error(504, "plugin_timeout");
        // The instance is given back after a failed call: the next one is served.
        let r = app.get("/api/v1/faulty/ok", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
);

backend_test!(
    calls_beyond_a_plugins_instance_cap_wait_for_a_free_one,
    "[plugins.hello]\nmax_instances = 1",
    |app| {
        let created = r#"kirana_instantiations_total{plugin="hello"}"#;
        let before = metric(app, created).await;
        // Twenty at once, one instance: the calls that find it busy wait for it rather
        // than being refused, and every call is served by that one instance.
        let calls = (0..20).map(|_| app.get("/api/v1/hello/ping", None));
        for r in futures::future::join_all(calls).await {
            assert_eq!(r.status, 200, "{}", r.text);
        }
        assert!(metric(app, created).await - before <= 1.0);
    }
);

backend_test!(a_looping_plugin_is_cut_off_while_others_are_served, |app| {
    // While the spinning request burns its 1 s budget, other requests are answered: all
    // ten pings come back before the loop is cut off (an order, not a duration).
    let spin_done = std::sync::atomic::AtomicBool::new(false);
    let spin = async {
        let r = app.get("/api/v1/faulty/spin", None).await;
        spin_done.store(true, std::sync::atomic::Ordering::SeqCst);
        r
    };
    let others = async {
        // The spin starts first (it is polled first and sends at once).
        tokio::task::yield_now().await;
        let mut answered_while_spinning = 0;
        for _ in 0..10 {
            let r = app.get("/api/v1/hello/ping", None).await;
            assert_eq!(r.status, 200, "{}", r.text);
            if !spin_done.load(std::sync::atomic::Ordering::SeqCst) {
                answered_while_spinning += 1;
            }
        }
        answered_while_spinning
    };
    let (spun, answered_while_spinning) = tokio::join!(spin, others);
    spun.assert_error(504, "plugin_timeout");
    assert_eq!(answered_while_spinning, 10, "pings waited behind the loop");
    let r = app.get("/api/v1/faulty/ok", None).await;
    assert_eq!(
        r.status, 200,
        "the plugin serves again after a timeout: {}",
        r.text
    );
});

backend_test!(a_memory_bomb_traps_at_its_cap, |app| {
    app.get("/api/v1/faulty/hog", None)
        .await
        .assert_error(500, "internal");
    assert_eq!(
        metric(app, r#"kirana_memory_limit_hits_total{plugin="faulty"}"#).await,
        1.0
    );
    let r = app.get("/api/v1/faulty/ok", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.get("/health", None).await.status, 200);
});

backend_test!(a_trap_is_a_500_and_the_next_request_works, |app| {
    for _ in 0..3 {
        app.get("/api/v1/faulty/trap", None)
            .await
            .assert_error(500, "internal");
        let r = app.get("/api/v1/faulty/ok", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
});

backend_test!(reused_instances_share_host_state_and_validate, |app| {
    // hello runs in reuse mode; its kv counter is host state, so it counts across instances.
    let a = app.get("/api/v1/hello?name=Asha", None).await;
    let b = app.get("/api/v1/hello?name=Asha", None).await;
    assert_eq!(a.body["message"], "Namaste, Asha!");
    assert_eq!(
        b.body["count"].as_i64().unwrap(),
        a.body["count"].as_i64().unwrap() + 1
    );
    assert!(
        metric(app, r#"kirana_instance_reuses_total{plugin="hello"}"#).await >= 1.0,
        "the second call ran in the first call's warm instance"
    );
    let bad = app.get("/api/v1/hello?name=", None).await;
    bad.assert_error(400, "validation_failed");
    assert_eq!(bad.body["error"]["details"]["fields"][0]["field"], "name");
});

async fn delivery_counts(app: &TestApp) -> Vec<(String, i64)> {
    app.app().platform.events.counts().await.unwrap()
}

fn count(counts: &[(String, i64)], status: &str) -> i64 {
    counts
        .iter()
        .find(|(s, _)| s == status)
        .map(|(_, n)| *n)
        .unwrap_or(0)
}

backend_test!(failing_handlers_are_retried_then_dead_lettered, |app| {
    let r = app
        .post("/api/v1/faulty/publish?n=1", None, json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let event_id = r.body["event_id"].as_str().unwrap().to_string();
    // max_attempts = 4 in the test config, backoff 50 ms doubling.
    let dead = app
        .eventually(10, || async {
            let c = delivery_counts(app).await;
            (count(&c, "dead") == 1).then_some(c)
        })
        .await;
    assert!(
        dead.is_some(),
        "the delivery was not dead-lettered: {:?}",
        delivery_counts(app).await
    );
    let seen = app.get("/api/v1/faulty/seen", None).await;
    let attempts = seen.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == format!("seen:{event_id}"))
        .map(|i| i["attempts"].as_str().unwrap().to_string());
    assert_eq!(attempts.as_deref(), Some("4"), "{}", seen.text);
    let labels = r#"{subscriber="faulty",topic="faulty.flaky"}"#;
    assert_eq!(
        metric(app, &format!("kirana_events_retried_total{labels}")).await,
        3.0
    );
    assert_eq!(
        metric(app, &format!("kirana_events_dead_total{labels}")).await,
        1.0
    );

    // Once the handler is healthy, a new event is delivered exactly once.
    assert_eq!(
        app.post("/api/v1/faulty/fail-off", None, json!({}))
            .await
            .status,
        204
    );
    let r = app
        .post("/api/v1/faulty/publish?n=2", None, json!({}))
        .await;
    let id2 = r.body["event_id"].as_str().unwrap().to_string();
    let done = app
        .eventually(10, || async {
            (count(&delivery_counts(app).await, "done") == 1).then_some(())
        })
        .await;
    assert!(done.is_some(), "{:?}", delivery_counts(app).await);
    let seen = app.get("/api/v1/faulty/seen", None).await;
    assert!(seen.text.contains(&format!("seen:{id2}")), "{}", seen.text);
});

// A long first backoff keeps the delivery pending across the restart.
backend_test!(
    events_survive_a_restart,
    "[events]\nbackoff_ms = 300\nmax_attempts = 20",
    |mut app| {
        let r = app
            .post("/api/v1/faulty/publish?n=9", None, json!({}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let tried = app
            .eventually(5, || async {
                let c = delivery_counts(app).await;
                (count(&c, "pending") == 1).then_some(())
            })
            .await;
        assert!(tried.is_some());
        app.restart().await;
        // kv is in memory, so the restarted plugin fails again until told otherwise.
        assert_eq!(
            app.post("/api/v1/faulty/fail-off", None, json!({}))
                .await
                .status,
            204
        );
        let done = app
            .eventually(15, || async {
                (count(&delivery_counts(app).await, "done") == 1).then_some(())
            })
            .await;
        assert!(
            done.is_some(),
            "the event was lost across the restart: {:?}",
            delivery_counts(app).await
        );
    }
);

backend_test!(
    rate_limits,
    "[rate_limit]\nper_minute = 5\nauth_per_minute = 3",
    |app| {
        // Signing up spends one of the IP's three auth requests.
        let c = app.customer().await;
        // A user has a budget of their own...
        for left in (0..5).rev() {
            let r = app.get("/api/v1/cart", Some(&c.token)).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.header("x-ratelimit-limit"), Some("5"));
            assert_eq!(
                r.header("x-ratelimit-remaining"),
                Some(left.to_string().as_str())
            );
        }
        let r = app.get("/api/v1/cart", Some(&c.token)).await;
        r.assert_error(429, "rate_limited");
        let retry: u64 = r
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After");
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
        assert!(r.header("x-ratelimit-reset").is_some());
        // ... separate from the anonymous budget of the same IP.
        for _ in 0..5 {
            assert_eq!(app.get("/api/v1/hello/ping", None).await.status, 200);
        }
        app.get("/api/v1/hello/ping", None)
            .await
            .assert_error(429, "rate_limited");
        // Health and readiness are never limited.
        for _ in 0..10 {
            assert_eq!(app.get("/health", None).await.status, 200);
            assert_eq!(app.get("/ready", None).await.status, 200);
        }
        // Auth routes have their stricter per-IP budget: two left after the signup.
        let login = json!({"email": c.email, "password": c.password});
        for _ in 0..2 {
            assert_eq!(
                app.post("/api/v1/auth/login", None, login.clone())
                    .await
                    .status,
                200
            );
        }
        app.post("/api/v1/auth/login", None, login)
            .await
            .assert_error(429, "rate_limited");
    }
);

backend_test!(security_headers_on_every_answer, |app| {
    for r in [
        app.get("/health", None).await,
        app.get("/api/v1/hello/ping", None).await,
        app.get("/api/v1/nope", None).await,
    ] {
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        assert!(r
            .header("content-security-policy")
            .is_some_and(|v| v.contains("default-src 'none'")));
    }
});

backend_test!(cors_is_off_by_default, |app| {
    let r = app
        .client
        .get(app.url("/api/v1/hello/ping"))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
});

backend_test!(
    cors_preflight_and_headers,
    "[cors]\nallowed_origins = [\"https://shop.example\"]\n[rate_limit]\nper_minute = 1",
    |app| {
        let pre = app
            .client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/cart/items"))
            .header("origin", "https://shop.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
            .await
            .unwrap();
        assert!(pre.status().is_success(), "{}", pre.status());
        let h = pre.headers();
        assert_eq!(h["access-control-allow-origin"], "https://shop.example");
        let methods = h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(methods.contains("POST"), "{methods}");
        let allowed = h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_lowercase();
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{allowed}"
        );
        // Preflights do not spend the (one-request) budget.
        let r = app
            .client
            .get(app.url("/api/v1/hello/ping"))
            .header("origin", "https://shop.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "https://shop.example"
        );
        let exposed = r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_lowercase();
        assert!(exposed.contains("x-request-id"), "{exposed}");
        // Another origin gets no CORS grant.
        let r = app
            .client
            .get(app.url("/health"))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("access-control-allow-origin").is_none());
    }
);

backend_test!(event_metrics_are_exported_before_the_first_event, |app| {
    // A fresh host has published and delivered nothing for these yet: the series are
    // there at 0 (a counter that appears only on its first increment hides it from
    // rate()).
    let text = app.get("/metrics", None).await.text;
    for line in [
        r#"kirana_events_published_total{topic="payment.refunded"} 0"#,
        r#"kirana_events_delivered_total{subscriber="payments",topic="order.cancelled"} 0"#,
        r#"kirana_events_retried_total{subscriber="analytics",topic="payment.refunded"} 0"#,
        r#"kirana_events_dead_total{subscriber="notifications",topic="delivery.assigned"} 0"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no {line} in:\n{}",
            text.lines()
                .filter(|l| l.contains("events"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
});

backend_test!(metrics_count_requests_faults_and_events, |app| {
    assert_eq!(
        app.get("/api/v1/products/does-not-exist", None)
            .await
            .status,
        404
    );
    app.get("/api/v1/faulty/trap", None)
        .await
        .assert_error(500, "internal");
    let r = app.post("/api/v1/faulty/publish", None, json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .client
        .get(app.url("/metrics"))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .expect("scrape");
    let m = into_resp(r).await;
    assert_eq!(m.status, 200);
    assert!(m
        .header("content-type")
        .is_some_and(|c| c.contains("openmetrics")));
    let text = &m.text;
    assert!(
        text.contains(r#"kirana_http_requests_total{plugin="catalog",route="/api/v1/products/{id}",method="GET",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"kirana_traps_total{plugin="faulty"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"kirana_events_published_total{topic="faulty.flaky"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"kirana_plugin_version_live{plugin="catalog",version="0.1.0"} 1"#),
        "{text}"
    );
    assert!(text.contains("kirana_instantiations_total"), "{text}");
    // The request histogram saw the one 404 of that route.
    assert!(
        text.contains(r#"kirana_http_request_duration_seconds_count{plugin="catalog",route="/api/v1/products/{id}"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"kirana_http_request_duration_seconds_bucket{le="+Inf",plugin="catalog",route="/api/v1/products/{id}"} 1"#)
            || text.contains(r#"kirana_http_request_duration_seconds_bucket{plugin="catalog",route="/api/v1/products/{id}",le="+Inf"} 1"#),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    // Without an OpenMetrics Accept header: Prometheus text 0.0.4, which promtool checks.
    let plain = app.get("/metrics", None).await;
    assert!(plain
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")));
    assert!(plain
        .text
        .contains("# TYPE kirana_http_requests_total counter"));
    promtool_check(&plain.text);
});

/// `promtool check metrics` (Debian package `prometheus`) must accept the scrape.
fn promtool_check(exposition: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is needed for this test: apt-get install prometheus (./.ci/run does)");
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(exposition.as_bytes())
        .expect("writing to promtool");
    let out = child.wait_with_output().expect("promtool ran");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- scrape ---\n{exposition}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

backend_test!(a_plugin_cannot_reach_other_databases, |app| {
    let r = app.get("/api/v1/faulty/snoop", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for key in ["attach", "host_secrets", "other_plugin"] {
        let got = r.body[key].as_str().unwrap_or_default();
        assert!(got.starts_with("refused"), "{key}: {got}");
    }
});

backend_test!(a_plugin_publishes_only_its_own_topics, |app| {
    let forge = |query: &'static str| async move {
        let r = app
            .post(&format!("/api/v1/faulty/forge?{query}"), None, json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["outcome"].as_str().unwrap_or_default().to_string()
    };
    // Another plugin's topic, published or scheduled, and a topic nobody declared: a
    // capability error naming the topic.
    for (query, topic) in [
        ("topic=user.created", "user.created"),
        (
            "topic=orders.payment_timeout&delay_ms=1000",
            "orders.payment_timeout",
        ),
        ("topic=faulty.undeclared", "faulty.undeclared"),
    ] {
        let got = forge(query).await;
        assert!(
            got.starts_with("refused: denied") && got.contains(&format!("publish:{topic}")),
            "{query}: {got}"
        );
    }
    // Its own topic goes (scheduled an hour ahead, so no handler runs in this test).
    let got = forge("topic=faulty.flaky&delay_ms=3600000").await;
    assert!(got.starts_with("sent evt_"), "{got}");
});

backend_test!(openapi_describes_the_live_public_routes, |app| {
    let r = app.get("/openapi.json", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = &r.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let product = &doc["paths"]["/api/v1/products/{id}"];
    assert_eq!(product["get"]["parameters"][0]["name"], "id");
    assert_eq!(product["get"]["security"], json!([]), "public");
    assert_eq!(product["put"]["security"], json!([{"bearer": []}]));
    assert_eq!(product["put"]["x-roles"], json!(["admin"]));
    assert!(doc["paths"]["/api/v1/cart"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/orders"]["post"].is_object());
    // The host's own SSE stream is described too.
    let realtime = &doc["paths"]["/api/v1/realtime"]["get"];
    assert_eq!(realtime["security"], json!([{"bearer": []}]), "{realtime}");
    assert!(
        realtime["responses"]["200"]["content"]["text/event-stream"].is_object(),
        "{realtime}"
    );
    assert!(
        paths.keys().all(|p| !p.starts_with("/internal")),
        "internal routes leak"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
});

backend_test!(
    circuit_breaker,
    "[services]\nbreaker_failures = 3\nbreaker_cooldown_ms = 400",
    |app| {
        let traps = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("kirana_traps_total{plugin=\"faulty\"}"))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // Three calls into a trapping callee: each reaches it and fails.
        for _ in 0..3 {
            app.get("/api/v1/faulty/relay?to=trap", None)
                .await
                .assert_error(503, "plugin_unavailable");
        }
        let before = traps(&app.get("/metrics", None).await.text);
        assert_eq!(before, 3);
        // Now the circuit is open: calls fail fast without running the callee.
        let r = app.get("/api/v1/faulty/relay?to=ok", None).await;
        r.assert_error(503, "plugin_unavailable");
        assert!(r.text.contains("circuit"), "{}", r.text);
        let metrics = app.get("/metrics", None).await.text;
        assert_eq!(
            traps(&metrics),
            3,
            "the open circuit did not call the callee"
        );
        assert!(
            metrics.contains(r#"kirana_circuit_state{callee="faulty"} 1"#),
            "{metrics}"
        );
        let ready = app.get("/ready", None).await;
        assert_eq!(
            ready.body["open_circuits"],
            json!(["faulty"]),
            "{}",
            ready.text
        );
        // After the cool-down one probe goes through. While it is in flight (a callee
        // that spins to its deadline) the circuit is half-open, and the metric says so.
        tokio::time::sleep(Duration::from_millis(450)).await;
        let probe = {
            let url = app.url("/api/v1/faulty/relay?to=spin");
            let client = app.client.clone();
            tokio::spawn(async move { client.get(url).send().await })
        };
        let half_open = app
            .eventually(5, || async {
                let metrics = app.get("/metrics", None).await.text;
                metrics
                    .contains(r#"kirana_circuit_state{callee="faulty"} 2"#)
                    .then_some(())
            })
            .await;
        assert!(
            half_open.is_some(),
            "the half-open state was never exported"
        );
        let failed = probe.await.expect("join").expect("answer");
        assert!(failed.status().is_server_error(), "{}", failed.status());
        // The failed probe re-opened it; a cool-down later the next probe succeeds and
        // closes the circuit.
        tokio::time::sleep(Duration::from_millis(450)).await;
        let r = app.get("/api/v1/faulty/relay?to=ok", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["callee_status"], 200);
        assert_eq!(
            app.get("/api/v1/faulty/relay?to=ok", None).await.status,
            200
        );
        let metrics = app.get("/metrics", None).await.text;
        assert!(
            metrics.contains(r#"kirana_circuit_state{callee="faulty"} 0"#),
            "{metrics}"
        );
        assert_eq!(
            app.get("/ready", None).await.body["open_circuits"],
            json!([])
        );
    }
);

backend_test!(
    per_plugin_body_and_call_depth_budgets,
    "[plugins.hello]\nfile = \"hello.wasm\"\ninstances = \"reuse\"\nbody_bytes = 64\n\n[plugins.faulty]\nfile = \"faulty.wasm\"\nmax_call_depth = 0",
    |app| {
        let c = app.customer().await;
        // hello takes at most 64 bytes ...
        let long = "x".repeat(100);
        let r = app
            .post(
                "/api/v1/hello/wave",
                Some(&c.token),
                json!({"user_id": c.user_id, "message": long}),
            )
            .await;
        r.assert_error(413, "payload_too_large");
        let r = app
            .post(
                "/api/v1/hello/wave",
                Some(&c.token),
                json!({"user_id": "u", "message": "hi"}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        // ... while other plugins keep the global limit.
        let r = app
            .patch(
                "/api/v1/auth/me",
                Some(&c.token),
                json!({"name": "A name long enough to pass sixty-four bytes of JSON body"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        // faulty may not call anyone (depth 0): its relay fails, the host stays up.
        let r = app.get("/api/v1/faulty/relay?to=ok", None).await;
        r.assert_error(500, "internal");
        assert_eq!(app.get("/api/v1/faulty/ok", None).await.status, 200);
    }
);

backend_test!(
    a_fuel_budget_stops_a_spinning_plugin,
    // Fuel metering is engine-wide, so every component compiles anew: only the two
    // plugins the test needs are loaded.
    "[plugins.faulty]\nfile = \"faulty.wasm\"\ntimeout_ms = 30000\nfuel = 20000000\n\
     [plugins.auth]\nenabled = false\n[plugins.cart]\nenabled = false\n\
     [plugins.orders]\nenabled = false\n[plugins.payments]\nenabled = false\n\
     [plugins.delivery]\nenabled = false\n[plugins.notifications]\nenabled = false\n\
     [plugins.analytics]\nenabled = false\n[plugins.hello]\nenabled = false",
    |app| {
        // The time limit is 30 s; the fuel runs out long before, and the answer says
        // which limit stopped it.
        let r = app.get("/api/v1/faulty/spin", None).await;
        r.assert_error(504, "plugin_timeout");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("spent its fuel budget (20000000 units)"),
            "{}",
            r.text
        );
        // Within its budget the plugin works, and other plugins are unaffected.
        assert_eq!(app.get("/api/v1/faulty/ok", None).await.status, 200);
        assert_eq!(app.get("/api/v1/categories", None).await.status, 200);
        let m = app.get("/metrics", None).await;
        assert!(
            m.text
                .contains(r#"kirana_timeouts_total{plugin="faulty"} 1"#),
            "{}",
            m.text
        );
    }
);

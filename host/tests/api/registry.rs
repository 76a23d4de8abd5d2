//! The versioned registry and the operator API over HTTP: install, enable, rollback,
//! disable (503, events held), delete, every validation failure, a failing migration,
//! restarts, a swap under load with zero failed requests, canaries (promoted, and
//! rolled back by themselves when the candidate fails), and topics with one owner. The `swap` test plugin's builds
//! (test-plugins/swap-*) are uploaded as components.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::helpers::*;

/// The registry tests grant the swap plugin its SQL and lower the canary bounds.
const CONFIG: &str = "[plugins.swap]\ngrants = [\"sql\", \"subscribe:faulty.flaky\"]\n\n[registry]\ncanary_min_requests = 10";
const OPERATOR: &str = OPERATOR_TOKEN;

fn build(name: &str) -> Vec<u8> {
    std::fs::read(plugin_dir().join(format!("{name}.wasm")))
        .unwrap_or_else(|e| panic!("{name}.wasm: {e} (./scripts/test builds it)"))
}

async fn enable(app: &TestApp, version: &str) -> Resp {
    app.post(
        "/admin/plugins/swap/enable",
        Some(OPERATOR),
        json!({ "version": version }),
    )
    .await
}

async fn action(app: &TestApp, what: &str) -> Resp {
    app.post(
        &format!("/admin/plugins/swap/{what}"),
        Some(OPERATOR),
        json!({}),
    )
    .await
}

/// Starts `version` of swap as a canary with `percent` of the traffic.
async fn canary(app: &TestApp, version: &str, percent: u8) -> Resp {
    app.post(
        "/admin/plugins/swap/enable",
        Some(OPERATOR),
        json!({"version": version, "canary_percent": percent}),
    )
    .await
}

/// Which version answers `GET /api/v1/swap` (panics on anything but 200).
async fn served(app: &TestApp) -> String {
    let r = app.get("/api/v1/swap", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["version"].as_str().expect("version").to_string()
}

/// Deliveries waiting for `subscriber`, as the operator API lists them.
async fn pending_for(app: &TestApp, subscriber: &str) -> usize {
    let r = app
        .get("/admin/events?status=pending", Some(OPERATOR))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|d| d["subscriber"] == subscriber)
        .count()
}

/// Uploads and enables swap 1.0.0.
async fn live_v1(app: &TestApp) {
    assert_eq!(
        app.upload_component(Some(OPERATOR), build("swap_v1"))
            .await
            .status,
        201
    );
    let r = enable(app, "1.0.0").await;
    assert_eq!(r.status, 200, "{}", r.text);
}

backend_test!(install_enable_rollback_delete, CONFIG, |app| {
    let admin = OPERATOR;
    let r = app.upload_component(Some(admin), build("swap_v1")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["name"], "swap");
    assert_eq!(r.body["version"], "1.0.0");
    assert_eq!(r.body["sha256"].as_str().map(str::len), Some(64));
    // The same bytes again: 200, nothing new.
    assert_eq!(
        app.upload_component(Some(admin), build("swap_v1"))
            .await
            .status,
        200
    );
    // Installed is not live.
    app.get("/api/v1/swap", None)
        .await
        .assert_error(404, "not_found");

    let r = enable(app, "1.0.0").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["live_version"], "1.0.0");
    assert_eq!(r.body["state"], "live");
    assert_eq!(served(app).await, "1.0.0");

    assert_eq!(
        app.upload_component(Some(admin), build("swap_v2"))
            .await
            .status,
        201
    );
    let r = enable(app, "2.0.0").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(served(app).await, "2.0.0");
    let r = action(app, "rollback").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["live_version"], "1.0.0");
    assert_eq!(served(app).await, "1.0.0");

    // The list shows versions, routes, grants and stats.
    let r = app.get("/admin/plugins", Some(admin)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let swap = r.body["items"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "swap"))
        .expect("swap is listed")
        .clone();
    assert_eq!(swap["versions"].as_array().map(Vec::len), Some(2));
    assert!(swap["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .any(|r| r["path"] == "/api/v1/swap"));
    assert_eq!(swap["grants"], json!(["sql"]));
    assert!(swap["stats"]["requests"].as_u64().unwrap_or(0) >= 3);
    assert!(r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|p| p["name"] == "catalog" && p["state"] == "live"));

    let r = app.get("/admin/plugins/swap", Some(admin)).await;
    let actions: Vec<&str> = r.body["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        ["rollback", "enable", "install", "enable", "install"],
        "{}",
        r.text
    );

    // The live version cannot be deleted; another can.
    app.delete("/admin/plugins/swap/versions/1.0.0", Some(admin))
        .await
        .assert_error(409, "conflict");
    let r = app
        .delete("/admin/plugins/swap/versions/2.0.0", Some(admin))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    app.delete("/admin/plugins/swap/versions/2.0.0", Some(admin))
        .await
        .assert_error(404, "not_found");
    enable(app, "9.9.9").await.assert_error(404, "not_found");
    app.get("/admin/plugins/nothing", Some(admin))
        .await
        .assert_error(404, "not_found");
});

backend_test!(
    invalid_uploads_are_refused_and_change_nothing,
    CONFIG,
    |app| {
        // Not a component at all.
        app.upload_component(Some(OPERATOR), b"definitely not wasm".to_vec())
            .await
            .assert_error(400, "validation_failed");
        // A valid but empty component: it does not export the plugin world.
        let empty = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
        let r = app.upload_component(Some(OPERATOR), empty).await;
        r.assert_error(400, "validation_failed");
        // Empty body, wrong content type.
        app.upload_component(Some(OPERATOR), Vec::new())
            .await
            .assert_error(400, "validation_failed");
        app.raw(
            "POST",
            "/admin/plugins",
            Some(OPERATOR),
            Some("application/json"),
            b"{}".to_vec(),
        )
        .await
        .assert_error(415, "unsupported_media_type");
        // A route another plugin serves.
        let r = app
            .upload_component(Some(OPERATOR), build("swap_clash"))
            .await;
        r.assert_error(409, "conflict");
        assert!(r.text.contains("/api/v1/hello"), "{}", r.text);
        // The same version with other bytes (a trailing custom section).
        assert_eq!(
            app.upload_component(Some(OPERATOR), build("swap_v1"))
                .await
                .status,
            201
        );
        let mut other = build("swap_v1");
        other.extend_from_slice(&[0x00, 0x03, 0x01, b'x', b'!']);
        app.upload_component(Some(OPERATOR), other)
            .await
            .assert_error(409, "conflict");
        // Nothing but swap 1.0.0 was recorded.
        let r = app.get("/admin/plugins/swap", Some(OPERATOR)).await;
        assert_eq!(
            r.body["versions"].as_array().map(Vec::len),
            Some(1),
            "{}",
            r.text
        );
        assert_eq!(r.body["state"], "installed");
        // Who may call: nobody without a token, no customer. That answer comes before
        // the body is read, so it closes the connection: the client must not send its
        // next request on it (it did, and lost that request, before this header).
        let r = app.upload_component(None, build("swap_v2")).await;
        r.assert_error(401, "unauthorized");
        assert_eq!(r.header("connection"), Some("close"));
        let c = app.customer().await;
        app.get("/admin/plugins", Some(&c.token))
            .await
            .assert_error(403, "forbidden");
    }
);

backend_test!(
    an_unapproved_grant_keeps_a_version_off_until_the_operator_approves_it,
    "[plugins.swap]\ngrants = []",
    |app| {
        // Installing shows what the version asks for and what is not approved yet.
        let r = app.upload_component(Some(OPERATOR), build("swap_v1")).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let asks = json!(["sql", "subscribe:faulty.flaky"]);
        assert_eq!(r.body["requested_grants"], asks, "{}", r.text);
        assert_eq!(r.body["unapproved_grants"], asks, "{}", r.text);
        // Enabling without the approval is refused, naming the grant and the fix.
        let r = enable(app, "1.0.0").await;
        r.assert_error(409, "conflict");
        assert!(
            r.text.contains("--grant sql,subscribe:faulty.flaky"),
            "{}",
            r.text
        );
        app.get("/api/v1/swap", None)
            .await
            .assert_error(404, "not_found");
        // A misspelt grant is a validation error.
        app.post(
            "/admin/plugins/swap/enable",
            Some(OPERATOR),
            json!({"version": "1.0.0", "grants": ["sql", "root"]}),
        )
        .await
        .assert_invalid_field("grants");
        // With the operator's approval it goes live, and the approval is kept.
        let r = app
            .post(
                "/admin/plugins/swap/enable",
                Some(OPERATOR),
                json!({"version": "1.0.0", "grants": ["sql", "subscribe:faulty.flaky"]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["grants"], json!(["sql"]));
        assert_eq!(served(app).await, "1.0.0");
        let r = app.get("/admin/plugins/swap", Some(OPERATOR)).await;
        assert_eq!(r.body["history"][0]["action"], "enable", "{}", r.text);
        assert_eq!(r.body["history"][1]["action"], "grant", "{}", r.text);
        // A later version asking for nothing more needs no new approval.
        let r = app.upload_component(Some(OPERATOR), build("swap_v2")).await;
        assert_eq!(r.body["unapproved_grants"], json!([]), "{}", r.text);
        assert_eq!(enable(app, "2.0.0").await.status, 200);
        assert_eq!(served(app).await, "2.0.0");
    }
);

backend_test!(
    a_version_asking_for_more_than_its_plugin_was_granted_stays_off,
    CONFIG,
    |app| {
        // The attack: an uploaded `swap` 9.9.9 asks for kv, identity (minting tokens),
        // a topic and more memory than the operator's limit.
        live_v1(app).await;
        let r = app
            .upload_component(Some(OPERATOR), build("swap_greedy"))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(
            r.body["unapproved_grants"],
            json!(["kv", "identity", "publish:swap.greedy", "memory:128"]),
            "{}",
            r.text
        );
        let r = enable(app, "9.9.9").await;
        r.assert_error(409, "conflict");
        for g in ["kv", "identity", "publish:swap.greedy", "memory:128"] {
            assert!(r.text.contains(g), "{g}: {}", r.text);
        }
        assert_eq!(served(app).await, "1.0.0");
        let r = app.get("/admin/plugins/swap", Some(OPERATOR)).await;
        assert_eq!(r.body["live_version"], "1.0.0");
        assert_eq!(r.body["grants"], json!(["sql"]));
        // Approving only part of it is not enough.
        let r = app
            .post(
                "/admin/plugins/swap/enable",
                Some(OPERATOR),
                json!({"version": "9.9.9", "grants": ["kv", "identity", "publish:swap.greedy"]}),
            )
            .await;
        r.assert_error(409, "conflict");
        assert!(r.text.contains("memory:128"), "{}", r.text);
        assert_eq!(served(app).await, "1.0.0");
        // A shop admin cannot approve anything.
        let admin = app.admin_token().await;
        app.post(
            "/admin/plugins/swap/enable",
            Some(&admin),
            json!({"version": "9.9.9", "grants": ["kv", "identity", "publish:swap.greedy", "memory:128"]}),
        )
        .await
        .assert_error(403, "forbidden");
        assert_eq!(served(app).await, "1.0.0");
    }
);

backend_test!(a_canary_answers_with_its_own_route_roles, CONFIG, |app| {
    live_v1(app).await;
    assert_eq!(
        app.upload_component(Some(OPERATOR), build("swap_greedy"))
            .await
            .status,
        201
    );
    let r = app
        .post(
            "/admin/plugins/swap/enable",
            Some(OPERATOR),
            json!({"version": "9.9.9", "canary_percent": 99,
                       "grants": ["kv", "identity", "publish:swap.greedy", "memory:128"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The candidate makes GET /api/v1/swap admin-only; the stable version is public.
    // Anonymous callers get the stable answer or the candidate's 401, never the
    // candidate's answer.
    let mut refused = 0;
    for _ in 0..30 {
        let r = app.get("/api/v1/swap", None).await;
        match r.status {
            200 => assert_eq!(r.body["version"], "1.0.0", "{}", r.text),
            401 => refused += 1,
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert!(refused > 0, "99% of 30 requests went to the candidate");
    // A customer is forbidden by the candidate's rule; an admin gets through.
    let c = app.customer().await;
    let mut forbidden = 0;
    for _ in 0..30 {
        let r = app.get("/api/v1/swap", Some(&c.token)).await;
        match r.status {
            200 => assert_eq!(r.body["version"], "1.0.0", "{}", r.text),
            403 => forbidden += 1,
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert!(forbidden > 0);
    let admin = app.admin_token().await;
    let mut candidate = 0;
    for _ in 0..30 {
        let r = app.get("/api/v1/swap", Some(&admin)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if r.body["version"] == "9.9.9" {
            candidate += 1;
        }
    }
    assert!(candidate > 0);
});

backend_test!(every_operator_route_refuses_a_shop_admin, CONFIG, |app| {
    live_v1(app).await;
    let admin = app.admin_token().await;
    let routes: [(&str, &str); 10] = [
        ("GET", "/admin/plugins"),
        ("POST", "/admin/plugins"),
        ("GET", "/admin/plugins/swap"),
        ("POST", "/admin/plugins/swap/enable"),
        ("POST", "/admin/plugins/swap/promote"),
        ("POST", "/admin/plugins/swap/disable"),
        ("POST", "/admin/plugins/swap/rollback"),
        ("DELETE", "/admin/plugins/swap/versions/1.0.0"),
        ("GET", "/admin/events?status=dead"),
        ("POST", "/admin/events/x/retry"),
    ];
    for (method, path) in routes {
        let body = (method == "POST").then(|| json!({}));
        app.request(method, path, Some(&admin), body.clone())
            .await
            .assert_error(403, "forbidden");
        app.request(method, path, None, body.clone())
            .await
            .assert_error(401, "unauthorized");
        // A near miss of the operator token is not the operator token.
        let near = format!("{OPERATOR}x");
        app.request(method, path, Some(&near), body)
            .await
            .assert_error(401, "unauthorized");
    }
    // Still live, untouched.
    assert_eq!(served(app).await, "1.0.0");
});

backend_test!(
    the_operator_api_is_rate_limited_per_address,
    "[plugins.swap]\ngrants = [\"sql\", \"subscribe:faulty.flaky\"]\n\n[rate_limit]\nadmin_per_minute = 3",
    |app| {
        for _ in 0..3 {
            let r = app.get("/admin/plugins", Some("wrong-guess")).await;
            r.assert_error(401, "unauthorized");
            assert!(r.header("x-ratelimit-limit").is_some(), "{:?}", r.headers);
        }
        // Over the budget even the right token waits: guesses cannot be sprayed.
        let r = app.get("/admin/plugins", Some(OPERATOR)).await;
        r.assert_error(429, "rate_limited");
        assert!(r.header("retry-after").is_some());
        // The shop's own routes keep their own budget.
        assert_eq!(app.get("/api/v1/categories", None).await.status, 200);
    }
);

backend_test!(
    a_failing_migration_leaves_the_old_version_and_its_data,
    CONFIG,
    |app| {
        live_v1(app).await;
        let r = app
            .post("/api/v1/swap/notes", None, json!({"text": "keep me"}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(
            app.upload_component(Some(OPERATOR), build("swap_bad"))
                .await
                .status,
            201
        );
        let r = enable(app, "3.0.0").await;
        r.assert_error(409, "conflict");
        assert!(r.text.contains("fails on purpose"), "{}", r.text);
        assert_eq!(served(app).await, "1.0.0");
        let r = app.get("/api/v1/swap/notes", None).await;
        assert_eq!(r.body["items"], json!(["keep me"]));
        let r = app.get("/admin/plugins/swap", Some(OPERATOR)).await;
        assert_eq!(r.body["live_version"], "1.0.0");
        assert_eq!(r.body["history"][0]["action"], "enable_failed");
    }
);

backend_test!(disable_answers_503_and_holds_events, CONFIG, |app| {
    live_v1(app).await;
    let r = action(app, "disable").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["state"], "disabled");
    app.get("/api/v1/swap", None)
        .await
        .assert_error(503, "plugin_unavailable");
    // /ready stays 200 and lists it as disabled; its routes leave the OpenAPI document.
    let ready = app.get("/ready", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert!(ready.body["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .any(|p| p["name"] == "swap" && p["state"] == "disabled"));
    let doc = app.get("/openapi.json", None).await;
    assert!(doc.body["paths"].get("/api/v1/swap").is_none());

    // An event published meanwhile waits for it.
    let r = app.post("/api/v1/faulty/publish", None, json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    relay(app).await;
    assert_eq!(pending_for(app, "swap").await, 1);

    let r = enable(app, "1.0.0").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = app
        .eventually(5, || async {
            let r = app.get("/api/v1/swap/seen", None).await;
            (r.body["seen"] == 1).then_some(())
        })
        .await;
    assert!(
        seen.is_some(),
        "the held event was delivered after enabling"
    );
});

backend_test!(restarts_keep_the_live_versions, CONFIG, |mut app| {
    live_v1(app).await;
    assert_eq!(
        app.upload_component(Some(OPERATOR), build("swap_v2"))
            .await
            .status,
        201
    );
    assert_eq!(enable(app, "2.0.0").await.status, 200);
    app.restart().await;
    assert_eq!(served(app).await, "2.0.0");
    // Rollback still knows the version before.
    assert_eq!(action(app, "rollback").await.status, 200);
    assert_eq!(served(app).await, "1.0.0");
    app.restart().await;
    assert_eq!(served(app).await, "1.0.0");
});

backend_test!(swapping_under_load_fails_no_request, CONFIG, |app| {
    live_v1(app).await;
    assert_eq!(
        app.upload_component(Some(OPERATOR), build("swap_v2"))
            .await
            .status,
        201
    );
    // Answers by the version that gave them, and failures.
    let (v1, v2) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (client, url) = (app.client.clone(), app.url("/api/v1/swap"));
        let (v1, v2, failed, stop) = (v1.clone(), v2.clone(), failed.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => r.json::<Value>().await.ok(),
                    _ => None,
                };
                // One consistent version per answer.
                let counter = answer.as_ref().and_then(|b| {
                    match (b["version"].as_str(), b["build"].as_str()) {
                        (Some("1.0.0"), Some("v1")) => Some(&v1),
                        (Some("2.0.0"), Some("v2")) => Some(&v2),
                        _ => None,
                    }
                });
                counter.unwrap_or(&failed).fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut swaps = Vec::new();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        assert_eq!(enable(app, "2.0.0").await.status, 200);
        swaps.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(action(app, "rollback").await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }
    let (v1, v2, failed) = (
        v1.load(Ordering::Relaxed),
        v2.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    eprintln!("swap under load: {v1} by 1.0.0, {v2} by 2.0.0, {failed} failed, enable calls took {swaps:?}");
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed",
        v1 + v2 + failed
    );
    // The load ran across the swaps: both versions answered some of it.
    assert!(v1 > 0 && v2 > 0, "1.0.0 answered {v1}, 2.0.0 answered {v2}");
    assert_eq!(served(app).await, "1.0.0");
});

backend_test!(a_canary_is_promoted_or_rolls_itself_back, CONFIG, |app| {
    live_v1(app).await;
    assert_eq!(
        app.upload_component(Some(OPERATOR), build("swap_v2"))
            .await
            .status,
        201
    );
    let r = canary(app, "2.0.0", 50).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["canary"]["version"], "2.0.0");
    assert_eq!(r.body["live_version"], "1.0.0");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..60 {
        seen.insert(served(app).await);
    }
    assert_eq!(
        seen.len(),
        2,
        "both versions answer during a 50% canary: {seen:?}"
    );
    let r = action(app, "promote").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["live_version"], "2.0.0");
    assert!(r.body["canary"].is_null());
    for _ in 0..10 {
        assert_eq!(served(app).await, "2.0.0");
    }

    // A candidate answering 500 is rolled back by itself.
    assert_eq!(
        app.upload_component(Some(OPERATOR), build("swap_flaky"))
            .await
            .status,
        201
    );
    let r = app
        .post(
            "/admin/plugins/swap/enable",
            Some(OPERATOR),
            json!({"version": "4.0.0", "canary_percent": 50}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut errors = 0;
    for _ in 0..200 {
        if app.get("/api/v1/swap", None).await.status == 500 {
            errors += 1;
        }
        let r = app.get("/admin/plugins/swap", Some(OPERATOR)).await;
        if r.body["canary"].is_null() {
            break;
        }
    }
    assert!(errors >= 1, "the flaky candidate served some requests");
    let r = app.get("/admin/plugins/swap", Some(OPERATOR)).await;
    assert!(
        r.body["canary"].is_null(),
        "the canary was rolled back: {}",
        r.text
    );
    assert_eq!(r.body["live_version"], "2.0.0");
    assert_eq!(r.body["history"][0]["action"], "canary_rollback");
    for _ in 0..20 {
        assert_eq!(served(app).await, "2.0.0");
    }
});

/// Sends up to 400 requests, stopping once the flaky candidate (which fails every one)
/// has answered `n` with 500; gives how many it answered and whether the canary is
/// still running after them.
async fn flaky_canary(app: &TestApp, n: usize) -> (usize, bool) {
    let mut errors = 0;
    for _ in 0..400 {
        if app.get("/api/v1/swap", None).await.status == 500 {
            errors += 1;
            if errors == n {
                break;
            }
        }
    }
    let r = app.get("/admin/plugins/swap", Some(OPERATOR)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    (errors, r.body["canary"]["version"] == "4.0.0")
}

backend_test!(
    a_canary_rolls_itself_back_only_past_its_threshold_and_within_its_window,
    &format!("{CONFIG}\ncanary_max_error_rate = 1.0"),
    |mut app| {
        live_v1(app).await;
        let flaky = app
            .upload_component(Some(OPERATOR), build("swap_flaky"))
            .await;
        assert_eq!(flaky.status, 201, "{}", flaky.text);
        // Every candidate request fails, but a rate of 100 % does not pass a bound of 100 %.
        let r = canary(app, "4.0.0", 50).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            flaky_canary(app, 15).await,
            (15, true),
            "rolled back under canary_max_error_rate = 1.0"
        );
        // The default bound (5 %), but a one-second window that has passed: the
        // candidate's failures come too late to roll it back.
        app.restart_with(&format!("{CONFIG}\ncanary_window_secs = 1"))
            .await;
        let r = canary(app, "4.0.0", 50).await;
        assert_eq!(r.status, 200, "{}", r.text);
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        assert_eq!(
            flaky_canary(app, 15).await,
            (15, true),
            "rolled back after canary_window_secs"
        );
        // Within the window, the same failures roll it back (the restart ends the
        // canary above; the default window is 600 s).
        app.restart_with(CONFIG).await;
        let r = canary(app, "4.0.0", 50).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let (errors, _) = flaky_canary(app, 15).await;
        // The gateway starts the rollback after the failing answer, in a task of its
        // own: wait for it rather than racing it.
        let rolled_back = app
            .eventually(10, || async {
                let r = app.get("/admin/plugins/swap", Some(OPERATOR)).await;
                r.body["canary"].is_null().then_some(())
            })
            .await
            .is_some();
        assert!(
            rolled_back && errors >= 10,
            "rolled back within the window after canary_min_requests (10) failures: \
             {errors} failures, rolled back: {rolled_back}"
        );
    }
);

backend_test!(
    a_plugin_that_cannot_load_is_left_out_and_named_by_ready,
    "[plugins.broken]\nfile = \"does-not-exist.wasm\"",
    |app| {
        // The host started anyway and serves everything else.
        assert_eq!(app.get("/api/v1/categories", None).await.status, 200);
        let r = app.get("/ready", None).await;
        assert_eq!(r.status, 503, "{}", r.text);
        assert!(
            r.body["reasons"]
                .as_array()
                .expect("reasons")
                .iter()
                .any(|m| m.as_str().is_some_and(|m| m.contains("broken"))),
            "{}",
            r.text
        );
        assert!(r.body["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .any(|p| p["name"] == "broken" && p["state"] == "missing"));
    }
);

backend_test!(dead_events_can_be_listed_and_retried, CONFIG, |app| {
    // faulty's own handler of faulty.flaky fails until told otherwise: with 4 attempts
    // in the test config the delivery goes dead.
    let r = app.post("/api/v1/faulty/publish", None, json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let dead = app
        .eventually(10, || async {
            let r = app.get("/admin/events?status=dead", Some(OPERATOR)).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body["items"]
                .as_array()
                .and_then(|a| a.iter().find(|e| e["subscriber"] == "faulty").cloned())
        })
        .await
        .expect("a dead delivery");
    assert_eq!(dead["topic"], "faulty.flaky");
    let id = dead["id"].as_str().expect("event id").to_string();
    let r = app.post("/api/v1/faulty/fail-off", None, json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = app
        .post(
            &format!("/admin/events/{id}/retry"),
            Some(OPERATOR),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let done = app
        .eventually(5, || async {
            let r = app.get("/admin/events?status=done", Some(OPERATOR)).await;
            r.body["items"]
                .as_array()
                .and_then(|a| a.iter().find(|e| e["id"] == id.as_str()).cloned())
        })
        .await;
    assert!(done.is_some(), "the retried delivery succeeded");
    app.post("/admin/events/nope/retry", Some(OPERATOR), json!({}))
        .await
        .assert_error(404, "not_found");
    app.get("/admin/events?status=weird", Some(OPERATOR))
        .await
        .assert_error(400, "validation_failed");
    app.get("/admin/nothing-here", Some(OPERATOR))
        .await
        .assert_error(404, "not_found");
});

backend_test!(
    events_wait_for_a_plugin_that_failed_to_load,
    CONFIG,
    |mut app| {
        live_v1(app).await;
        // Restarted without its grant, swap cannot load ...
        app.restart_with("[plugins.swap]\ngrants = []").await;
        app.get("/api/v1/swap", None)
            .await
            .assert_error(404, "not_found");
        // ... yet an event for it is queued, not lost ...
        let r = app.post("/api/v1/faulty/publish", None, json!({})).await;
        assert_eq!(r.status, 201, "{}", r.text);
        relay(app).await;
        assert_eq!(pending_for(app, "swap").await, 1);
        // ... and handled once the plugin is back.
        app.restart_with(CONFIG).await;
        let seen = app
            .eventually(10, || async {
                let r = app.get("/api/v1/swap/seen", None).await;
                (r.body["seen"] == 1).then_some(())
            })
            .await;
        assert!(seen.is_some(), "the queued event reached swap");
    }
);

backend_test!(operator_inputs_are_checked, CONFIG, |app| {
    live_v1(app).await;
    for (body, field) in [
        (
            json!({"version": "1.0.0", "canary_percent": 300}),
            "canary_percent",
        ),
        (
            json!({"version": "1.0.0", "canary_percent": 0}),
            "canary_percent",
        ),
        (json!({"version": 7}), "version"),
    ] {
        app.post("/admin/plugins/swap/enable", Some(OPERATOR), body)
            .await
            .assert_invalid_field(field);
    }
    app.raw(
        "POST",
        "/admin/plugins/swap/enable",
        Some(OPERATOR),
        Some("application/json"),
        b"{nope".to_vec(),
    )
    .await
    .assert_error(400, "invalid_json");
    let r = app
        .put("/admin/plugins/swap/enable", Some(OPERATOR), json!({}))
        .await;
    r.assert_error(405, "method_not_allowed");
    // A disabled plugin is not rolled back into service.
    assert_eq!(action(app, "disable").await.status, 200);
    action(app, "rollback").await.assert_error(409, "conflict");
});

backend_test!(a_published_topic_has_one_owner, CONFIG, |app| {
    live_v1(app).await;
    // A manifest publishing "any topic" is refused at install, saying what to do.
    let r = app
        .upload_component(Some(OPERATOR), build("swap_wildcard"))
        .await;
    r.assert_error(400, "validation_failed");
    assert!(
        r.text.contains(r#"\"*\""#) && r.text.contains("list each topic"),
        "{}",
        r.text
    );
    let r = app.get("/admin/plugins/swap", Some(OPERATOR)).await;
    let versions = r.body["versions"].as_array().expect("versions");
    assert!(
        versions.iter().all(|v| v["version"] != "9.9.6"),
        "{}",
        r.text
    );
    // Nor can the operator approve any topic at once.
    app.post(
        "/admin/plugins/swap/enable",
        Some(OPERATOR),
        json!({"version": "1.0.0", "grants": ["publish:*"]}),
    )
    .await
    .assert_invalid_field("grants");

    // `user.created` belongs to auth: swap declaring it installs, but is not enabled
    // while auth is, even with the operator's grant for the topic.
    let r = app
        .upload_component(Some(OPERATOR), build("swap_squatter"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.body["unapproved_grants"],
        json!(["publish:user.created"]),
        "{}",
        r.text
    );
    let squat = json!({"version": "9.9.8", "grants": ["publish:user.created"]});
    let r = app
        .post("/admin/plugins/swap/enable", Some(OPERATOR), squat.clone())
        .await;
    r.assert_error(409, "conflict");
    assert!(
        r.text
            .contains(r#"topic \"user.created\", which auth owns"#),
        "{}",
        r.text
    );
    assert_eq!(served(app).await, "1.0.0");
    // As a canary neither.
    let r = app
        .post(
            "/admin/plugins/swap/enable",
            Some(OPERATOR),
            json!({"version": "9.9.8", "canary_percent": 50, "grants": ["publish:user.created"]}),
        )
        .await;
    r.assert_error(409, "conflict");
    assert!(r.text.contains("auth owns"), "{}", r.text);

    // A disabled plugin owns nothing: with auth off, swap may take the topic, and then
    // auth is the one refused until swap lets it go.
    assert_eq!(
        app.post("/admin/plugins/auth/disable", Some(OPERATOR), json!({}))
            .await
            .status,
        200
    );
    let r = app
        .post("/admin/plugins/swap/enable", Some(OPERATOR), squat)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(served(app).await, "9.9.8");
    let r = app
        .post("/admin/plugins/auth/enable", Some(OPERATOR), json!({}))
        .await;
    r.assert_error(409, "conflict");
    assert!(
        r.text
            .contains(r#"topic \"user.created\", which swap owns"#),
        "{}",
        r.text
    );
    app.post("/api/v1/auth/login", None, json!({}))
        .await
        .assert_error(503, "plugin_unavailable");
    assert_eq!(action(app, "disable").await.status, 200);
    let r = app
        .post("/admin/plugins/auth/enable", Some(OPERATOR), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.admin_token().await;
});

backend_test!(
    at_start_a_second_claim_on_a_topic_is_not_loaded,
    "[plugins.swap]\nfile = \"swap_squatter.wasm\"\ngrants = [\"sql\", \"subscribe:faulty.flaky\", \"publish:user.created\"]",
    |app| {
        // Configured to go live next to auth while declaring auth's `user.created`:
        // swap is left out (logged; /ready names it) and auth keeps its topic.
        app.get("/api/v1/swap", None)
            .await
            .assert_error(404, "not_found");
        let r = app.get("/ready", None).await;
        assert_eq!(r.status, 503, "{}", r.text);
        assert!(
            r.body["reasons"]
                .as_array()
                .expect("reasons")
                .iter()
                .any(|x| x.as_str().is_some_and(|x| x.contains("plugin swap"))),
            "{}",
            r.text
        );
        app.admin_token().await;
        // Enabling it now says why.
        let r = enable(app, "9.9.8").await;
        r.assert_error(409, "conflict");
        assert!(r.text.contains("auth owns"), "{}", r.text);
    }
);

backend_test!(a_restart_ends_a_canary, CONFIG, |mut app| {
    live_v1(app).await;
    assert_eq!(
        app.upload_component(Some(OPERATOR), build("swap_v2"))
            .await
            .status,
        201
    );
    let r = canary(app, "2.0.0", 50).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["canary"]["version"], "2.0.0");
    app.restart_with(CONFIG).await;
    // The stable version comes back alone; the candidate stays installed, not live.
    let r = app.get("/admin/plugins/swap", Some(OPERATOR)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["live_version"], "1.0.0", "{}", r.text);
    assert!(r.body["canary"].is_null(), "{}", r.text);
    assert!(
        r.body["versions"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v["version"] == "2.0.0")),
        "{}",
        r.text
    );
    // The database agrees: the check every replica runs against it (run here at once,
    // as `reconcile_secs` would) finds no canary to bring back.
    let changed = kirana::registry::reconcile::reconcile(
        &app.app().platform,
        kirana::registry::reconcile::Scope::All,
    )
    .await
    .expect("reconcile");
    assert!(changed.is_empty(), "a canary came back: {changed:?}");
    for _ in 0..20 {
        assert_eq!(served(app).await, "1.0.0");
    }
});

backend_test!(
    during_a_canary_events_go_to_the_stable_version_only,
    CONFIG,
    |app| {
        live_v1(app).await;
        assert_eq!(
            app.upload_component(Some(OPERATOR), build("swap_v2"))
                .await
                .status,
            201
        );
        let r = canary(app, "2.0.0", 50).await;
        assert_eq!(r.status, 200, "{}", r.text);
        // Half the requests go to the candidate, but no event does: a delivery runs once,
        // on the stable version, whatever the canary weight.
        for i in 0..10 {
            inject_event(
                app,
                &format!("evt_canary_{i}"),
                "faulty",
                "faulty.flaky",
                &json!({"n": i}),
                0,
            )
            .await;
        }
        settled(app).await;
        let seen = app.get("/api/v1/swap/seen", None).await;
        assert_eq!(seen.status, 200, "{}", seen.text);
        assert_eq!(seen.body["seen"], 10, "{}", seen.text);
        assert_eq!(
            seen.body["by_build"],
            json!({"v1": 10}),
            "every event went to the stable build: {}",
            seen.text
        );
    }
);

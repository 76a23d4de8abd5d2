//! What commits together: the Idempotency-Key answer with the order, a redelivered event
//! that changes nothing, and a failed call that leaves nothing behind.

use crate::helpers::*;
use crate::shop::*;

backend_test!(one_key_at_once_makes_one_order, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 50).await;
    let (c, address) = shopper(app, &product, 2).await;
    let key = app.unique("same-key");
    let body = json!({"address_id": address, "payment_method": "cod"});
    let answers = futures::future::join_all(
        (0..4).map(|_| checkout_with_key(app, &c.token, &key, body.clone())),
    )
    .await;
    let mut ids = Vec::new();
    let mut fresh = 0;
    for r in &answers {
        match r.status {
            201 => {
                ids.push(r.body["id"].as_str().expect("order id").to_string());
                if r.header("idempotent-replayed").is_none() {
                    fresh += 1;
                }
            }
            409 => r.assert_error(409, "idempotency_in_progress"),
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!(fresh, 1, "exactly one request made the order: {answers:?}");
    ids.dedup();
    assert_eq!(ids.len(), 1, "every 201 names the same order: {ids:?}");
    let mine = app.get("/api/v1/orders", Some(&c.token)).await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    assert_eq!(mine.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(mine.body["items"][0]["id"], ids[0].as_str());
    // Only one order's worth of stock left the shelf for good.
    relay(app).await;
    let after = app
        .eventually(10, || async {
            let s = stock_of(app, &product).await;
            (s == 48).then_some(s)
        })
        .await;
    assert_eq!(after, Some(48), "stock after one order of 2");
});

backend_test!(a_server_error_frees_the_key, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 50).await;
    let (c, address) = shopper(app, &product, 1).await;
    let key = app.unique("retry-key");
    let body = json!({"address_id": address, "payment_method": "cod"});
    // The catalog is down: checkout cannot hold stock and answers 503.
    plugin_action(app, "catalog", "disable").await;
    let first = checkout_with_key(app, &c.token, &key, body.clone()).await;
    assert!(first.status >= 500, "{} {}", first.status, first.text);
    plugin_action(app, "catalog", "enable").await;
    // The same key now places the order: the failure stored no answer.
    let second = checkout_with_key(app, &c.token, &key, body.clone()).await;
    assert_eq!(second.status, 201, "{}", second.text);
    assert!(second.header("idempotent-replayed").is_none());
    let third = checkout_with_key(app, &c.token, &key, body).await;
    assert_eq!(third.status, 201, "{}", third.text);
    assert_eq!(third.header("idempotent-replayed"), Some("true"));
    assert_eq!(third.body["id"], second.body["id"]);
});

backend_test!(a_redelivered_event_changes_nothing, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 50).await;
    let (c, address) = shopper(app, &product, 1).await;
    let order = place(app, &c, &address, "cod").await;
    // The customer is notified once the order's event is handled.
    let notified = || async {
        let r = app.get("/api/v1/notifications", Some(&c.token)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|n| n.to_string().contains(order.as_str()))
                    .count()
            })
            .unwrap_or(0)
    };
    let once = app
        .eventually(10, || async { (notified().await == 1).then_some(()) })
        .await;
    assert!(once.is_some(), "the order's notification arrived");
    // The host forgets it delivered the event (as after a crash between the
    // subscriber's commit and the delivery's), and delivers it again. This writes the
    // host's table: no API forgets that a delivery was done.
    let before = metric(app, "kirana_events_duplicates_total").await;
    let pool = &app.app().platform.db.pool;
    let again = sqlx::query(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = 0, locked_until = 0 \
         WHERE subscriber = 'notifications' AND status = 'done' AND event_id IN \
         (SELECT id FROM events WHERE source = 'orders' AND topic = 'order.created' \
          AND payload LIKE $1)",
    )
    .bind(format!("%{order}%"))
    .execute(pool)
    .await
    .expect("marking the delivery pending")
    .rows_affected();
    assert_eq!(again, 1, "one delivery to redo");
    app.app().platform.events.wake();
    let skipped = app
        .eventually(10, || async {
            let now = metric(app, "kirana_events_duplicates_total").await;
            (now > before).then_some(now)
        })
        .await;
    assert!(skipped.is_some(), "the inbox recognised the event");
    assert_eq!(notified().await, 1, "still one notification");
});

// `kv.incr-after-commit` (through the `faulty` test plugin): applied once the call's
// writes commit and before the answer leaves, never seen during the call, dropped with
// a 5xx answer's rollback and with a rolled-back transaction, kept with a 4xx answer
// (whose writes commit).
backend_test!(
    an_increment_after_commit_follows_the_writes_it_stands_for,
    |app| {
        let now = || async {
            let r = app.get("/api/v1/faulty/after-commit", None).await;
            assert_eq!(r.status, 200, "{}", r.text);
            (r.body["value"].as_i64(), r.body["rows"].as_i64())
        };
        let post = |query: &'static str| async move {
            app.post(
                &format!("/api/v1/faulty/after-commit{query}"),
                None,
                json!({}),
            )
            .await
        };
        let r = post("").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.body["during_call"], 0,
            "applied before the commit: {}",
            r.text
        );
        assert_eq!(now().await, (Some(1), Some(1)), "committed with its row");

        let r = post("?status=503").await;
        assert_eq!(r.status, 503, "{}", r.text);
        assert_eq!(now().await, (Some(1), Some(1)), "a 5xx rolls both back");

        let r = post("?status=409").await;
        assert_eq!(r.status, 409, "{}", r.text);
        assert_eq!(now().await, (Some(2), Some(2)), "a 4xx keeps its writes");

        let r = post("?inner=rollback").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            now().await,
            (Some(3), Some(3)),
            "what a rolled-back transaction asked for is dropped"
        );

        // Values held for after the commit are bounded per call (4 MiB): the fifth
        // 1 MiB value is refused, and the four before it apply with the 4xx's writes.
        let r = post("?revisions=5").await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.text.contains("at most 4194304 bytes"), "{}", r.text);
        let r = app.get("/api/v1/faulty/after-commit", None).await;
        assert_eq!(r.body["revisions"], 4, "{}", r.text);
    }
);

//! Stock holds (catalog) as orders use them: a checkout's hold is confirmed by its order,
//! a hold whose order never came is released at its expiry, cancelling (by hand or by
//! the payment timeout) returns the units exactly once, the admin list, and the balance
//! `initial stock == available + held + in live orders`.
//!
//! There is no clean way through the public API to make a checkout fail after its hold
//! was taken (the order write is the only step left, and nothing a client sends makes
//! it fail), so a hold without an order is made the way orders makes one: a call to the
//! catalog's internal route.

use crate::helpers::*;
use crate::shop::*;

/// `GET /api/v1/admin/stock-holds{query}` as `admin`, asserting 200.
async fn holds(app: &TestApp, admin: &str, query: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/admin/stock-holds{query}"), Some(admin))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// Waits until a hold satisfying `pred` is listed, and returns it.
async fn wait_for_hold(
    app: &TestApp,
    admin: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let found = app
        .eventually(15, || async {
            let list = holds(app, admin, "?page_size=100").await;
            list["items"]
                .as_array()
                .and_then(|a| a.iter().find(|h| pred(h)).cloned())
        })
        .await;
    match found {
        Some(h) => h,
        None => panic!(
            "no hold {what}: {}",
            holds(app, admin, "?page_size=100").await
        ),
    }
}

fn of_order<'a>(order_id: &'a str, status: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |h: &Value| h["order_id"] == order_id && h["status"] == status
}

fn with_id<'a>(hold_id: &'a str, status: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |h: &Value| h["id"] == hold_id && h["status"] == status
}

/// A hold made the way orders makes one (the catalog's internal route); its answer.
async fn new_hold(app: &TestApp, lines: Value) -> Value {
    let (status, body) = call_internal(
        app,
        "catalog",
        "POST",
        "/internal/stock/holds",
        &[],
        Some(json!({ "items": lines })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// `POST /internal/stock/holds/{id}/release`; its status and body.
async fn release(app: &TestApp, hold_id: &str) -> (u16, Value) {
    call_internal(
        app,
        "catalog",
        "POST",
        "/internal/stock/holds/{id}/release",
        &[("id", hold_id)],
        None,
    )
    .await
}

/// Waits until the catalog has handled event `event_id` (operator API).
async fn handled_by_catalog(app: &TestApp, event_id: &str) {
    let done = app
        .eventually(15, || async {
            let r = app
                .get("/admin/events?status=done", Some(OPERATOR_TOKEN))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body["items"]
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .find(|e| e["id"] == event_id && e["subscriber"] == "catalog")
                })
                .map(|_| ())
        })
        .await;
    assert!(done.is_some(), "the catalog never handled {event_id}");
}

/// Waits until the catalog has handled `n` events on `topic`.
async fn catalog_handled(app: &TestApp, topic: &str, n: usize) {
    let done = app
        .eventually(15, || async {
            let r = app
                .get("/admin/events?status=done", Some(OPERATOR_TOKEN))
                .await;
            let seen = r.body["items"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|e| e["topic"] == topic && e["subscriber"] == "catalog")
                        .count()
                })
                .unwrap_or(0);
            (seen >= n).then_some(())
        })
        .await;
    assert!(done.is_some(), "the catalog handled fewer than {n} {topic}");
}

/// Units of `product_id` on the hold's lines.
fn units(hold: &Value, product_id: &str) -> i64 {
    hold["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|l| l["product_id"] == product_id)
                .filter_map(|l| l["quantity"].as_i64())
                .sum()
        })
        .unwrap_or(0)
}

backend_test!(a_checkout_hold_is_confirmed_by_its_order, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 10).await;
    let (c, address) = shopper(app, &product, 3).await;
    let id = place(app, &c, &address, "cod").await;
    // The hold took the units before the order was written.
    assert_eq!(stock_of(app, &product).await, 7);

    let hold = wait_for_hold(
        app,
        &admin,
        "confirmed by the order",
        of_order(&id, "confirmed"),
    )
    .await;
    assert_eq!(
        hold["items"],
        json!([{"product_id": product, "quantity": 3}])
    );
    let hold_id = hold["id"].as_str().expect("hold id").to_string();
    assert!(hold_id.starts_with("hld_"), "{hold}");
    assert!(
        hold["expires_at"].as_str() > hold["created_at"].as_str(),
        "{hold}"
    );
    // One hold, nothing left held, the units still with the order.
    let list = holds(app, &admin, "").await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(holds(app, &admin, "?status=held").await["total"], 0);
    assert_eq!(stock_of(app, &product).await, 7);

    // What the catalog asks orders when a hold expires.
    let (status, body) = call_internal(
        app,
        "orders",
        "GET",
        "/internal/orders/by-hold/{hold_id}",
        &[("hold_id", &hold_id)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"id": id, "status": "confirmed"}));
    let (status, body) = call_internal(
        app,
        "orders",
        "GET",
        "/internal/orders/by-hold/{hold_id}",
        &[("hold_id", "hld_nope")],
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    // The order's public shape does not show the hold.
    let r = app
        .get(&format!("/api/v1/orders/{id}"), Some(&c.token))
        .await;
    assert!(r.body.get("hold_id").is_none(), "{}", r.text);
});

backend_test!(
    a_hold_whose_order_never_came_is_released_at_expiry,
    "[catalog]\nhold_ttl_seconds = 1\n",
    |app| {
        let admin = app.admin_token().await;
        let product = new_product(app, &admin, 1000, 10).await;

        // A hold with no order (a checkout that died after taking it).
        let hold = new_hold(app, json!([{"product_id": product, "quantity": 4}])).await;
        let hold_id = hold["hold_id"].as_str().expect("hold_id").to_string();
        assert_eq!(hold["items"][0]["quantity"], 4);
        assert_eq!(hold["items"][0]["unit_price"], 1000);
        assert_eq!(stock_of(app, &product).await, 6);

        let released = wait_for_hold(app, &admin, "released", with_id(&hold_id, "released")).await;
        assert_eq!(released["order_id"], Value::Null);
        stock_becomes(app, &product, 10).await;
        // A late release changes nothing: the units went back once.
        let (status, body) = release(app, &hold_id).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({"hold_id": hold_id, "status": "released"}));
        assert_eq!(stock_of(app, &product).await, 10);

        // A checkout's hold expires too, but the order exists: its units stay sold.
        let (c, address) = shopper(app, &product, 2).await;
        let id = place(app, &c, &address, "cod").await;
        catalog_handled(app, "catalog.hold_expired", 2).await;
        wait_for_hold(app, &admin, "confirmed", of_order(&id, "confirmed")).await;
        assert_eq!(stock_of(app, &product).await, 8);
        assert_eq!(holds(app, &admin, "?status=held").await["total"], 0);

        // A hold released at once (the checkout's order write failed) does not wait.
        let hold = new_hold(app, json!([{"product_id": product, "quantity": 5}])).await;
        let hold_id = hold["hold_id"].as_str().expect("hold_id").to_string();
        assert_eq!(stock_of(app, &product).await, 3);
        let (status, body) = release(app, &hold_id).await;
        assert_eq!(
            (status, body["status"].clone()),
            (200, json!("released")),
            "{body}"
        );
        assert_eq!(stock_of(app, &product).await, 8);
        // Its expiry later finds it released and changes nothing.
        catalog_handled(app, "catalog.hold_expired", 3).await;
        assert_eq!(stock_of(app, &product).await, 8);
        let (status, _) = release(app, "hld_nope").await;
        assert_eq!(status, 404);
    }
);

backend_test!(cancelling_returns_the_units_exactly_once, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 10).await;
    let (c, address) = shopper(app, &product, 3).await;
    let id = place(app, &c, &address, "cod").await;
    assert_eq!(stock_of(app, &product).await, 7);
    let hold = wait_for_hold(app, &admin, "confirmed", of_order(&id, "confirmed")).await;
    let hold_id = hold["id"].as_str().expect("hold id").to_string();

    let r = cancel_order(app, &c.token, &id).await;
    assert_eq!(r.status, 200, "{}", r.text);
    wait_for_hold(app, &admin, "returned", with_id(&hold_id, "returned")).await;
    assert_eq!(stock_of(app, &product).await, 10);

    // Cancelling again is refused and returns nothing.
    let r = cancel_order(app, &c.token, &id).await;
    assert_error(&r, 409, "invalid_transition");
    assert_eq!(stock_of(app, &product).await, 10);

    // The same cancellation delivered again under another event id (what an
    // at-least-once bus may do) finds the hold returned: the units go back once.
    let payload = json!({"order_id": id, "user_id": c.user_id, "hold_id": hold_id,
                         "items": [{"product_id": product, "quantity": 3}],
                         "payment_status": "cod", "total": 5500, "reason": "again"});
    let again = format!("evt_test_{}", app.word("again"));
    inject_event(app, &again, "orders", "order.cancelled", &payload, 0).await;
    handled_by_catalog(app, &again).await;
    assert_eq!(stock_of(app, &product).await, 10);

    // A forged cancellation from a plugin that does not own the topic moves nothing.
    let (c2, address2) = shopper(app, &product, 2).await;
    let id2 = place(app, &c2, &address2, "cod").await;
    let hold2 = wait_for_hold(app, &admin, "confirmed", of_order(&id2, "confirmed")).await;
    let forged = format!("evt_test_{}", app.word("forged"));
    let payload = json!({"order_id": id2, "hold_id": hold2["id"],
                         "items": [{"product_id": product, "quantity": 2}]});
    inject_event(app, &forged, "faulty", "order.cancelled", &payload, 0).await;
    handled_by_catalog(app, &forged).await;
    assert_eq!(stock_of(app, &product).await, 8);
    wait_for_hold(app, &admin, "still confirmed", of_order(&id2, "confirmed")).await;

    // An order placed before holds existed has none: its lines go back, once.
    let legacy = format!("ord_legacy{}", app.word(""));
    let payload = json!({"order_id": legacy, "items": [{"product_id": product, "quantity": 2}]});
    for n in 0..2 {
        let event = format!("evt_test_{}_{n}", app.word("legacy"));
        inject_event(app, &event, "orders", "order.cancelled", &payload, 0).await;
        handled_by_catalog(app, &event).await;
        assert_eq!(stock_of(app, &product).await, 10, "delivery {n}");
    }
    let returned = wait_for_hold(app, &admin, "returned", of_order(&legacy, "returned")).await;
    assert_eq!(units(&returned, &product), 2);
});

backend_test!(
    the_payment_timeout_returns_the_units_once,
    "[orders]\npayment_timeout_seconds = 1\n",
    |app| {
        let admin = app.admin_token().await;
        let product = new_product(app, &admin, 1000, 10).await;
        let (c, address) = shopper(app, &product, 2).await;
        let id = place(app, &c, &address, "online").await;
        assert_eq!(stock_of(app, &product).await, 8);

        let cancelled = app
            .eventually(15, || async {
                let r = app
                    .get(&format!("/api/v1/orders/{id}"), Some(&c.token))
                    .await;
                (r.body["status"] == "cancelled").then_some(r.body)
            })
            .await
            .expect("the unpaid order is cancelled");
        assert_eq!(cancelled["cancel_reason"], "payment_timeout");
        let hold = wait_for_hold(app, &admin, "returned", of_order(&id, "returned")).await;
        assert_eq!(units(&hold, &product), 2);
        assert_eq!(stock_of(app, &product).await, 10);

        // The timeout delivered again cancels nothing more and returns nothing more.
        let again = format!("evt_test_{}", app.word("timeout"));
        inject_event(
            app,
            &again,
            "orders",
            "orders.payment_timeout",
            &json!({"order_id": id}),
            0,
        )
        .await;
        let handled = app
            .eventually(15, || async {
                let r = app
                    .get("/admin/events?status=done", Some(OPERATOR_TOKEN))
                    .await;
                r.body["items"]
                    .as_array()
                    .and_then(|a| a.iter().find(|e| e["id"] == again.as_str()).cloned())
            })
            .await;
        assert!(
            handled.is_some(),
            "orders never handled the repeated timeout"
        );
        assert_eq!(stock_of(app, &product).await, 10);
        assert_eq!(holds(app, &admin, "").await["total"], 1);
    }
);

backend_test!(admin_lists_stock_holds, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 20).await;
    let (c, address) = shopper(app, &product, 1).await;
    let id = place(app, &c, &address, "cod").await;
    let confirmed = wait_for_hold(app, &admin, "confirmed", of_order(&id, "confirmed")).await;
    let released = new_hold(app, json!([{"product_id": product, "quantity": 2}])).await;
    let released_id = released["hold_id"].as_str().expect("hold_id").to_string();
    let (status, _) = release(app, &released_id).await;
    assert_eq!(status, 200);
    let held = new_hold(
        app,
        json!([{"product_id": product, "quantity": 3},
                                     {"product_id": product, "quantity": 1}]),
    )
    .await;
    let held_id = held["hold_id"].as_str().expect("hold_id").to_string();

    let list = holds(app, &admin, "").await;
    assert_eq!(list["total"], 3, "{list}");
    assert_eq!(
        (list["page"].clone(), list["page_size"].clone()),
        (json!(1), json!(20))
    );
    let ids: Vec<&str> = list["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|h| h["id"].as_str()).collect())
        .unwrap_or_default();
    // Newest first.
    assert_eq!(
        ids,
        vec![
            held_id.as_str(),
            released_id.as_str(),
            confirmed["id"].as_str().unwrap_or_default()
        ]
    );
    let first = &list["items"][0];
    let mut keys: Vec<&str> = first
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "created_at",
            "expires_at",
            "id",
            "items",
            "order_id",
            "status",
            "updated_at"
        ]
    );
    // Two lines of one product are one line of the hold.
    assert_eq!(
        first["items"],
        json!([{"product_id": product, "quantity": 4}])
    );
    assert_eq!(first["status"], "held");
    assert_eq!(first["order_id"], Value::Null);

    for (status, want) in [("held", &held_id), ("released", &released_id)] {
        let list = holds(app, &admin, &format!("?status={status}")).await;
        assert_eq!(list["total"], 1, "{status}: {list}");
        assert_eq!(list["items"][0]["id"], want.as_str());
    }
    let list = holds(app, &admin, "?status=confirmed").await;
    assert_eq!(list["items"][0]["order_id"], id.as_str());
    assert_eq!(holds(app, &admin, "?status=returned").await["total"], 0);
    let page = holds(app, &admin, "?page_size=1&page=2").await;
    assert_eq!(page["items"][0]["id"], released_id.as_str());
    assert_eq!(page["total"], 3);

    let r = app
        .get("/api/v1/admin/stock-holds?status=expired", Some(&admin))
        .await;
    assert_invalid_field(&r, "status");
    let r = app
        .get(
            "/api/v1/admin/stock-holds?status=lost&page_size=500",
            Some(&admin),
        )
        .await;
    assert_error(&r, 400, "validation_failed");
    let mut fields = r.fields();
    fields.sort();
    assert_eq!(fields, vec!["page_size", "status"]);
    let r = app.get("/api/v1/admin/stock-holds", Some(&c.token)).await;
    assert_error(&r, 403, "forbidden");
    let r = app.get("/api/v1/admin/stock-holds", None).await;
    assert_error(&r, 401, "unauthorized");
});

/// Asserts `initial == available + units in held holds + units in live orders` for
/// `product_id`.
async fn assert_balance(app: &TestApp, admin: &str, product_id: &str, initial: i64) {
    let available = stock_of(app, product_id).await;
    let held: i64 = holds(app, admin, "?status=held&page_size=100").await["items"]
        .as_array()
        .map(|a| a.iter().map(|h| units(h, product_id)).sum())
        .unwrap_or(0);
    let r = app
        .get("/api/v1/admin/orders?page_size=100", Some(admin))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let in_orders: i64 = r.body["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|o| o["status"] != "cancelled")
                .map(|o| units(o, product_id))
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(
        initial,
        available + held + in_orders,
        "{product_id}: {available} available + {held} held + {in_orders} in live orders"
    );
}

backend_test!(
    stock_balances_across_orders_holds_and_cancellations,
    |app| {
        let admin = app.admin_token().await;
        let dal = new_product(app, &admin, 1000, 50).await;
        let rice = new_product(app, &admin, 700, 30).await;
        let mut placed = Vec::new();
        for (i, (dal_qty, rice_qty)) in [(2, 1), (5, 0), (1, 3), (4, 4), (3, 2)]
            .into_iter()
            .enumerate()
        {
            let (c, address) = shopper(app, &dal, dal_qty).await;
            if rice_qty > 0 {
                add_to_cart(app, &c.token, &rice, rice_qty).await;
            }
            let method = if i % 2 == 0 { "cod" } else { "online" };
            let id = place(app, &c, &address, method).await;
            placed.push((c, id));
        }
        // A checkout that never got its order (its hold stays held until it expires).
        new_hold(
            app,
            json!([{"product_id": dal, "quantity": 6}, {"product_id": rice, "quantity": 2}]),
        )
        .await;
        // Two cancellations: by the customer, and by an admin from preparing.
        let (c0, id0) = &placed[0];
        let r = cancel_order(app, &c0.token, id0).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let id2 = &placed[2].1;
        for step in ["preparing", "cancelled"] {
            move_order(app, &admin, id2, step).await;
        }
        // Once the events are delivered: the live orders' holds confirmed, the cancelled
        // ones' returned, and only the orderless hold still held.
        for (i, (_, id)) in placed.iter().enumerate() {
            let want = if i == 0 || i == 2 {
                "returned"
            } else {
                "confirmed"
            };
            wait_for_hold(app, &admin, want, of_order(id, want)).await;
        }
        assert_eq!(holds(app, &admin, "?status=held").await["total"], 1);
        assert_balance(app, &admin, &dal, 50).await;
        assert_balance(app, &admin, &rice, 30).await;
        // The live orders (the 2nd, 4th and 5th) have 5 + 4 + 3 dal and 0 + 4 + 2 rice;
        // the orderless hold 6 and 2.
        assert_eq!(stock_of(app, &dal).await, 50 - 12 - 6);
        assert_eq!(stock_of(app, &rice).await, 30 - 6 - 2);
    }
);

// A hold taken before a restart is released by its expiry after it (the expiry is a
// scheduled event the host keeps), and both plugins' migrations run again cleanly.
backend_test!(
    a_hold_expires_across_a_restart,
    "[catalog]\nhold_ttl_seconds = 2\n",
    |mut app| {
        let admin = app.admin_token().await;
        let product = new_product(app, &admin, 1000, 10).await;
        let (c, address) = shopper(app, &product, 1).await;
        let id = place(app, &c, &address, "cod").await;
        let hold = new_hold(app, json!([{"product_id": product, "quantity": 3}])).await;
        let hold_id = hold["hold_id"].as_str().expect("hold_id").to_string();
        assert_eq!(stock_of(app, &product).await, 6);

        app.restart().await;
        let admin = app.admin_token().await;
        wait_for_hold(app, &admin, "released", with_id(&hold_id, "released")).await;
        stock_becomes(app, &product, 9).await;
        // The order placed before the restart keeps its unit and its hold.
        wait_for_hold(app, &admin, "confirmed", of_order(&id, "confirmed")).await;
        let (status, body) = call_internal(
            app,
            "orders",
            "GET",
            "/internal/orders/by-hold/{hold_id}",
            &[("hold_id", &hold_id)],
            None,
        )
        .await;
        assert_eq!(status, 404, "{body}");
        // Checkout still works on the migrated schema.
        add_to_cart(app, &c.token, &product, 2).await;
        let again = place(app, &c, &address, "cod").await;
        wait_for_hold(app, &admin, "confirmed", of_order(&again, "confirmed")).await;
        assert_eq!(stock_of(app, &product).await, 7);
    }
);

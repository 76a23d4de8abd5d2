//! The `analytics` plugin over HTTP: admin-only access, the dashboard, sales, top
//! products and user figures after real COD orders (delivered, open, cancelled) and an
//! online order paid through the payments flow; the revenue rule; read models that
//! converge when events arrive late, twice or out of order (events injected into the
//! host's outbox); and parameter validation.

use crate::helpers::*;
use crate::shop::*;

const ROUTES: [&str; 4] = [
    "/api/v1/analytics/dashboard",
    "/api/v1/analytics/sales",
    "/api/v1/analytics/products/top",
    "/api/v1/analytics/users",
];

/// `YYYY-MM-DD` of a date.
fn ymd(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Today's UTC day, `days` later (earlier when negative).
fn utc_day(days: i64) -> String {
    ymd((time::OffsetDateTime::now_utc() + time::Duration::days(days)).date())
}

/// Now as RFC 3339 UTC, as the plugins write it.
fn now_rfc3339() -> String {
    let t = time::OffsetDateTime::now_utc();
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formatting now")
}

/// Publishes `payload` on `topic` into the host's outbox as if a plugin had, delivered
/// after `delay_ms` to every subscriber (the way the platform delivers real events).
async fn inject(app: &TestApp, topic: &str, payload: Value, delay_ms: u64) {
    let id = app.unique("evt_analytics_test_");
    inject_event(app, &id, "analytics-test", topic, &payload, delay_ms).await;
}

/// Polls `GET path` as `admin` until `ok` holds (events are asynchronous); the body.
async fn until(app: &TestApp, admin: &str, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let ok = &ok;
    let found = app
        .eventually(5, || async move {
            let r = app.get(path, Some(admin)).await;
            (r.status == 200 && ok(&r.body)).then_some(r.body)
        })
        .await;
    match found {
        Some(body) => body,
        None => {
            let r = app.get(path, Some(admin)).await;
            panic!(
                "GET {path} did not reach the expected state in 5 s: {} {}",
                r.status, r.text
            )
        }
    }
}

async fn get_ok(app: &TestApp, admin: &str, path: &str) -> Value {
    let r = app.get(path, Some(admin)).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.text);
    r.body
}

async fn deliver(app: &TestApp, admin: &str, id: &str) {
    for s in ["preparing", "out_for_delivery", "delivered"] {
        move_order(app, admin, id, s).await;
    }
}

fn by_status(body: &Value) -> Vec<i64> {
    [
        "pending",
        "confirmed",
        "preparing",
        "out_for_delivery",
        "delivered",
        "cancelled",
    ]
    .iter()
    .map(|s| body["orders_by_status"][s].as_i64().unwrap_or(-1))
    .collect()
}

fn top_ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["product_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

backend_test!(every_route_is_admin_only, |app| {
    let admin = app.admin_token().await;
    // A fresh host: all figures are zero and every status is present.
    let d = get_ok(app, &admin, ROUTES[0]).await;
    assert_eq!(d["orders_today"], 0, "{d}");
    assert_eq!(d["revenue_today"], 0, "{d}");
    assert_eq!(d["avg_order_value"], 0, "{d}");
    assert_eq!(d["active_deliveries"], 0, "{d}");
    assert_eq!(d["new_users_today"], 0, "{d}");
    assert_eq!(by_status(&d), vec![0; 6], "{d}");
    let t = get_ok(app, &admin, ROUTES[2]).await;
    assert_eq!(t["items"], json!([]), "{t}");
    let u = get_ok(app, &admin, ROUTES[3]).await;
    assert_eq!(
        (&u["total"], &u["new_in_range"], &u["repeat_customers"]),
        (&json!(0), &json!(0), &json!(0)),
        "{u}"
    );

    let customer = app.customer().await;
    let agent = new_agent(app, &admin).await;
    for path in ROUTES {
        app.get(path, None).await.assert_error(401, "unauthorized");
        app.get(path, Some("not-a-token"))
            .await
            .assert_error(401, "unauthorized");
        app.get(path, Some(&customer.token))
            .await
            .assert_error(403, "forbidden");
        app.get(path, Some(&agent.token))
            .await
            .assert_error(403, "forbidden");
        let r = app.get(path, Some(&admin)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
    // Only customers count as users: the agent and the admin do not.
    let u = until(app, &admin, ROUTES[3], |b| b["total"] == 1).await;
    assert_eq!(u["new_in_range"], 1, "{u}");
});

backend_test!(
    cod_orders_feed_dashboard_sales_top_products_and_users,
    |app| {
        let admin = app.admin_token().await;
        let dal = new_product(app, &admin, 4500, 50).await;
        let rice = new_product(app, &admin, 10000, 50).await;
        let today = utc_day(0);

        // c1: a delivered order (2 × 4500 + 2500 fee) and an open one (10000 + 2500).
        let (c1, a1) = shopper(app, &dal, 2).await;
        let delivered = place(app, &c1, &a1, "cod").await;
        add_to_cart(app, &c1.token, &rice, 1).await;
        let open = place(app, &c1, &a1, "cod").await;
        // c2: a cancelled order (4500 + 2 × 10000, free delivery).
        let (c2, a2) = shopper(app, &dal, 1).await;
        add_to_cart(app, &c2.token, &rice, 2).await;
        let cancelled = place(app, &c2, &a2, "cod").await;
        let r = cancel_order(app, &c2.token, &cancelled).await;
        assert_eq!(r.status, 200, "{}", r.text);
        deliver(app, &admin, &delivered).await;

        // Only the delivered COD order is revenue; every order is in orders_today.
        let d = until(app, &admin, ROUTES[0], |b| {
            b["orders_today"] == 3
                && b["orders_by_status"]["delivered"] == 1
                && b["orders_by_status"]["cancelled"] == 1
                && b["new_users_today"] == 2
        })
        .await;
        assert_eq!(by_status(&d), vec![0, 1, 0, 0, 1, 1], "{d}");
        assert_eq!(d["revenue_today"], 11500, "{d}");
        assert_eq!(d["avg_order_value"], 11500, "{d}");
        assert_eq!(d["active_deliveries"], 0, "no agent exists: {d}");

        let s = get_ok(
            app,
            &admin,
            &format!("/api/v1/analytics/sales?from={today}&to={today}"),
        )
        .await;
        assert_eq!(
            s["points"],
            json!([{"date": today, "orders": 1, "revenue": 11500}]),
            "{s}"
        );
        assert_eq!(
            (&s["total_orders"], &s["total_revenue"]),
            (&json!(1), &json!(11500))
        );

        // Default range: the last 7 days ending today, zeros on empty days.
        let s = get_ok(app, &admin, "/api/v1/analytics/sales").await;
        let points = s["points"].as_array().cloned().unwrap_or_default();
        assert_eq!(points.len(), 7, "{s}");
        assert_eq!(points[0]["date"], utc_day(-6).as_str(), "{s}");
        assert_eq!(points[6]["date"], today.as_str(), "{s}");
        assert_eq!(points[6]["revenue"], 11500, "{s}");
        assert!(points[..6]
            .iter()
            .all(|p| p["orders"] == 0 && p["revenue"] == 0));
        assert_eq!(
            (&s["total_orders"], &s["total_revenue"]),
            (&json!(1), &json!(11500))
        );

        // Top products: only lines of counted orders (the open and cancelled ones are not).
        let t = get_ok(app, &admin, ROUTES[2]).await;
        assert_eq!(top_ids(&t), vec![dal.clone()], "{t}");
        assert_eq!(t["items"][0]["units"], 2, "{t}");
        assert_eq!(t["items"][0]["revenue"], 9000, "{t}");
        assert!(t["items"][0]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("Order test dal")));

        let u = get_ok(app, &admin, ROUTES[3]).await;
        assert_eq!(u["total"], 2, "{u}");
        assert_eq!(u["new_in_range"], 2, "{u}");
        assert_eq!(
            u["repeat_customers"], 0,
            "one counted order each so far: {u}"
        );

        // Delivering c1's second order makes c1 a repeat customer and rice a top product:
        // rice has more revenue (10000) but fewer units (1) than dal (2 units, 9000).
        deliver(app, &admin, &open).await;
        let d = until(app, &admin, ROUTES[0], |b| b["revenue_today"] == 24000).await;
        assert_eq!(by_status(&d), vec![0, 0, 0, 0, 2, 1], "{d}");
        assert_eq!(d["avg_order_value"], 12000, "{d}");
        let t = get_ok(app, &admin, ROUTES[2]).await;
        assert_eq!(top_ids(&t), vec![dal.clone(), rice.clone()], "{t}");
        assert_eq!(t["items"][1]["units"], 1, "{t}");
        assert_eq!(t["items"][1]["revenue"], 10000, "{t}");
        let t = get_ok(app, &admin, "/api/v1/analytics/products/top?limit=1").await;
        assert_eq!(top_ids(&t), vec![dal.clone()], "{t}");
        let u = until(app, &admin, ROUTES[3], |b| b["repeat_customers"] == 1).await;
        assert_eq!(u["total"], 2, "{u}");
        let s = get_ok(
            app,
            &admin,
            &format!("/api/v1/analytics/sales?from={today}&to={today}"),
        )
        .await;
        assert_eq!(
            (&s["total_orders"], &s["total_revenue"]),
            (&json!(2), &json!(24000))
        );

        // Signups outside the asked range are not new in it.
        let yesterday = utc_day(-1);
        let u = get_ok(
            app,
            &admin,
            &format!("/api/v1/analytics/users?from={yesterday}&to={yesterday}"),
        )
        .await;
        assert_eq!(
            (&u["total"], &u["new_in_range"]),
            (&json!(2), &json!(0)),
            "{u}"
        );
    }
);

backend_test!(online_order_counts_once_paid_through_payments, |app| {
    let admin = app.admin_token().await;
    let tea = new_product(app, &admin, 25000, 10).await;
    let (c, address) = shopper(app, &tea, 1).await;
    let order = place(app, &c, &address, "online").await;

    // Pending and unpaid: in orders_today, not in revenue.
    let d = until(app, &admin, ROUTES[0], |b| {
        b["orders_by_status"]["pending"] == 1
    })
    .await;
    assert_eq!(d["revenue_today"], 0, "{d}");

    let r = app
        .post(
            "/api/v1/payments/intents",
            Some(&c.token),
            json!({ "order_id": order }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let provider_order_id = r.body["provider_order_id"]
        .as_str()
        .expect("provider_order_id")
        .to_string();
    let pid = format!("pay_{}", app.unique("analytics"));
    let signature = payment_signature(&provider_order_id, &pid);
    let r = app
        .post(
            "/api/v1/payments/verify",
            Some(&c.token),
            json!({"order_id": order, "provider_payment_id": pid, "signature": signature}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Paid (25000, free delivery) counts before it is delivered.
    let d = until(app, &admin, ROUTES[0], |b| {
        b["revenue_today"] == 25000 && b["orders_by_status"]["confirmed"] == 1
    })
    .await;
    assert_eq!(d["orders_today"], 1, "{d}");
    assert_eq!(d["avg_order_value"], 25000, "{d}");
    let t = get_ok(app, &admin, ROUTES[2]).await;
    assert_eq!(top_ids(&t), vec![tea.clone()], "{t}");

    // Cancelled (and refunded by payments): out of revenue.
    let r = cancel_order(app, &admin, &order).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = until(app, &admin, ROUTES[0], |b| {
        b["orders_by_status"]["cancelled"] == 1
    })
    .await;
    assert_eq!(
        (&d["revenue_today"], &d["avg_order_value"]),
        (&json!(0), &json!(0))
    );
    let t = get_ok(app, &admin, ROUTES[2]).await;
    assert_eq!(t["items"], json!([]), "{t}");
});

backend_test!(late_repeated_and_out_of_order_events_converge, |app| {
    let admin = app.admin_token().await;
    let now = now_rfc3339();
    let order = app.unique("ord_evt_");
    let product = app.unique("prd_evt_");
    let created = json!({
        "order_id": order, "user_id": "usr_evt_1", "status": "pending",
        "payment_method": "online", "payment_status": "awaiting", "total": 30000,
        "items": [{"product_id": product, "name": "Masala chai 250 g", "quantity": 3,
                   "unit_price": 10000, "line_total": 30000}],
        "created_at": now,
    });
    // The capture and a later status arrive long before the order itself, which then
    // comes twice; a stale status comes last.
    inject(
        app,
        "payment.captured",
        json!({"payment_id": "pay_evt_1", "order_id": order, "user_id": "usr_evt_1",
               "amount": 30000, "currency": "INR", "provider_payment_id": "x", "at": now}),
        0,
    )
    .await;
    inject(
        app,
        "order.status_changed",
        json!({"order_id": order, "user_id": "usr_evt_1", "from": "confirmed",
               "to": "preparing", "at": now}),
        0,
    )
    .await;
    inject(app, "order.created", created.clone(), 400).await;
    inject(app, "order.created", created.clone(), 500).await;
    inject(
        app,
        "order.status_changed",
        json!({"order_id": order, "user_id": "usr_evt_1", "from": "pending",
               "to": "confirmed", "at": now}),
        700,
    )
    .await;
    // An unusable event is acknowledged and blocks nothing.
    inject(
        app,
        "order.created",
        json!({"order_id": "ord_broken", "created_at": "yesterday"}),
        0,
    )
    .await;

    let d = until(app, &admin, ROUTES[0], |b| {
        b["revenue_today"] == 30000 && b["orders_by_status"]["preparing"] == 1
    })
    .await;
    assert_eq!(d["orders_today"], 1, "{d}");
    assert_eq!(by_status(&d), vec![0, 0, 1, 0, 0, 0], "{d}");
    // Once the stale status and the duplicate were handled, look again: nothing moved.
    settled(app).await;
    let d = get_ok(app, &admin, ROUTES[0]).await;
    assert_eq!(by_status(&d), vec![0, 0, 1, 0, 0, 0], "{d}");
    assert_eq!(d["revenue_today"], 30000, "{d}");
    let t = get_ok(app, &admin, ROUTES[2]).await;
    assert_eq!(
        t["items"],
        json!([{"product_id": product, "name": "Masala chai 250 g", "units": 3,
                "revenue": 30000}]),
        "lines are not doubled: {t}"
    );

    // A partial refund reduces revenue (reported twice: set, not added); a full one
    // drops the order.
    let refund = |amount: i64, full: bool| {
        json!({"payment_id": "pay_evt_1", "order_id": order, "user_id": "usr_evt_1",
               "amount": 5000, "refunded_amount": amount, "full": full, "at": now})
    };
    inject(app, "payment.refunded", refund(5000, false), 0).await;
    inject(app, "payment.refunded", refund(5000, false), 0).await;
    until(app, &admin, ROUTES[0], |b| b["revenue_today"] == 25000).await;
    settled(app).await;
    let d = get_ok(app, &admin, ROUTES[0]).await;
    assert_eq!(d["revenue_today"], 25000, "{d}");
    inject(app, "payment.refunded", refund(30000, true), 0).await;
    let d = until(app, &admin, ROUTES[0], |b| b["revenue_today"] == 0).await;
    assert_eq!(d["orders_today"], 1, "{d}");
    let t = get_ok(app, &admin, ROUTES[2]).await;
    assert_eq!(t["items"], json!([]), "{t}");

    // Deliveries: active while assigned / picked up / in transit; a late, older event
    // does not undo a later step; an order's cancellation ends its delivery.
    let del = app.unique("del_evt_");
    let ord2 = app.unique("ord_evt_");
    let at = |s: &str| format!("{}T10:00:{s}Z", utc_day(0));
    let step = |from: &str, to: &str, when: &str| {
        json!({"delivery_id": del, "order_id": ord2, "user_id": "usr_evt_1",
               "agent_id": "agt_1", "from": from, "to": to, "at": at(when)})
    };
    inject(
        app,
        "delivery.status_changed",
        step("assigned", "picked_up", "05"),
        0,
    )
    .await;
    until(app, &admin, ROUTES[0], |b| b["active_deliveries"] == 1).await;
    // Same second as picked_up: the later step (by lifecycle) wins.
    inject(
        app,
        "delivery.status_changed",
        step("picked_up", "in_transit", "05"),
        0,
    )
    .await;
    inject(
        app,
        "delivery.status_changed",
        step("in_transit", "delivered", "09"),
        100,
    )
    .await;
    inject(
        app,
        "delivery.assigned",
        json!({"delivery_id": del, "order_id": ord2, "user_id": "usr_evt_1",
               "agent_id": "agt_1", "agent_user_id": "usr_agent", "agent_name": "Ravi",
               "at": at("01")}),
        400,
    )
    .await;
    until(app, &admin, ROUTES[0], |b| b["active_deliveries"] == 0).await;
    settled(app).await;
    let d = get_ok(app, &admin, ROUTES[0]).await;
    assert_eq!(
        d["active_deliveries"], 0,
        "a stale assignment came back: {d}"
    );
    let del3 = app.unique("del_evt_");
    let ord3 = app.unique("ord_evt_");
    inject(
        app,
        "delivery.assigned",
        json!({"delivery_id": del3, "order_id": ord3, "user_id": "usr_evt_1",
               "agent_id": "agt_2", "agent_user_id": "usr_agent2", "agent_name": "Asha",
               "at": now}),
        0,
    )
    .await;
    until(app, &admin, ROUTES[0], |b| b["active_deliveries"] == 1).await;
    inject(
        app,
        "order.cancelled",
        json!({"order_id": ord3, "user_id": "usr_evt_1", "payment_status": "cod",
               "total": 100, "reason": "test"}),
        0,
    )
    .await;
    until(app, &admin, ROUTES[0], |b| b["active_deliveries"] == 0).await;

    // Users: a repeated user.created counts once; admins and agents are not customers;
    // a customer known only from an order counts in total but not as new.
    for _ in 0..2 {
        inject(
            app,
            "user.created",
            json!({"user_id": "usr_evt_2", "email": "a@b.in", "name": "A", "phone": null,
                   "role": "customer", "created_at": now}),
            0,
        )
        .await;
    }
    inject(
        app,
        "user.created",
        json!({"user_id": "usr_evt_3", "email": "c@b.in", "name": "C", "phone": null,
               "role": "delivery_agent", "created_at": now}),
        0,
    )
    .await;
    let u = until(app, &admin, ROUTES[3], |b| b["new_in_range"] == 1).await;
    settled(app).await;
    let u2 = get_ok(app, &admin, ROUTES[3]).await;
    assert_eq!(u, u2, "the users figures moved after settling");
    // usr_evt_1 (from the order) and usr_evt_2.
    assert_eq!(
        (&u["total"], &u["new_in_range"]),
        (&json!(2), &json!(1)),
        "{u}"
    );
});

backend_test!(days_are_utc_and_ranges_fill_every_day, |app| {
    let admin = app.admin_token().await;
    let cod_order = |id: &str, created_at: &str, total: i64| {
        json!({"order_id": id, "user_id": "usr_day", "status": "confirmed",
               "payment_method": "cod", "payment_status": "cod", "total": total,
               "items": [], "created_at": created_at})
    };
    // 2024-02-29 in UTC, though written in other offsets.
    let a = app.unique("ord_day_");
    let b = app.unique("ord_day_");
    let c = app.unique("ord_day_");
    inject(
        app,
        "order.created",
        cod_order(&a, "2024-02-29T03:00:00+05:30", 1000),
        0,
    )
    .await;
    inject(
        app,
        "order.created",
        cod_order(&b, "2024-02-28T22:00:00-05:00", 2000),
        0,
    )
    .await;
    inject(
        app,
        "order.created",
        cod_order(&c, "2024-03-01T00:00:00Z", 4000),
        0,
    )
    .await;
    for id in [&a, &b, &c] {
        for (from, to) in [
            ("confirmed", "preparing"),
            ("preparing", "out_for_delivery"),
            ("out_for_delivery", "delivered"),
        ] {
            inject(
                app,
                "order.status_changed",
                json!({"order_id": id, "user_id": "usr_day", "from": from, "to": to,
                       "at": "2024-03-01T12:00:00Z"}),
                0,
            )
            .await;
        }
    }
    let path = "/api/v1/analytics/sales?from=2024-02-27&to=2024-03-01";
    let s = until(app, &admin, path, |b| b["total_orders"] == 3).await;
    assert_eq!(
        s["points"],
        json!([
            {"date": "2024-02-27", "orders": 0, "revenue": 0},
            {"date": "2024-02-28", "orders": 1, "revenue": 1000},
            {"date": "2024-02-29", "orders": 1, "revenue": 2000},
            {"date": "2024-03-01", "orders": 1, "revenue": 4000},
        ]),
        "{s}"
    );
    assert_eq!(s["total_revenue"], 7000, "{s}");
    assert_eq!(
        (&s["from"], &s["to"]),
        (&json!("2024-02-27"), &json!("2024-03-01"))
    );
    // None of them is today's.
    let d = get_ok(app, &admin, ROUTES[0]).await;
    assert_eq!(
        (&d["orders_today"], &d["revenue_today"]),
        (&json!(0), &json!(0)),
        "{d}"
    );
    // usr_day has three counted orders.
    let u = get_ok(app, &admin, ROUTES[3]).await;
    assert_eq!(u["repeat_customers"], 1, "{u}");

    // The longest range: 366 days, one point each.
    let s = get_ok(
        app,
        &admin,
        "/api/v1/analytics/sales?from=2024-01-01&to=2024-12-31",
    )
    .await;
    let points = s["points"].as_array().cloned().unwrap_or_default();
    assert_eq!(points.len(), 366, "2024 is a leap year");
    assert_eq!(points[59]["date"], "2024-02-29");
    assert_eq!(
        (&s["total_orders"], &s["total_revenue"]),
        (&json!(3), &json!(7000))
    );
    // Only `to`: the 7 days ending there.
    let s = get_ok(app, &admin, "/api/v1/analytics/sales?to=2024-03-01").await;
    assert_eq!(s["from"], "2024-02-24", "{s}");
    assert_eq!(s["points"].as_array().map(Vec::len), Some(7), "{s}");
});

backend_test!(bad_dates_and_limits_are_400, |app| {
    let admin = app.admin_token().await;
    let sales = "/api/v1/analytics/sales";
    for (query, field) in [
        ("from=2025-13-01&to=2025-12-31", "from"),
        ("from=2025-02-29&to=2025-03-01", "from"),
        ("from=yesterday", "from"),
        ("from=&to=2025-01-01", "from"),
        ("from=2025-01-01&to=2025-1-2", "to"),
        ("to=2025-01-01T00:00:00Z", "to"),
        // from after to
        ("from=2025-01-02&to=2025-01-01", "from"),
        // 367 days
        ("from=2024-01-01&to=2025-01-01", "to"),
    ] {
        let r = app.get(&format!("{sales}?{query}"), Some(&admin)).await;
        r.assert_invalid_field(field);
    }
    let r = app
        .get(&format!("{sales}?from=nope&to=nada"), Some(&admin))
        .await;
    r.assert_invalid_field("from");
    r.assert_invalid_field("to");
    // A date far in the future is fine and empty.
    let r = app
        .get(
            &format!("{sales}?from=2999-12-31&to=2999-12-31"),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["points"][0]["orders"], 0);

    app.get("/api/v1/analytics/users?from=2025-02-30", Some(&admin))
        .await
        .assert_invalid_field("from");
    app.get(
        "/api/v1/analytics/users?from=2025-03-02&to=2025-03-01",
        Some(&admin),
    )
    .await
    .assert_invalid_field("from");
    let u = get_ok(app, &admin, "/api/v1/analytics/users").await;
    assert_eq!(
        (&u["from"], &u["to"]),
        (&json!(utc_day(0)), &json!(utc_day(0)))
    );

    for bad in ["0", "101", "-3", "ten", "", "2.5"] {
        app.get(
            &format!("/api/v1/analytics/products/top?limit={bad}"),
            Some(&admin),
        )
        .await
        .assert_invalid_field("limit");
    }
    for ok in ["1", "100"] {
        let r = app
            .get(
                &format!("/api/v1/analytics/products/top?limit={ok}"),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
});

//! The `notifications` plugin over HTTP: in-app notifications made from events (welcome,
//! order placed, status changes, delivery assignment), listing with paging and the unread
//! filter, marking read, the admin outbox, `POST /internal/messages` and its validation,
//! and that a redelivered event creates nothing twice; login codes and reset tokens
//! masked in the outbox outside development (and still delivered for real over SMTP).
//! (SSE and SMTP in general: platform tests.)

use crate::helpers::*;
use crate::shop::*;

/// The caller's notifications page for `query` (`""` for the defaults).
async fn notes(app: &TestApp, token: &str, query: &str) -> Resp {
    let r = app
        .get(&format!("/api/v1/notifications{query}"), Some(token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

/// Waits until the caller has a notification of `kind` matching `pred`; returns it.
async fn wait_for(app: &TestApp, token: &str, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let found = app
        .eventually(5, || async {
            let r = notes(app, token, "?page_size=100").await;
            r.body["items"]
                .as_array()?
                .iter()
                .find(|n| n["type"] == kind && pred(n))
                .cloned()
        })
        .await;
    found.unwrap_or_else(|| panic!("no {kind} notification arrived"))
}

/// The admin outbox page for `query`.
async fn outbox(app: &TestApp, admin: &str, query: &str) -> Resp {
    let r = app
        .get(&format!("/api/v1/admin/outbox{query}"), Some(admin))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

fn enc(s: &str) -> String {
    s.replace('+', "%2B").replace('@', "%40")
}

async fn send_message(app: &TestApp, body: Value) -> (u16, Value) {
    call_internal(
        app,
        "notifications",
        "POST",
        "/internal/messages",
        &[],
        Some(body),
    )
    .await
}

backend_test!(signup_brings_a_welcome_notification_and_email, |app| {
    let c = app.customer().await;
    let n = wait_for(app, &c.token, "welcome", |_| true).await;
    assert_eq!(n["title"], "Welcome to Kirana, Test Customer!");
    assert!(n["body"].as_str().is_some_and(|b| !b.is_empty()));
    assert_eq!(n["read"], false);
    assert_eq!(n["data"]["user_id"], c.user_id.as_str());
    assert!(n["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(n["created_at"].as_str().is_some_and(|s| s.ends_with('Z')));
    let r = notes(app, &c.token, "").await;
    assert_eq!(r.body["unread_count"], 1, "{}", r.text);
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["page"], 1);
    assert_eq!(r.body["page_size"], 20);

    let admin = app.admin_token().await;
    let q = format!("?to={}", enc(&c.email));
    let mail = app
        .eventually(5, || async {
            let r = outbox(app, &admin, &q).await;
            (r.body["total"] == 1).then_some(r)
        })
        .await
        .expect("the welcome email is in the outbox");
    let m = &mail.body["items"][0];
    assert_eq!(m["channel"], "email");
    assert_eq!(m["to"], c.email.as_str());
    assert_eq!(m["subject"], "Welcome to Kirana, Test Customer!");
    assert!(
        m["body"]
            .as_str()
            .is_some_and(|b| b.contains("Hi Test Customer")),
        "{}",
        mail.text
    );
    assert!(m["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(m["created_at"].is_string());
    // Another user's notifications stay theirs.
    let other = app.customer().await;
    wait_for(app, &other.token, "welcome", |_| true).await;
    assert_eq!(notes(app, &other.token, "").await.body["total"], 1);
});

backend_test!(orders_bring_placed_and_status_notifications, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 4500, 10).await;
    let (c, address) = shopper(app, &product, 2).await;
    let order = place(app, &c, &address, "cod").await;

    let placed = wait_for(app, &c.token, "order.placed", |n| {
        n["data"]["order_id"] == order.as_str()
    })
    .await;
    assert_eq!(placed["title"], "Order placed");
    let body = placed["body"].as_str().unwrap_or_default();
    assert!(body.contains("₹115.00"), "{body}");
    assert!(body.contains("2 items"), "{body}");
    assert!(body.contains("cash on delivery"), "{body}");
    assert_eq!(placed["data"]["user_id"], c.user_id.as_str());
    assert_eq!(placed["data"]["total"], 11500);

    move_order(app, &admin, &order, "preparing").await;
    let changed = wait_for(app, &c.token, "order.status_changed", |n| {
        n["data"]["to"] == "preparing"
    })
    .await;
    assert_eq!(changed["title"], "Order preparing");
    assert_eq!(changed["data"]["order_id"], order.as_str());
    assert_eq!(changed["data"]["from"], "confirmed");

    move_order(app, &admin, &order, "out_for_delivery").await;
    let out = wait_for(app, &c.token, "order.status_changed", |n| {
        n["data"]["to"] == "out_for_delivery"
    })
    .await;
    assert_eq!(out["title"], "Order out for delivery");

    // Newest first: the last change, the first change, the order, the welcome.
    let r = notes(app, &c.token, "").await;
    let kinds: Vec<&str> = r.body["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|n| n["type"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        kinds,
        [
            "order.status_changed",
            "order.status_changed",
            "order.placed",
            "welcome"
        ],
        "{}",
        r.text
    );
    assert_eq!(r.body["items"][0]["data"]["to"], "out_for_delivery");
    // The admin who changed the status is not notified about the customer's order.
    let a = notes(app, &admin, "?page_size=100").await;
    assert!(
        a.body["items"].as_array().is_some_and(|items| items
            .iter()
            .all(|n| n["data"]["order_id"] != order.as_str())),
        "{}",
        a.text
    );
});

backend_test!(assignment_notifies_customer_and_agent, |app| {
    let admin = app.admin_token().await;
    let agent = new_agent(app, &admin).await;
    available(app, &agent).await;
    let product = new_product(app, &admin, 4500, 10).await;
    let (c, address) = shopper(app, &product, 1).await;
    let order = place(app, &c, &address, "cod").await;
    move_order(app, &admin, &order, "preparing").await;

    let n = wait_for(app, &c.token, "delivery.assigned", |n| {
        n["data"]["order_id"] == order.as_str()
    })
    .await;
    assert_eq!(n["title"], "Delivery partner assigned");
    assert!(
        n["body"].as_str().is_some_and(|b| b.contains("Test Agent")),
        "{n}"
    );
    assert_eq!(n["data"]["agent_user_id"], agent.user_id.as_str());
    let a = wait_for(app, &agent.token, "delivery.new_assignment", |n| {
        n["data"]["order_id"] == order.as_str()
    })
    .await;
    assert_eq!(a["title"], "New delivery");
});

backend_test!(listing_pages_filters_and_marks_read, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 4500, 10).await;
    let (c, address) = shopper(app, &product, 1).await;
    let order = place(app, &c, &address, "cod").await;
    move_order(app, &admin, &order, "preparing").await;
    move_order(app, &admin, &order, "out_for_delivery").await;
    // welcome + placed + two status changes.
    app.eventually(5, || async {
        (notes(app, &c.token, "").await.body["total"] == 4).then_some(())
    })
    .await
    .expect("four notifications");

    let p1 = notes(app, &c.token, "?page=1&page_size=3").await;
    assert_eq!(p1.body["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        (&p1.body["page"], &p1.body["page_size"], &p1.body["total"]),
        (&json!(1), &json!(3), &json!(4))
    );
    assert_eq!(p1.body["unread_count"], 4);
    let p2 = notes(app, &c.token, "?page=2&page_size=3").await;
    assert_eq!(p2.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(p2.body["items"][0]["type"], "welcome");
    let past = notes(app, &c.token, "?page=9&page_size=3").await;
    assert_eq!(past.body["items"], json!([]));
    assert_eq!(past.body["total"], 4);

    // Read the newest one: 204, twice; it leaves the unread list.
    let newest = p1.body["items"][0]["id"].as_str().expect("id").to_string();
    for _ in 0..2 {
        let r = app
            .post(
                &format!("/api/v1/notifications/{newest}/read"),
                Some(&c.token),
                json!({}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
    let all = notes(app, &c.token, "?unread=false").await;
    assert_eq!(all.body["total"], 4);
    assert_eq!(all.body["unread_count"], 3);
    assert_eq!(all.body["items"][0]["id"], newest.as_str());
    assert_eq!(all.body["items"][0]["read"], true);
    assert_eq!(all.body["items"][1]["read"], false);
    let unread = notes(app, &c.token, "?unread=true").await;
    assert_eq!(unread.body["total"], 3);
    assert_eq!(unread.body["unread_count"], 3);
    assert!(unread.body["items"].as_array().is_some_and(|a| a.len() == 3
        && a.iter()
            .all(|n| n["read"] == false && n["id"] != newest.as_str())));

    // Someone else's notification, or an unknown one, is 404 and stays unread.
    let other = app.customer().await;
    let second = all.body["items"][1]["id"].as_str().expect("id").to_string();
    let r = app
        .post(
            &format!("/api/v1/notifications/{second}/read"),
            Some(&other.token),
            json!({}),
        )
        .await;
    r.assert_error(404, "not_found");
    let r = app
        .post(
            "/api/v1/notifications/ntf_nope/read",
            Some(&c.token),
            json!({}),
        )
        .await;
    r.assert_error(404, "not_found");
    assert_eq!(notes(app, &c.token, "").await.body["unread_count"], 3);

    // read-all clears the rest; the other user's are untouched.
    wait_for(app, &other.token, "welcome", |_| true).await;
    let r = app
        .post("/api/v1/notifications/read-all", Some(&c.token), json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let after = notes(app, &c.token, "?unread=true").await;
    assert_eq!(after.body["total"], 0);
    assert_eq!(after.body["unread_count"], 0);
    assert_eq!(after.body["items"], json!([]));
    assert_eq!(notes(app, &c.token, "").await.body["total"], 4);
    assert_eq!(notes(app, &other.token, "").await.body["unread_count"], 1);
    // Read-all with nothing unread is still 204.
    let r = app
        .post("/api/v1/notifications/read-all", Some(&c.token), json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
});

backend_test!(bad_filters_and_access_rules, |app| {
    let c = app.customer().await;
    let admin = app.admin_token().await;
    for (q, field) in [
        ("?unread=yes", "unread"),
        ("?unread=1", "unread"),
        ("?page=0", "page"),
        ("?page_size=101", "page_size"),
        ("?page_size=x", "page_size"),
    ] {
        let r = app
            .get(&format!("/api/v1/notifications{q}"), Some(&c.token))
            .await;
        r.assert_invalid_field(field);
    }
    for (q, field) in [
        ("?channel=fax", "channel"),
        ("?channel=EMAIL", "channel"),
        ("?page=0", "page"),
        ("?page_size=500", "page_size"),
    ] {
        let r = app
            .get(&format!("/api/v1/admin/outbox{q}"), Some(&admin))
            .await;
        r.assert_invalid_field(field);
    }
    app.get("/api/v1/notifications", None)
        .await
        .assert_error(401, "unauthorized");
    app.post("/api/v1/notifications/read-all", None, json!({}))
        .await
        .assert_error(401, "unauthorized");
    app.get("/api/v1/admin/outbox", Some(&c.token))
        .await
        .assert_error(403, "forbidden");
    app.get("/api/v1/admin/outbox", None)
        .await
        .assert_error(401, "unauthorized");
    // Every role has notifications; internal routes are not on the gateway.
    let agent = new_agent(app, &admin).await;
    notes(app, &agent.token, "").await;
    notes(app, &admin, "").await;
    let r = app
        .post(
            "/internal/messages",
            Some(&admin),
            json!({"channel": "sms", "to": "+919876543210", "template": "otp",
                   "vars": {"code": "123456", "minutes": 5}}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
});

/// Development mode: the outbox shows codes and tokens (these tests read them back).
const REVEAL: &str = "[notifications]\noutbox_reveals_secrets = true";
/// Any other shop: the outbox masks them.
const MASKED: &str = "[notifications]\noutbox_reveals_secrets = false";
/// What stands in for a secret in the outbox.
const MASK: &str = "••••••";

backend_test!(internal_messages_render_send_and_validate, REVEAL, |app| {
    let admin = app.admin_token().await;
    let phone = unique_phone();
    let (status, body) = send_message(
        app,
        json!({"channel": "sms", "to": phone, "template": "otp",
               "vars": {"code": "482913", "minutes": 5}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let sms_id = body["id"].as_str().expect("message id").to_string();

    let email = format!("{}@example.in", app.unique("reset"));
    let (status, body) = send_message(
        app,
        json!({"channel": "email", "to": email, "template": "password_reset",
               "vars": {"token": "rst_tok-123", "name": "Asha"}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");

    let r = outbox(app, &admin, &format!("?channel=sms&to={}", enc(&phone))).await;
    assert_eq!(r.body["total"], 1, "{}", r.text);
    let m = &r.body["items"][0];
    assert_eq!(m["id"], sms_id.as_str());
    assert_eq!(m["channel"], "sms");
    assert_eq!(m["to"], phone.as_str());
    assert!(
        m["body"].as_str().is_some_and(|b| b.contains("482913")),
        "{}",
        r.text
    );
    assert!(
        m["body"].as_str().is_some_and(|b| b.contains("5 minutes")),
        "{}",
        r.text
    );

    let r = outbox(app, &admin, &format!("?to={}", enc(&email))).await;
    assert_eq!(r.body["total"], 1, "{}", r.text);
    let m = &r.body["items"][0];
    assert_eq!(m["channel"], "email");
    assert_eq!(m["subject"], "Reset your Kirana password");
    let b = m["body"].as_str().unwrap_or_default();
    assert!(b.contains("token=rst_tok-123"), "{b}");
    assert!(b.contains("Hi Asha,"), "{b}");
    // The SMS is not an email.
    let r = outbox(app, &admin, &format!("?channel=email&to={}", enc(&phone))).await;
    assert_eq!(r.body["total"], 0, "{}", r.text);

    // Validation: each names the field and sends nothing.
    let bad = unique_phone();
    let otp = |over: Value| {
        let mut b = json!({"channel": "sms", "to": bad, "template": "otp",
                           "vars": {"code": "111111", "minutes": 5}});
        if let (Some(b), Some(o)) = (b.as_object_mut(), over.as_object()) {
            for (k, v) in o {
                b.insert(k.clone(), v.clone());
            }
        }
        b
    };
    for (body, field) in [
        (otp(json!({"channel": "fax"})), "channel"),
        (otp(json!({"channel": "email"})), "channel"),
        (otp(json!({"template": "birthday"})), "template"),
        (otp(json!({"vars": {"code": "111111"}})), "vars"),
        (otp(json!({"vars": {"code": null, "minutes": 5}})), "vars"),
        (otp(json!({"vars": "code=1"})), "vars"),
        (otp(json!({"to": "9876543210"})), "to"),
        (
            json!({"channel": "email", "to": "not-an-email", "template": "welcome",
                   "vars": {"name": "A"}}),
            "to",
        ),
        (json!({"channel": "sms", "to": bad, "vars": {}}), "template"),
    ] {
        let (status, err) = send_message(app, body.clone()).await;
        assert_eq!(status, 400, "{body} → {err}");
        assert_eq!(err["error"]["code"], "validation_failed", "{err}");
        let fields: Vec<&str> = err["error"]["details"]["fields"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(fields.contains(&field), "{body} → {err}");
    }
    let (_, err) = send_message(app, otp(json!({"vars": {}}))).await;
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("code") && m.contains("minutes")),
        "{err}"
    );
    let r = outbox(app, &admin, &format!("?to={}", enc(&bad))).await;
    assert_eq!(r.body["total"], 0, "{}", r.text);
});

backend_test!(outbox_filters_and_pages, REVEAL, |app| {
    let admin = app.admin_token().await;
    let phone = unique_phone();
    for code in ["100001", "100002", "100003"] {
        let (status, body) = send_message(
            app,
            json!({"channel": "sms", "to": phone, "template": "otp",
                   "vars": {"code": code, "minutes": 10}}),
        )
        .await;
        assert_eq!(status, 202, "{body}");
    }
    let q = format!("?to={}", enc(&phone));
    let r = outbox(app, &admin, &format!("{q}&page_size=2")).await;
    assert_eq!(r.body["total"], 3, "{}", r.text);
    assert_eq!(r.body["page_size"], 2);
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(2));
    // Newest first.
    assert!(r.body["items"][0]["body"]
        .as_str()
        .is_some_and(|b| b.contains("100003")));
    let r2 = outbox(app, &admin, &format!("{q}&page=2&page_size=2")).await;
    assert_eq!(r2.body["items"].as_array().map(Vec::len), Some(1));
    assert!(r2.body["items"][0]["body"]
        .as_str()
        .is_some_and(|b| b.contains("100001")));
    let past = outbox(app, &admin, &format!("{q}&page=50&page_size=2")).await;
    assert_eq!(past.body["items"], json!([]));
    assert_eq!(past.body["total"], 3);

    // Channel filters partition the outbox.
    let c = app.customer().await;
    let all = app
        .eventually(5, || async {
            let r = outbox(app, &admin, &format!("?to={}", enc(&c.email))).await;
            (r.body["total"] == 1).then_some(r)
        })
        .await
        .expect("the welcome email");
    assert_eq!(all.body["items"][0]["channel"], "email");
    let t = |r: &Resp| r.body["total"].as_i64().unwrap_or(-1);
    let every = outbox(app, &admin, "").await;
    let emails = outbox(app, &admin, "?channel=email&page_size=100").await;
    let sms = outbox(app, &admin, "?channel=sms&page_size=100").await;
    assert_eq!(t(&every), t(&emails) + t(&sms), "{}", every.text);
    assert!(t(&sms) >= 3 && t(&emails) >= 1);
    assert!(emails.body["items"]
        .as_array()
        .is_some_and(|a| a.iter().all(|m| m["channel"] == "email")));
    assert!(sms.body["items"]
        .as_array()
        .is_some_and(|a| a.iter().all(|m| m["channel"] == "sms")));
});

backend_test!(redelivered_events_create_nothing_twice, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 4500, 10).await;
    let (c, address) = shopper(app, &product, 1).await;
    let order = place(app, &c, &address, "cod").await;
    wait_for(app, &c.token, "order.placed", |n| {
        n["data"]["order_id"] == order.as_str()
    })
    .await;
    let q = format!("?to={}", enc(&c.email));
    app.eventually(5, || async {
        (outbox(app, &admin, &q).await.body["total"] == 1).then_some(())
    })
    .await
    .expect("the welcome email");

    // Deliver every event to notifications again, as after a crash before the ack. This
    // writes the host's table: no API forgets that a delivery was done.
    let pool = &app.app().platform.db.pool;
    let redo = sqlx::query(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = 0, locked_until = 0 \
         WHERE subscriber = 'notifications'",
    )
    .execute(pool)
    .await
    .expect("re-queueing deliveries");
    assert!(redo.rows_affected() >= 2);
    // Done, as the operator sees it: nothing of notifications' left pending or dead.
    let open_for_notifications = |status: &'static str| async move {
        let r = app
            .get(
                &format!("/admin/events?status={status}"),
                Some(OPERATOR_TOKEN),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|d| d["subscriber"] == "notifications")
            .count()
    };
    app.eventually(10, || async {
        let open = open_for_notifications("pending").await + open_for_notifications("dead").await;
        (open == 0).then_some(())
    })
    .await
    .expect("the redeliveries are done");

    let r = notes(app, &c.token, "").await;
    assert_eq!(r.body["total"], 2, "{}", r.text);
    assert_eq!(outbox(app, &admin, &q).await.body["total"], 1);
});

// ---------------------------------------------------------------------------------
// Secrets in the outbox

/// Whether `text` holds `n` ASCII digits in a row (an OTP code is 6).
fn has_digit_run(text: &str, n: usize) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|run| run.len() >= n)
}

/// The token of a reset link in `text`: what follows `token=` up to the first
/// character a token cannot hold (empty when the link shows none).
fn link_token(text: &str) -> Option<String> {
    let (_, rest) = text.split_once("token=")?;
    Some(
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect(),
    )
}

async fn otp_request(app: &TestApp, phone: &str) {
    let r = app
        .post("/api/v1/auth/otp/request", None, json!({ "phone": phone }))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
}

async fn forgot(app: &TestApp, email: &str) {
    let r = app
        .post(
            "/api/v1/auth/password/forgot",
            None,
            json!({ "email": email }),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
}

/// The newest outbox message on `channel` to `to` with `subject`, once it is there.
async fn newest(app: &TestApp, admin: &str, channel: &str, to: &str, subject: &str) -> Value {
    let q = format!("?channel={channel}&to={}", enc(to));
    app.eventually(5, || async {
        let r = outbox(app, admin, &q).await;
        r.body["items"]
            .as_array()?
            .iter()
            .find(|m| m["subject"] == subject)
            .cloned()
    })
    .await
    .unwrap_or_else(|| panic!("no {subject:?} to {to} in the outbox"))
}

fn body_of(m: &Value) -> &str {
    m["body"].as_str().unwrap_or_default()
}

backend_test!(outbox_masks_login_codes_and_reset_tokens, MASKED, |app| {
    let admin = app.admin_token().await;
    // An OTP SMS: the code is not in the outbox, the mask is.
    let phone = unique_phone();
    otp_request(app, &phone).await;
    let sms = newest(app, &admin, "sms", &phone, "Your Kirana login code").await;
    let body = body_of(&sms);
    assert!(!has_digit_run(body, 6), "the code leaks: {body}");
    assert!(body.contains(MASK), "{body}");
    assert!(body.contains("is your Kirana login code"), "{body}");

    // A reset email: the link carries the mask, not the token.
    let c = app.customer().await;
    forgot(app, &c.email).await;
    let mail = newest(app, &admin, "email", &c.email, "Reset your Kirana password").await;
    let body = body_of(&mail);
    assert_eq!(
        link_token(body).as_deref(),
        Some(""),
        "the token leaks: {body}"
    );
    assert!(body.contains(&format!("?token={MASK}")), "{body}");
    assert!(body.contains("Hi Test Customer,"), "{body}");
    // A message without secrets is shown as sent.
    let welcome = newest(
        app,
        &admin,
        "email",
        &c.email,
        "Welcome to Kirana, Test Customer!",
    )
    .await;
    assert!(body_of(&welcome).contains("Hi Test Customer,"), "{welcome}");

    // Secrets the caller chose are hidden too, whatever the listing's filter.
    let other = unique_phone();
    let (status, sent) = send_message(
        app,
        json!({"channel": "sms", "to": other, "template": "otp",
               "vars": {"code": "482913", "minutes": 5}}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    let sms_id = sent_id(&sent).to_string();
    let email = format!("{}@example.in", app.unique("reset"));
    let (status, sent) = send_message(
        app,
        json!({"channel": "email", "to": email, "template": "password_reset",
               "vars": {"token": "rst_tok-123456", "name": "Asha"}}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    for q in [
        "?page_size=100",
        "?channel=sms&page_size=100",
        "?channel=email&page_size=100",
    ] {
        let r = outbox(app, &admin, q).await;
        assert!(!r.text.contains("482913"), "{q}: {}", r.text);
        assert!(!r.text.contains("rst_tok-123456"), "{q}: {}", r.text);
    }
    let r = outbox(app, &admin, &format!("?to={}", enc(&other))).await;
    assert_eq!(r.body["items"][0]["id"], sms_id.as_str(), "{}", r.text);
    assert!(body_of(&r.body["items"][0]).contains(MASK), "{}", r.text);

    // A message with no masked copy on record (sent before masking existed) is hidden
    // whole: it may carry a secret. Such a row is written into the host's table: no API
    // makes one now, which is the point.
    let legacy_to = unique_phone();
    sqlx::query(
        "INSERT INTO mail_outbox (id, plugin, channel, recipient, subject, body, status, \
         attempts, next_attempt_at, created_at) \
         VALUES ($1, 'notifications', 'sms', $2, 'Your Kirana login code', \
         '777001 is your Kirana login code.', 'recorded', 0, 0, 0)",
    )
    .bind(format!("msg_legacy{}", app.word("x")))
    .bind(&legacy_to)
    .execute(&app.app().platform.db.pool)
    .await
    .expect("a message from before masking");
    let r = outbox(app, &admin, &format!("?to={}", enc(&legacy_to))).await;
    assert_eq!(r.body["total"], 1, "{}", r.text);
    assert!(!r.text.contains("777001"), "{}", r.text);
    assert_eq!(r.body["items"][0]["subject"], MASK);
});

/// The `id` of a `POST /internal/messages` answer.
fn sent_id(answer: &Value) -> &str {
    answer["id"].as_str().unwrap_or_default()
}

backend_test!(development_outbox_shows_codes_that_work, REVEAL, |app| {
    let admin = app.admin_token().await;
    let phone = unique_phone();
    otp_request(app, &phone).await;
    let sms = newest(app, &admin, "sms", &phone, "Your Kirana login code").await;
    let body = body_of(&sms);
    assert!(!body.contains(MASK), "{body}");
    let code = body
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {body}"))
        .to_string();
    // It is the real code: it logs in.
    let r = app
        .post(
            "/api/v1/auth/otp/verify",
            None,
            json!({"phone": phone, "code": code}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let c = app.customer().await;
    forgot(app, &c.email).await;
    let mail = newest(app, &admin, "email", &c.email, "Reset your Kirana password").await;
    let token = link_token(body_of(&mail)).unwrap_or_default();
    assert!(token.len() >= 32, "{mail}");
    let r = app
        .post(
            "/api/v1/auth/password/reset",
            None,
            json!({"token": token, "new_password": "a-new-password-1"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
});

/// The text of a raw message the SMTP sink received, its transfer encoding undone.
fn mail_text(raw: &str) -> String {
    let (headers, body) = raw.split_once("\n\n").unwrap_or(("", raw));
    let encoding = headers.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-transfer-encoding")
            .then(|| value.trim().to_ascii_lowercase())
    });
    match encoding.as_deref() {
        Some("base64") => {
            use base64::Engine;
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("base64 body");
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Some("quoted-printable") => {
            let joined = body.replace("=\n", "");
            let mut out = Vec::new();
            let b = joined.as_bytes();
            let mut i = 0;
            while i < b.len() {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                    (b'=', Some(byte)) => {
                        out.push(byte);
                        i += 3;
                    }
                    (c, _) => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        _ => body.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_delivers_the_real_token_while_the_outbox_masks_it() {
    let sink = crate::messaging::SmtpSink::start().await;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &format!(
            "{MASKED}\n[mail]\nsmtp_url = \"smtp://127.0.0.1:{}\"\npoll_ms = 20\n",
            sink.port
        ),
    )
    .await;
    let admin = app.admin_token().await;
    let c = app.customer().await;
    forgot(&app, &c.email).await;
    let listed = newest(
        &app,
        &admin,
        "email",
        &c.email,
        "Reset your Kirana password",
    )
    .await;
    assert_eq!(
        link_token(body_of(&listed)).as_deref(),
        Some(""),
        "{listed}"
    );

    // The sink gets the real link.
    let delivered = app
        .eventually(5, || async {
            sink.received()
                .iter()
                .find(|m| m.contains(&c.email) && m.contains("Reset your Kirana password"))
                .map(|m| mail_text(m))
        })
        .await
        .expect("the reset email went out over SMTP");
    let token = link_token(&delivered).unwrap_or_default();
    assert!(token.len() >= 32, "no token in {delivered}");
    assert!(!delivered.contains(MASK), "{delivered}");
    // The outbox still masks it once sent, and the token it never showed works.
    let listed = newest(
        &app,
        &admin,
        "email",
        &c.email,
        "Reset your Kirana password",
    )
    .await;
    assert!(!body_of(&listed).contains(&token), "{listed}");
    let r = app
        .post(
            "/api/v1/auth/password/reset",
            None,
            json!({"token": token, "new_password": "a-new-password-1"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    app.stop().await;
}

//! Promotions, the plugin written in Python: coupons an admin manages and the internal
//! quote/redemption routes the cart and checkout use.
//!
//! The internal routes are called the way the cart and orders call them (through the
//! host's runtime, as `services.call` does; the gateway never exposes them). The events
//! that end a redemption are the real ones: `order.created` / `order.cancelled` put on
//! the bus as orders publishes them, and the redemption's own scheduled expiry, which
//! asks the real orders plugin whether the checkout's order exists.

use crate::helpers::*;
use crate::shop::*;

/// A percent coupon body with `code`.
fn percent(code: &str, value: i64) -> Value {
    json!({"code": code, "kind": "percent", "value": value})
}

/// A code no other test uses (letters and digits, at most 20).
fn code(app: &TestApp, prefix: &str) -> String {
    app.word(prefix).to_uppercase().chars().take(20).collect()
}

/// `POST /api/v1/admin/promotions` as the admin.
async fn create(app: &TestApp, admin: &str, body: Value) -> Resp {
    app.post("/api/v1/admin/promotions", Some(admin), body)
        .await
}

/// Creates a coupon (asserting 201) and returns it.
async fn coupon(app: &TestApp, admin: &str, body: Value) -> Value {
    let r = create(app, admin, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

/// The coupon as the admin reads it.
async fn read(app: &TestApp, admin: &str, id: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/admin/promotions/{id}"), Some(admin))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

async fn uses(app: &TestApp, admin: &str, id: &str) -> i64 {
    read(app, admin, id).await["uses"].as_i64().expect("uses")
}

/// `POST /internal/promotions/quote`: status and body.
async fn quote(app: &TestApp, code: &str, user: &str, subtotal: i64) -> (u16, Value) {
    call_internal(
        app,
        "promotions",
        "POST",
        "/internal/promotions/quote",
        &[],
        Some(json!({"code": code, "user_id": user, "subtotal": subtotal})),
    )
    .await
}

/// `POST /internal/promotions/redemptions`: status and body.
async fn redeem(app: &TestApp, code: &str, user: &str, subtotal: i64, hold: &str) -> (u16, Value) {
    call_internal(
        app,
        "promotions",
        "POST",
        "/internal/promotions/redemptions",
        &[],
        Some(json!({"code": code, "user_id": user, "subtotal": subtotal, "hold_id": hold})),
    )
    .await
}

/// `POST /internal/promotions/redemptions/{hold_id}/release`: status and body.
async fn release(app: &TestApp, hold: &str) -> (u16, Value) {
    call_internal(
        app,
        "promotions",
        "POST",
        "/internal/promotions/redemptions/{hold_id}/release",
        &[("hold_id", hold)],
        None,
    )
    .await
}

/// The redemption of `hold` (asserting 200).
async fn redemption(app: &TestApp, hold: &str) -> Value {
    let (status, body) = call_internal(
        app,
        "promotions",
        "GET",
        "/internal/promotions/redemptions/{hold_id}",
        &[("hold_id", hold)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until the redemption of `hold` has `status`, and returns it.
async fn redemption_becomes(app: &TestApp, hold: &str, status: &str) -> Value {
    let found = app
        .eventually(20, || async {
            let r = redemption(app, hold).await;
            (r["status"] == status).then_some(r)
        })
        .await;
    match found {
        Some(r) => r,
        None => panic!(
            "redemption {hold} never became {status}: {}",
            redemption(app, hold).await
        ),
    }
}

/// Asserts an internal answer is the API error `code` with `status`.
fn assert_internal_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    assert!(answer.1["error"]["message"].is_string(), "{}", answer.1);
    assert!(answer.1["error"]["details"].is_object(), "{}", answer.1);
}

/// Asserts an internal answer is `400 validation_failed` naming `field` (and `reason`
/// in the details when given).
fn assert_refused(answer: &(u16, Value), field: &str, reason: Option<&str>) {
    assert_internal_error(answer, 400, "validation_failed");
    let fields: Vec<&str> = answer.1["error"]["details"]["fields"]
        .as_array()
        .expect("details.fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert_eq!(fields, [field], "{}", answer.1);
    if let Some(reason) = reason {
        assert_eq!(
            answer.1["error"]["details"]["reason"], reason,
            "{}",
            answer.1
        );
    }
}

fn hold_id(app: &TestApp) -> String {
    format!("hld_{}", app.word("t"))
}

/// An RFC 3339 time `secs` from now (negative: in the past).
fn at(secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formatting a time")
}

backend_test!(
    admins_create_list_read_update_and_deactivate_coupons,
    |app| {
        let admin = app.admin_token().await;
        let lower = code(app, "save").to_lowercase();
        let r = create(
            app,
            &admin,
            json!({"code": format!("  {lower} "), "kind": "percent", "value": 10,
               "min_cart_value": 20000, "max_discount": 5000, "max_uses": 100,
               "max_uses_per_customer": 1, "starts_at": "2020-01-01T05:30:00+05:30",
               "ends_at": "2099-12-31T23:59:59Z"}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let c = r.body.clone();
        let id = c["id"].as_str().expect("id").to_string();
        // Codes are case-insensitive: stored in upper case; times in UTC.
        assert_eq!(c["code"], lower.to_uppercase());
        assert_eq!(c["kind"], "percent");
        assert_eq!(c["value"], 10);
        assert_eq!(c["min_cart_value"], 20000);
        assert_eq!(c["max_discount"], 5000);
        assert_eq!(c["max_uses"], 100);
        assert_eq!(c["max_uses_per_customer"], 1);
        assert_eq!(c["starts_at"], "2020-01-01T00:00:00Z");
        assert_eq!(c["ends_at"], "2099-12-31T23:59:59Z");
        assert_eq!(c["uses"], 0);
        assert_eq!(c["is_active"], true);
        assert!(c["created_at"].is_string());

        // Optional fields are null when unset; min_cart_value defaults to 0.
        let flat = coupon(
            app,
            &admin,
            json!({"code": code(app, "flat"), "kind": "flat", "value": 7500}),
        )
        .await;
        for f in [
            "max_discount",
            "starts_at",
            "ends_at",
            "max_uses",
            "max_uses_per_customer",
        ] {
            assert!(flat[f].is_null(), "{f}: {flat}");
        }
        assert_eq!(flat["min_cart_value"], 0);

        assert_eq!(read(app, &admin, &id).await, c);

        // The list is paged, newest first.
        let r = app
            .get("/api/v1/admin/promotions?page=1&page_size=1", Some(&admin))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["page"], 1);
        assert_eq!(r.body["page_size"], 1);
        assert!(r.body["total"].as_i64().expect("total") >= 2);
        assert_eq!(r.body["items"][0]["id"], flat["id"]);
        let r = app
            .get("/api/v1/admin/promotions?page=999", Some(&admin))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["items"], json!([]));
        assert!(r.body["total"].as_i64().expect("total") >= 2);

        // PATCH changes only what it names; null clears an optional field.
        let r = app
            .patch(
                &format!("/api/v1/admin/promotions/{id}"),
                Some(&admin),
                json!({"value": 15, "max_discount": null, "max_uses": 3}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["value"], 15);
        assert!(r.body["max_discount"].is_null(), "{}", r.text);
        assert_eq!(r.body["max_uses"], 3);
        assert_eq!(r.body["min_cart_value"], 20000);
        assert_eq!(r.body["code"], c["code"]);

        // DELETE deactivates: the coupon stays readable, inactive, and PATCH re-enables it.
        let r = app
            .delete(&format!("/api/v1/admin/promotions/{id}"), Some(&admin))
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert_eq!(read(app, &admin, &id).await["is_active"], false);
        let r = app
            .get(
                "/api/v1/admin/promotions?is_active=false&page_size=100",
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let items = r.body["items"].as_array().expect("items");
        assert!(items.iter().any(|i| i["id"] == id.as_str()), "{}", r.text);
        assert!(items.iter().all(|i| i["is_active"] == false), "{}", r.text);
        let r = app
            .patch(
                &format!("/api/v1/admin/promotions/{id}"),
                Some(&admin),
                json!({"is_active": true}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["is_active"], true);

        // Unknown ids are 404 on every route.
        let missing = "/api/v1/admin/promotions/cpn_missing";
        app.get(missing, Some(&admin))
            .await
            .assert_error(404, "not_found");
        app.patch(missing, Some(&admin), json!({"value": 5}))
            .await
            .assert_error(404, "not_found");
        app.delete(missing, Some(&admin))
            .await
            .assert_error(404, "not_found");

        // Admins only.
        let customer = app.customer().await;
        create(app, &customer.token, percent(&code(app, "no"), 5))
            .await
            .assert_error(403, "forbidden");
        app.get("/api/v1/admin/promotions", None)
            .await
            .assert_error(401, "unauthorized");
    }
);

backend_test!(coupon_input_is_validated_field_by_field, |app| {
    let admin = app.admin_token().await;
    let bad: &[(Value, &str)] = &[
        (json!({"code": "AB", "kind": "flat", "value": 100}), "code"),
        (
            json!({"code": "A".repeat(21), "kind": "flat", "value": 100}),
            "code",
        ),
        (
            json!({"code": "SAVE-10", "kind": "flat", "value": 100}),
            "code",
        ),
        (
            json!({"code": "SÄVE10", "kind": "flat", "value": 100}),
            "code",
        ),
        (json!({"code": 12345, "kind": "flat", "value": 100}), "code"),
        (json!({"kind": "flat", "value": 100}), "code"),
        (
            json!({"code": "OKCODE1", "kind": "bogo", "value": 100}),
            "kind",
        ),
        (
            json!({"code": "OKCODE1", "kind": "percent", "value": 0}),
            "value",
        ),
        (
            json!({"code": "OKCODE1", "kind": "percent", "value": 91}),
            "value",
        ),
        (
            json!({"code": "OKCODE1", "kind": "flat", "value": 10.5}),
            "value",
        ),
        (
            json!({"code": "OKCODE1", "kind": "flat", "value": "100"}),
            "value",
        ),
        (
            json!({"code": "OKCODE1", "kind": "flat", "value": true}),
            "value",
        ),
        (json!({"code": "OKCODE1", "kind": "flat"}), "value"),
        (
            json!({"code": "OKCODE1", "kind": "flat", "value": 100, "min_cart_value": -1}),
            "min_cart_value",
        ),
        (
            json!({"code": "OKCODE1", "kind": "flat", "value": 100, "max_discount": 50}),
            "max_discount",
        ),
        (
            json!({"code": "OKCODE1", "kind": "percent", "value": 10, "max_discount": 0}),
            "max_discount",
        ),
        (
            json!({"code": "OKCODE1", "kind": "flat", "value": 100, "max_uses": 0}),
            "max_uses",
        ),
        (
            json!({"code": "OKCODE1", "kind": "flat", "value": 100, "max_uses_per_customer": 1.5}),
            "max_uses_per_customer",
        ),
        (
            json!({"code": "OKCODE1", "kind": "flat", "value": 100, "starts_at": "tomorrow"}),
            "starts_at",
        ),
        (
            json!({"code": "OKCODE1", "kind": "flat", "value": 100, "starts_at": "2026-01-01T00:00:00"}),
            "starts_at",
        ),
        (
            json!({"code": "OKCODE1", "kind": "flat", "value": 100,
                "starts_at": "2026-02-01T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z"}),
            "ends_at",
        ),
        (
            json!({"code": "OKCODE1", "kind": "flat", "value": 100, "is_active": "yes"}),
            "is_active",
        ),
    ];
    for (body, field) in bad {
        create(app, &admin, body.clone())
            .await
            .assert_invalid_field(field);
    }
    // Every bad field at once.
    let r = create(app, &admin, json!({"code": "x", "kind": "x", "value": -5})).await;
    r.assert_error(400, "validation_failed");
    assert_eq!(r.fields(), ["code", "kind", "value"], "{}", r.text);
    // Not JSON.
    app.assert_rejects_bad_bodies("POST", "/api/v1/admin/promotions", Some(&admin), b"{}")
        .await;
    app.raw(
        "POST",
        "/api/v1/admin/promotions",
        Some(&admin),
        Some("application/json"),
        b"[1]".to_vec(),
    )
    .await
    .assert_invalid_field("body");

    // A taken code, in any case, is 409 already_exists; nothing is created.
    let taken = code(app, "dup");
    coupon(app, &admin, percent(&taken, 10)).await;
    create(app, &admin, percent(&taken.to_lowercase(), 20))
        .await
        .assert_error(409, "already_exists");
    let other = coupon(app, &admin, percent(&code(app, "oth"), 10)).await;
    let other_id = other["id"].as_str().expect("id");
    app.patch(
        &format!("/api/v1/admin/promotions/{other_id}"),
        Some(&admin),
        json!({"code": taken}),
    )
    .await
    .assert_error(409, "already_exists");
    // A PATCH is judged on the coupon as it would be: percent → over 90 is refused, and
    // turning a capped percent coupon flat needs the cap cleared.
    let capped = coupon(
        app,
        &admin,
        json!({"code": code(app, "cap"), "kind": "percent", "value": 10, "max_discount": 100}),
    )
    .await;
    let capped_id = capped["id"].as_str().expect("id");
    let path = format!("/api/v1/admin/promotions/{capped_id}");
    app.patch(&path, Some(&admin), json!({"value": 95}))
        .await
        .assert_invalid_field("value");
    app.patch(&path, Some(&admin), json!({"kind": "flat", "value": 500}))
        .await
        .assert_invalid_field("max_discount");
    let r = app
        .patch(
            &path,
            Some(&admin),
            json!({"kind": "flat", "value": 500, "max_discount": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["kind"], "flat");
    assert_eq!(read(app, &admin, other_id).await, other);

    // Paging is never clamped.
    for (query, field) in [
        ("page=0", "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page=x", "page"),
        ("is_active=maybe", "is_active"),
    ] {
        app.get(&format!("/api/v1/admin/promotions?{query}"), Some(&admin))
            .await
            .assert_invalid_field(field);
    }
});

backend_test!(quotes_price_coupons_and_say_why_one_does_not_apply, |app| {
    let admin = app.admin_token().await;
    let user = "usr_quote";
    // 10 % capped at ₹50, from a ₹300 cart.
    let pct = code(app, "pct");
    coupon(
        app,
        &admin,
        json!({"code": pct, "kind": "percent", "value": 10, "max_discount": 5000,
               "min_cart_value": 30000}),
    )
    .await;
    let (status, body) = quote(app, &pct, user, 100_000).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["discount"], 5000, "capped by max_discount");
    assert_eq!(body["code"], pct.as_str());
    assert!(body["coupon_id"]
        .as_str()
        .is_some_and(|s| s.starts_with("cpn_")));
    let (status, body) = quote(app, &pct.to_lowercase(), user, 30_009).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["discount"], 3000, "10 % of 30009 rounded down");
    assert_refused(
        &quote(app, &pct, user, 29_999).await,
        "code",
        Some("below_min_cart_value"),
    );

    // Flat ₹20, never more than the subtotal.
    let flat = code(app, "flat");
    coupon(
        app,
        &admin,
        json!({"code": flat, "kind": "flat", "value": 2000}),
    )
    .await;
    assert_eq!(quote(app, &flat, user, 10_000).await.1["discount"], 2000);
    assert_eq!(quote(app, &flat, user, 1_500).await.1["discount"], 1500);
    assert_eq!(quote(app, &flat, user, 0).await.1["discount"], 0);

    // Expired and not yet started.
    let old = code(app, "old");
    coupon(
        app,
        &admin,
        json!({"code": old, "kind": "flat", "value": 100, "ends_at": at(-60)}),
    )
    .await;
    assert_refused(
        &quote(app, &old, user, 10_000).await,
        "code",
        Some("expired"),
    );
    let soon = code(app, "soon");
    coupon(
        app,
        &admin,
        json!({"code": soon, "kind": "flat", "value": 100, "starts_at": at(3600)}),
    )
    .await;
    assert_refused(
        &quote(app, &soon, user, 10_000).await,
        "code",
        Some("not_started"),
    );

    // Unknown, malformed and inactive codes are 404.
    assert_internal_error(
        &quote(app, "NOSUCHCODE", user, 10_000).await,
        404,
        "not_found",
    );
    assert_internal_error(&quote(app, "x", user, 10_000).await, 404, "not_found");
    let off = coupon(app, &admin, percent(&code(app, "off"), 5)).await;
    let r = app
        .delete(
            &format!(
                "/api/v1/admin/promotions/{}",
                off["id"].as_str().expect("id")
            ),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_internal_error(
        &quote(app, off["code"].as_str().expect("code"), user, 10_000).await,
        404,
        "not_found",
    );

    // Bad bodies name the field.
    let (status, body) = call_internal(
        app,
        "promotions",
        "POST",
        "/internal/promotions/quote",
        &[],
        Some(json!({"code": flat, "user_id": user, "subtotal": 10.5})),
    )
    .await;
    assert_refused(&(status, body), "subtotal", None);
    let (status, body) = call_internal(
        app,
        "promotions",
        "POST",
        "/internal/promotions/quote",
        &[],
        Some(json!({"code": flat, "subtotal": 100})),
    )
    .await;
    assert_refused(&(status, body), "user_id", None);

    // Internal routes are not on the gateway.
    let customer = app.customer().await;
    let r = app
        .post(
            "/internal/promotions/quote",
            Some(&customer.token),
            json!({"code": flat, "user_id": customer.user_id, "subtotal": 100}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
});

backend_test!(concurrent_redemptions_never_pass_max_uses, |app| {
    let admin = app.admin_token().await;
    let limited = code(app, "lim");
    let c = coupon(
        app,
        &admin,
        json!({"code": limited, "kind": "flat", "value": 1000, "max_uses": 5}),
    )
    .await;
    let id = c["id"].as_str().expect("id");
    // 16 checkouts of 16 customers at once.
    let holds: Vec<(String, String)> = (0..16)
        .map(|i| (hold_id(app), format!("usr_conc_{i}")))
        .collect();
    let answers = futures::future::join_all(
        holds
            .iter()
            .map(|(hold, user)| redeem(app, &limited, user, 50_000, hold)),
    )
    .await;
    let won = answers.iter().filter(|(s, _)| *s == 201).count();
    for a in answers.iter().filter(|(s, _)| *s != 201) {
        assert_internal_error(a, 409, "conflict");
    }
    assert_eq!(won, 5, "{answers:?}");
    assert_eq!(uses(app, &admin, id).await, 5);
    for (a, (hold, user)) in answers.iter().zip(&holds) {
        if a.0 == 201 {
            assert_eq!(a.1["hold_id"], hold.as_str());
            assert_eq!(a.1["coupon_id"], id);
            assert_eq!(a.1["code"], limited.as_str());
            assert_eq!(a.1["discount"], 1000);
            assert_eq!(a.1["status"], "held");
            assert_eq!(a.1["user_id"], user.as_str());
        }
    }
    // Used up: a quote says so, a redemption is 409.
    assert_refused(
        &quote(app, &limited, "usr_late", 50_000).await,
        "code",
        Some("used_up"),
    );
    assert_internal_error(
        &redeem(app, &limited, "usr_late", 50_000, &hold_id(app)).await,
        409,
        "conflict",
    );

    // Per customer: one use each, even when one customer's checkouts race.
    let once = code(app, "once");
    let c = coupon(
        app,
        &admin,
        json!({"code": once, "kind": "percent", "value": 10, "max_uses_per_customer": 1}),
    )
    .await;
    let once_id = c["id"].as_str().expect("id");
    let hs: Vec<String> = (0..6).map(|_| hold_id(app)).collect();
    let answers = futures::future::join_all(
        hs.iter()
            .map(|h| redeem(app, &once, "usr_greedy", 10_000, h)),
    )
    .await;
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 201).count(),
        1,
        "{answers:?}"
    );
    for a in answers.iter().filter(|(s, _)| *s != 201) {
        assert_internal_error(a, 409, "conflict");
    }
    assert_refused(
        &quote(app, &once, "usr_greedy", 10_000).await,
        "code",
        Some("used_up_for_customer"),
    );
    let (status, body) = quote(app, &once, "usr_other", 10_000).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["discount"], 1000);
    assert_eq!(
        redeem(app, &once, "usr_other", 10_000, &hold_id(app))
            .await
            .0,
        201
    );
    assert_eq!(uses(app, &admin, once_id).await, 2);

    // 404 and 400 as the quote answers them.
    assert_internal_error(
        &redeem(app, "NOSUCHCODE", "usr_x", 100, &hold_id(app)).await,
        404,
        "not_found",
    );
    let min = code(app, "min");
    coupon(
        app,
        &admin,
        json!({"code": min, "kind": "flat", "value": 100, "min_cart_value": 5000}),
    )
    .await;
    assert_refused(
        &redeem(app, &min, "usr_x", 4999, &hold_id(app)).await,
        "code",
        Some("below_min_cart_value"),
    );
    assert_refused(
        &redeem(app, &min, "usr_x", 5000, "../etc").await,
        "hold_id",
        None,
    );
});

backend_test!(
    a_redemption_is_idempotent_and_a_release_gives_the_use_back_once,
    |app| {
        let admin = app.admin_token().await;
        let save = code(app, "rel");
        let c = coupon(
            app,
            &admin,
            json!({"code": save, "kind": "percent", "value": 20, "max_uses": 1}),
        )
        .await;
        let id = c["id"].as_str().expect("id");
        let hold = hold_id(app);

        let first = redeem(app, &save, "usr_rel", 10_000, &hold).await;
        assert_eq!(first.0, 201, "{}", first.1);
        assert_eq!(first.1["discount"], 2000);
        // The same hold again answers the same redemption and takes nothing more.
        let again = redeem(app, &save.to_lowercase(), "usr_rel", 10_000, &hold).await;
        assert_eq!(again, first);
        assert_eq!(uses(app, &admin, id).await, 1);
        // Another customer or code under the same hold is a conflict.
        assert_internal_error(
            &redeem(app, &save, "usr_other", 10_000, &hold).await,
            409,
            "conflict",
        );

        let (status, body) = release(app, &hold).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({"hold_id": hold, "status": "released"}));
        assert_eq!(uses(app, &admin, id).await, 0);
        // Released once: a second release changes nothing.
        let (status, body) = release(app, &hold).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "released");
        assert_eq!(uses(app, &admin, id).await, 0);
        // The use is free again for another checkout, and the released hold cannot take it.
        assert_internal_error(
            &redeem(app, &save, "usr_rel", 10_000, &hold).await,
            409,
            "conflict",
        );
        assert_eq!(
            redeem(app, &save, "usr_next", 10_000, &hold_id(app))
                .await
                .0,
            201
        );
        assert_eq!(uses(app, &admin, id).await, 1);

        assert_internal_error(&release(app, "hld_unknown").await, 404, "not_found");
    }
);

backend_test!(
    orders_events_confirm_a_redemption_and_a_cancellation_returns_it_once,
    |app| {
        let admin = app.admin_token().await;
        let save = code(app, "evt");
        let c = coupon(
            app,
            &admin,
            json!({"code": save, "kind": "flat", "value": 500}),
        )
        .await;
        let id = c["id"].as_str().expect("id");
        let hold = hold_id(app);
        assert_eq!(redeem(app, &save, "usr_evt", 10_000, &hold).await.0, 201);

        // An order.created from anyone but orders is ignored.
        inject_event(
            app,
            &format!("evt_{}", app.word("f")),
            "catalog",
            "order.created",
            &json!({"order_id": "ord_forged", "hold_id": hold}),
            0,
        )
        .await;
        settled(app).await;
        assert_eq!(redemption(app, &hold).await["status"], "held");

        inject_event(
            app,
            &format!("evt_{}", app.word("c")),
            "orders",
            "order.created",
            &json!({"order_id": "ord_evt", "user_id": "usr_evt", "hold_id": hold}),
            0,
        )
        .await;
        let r = redemption_becomes(app, &hold, "confirmed").await;
        assert_eq!(r["order_id"], "ord_evt");
        assert_eq!(uses(app, &admin, id).await, 1);
        // A confirmed redemption is the order's: a late release changes nothing.
        assert_eq!(release(app, &hold).await.1["status"], "confirmed");
        assert_eq!(uses(app, &admin, id).await, 1);

        // Cancelled twice (two events saying the same): the use comes back once.
        for _ in 0..2 {
            inject_event(
                app,
                &format!("evt_{}", app.word("x")),
                "orders",
                "order.cancelled",
                &json!({"order_id": "ord_evt", "hold_id": hold, "reason": "test"}),
                0,
            )
            .await;
        }
        redemption_becomes(app, &hold, "returned").await;
        settled(app).await;
        assert_eq!(uses(app, &admin, id).await, 0);
        // Orders without a hold (or holds without a coupon) are not the plugin's business.
        inject_event(
            app,
            &format!("evt_{}", app.word("n")),
            "orders",
            "order.created",
            &json!({"order_id": "ord_plain", "hold_id": null}),
            0,
        )
        .await;
        settled(app).await;
        let r = app
            .get("/admin/events?status=dead", Some(OPERATOR_TOKEN))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            !r.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .any(|e| e["subscriber"] == "promotions"),
            "{}",
            r.text
        );
    }
);

backend_test!(
    an_expiry_releases_a_redemption_without_order_and_keeps_one_with_an_order,
    "[promotions]\nhold_secs = 1",
    |app| {
        let admin = app.admin_token().await;
        let save = code(app, "exp");
        let c = coupon(
            app,
            &admin,
            json!({"code": save, "kind": "flat", "value": 300}),
        )
        .await;
        let id = c["id"].as_str().expect("id");

        // A checkout that never wrote its order: orders knows no order of this hold.
        let lost = hold_id(app);
        assert_eq!(redeem(app, &save, "usr_exp", 10_000, &lost).await.0, 201);
        assert_eq!(uses(app, &admin, id).await, 1);
        redemption_becomes(app, &lost, "released").await;
        assert_eq!(uses(app, &admin, id).await, 0);

        // A real order: its catalog hold id is redeemed after the order exists (its
        // order.created came first), so only the expiry can find the order.
        let product = new_product(app, &admin, 10_000, 10).await;
        let (customer, address) = shopper(app, &product, 1).await;
        let order_id = place(app, &customer, &address, "cod").await;
        let holds = app
            .get("/api/v1/admin/stock-holds?page_size=100", Some(&admin))
            .await;
        assert_eq!(holds.status, 200, "{}", holds.text);
        let hold = holds.body["items"]
            .as_array()
            .and_then(|a| a.iter().find(|h| h["order_id"] == order_id.as_str()))
            .and_then(|h| h["id"].as_str())
            .map(str::to_string);
        let hold = match hold {
            Some(h) => h,
            None => {
                // The catalog records the order on its hold when order.created arrives.
                settled(app).await;
                let holds = app
                    .get("/api/v1/admin/stock-holds?page_size=100", Some(&admin))
                    .await;
                holds.body["items"]
                    .as_array()
                    .and_then(|a| a.iter().find(|h| h["order_id"] == order_id.as_str()))
                    .and_then(|h| h["id"].as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| panic!("no hold for {order_id}: {}", holds.text))
            }
        };
        settled(app).await;
        let (status, body) = redeem(app, &save, &customer.user_id, 10_000, &hold).await;
        assert_eq!(status, 201, "{body}");
        let r = redemption_becomes(app, &hold, "confirmed").await;
        assert_eq!(r["order_id"], order_id.as_str());
        assert_eq!(uses(app, &admin, id).await, 1);
    }
);

backend_test!(the_python_plugin_is_operated_like_any_other, |app| {
    let admin = app.admin_token().await;
    // Listed live with its routes, subscriptions and grants.
    let r = app
        .get("/admin/plugins/promotions", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["state"], "live", "{}", r.text);
    assert_eq!(r.body["live_version"], "0.1.0", "{}", r.text);
    let text = r.text.clone();
    for needle in [
        "/api/v1/admin/promotions/{id}",
        "/internal/promotions/redemptions",
        "order.cancelled",
        "promotions.redemption_expired",
        "call:orders",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    // Its public routes are in the OpenAPI document, its internal ones are not.
    let r = app.get("/openapi.json", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let paths = &r.body["paths"];
    assert!(
        paths["/api/v1/admin/promotions"]["post"].is_object(),
        "{}",
        r.text
    );
    assert!(paths["/api/v1/admin/promotions"]["get"].is_object());
    for m in ["get", "patch", "delete"] {
        assert!(paths["/api/v1/admin/promotions/{id}"][m].is_object(), "{m}");
    }
    assert!(!r.text.contains("/internal/promotions"));

    // The same bytes uploaded again are the installed version; nothing new.
    let bytes = std::fs::read(plugin_dir().join("promotions.wasm")).expect("promotions.wasm");
    let r = app.upload_component(Some(OPERATOR_TOKEN), bytes).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "promotions");

    // Disabled: 503 plugin_unavailable; enabled again: served, data intact.
    let c = coupon(app, &admin, percent(&code(app, "ops"), 5)).await;
    plugin_action(app, "promotions", "disable").await;
    app.get("/api/v1/admin/promotions", Some(&admin))
        .await
        .assert_error(503, "plugin_unavailable");
    plugin_action(app, "promotions", "enable").await;
    assert_eq!(read(app, &admin, c["id"].as_str().expect("id")).await, c);
});

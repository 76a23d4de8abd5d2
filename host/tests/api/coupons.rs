//! Coupons through the shop: a cart's coupon, checkout redeeming it with the order,
//! the total limit under concurrent checkouts, and a cancellation giving it back once.
//!
//! Coupons are made through the admin API of the `promotions` plugin; everything else
//! is the customer's own routes (cart, orders, payments) against the real host.

use crate::helpers::*;
use crate::shop::*;

/// A fresh coupon code (3..20 letters and digits), unique in the test process.
fn new_code(app: &TestApp) -> String {
    app.word("cp").to_uppercase()
}

/// An RFC 3339 instant `secs` from now (negative: in the past).
fn at(secs: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .replace_nanosecond(0)
        .expect("0 ns is valid")
        .format(&Rfc3339)
        .expect("an RFC 3339 instant")
}

/// Creates a coupon `code`: 10 % off with no minimum, overridden by `extra`'s fields.
async fn new_coupon(app: &TestApp, admin: &str, code: &str, extra: Value) -> Value {
    let mut body = json!({"code": code, "kind": "percent", "value": 10, "min_cart_value": 0});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let r = app
        .post("/api/v1/admin/promotions", Some(admin), body)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

/// The coupon as the admin API shows it now.
async fn coupon_of(app: &TestApp, admin: &str, id: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/admin/promotions/{id}"), Some(admin))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// Waits until the coupon shows `uses` uses and asserts it.
async fn uses_become(app: &TestApp, admin: &str, id: &str, uses: i64) {
    let reached = app
        .eventually(15, || async {
            (coupon_of(app, admin, id).await["uses"] == uses).then_some(())
        })
        .await;
    assert!(
        reached.is_some(),
        "the coupon's uses stayed {} instead of {uses}",
        coupon_of(app, admin, id).await["uses"]
    );
}

async fn apply(app: &TestApp, token: &str, code: &str) -> Resp {
    app.post("/api/v1/cart/coupon", Some(token), json!({ "code": code }))
        .await
}

/// Asserts the cart carries `code` applied with `discount` off its total.
fn assert_applied(cart: &Value, code: &str, discount: i64) {
    let shown = cart["coupon"]["code"].as_str().unwrap_or_default();
    assert!(shown.eq_ignore_ascii_case(code), "{cart}");
    assert_eq!(cart["coupon"]["status"], "applied", "{cart}");
    assert_eq!(cart["coupon"]["discount"], discount, "{cart}");
    assert_eq!(cart["discount"], discount, "{cart}");
    let (subtotal, fee) = (
        cart["subtotal"].as_i64().unwrap_or_default(),
        cart["delivery_fee"].as_i64().unwrap_or_default(),
    );
    assert_eq!(cart["total"], subtotal + fee - discount, "{cart}");
}

/// Asserts the cart shows its coupon with no discount, `status`, and a reason.
fn assert_not_applied(cart: &Value, status: &str) {
    assert_eq!(cart["coupon"]["status"], status, "{cart}");
    assert_eq!(cart["coupon"]["discount"], 0, "{cart}");
    assert_eq!(cart["discount"], 0, "{cart}");
    assert!(
        cart["coupon"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{cart}"
    );
    assert_eq!(
        cart["total"].as_i64(),
        Some(cart["subtotal"].as_i64().unwrap_or(-1) + cart["delivery_fee"].as_i64().unwrap_or(-1)),
        "{cart}"
    );
}

/// Asserts a cart without a coupon: the shape it had before coupons existed.
fn assert_no_coupon(cart: &Value) {
    assert!(cart.get("coupon").is_none(), "{cart}");
    assert!(cart.get("discount").is_none(), "{cart}");
}

/// The number of orders `token`'s customer has.
async fn order_count(app: &TestApp, token: &str) -> i64 {
    let r = app.get("/api/v1/orders", Some(token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["total"].as_i64().expect("total")
}

backend_test!(a_coupon_discounts_the_cart_until_it_is_removed, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 50).await;
    let (c, _) = shopper(app, &product, 3).await;
    let code = new_code(app);
    new_coupon(app, &admin, &code, json!({})).await;

    // Codes are case-insensitive: 10 % of 3000 with the 2500 fee.
    let r = apply(app, &c.token, &code.to_lowercase()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_applied(&r.body, &code, 300);
    assert_eq!(r.body["subtotal"], 3000);
    assert_eq!(r.body["total"], 5200);
    assert!(r.body["updated_at"].is_string(), "{}", r.text);
    // Reading the cart gives the same answer.
    assert_eq!(cart(app, &c.token).await, r.body);

    // The discount follows the cart: one more unit makes it 400.
    let r = app
        .put(
            &format!("/api/v1/cart/items/{product}"),
            Some(&c.token),
            json!({"quantity": 4}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_applied(&r.body, &code, 400);
    assert_eq!(r.body["total"], 6100);

    // Removing it gives the plain cart back; removing it again changes nothing.
    let r = app.delete("/api/v1/cart/coupon", Some(&c.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_no_coupon(&r.body);
    assert_eq!(r.body["total"], 6500);
    let again = app.delete("/api/v1/cart/coupon", Some(&c.token)).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body, r.body);
    assert_no_coupon(&cart(app, &c.token).await);

    // A flat coupon never takes the total below the delivery fee.
    let flat = new_code(app);
    new_coupon(
        app,
        &admin,
        &flat,
        json!({"kind": "flat", "value": 100_000}),
    )
    .await;
    let r = apply(app, &c.token, &flat).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["discount"], 4000, "{}", r.text);
    assert_eq!(r.body["total"], 2500, "{}", r.text);

    // Emptying the cart drops the coupon with the lines.
    let r = app.delete("/api/v1/cart", Some(&c.token)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_no_coupon(&cart(app, &c.token).await);

    // Only customers have carts.
    let r = apply(app, &admin, &code).await;
    assert_error(&r, 403, "forbidden");
    let r = app
        .post("/api/v1/cart/coupon", None, json!({ "code": code }))
        .await;
    assert_error(&r, 401, "unauthorized");
});

backend_test!(refused_codes_change_nothing, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 50).await;
    let c = app.customer().await;

    // An empty cart has nothing to discount.
    let known = new_code(app);
    let created = new_coupon(app, &admin, &known, json!({})).await;
    let r = apply(app, &c.token, &known).await;
    assert_error(&r, 400, "cart_empty");
    add_to_cart(app, &c.token, &product, 3).await;
    let before = cart(app, &c.token).await;

    // Bodies: not a code, no code, not JSON.
    for bad in [
        json!({"code": "a!"}),
        json!({"code": "AB"}),
        json!({"code": 12}),
        json!({}),
    ] {
        let r = app
            .post("/api/v1/cart/coupon", Some(&c.token), bad.clone())
            .await;
        assert_invalid_field(&r, "code");
    }
    let r = app
        .raw(
            "POST",
            "/api/v1/cart/coupon",
            Some(&c.token),
            Some("text/plain"),
            known.clone().into_bytes(),
        )
        .await;
    assert_error(&r, 415, "unsupported_media_type");

    // Unknown and inactive codes are 404.
    let r = apply(app, &c.token, &new_code(app)).await;
    assert_error(&r, 404, "not_found");
    let off = new_code(app);
    let inactive = new_coupon(app, &admin, &off, json!({})).await;
    let r = app
        .patch(
            &format!(
                "/api/v1/admin/promotions/{}",
                inactive["id"].as_str().unwrap_or_default()
            ),
            Some(&admin),
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = apply(app, &c.token, &off).await;
    assert_error(&r, 404, "not_found");

    // Below the minimum, expired, not started: 400 on `code`.
    let high = new_code(app);
    new_coupon(app, &admin, &high, json!({"min_cart_value": 10_000})).await;
    let expired = new_code(app);
    new_coupon(
        app,
        &admin,
        &expired,
        json!({"starts_at": at(-7200), "ends_at": at(-3600)}),
    )
    .await;
    let later = new_code(app);
    new_coupon(app, &admin, &later, json!({"starts_at": at(3600)})).await;
    for refused in [&high, &expired, &later] {
        let r = apply(app, &c.token, refused).await;
        assert_invalid_field(&r, "code");
    }

    // None of it touched the cart.
    assert_eq!(cart(app, &c.token).await, before);
    assert_no_coupon(&before);
    assert_eq!(
        coupon_of(app, &admin, created["id"].as_str().unwrap_or_default()).await["uses"],
        0
    );
});

backend_test!(a_coupon_that_stops_applying_shows_why, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 50).await;
    let (c, address) = shopper(app, &product, 6).await;
    let code = new_code(app);
    let coupon = new_coupon(app, &admin, &code, json!({"min_cart_value": 5000})).await;
    let r = apply(app, &c.token, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_applied(&r.body, &code, 600);

    // Below the minimum the coupon stays on the cart, worth nothing, saying why.
    let r = app
        .put(
            &format!("/api/v1/cart/items/{product}"),
            Some(&c.token),
            json!({"quantity": 2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_not_applied(&r.body, "invalid");
    assert_not_applied(&cart(app, &c.token).await, "invalid");

    // Checkout refuses it, and leaves everything as it was.
    let r = checkout(app, &c.token, &address, "cod").await;
    assert_invalid_field(&r, "code");
    assert_eq!(order_count(app, &c.token).await, 0);
    stock_becomes(app, &product, 50).await;
    assert_eq!(cart(app, &c.token).await["items"][0]["quantity"], 2);

    // Back above the minimum, it applies again.
    add_to_cart(app, &c.token, &product, 4).await;
    assert_applied(&cart(app, &c.token).await, &code, 600);

    // Deactivated by the admin: invalid in the cart, refused at checkout.
    let id = coupon["id"].as_str().unwrap_or_default();
    let r = app
        .patch(
            &format!("/api/v1/admin/promotions/{id}"),
            Some(&admin),
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_not_applied(&cart(app, &c.token).await, "invalid");
    let r = checkout(app, &c.token, &address, "cod").await;
    assert_invalid_field(&r, "code");
    assert_eq!(order_count(app, &c.token).await, 0);
    stock_becomes(app, &product, 50).await;

    // Removed, the order goes through at full price.
    let r = app.delete("/api/v1/cart/coupon", Some(&c.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = checkout(app, &c.token, &address, "cod").await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["discount"], 0);
    assert!(r.body["coupon_code"].is_null(), "{}", r.text);
    assert_eq!(r.body["total"], 6000 + 2500);
});

backend_test!(checkout_redeems_the_coupon_with_the_order, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 50).await;
    let (c, address) = shopper(app, &product, 3).await;
    let code = new_code(app);
    let coupon = new_coupon(app, &admin, &code, json!({"max_uses": 10})).await;
    let coupon_id = coupon["id"].as_str().unwrap_or_default().to_string();
    let r = apply(app, &c.token, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // COD: the order carries the coupon and the discounted total.
    let r = checkout(app, &c.token, &address, "cod").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let order = r.body.clone();
    assert!(order["coupon_code"]
        .as_str()
        .is_some_and(|s| s.eq_ignore_ascii_case(&code)));
    assert_eq!(order["subtotal"], 3000);
    assert_eq!(order["delivery_fee"], 2500);
    assert_eq!(order["discount"], 300);
    assert_eq!(order["total"], 5200);
    let id = order["id"].as_str().unwrap_or_default().to_string();
    let g = app
        .get(&format!("/api/v1/orders/{id}"), Some(&c.token))
        .await;
    assert_eq!(g.status, 200, "{}", g.text);
    assert_eq!(g.body, order);
    // The cart is empty and its coupon is gone; the stock went down; one use is taken.
    let after = cart(app, &c.token).await;
    assert_eq!(after["items"], json!([]));
    assert_no_coupon(&after);
    assert_eq!(stock_of(app, &product).await, 47);
    settled(app).await;
    uses_become(app, &admin, &coupon_id, 1).await;

    // order.created says so.
    let created: Vec<Value> = events_from(app, "orders")
        .await
        .into_iter()
        .filter(|(t, p)| t == "order.created" && p["order_id"] == id.as_str())
        .map(|(_, p)| p)
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["coupon_code"], order["coupon_code"]);
    assert_eq!(created[0]["discount"], 300);
    assert_eq!(created[0]["total"], 5200);
    assert!(created[0]["hold_id"].is_string());

    // Online: the payment asks for the discounted total.
    add_to_cart(app, &c.token, &product, 5).await;
    let r = apply(app, &c.token, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = checkout(app, &c.token, &address, "online").await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        (r.body["discount"].clone(), r.body["total"].clone()),
        (json!(500), json!(7000))
    );
    let online = r.body["id"].as_str().unwrap_or_default().to_string();
    let r = app
        .post(
            "/api/v1/payments/intents",
            Some(&c.token),
            json!({ "order_id": online }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["amount"], 7000);

    // A coupon that leaves nothing to pay cannot be paid online; COD is fine.
    let free = new_code(app);
    new_coupon(
        app,
        &admin,
        &free,
        json!({"kind": "flat", "value": 100_000}),
    )
    .await;
    add_to_cart(app, &c.token, &product, 20).await;
    let r = apply(app, &c.token, &free).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["total"], 0, "{}", r.text);
    let r = checkout(app, &c.token, &address, "online").await;
    assert_invalid_field(&r, "payment_method");
    stock_becomes(app, &product, 42).await;
    let r = checkout(app, &c.token, &address, "cod").await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        (r.body["discount"].clone(), r.body["total"].clone()),
        (json!(20_000), json!(0))
    );
});

backend_test!(concurrent_checkouts_never_pass_max_uses, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 100).await;
    let code = new_code(app);
    let coupon = new_coupon(app, &admin, &code, json!({"max_uses": 3})).await;
    let coupon_id = coupon["id"].as_str().unwrap_or_default().to_string();
    let mut shoppers = Vec::new();
    for _ in 0..6 {
        let (c, address) = shopper(app, &product, 2).await;
        let r = apply(app, &c.token, &code).await;
        assert_eq!(r.status, 200, "{}", r.text);
        shoppers.push((c, address));
    }

    let answers = futures::future::join_all(
        shoppers
            .iter()
            .map(|(c, address)| checkout(app, &c.token, address, "cod")),
    )
    .await;
    let mut placed = 0;
    for ((c, _), r) in shoppers.iter().zip(&answers) {
        if r.status == 201 {
            placed += 1;
            assert!(r.body["coupon_code"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(&code)));
            assert_eq!(r.body["discount"], 200, "{}", r.text);
            assert_eq!(r.body["total"], 2000 + 2500 - 200, "{}", r.text);
            assert_eq!(order_count(app, &c.token).await, 1);
        } else {
            assert_error(r, 409, "conflict");
            // Nothing was created for the loser, and its cart is as it was.
            assert_eq!(order_count(app, &c.token).await, 0);
            let left = cart(app, &c.token).await;
            assert_eq!(left["items"][0]["quantity"], 2, "{left}");
            assert!(left["coupon"]["code"].is_string(), "{left}");
        }
    }
    assert_eq!(placed, 3, "{answers:?}");
    // Only the winners' units left the shelf, and exactly three uses were taken.
    stock_becomes(app, &product, 100 - 3 * 2).await;
    settled(app).await;
    uses_become(app, &admin, &coupon_id, 3).await;
    let r = app
        .get("/api/v1/admin/orders?page_size=100", Some(&admin))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let with_coupon = r.body["items"]
        .as_array()
        .map(|a| a.iter().filter(|o| !o["coupon_code"].is_null()).count())
        .unwrap_or(0);
    assert_eq!(with_coupon, 3, "{}", r.text);
});

backend_test!(cancelling_gives_the_use_back_once, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 100).await;
    let code = new_code(app);
    let coupon = new_coupon(app, &admin, &code, json!({"max_uses": 1})).await;
    let coupon_id = coupon["id"].as_str().unwrap_or_default().to_string();

    let (a, a_address) = shopper(app, &product, 2).await;
    let r = apply(app, &a.token, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let first = place(app, &a, &a_address, "cod").await;
    settled(app).await;
    uses_become(app, &admin, &coupon_id, 1).await;

    // Used up: another customer cannot apply it.
    let (b, b_address) = shopper(app, &product, 2).await;
    let r = apply(app, &b.token, &code).await;
    assert_invalid_field(&r, "code");

    // Cancelling gives the use back, and order.cancelled names the coupon.
    let r = cancel_order(app, &a.token, &first).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["coupon_code"].is_string(), "{}", r.text);
    settled(app).await;
    uses_become(app, &admin, &coupon_id, 0).await;
    let cancelled: Vec<Value> = events_from(app, "orders")
        .await
        .into_iter()
        .filter(|(t, p)| t == "order.cancelled" && p["order_id"] == first.as_str())
        .map(|(_, p)| p)
        .collect();
    assert_eq!(cancelled.len(), 1, "{cancelled:?}");
    assert_eq!(cancelled[0]["coupon_code"], r.body["coupon_code"]);
    assert!(cancelled[0]["hold_id"].is_string(), "{cancelled:?}");

    // A new customer can now use it.
    let r = apply(app, &b.token, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = checkout(app, &b.token, &b_address, "cod").await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["discount"], 200);
    settled(app).await;
    uses_become(app, &admin, &coupon_id, 1).await;

    // Cancelling again changes nothing: the order is already cancelled, and the same
    // order.cancelled delivered again gives nothing back a second time.
    let r = cancel_order(app, &a.token, &first).await;
    assert_error(&r, 409, "invalid_transition");
    inject_event(
        app,
        &format!("evt_dup_{}", app.word("x")),
        "orders",
        "order.cancelled",
        &cancelled[0],
        0,
    )
    .await;
    settled(app).await;
    assert_eq!(coupon_of(app, &admin, &coupon_id).await["uses"], 1);
    let (c, _) = shopper(app, &product, 2).await;
    let r = apply(app, &c.token, &code).await;
    assert_invalid_field(&r, "code");
});

backend_test!(without_promotions_carts_still_work, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 50).await;
    let (c, address) = shopper(app, &product, 3).await;
    let code = new_code(app);
    new_coupon(app, &admin, &code, json!({})).await;
    let r = apply(app, &c.token, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);

    plugin_action(app, "promotions", "disable").await;
    // The cart is served, its coupon shown as unavailable and worth nothing.
    assert_not_applied(&cart(app, &c.token).await, "unavailable");
    let r = apply(app, &c.token, &code).await;
    assert_error(&r, 503, "plugin_unavailable");
    // A cart without a coupon never notices.
    let (plain, _) = shopper(app, &product, 1).await;
    let r = app.get("/api/v1/cart", Some(&plain.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_no_coupon(&r.body);
    // Checkout with the coupon cannot redeem it: nothing is created.
    let r = checkout(app, &c.token, &address, "cod").await;
    assert_error(&r, 503, "plugin_unavailable");
    assert_eq!(order_count(app, &c.token).await, 0);
    stock_becomes(app, &product, 50).await;
    assert_eq!(cart(app, &c.token).await["items"][0]["quantity"], 3);
    // Removing the coupon needs no promotions.
    let r = app.delete("/api/v1/cart/coupon", Some(&c.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_no_coupon(&r.body);

    plugin_action(app, "promotions", "enable").await;
    let r = apply(app, &c.token, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_applied(&r.body, &code, 300);
});

//! The `orders` plugin over HTTP: checkout (COD and online), the failure cases that must
//! leave everything as it was, Idempotency-Key replays, listing, the state machine,
//! cancellation with stock release, access rules, the stock race and the automatic
//! cancellation of unpaid online orders.

use crate::helpers::*;
use crate::shop::*;

fn ts(s: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        s.as_str().expect("a timestamp"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("an RFC 3339 timestamp")
}

backend_test!(cod_checkout_places_a_confirmed_order, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 4500, 10).await;
    let (c, address) = shopper(app, &product, 2).await;

    let r = app
        .post(
            "/api/v1/orders",
            Some(&c.token),
            json!({"address_id": address, "payment_method": "cod", "notes": "  ring twice "}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let o = &r.body;
    assert!(o["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(o["user_id"], c.user_id.as_str());
    assert_eq!(o["status"], "confirmed");
    assert_eq!(o["payment_method"], "cod");
    assert_eq!(o["payment_status"], "cod");
    assert_eq!(o["currency"], "INR");
    assert_eq!(o["notes"], "ring twice");
    let item = &o["items"][0];
    assert_eq!(item["product_id"], product.as_str());
    assert!(item["name"]
        .as_str()
        .is_some_and(|n| n.starts_with("Order test dal")));
    assert_eq!(item["unit"], "1 kg");
    assert_eq!(item["unit_price"], 4500);
    assert_eq!(item["quantity"], 2);
    assert_eq!(item["line_total"], 9000);
    assert_eq!(o["subtotal"], 9000);
    assert_eq!(o["delivery_fee"], 2500);
    assert_eq!(o["total"], 11500);
    let a = &o["address"];
    assert_eq!(a["id"], address.as_str());
    assert_eq!(a["label"], "Home");
    assert_eq!(a["line1"], "12 MG Road");
    assert_eq!(a["city"], "Bengaluru");
    assert_eq!(a["pincode"], "560001");
    assert_eq!(a["lat"], 12.97);
    assert_eq!(a["lon"], 77.59);
    assert!(a.get("line2").is_some(), "{}", r.text);
    assert_eq!(
        o["status_history"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
    assert_eq!(o["status_history"][0]["status"], "confirmed");
    assert_eq!(o["status_history"][0]["at"], o["created_at"]);
    assert_eq!(o["updated_at"], o["created_at"]);
    assert!(o["delivered_at"].is_null());
    let eta = ts(&o["estimated_delivery_at"]) - ts(&o["created_at"]);
    assert_eq!(eta.whole_minutes(), 20, "{}", r.text);

    // The cart is empty and the stock went down.
    assert_eq!(cart(app, &c.token).await["items"], json!([]));
    assert_eq!(stock_of(app, &product).await, 8);

    // Reading it back gives the same order.
    let id = o["id"].as_str().unwrap_or_default();
    let g = app
        .get(&format!("/api/v1/orders/{id}"), Some(&c.token))
        .await;
    assert_eq!(g.status, 200, "{}", g.text);
    assert_eq!(&g.body, o);
    // The admin sees it too.
    let g = app.get(&format!("/api/v1/orders/{id}"), Some(&admin)).await;
    assert_eq!(g.status, 200, "{}", g.text);
});

backend_test!(online_checkout_waits_for_payment, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 10000, 10).await;
    let (c, address) = shopper(app, &product, 2).await;
    let r = checkout(app, &c.token, &address, "online").await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["payment_method"], "online");
    assert_eq!(r.body["payment_status"], "awaiting");
    assert_eq!(r.body["status_history"][0]["status"], "pending");
    // 20000 ≥ 19900: free delivery.
    assert_eq!(r.body["subtotal"], 20000);
    assert_eq!(r.body["delivery_fee"], 0);
    assert_eq!(r.body["total"], 20000);
    assert_eq!(stock_of(app, &product).await, 8);
    assert_eq!(cart(app, &c.token).await["items"], json!([]));
});

backend_test!(checkout_validates_its_input, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 4500, 10).await;
    let c = app.customer().await;
    let address = new_address(app, &c.token).await;

    // Empty cart.
    let r = checkout(app, &c.token, &address, "cod").await;
    assert_error(&r, 400, "cart_empty");

    add_to_cart(app, &c.token, &product, 1).await;
    let r = checkout(app, &c.token, &address, "upi").await;
    assert_invalid_field(&r, "payment_method");
    let r = app
        .post(
            "/api/v1/orders",
            Some(&c.token),
            json!({"payment_method": "cod"}),
        )
        .await;
    assert_invalid_field(&r, "address_id");
    let r = checkout(app, &c.token, "  ", "cod").await;
    assert_invalid_field(&r, "address_id");
    let r = app
        .post(
            "/api/v1/orders",
            Some(&c.token),
            json!({"address_id": 5, "payment_method": "cod"}),
        )
        .await;
    assert_invalid_field(&r, "address_id");
    let r = app
        .post(
            "/api/v1/orders",
            Some(&c.token),
            json!({"address_id": address, "payment_method": "cod", "notes": "x".repeat(501)}),
        )
        .await;
    assert_invalid_field(&r, "notes");
    app.assert_rejects_bad_bodies(
        "POST",
        "/api/v1/orders",
        Some(&c.token),
        br#"{"address_id":"x","payment_method":"cod"}"#,
    )
    .await;

    // Unknown address and another user's address: 404, nothing changes.
    let r = checkout(app, &c.token, "adr_doesnotexist", "cod").await;
    assert_error(&r, 404, "not_found");
    let r = checkout(app, &c.token, "../../x", "cod").await;
    assert_error(&r, 404, "not_found");
    let other = app.customer().await;
    let theirs = new_address(app, &other.token).await;
    let r = checkout(app, &c.token, &theirs, "cod").await;
    assert_error(&r, 404, "not_found");

    assert_eq!(cart(app, &c.token).await["items"][0]["quantity"], 1);
    assert_eq!(stock_of(app, &product).await, 10);
    let list = app.get("/api/v1/orders", Some(&c.token)).await;
    assert_eq!(list.body["total"], 0, "{}", list.text);
});

backend_test!(insufficient_stock_changes_nothing, |app| {
    let admin = app.admin_token().await;
    let plenty = new_product(app, &admin, 1000, 50).await;
    let scarce = new_product(app, &admin, 2000, 5).await;
    let (c, address) = shopper(app, &plenty, 2).await;
    add_to_cart(app, &c.token, &scarce, 3).await;
    // Stock drops below the cart's quantity after it was added.
    let r = app
        .patch(
            &format!("/api/v1/products/{scarce}/stock"),
            Some(&admin),
            json!({"set": 1}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let before = cart(app, &c.token).await;

    let r = checkout(app, &c.token, &address, "cod").await;
    assert_error(&r, 409, "insufficient_stock");
    assert_eq!(r.body["error"]["details"]["items"], json!([scarce]));

    let after = cart(app, &c.token).await;
    assert_eq!(after["items"], before["items"]);
    assert_eq!(after["item_count"], 5);
    assert_eq!(stock_of(app, &plenty).await, 50);
    assert_eq!(stock_of(app, &scarce).await, 1);
    let list = app.get("/api/v1/orders", Some(&c.token)).await;
    assert_eq!(list.body["total"], 0, "{}", list.text);
});

/// A customer with one unit of a new product (stock 10) in the cart, a COD checkout
/// body for their address, and a fresh Idempotency-Key.
struct Keyed {
    c: Customer,
    product: String,
    address: String,
    body: Value,
    key: String,
}

async fn keyed(app: &TestApp) -> Keyed {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 4500, 10).await;
    let (c, address) = shopper(app, &product, 1).await;
    let body = json!({"address_id": address, "payment_method": "cod"});
    Keyed {
        c,
        product,
        address,
        body,
        key: app.unique("key-"),
    }
}

backend_test!(idempotency_key_replays_the_first_answer, |app| {
    let Keyed {
        c,
        product,
        address,
        body,
        key,
    } = keyed(app).await;

    let first = checkout_with_key(app, &c.token, &key, body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    // The cart is empty now, yet the replay answers the first response.
    let again = checkout_with_key(app, &c.token, &key, body.clone()).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body, first.body);
    let list = app.get("/api/v1/orders", Some(&c.token)).await;
    assert_eq!(list.body["total"], 1, "{}", list.text);
    assert_eq!(stock_of(app, &product).await, 9);

    // The same key with another body is a conflict.
    let other_body = json!({"address_id": address, "payment_method": "online"});
    let r = checkout_with_key(app, &c.token, &key, other_body).await;
    assert_error(&r, 409, "conflict");

    // A failure is the first answer too: replayed even once the cause is gone.
    let key2 = app.unique("key-");
    let r = checkout_with_key(app, &c.token, &key2, body.clone()).await;
    assert_error(&r, 400, "cart_empty");
    add_to_cart(app, &c.token, &product, 1).await;
    let r = checkout_with_key(app, &c.token, &key2, body.clone()).await;
    assert_error(&r, 400, "cart_empty");

    // Keys are per user: another customer's same key is a fresh request.
    let (d, d_address) = shopper(app, &product, 1).await;
    let r = checkout_with_key(
        app,
        &d.token,
        &key,
        json!({"address_id": d_address, "payment_method": "cod"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_ne!(r.body["id"], first.body["id"]);

    // A bad key is a validation error.
    let r = checkout_with_key(app, &c.token, &"k".repeat(300), body).await;
    assert_invalid_field(&r, "Idempotency-Key");
});

backend_test!(
    a_key_is_forgotten_once_its_window_has_passed,
    "[orders]\nidempotency_seconds = 3",
    |app| {
        let Keyed {
            c,
            product,
            body,
            key,
            ..
        } = keyed(app).await;
        let first = checkout_with_key(app, &c.token, &key, body.clone()).await;
        assert_eq!(first.status, 201, "{}", first.text);
        let again = checkout_with_key(app, &c.token, &key, body.clone()).await;
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.body["id"], first.body["id"]);
        // Past the window the key is a new request: a second order from a new cart.
        // (Stored times have second precision: wait the window and a second and a half.)
        tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
        add_to_cart(app, &c.token, &product, 1).await;
        let later = checkout_with_key(app, &c.token, &key, body).await;
        assert_eq!(later.status, 201, "{}", later.text);
        assert!(later.header("idempotent-replayed").is_none());
        assert_ne!(later.body["id"], first.body["id"]);
        let list = app.get("/api/v1/orders", Some(&c.token)).await;
        assert_eq!(list.body["total"], 2, "{}", list.text);
    }
);

backend_test!(listing_is_own_newest_first_paged_and_filtered, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 50).await;
    let (c, address) = shopper(app, &product, 1).await;
    let first = place(app, &c, &address, "cod").await;
    add_to_cart(app, &c.token, &product, 1).await;
    let second = place(app, &c, &address, "online").await;
    add_to_cart(app, &c.token, &product, 1).await;
    let third = place(app, &c, &address, "cod").await;

    let r = app.get("/api/v1/orders", Some(&c.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["total"], 3);
    assert_eq!(r.body["page"], 1);
    assert_eq!(r.body["page_size"], 20);
    let ids: Vec<&str> = r.body["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![third.as_str(), second.as_str(), first.as_str()]);
    assert!(r.body["items"][0]["items"]
        .as_array()
        .is_some_and(|a| a.len() == 1));

    let r = app
        .get("/api/v1/orders?page=2&page_size=2", Some(&c.token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["total"], 3);
    assert_eq!(r.body["items"][0]["id"], first.as_str());
    let r = app.get("/api/v1/orders?page=9", Some(&c.token)).await;
    assert_eq!(r.body["items"], json!([]));
    assert_eq!(r.body["total"], 3);

    let r = app
        .get("/api/v1/orders?status=pending", Some(&c.token))
        .await;
    assert_eq!(r.body["total"], 1, "{}", r.text);
    assert_eq!(r.body["items"][0]["id"], second.as_str());
    let r = app
        .get("/api/v1/orders?status=shipped", Some(&c.token))
        .await;
    assert_invalid_field(&r, "status");
    let r = app.get("/api/v1/orders?page_size=0", Some(&c.token)).await;
    assert_invalid_field(&r, "page_size");
    let r = app.get("/api/v1/orders?page=x", Some(&c.token)).await;
    assert_invalid_field(&r, "page");

    // Another customer sees none of them and cannot read or cancel them.
    let other = app.customer().await;
    let r = app.get("/api/v1/orders", Some(&other.token)).await;
    assert_eq!(r.body["total"], 0, "{}", r.text);
    let r = app
        .get(&format!("/api/v1/orders/{first}"), Some(&other.token))
        .await;
    assert_error(&r, 404, "not_found");
    let r = cancel_order(app, &other.token, &first).await;
    assert_error(&r, 404, "not_found");
    let r = app
        .get("/api/v1/orders/ord_doesnotexist", Some(&c.token))
        .await;
    assert_error(&r, 404, "not_found");

    // A delivery agent not assigned to the order gets a 404 too.
    let agent = new_agent(app, &admin).await;
    let agent = agent.token.as_str();
    let r = app
        .get(&format!("/api/v1/orders/{first}"), Some(agent))
        .await;
    assert_error(&r, 404, "not_found");
    let r = app.get("/api/v1/orders", Some(agent)).await;
    assert_error(&r, 403, "forbidden");
});

backend_test!(admin_walks_the_state_machine, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 50).await;
    let (c, address) = shopper(app, &product, 1).await;
    let id = place(app, &c, &address, "cod").await;

    // Skipping a step, going back and staying put are all invalid.
    for bad in ["out_for_delivery", "delivered", "pending", "confirmed"] {
        let r = order_status(app, &admin, &id, bad).await;
        assert_error(&r, 409, "invalid_transition");
    }
    let r = order_status(app, &admin, &id, "shipped").await;
    assert_invalid_field(&r, "status");
    let r = app
        .patch(
            &format!("/api/v1/orders/{id}/status"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_invalid_field(&r, "status");
    let r = order_status(app, &admin, "ord_doesnotexist", "preparing").await;
    assert_error(&r, 404, "not_found");

    let mut last = Value::Null;
    for step in ["preparing", "out_for_delivery", "delivered"] {
        let r = order_status(app, &admin, &id, step).await;
        assert_eq!(r.status, 200, "{step}: {}", r.text);
        assert_eq!(r.body["status"], step);
        last = r.body;
    }
    assert!(last["delivered_at"].is_string(), "{last}");
    let history: Vec<&str> = last["status_history"]
        .as_array()
        .map(|a| a.iter().filter_map(|h| h["status"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        history,
        vec!["confirmed", "preparing", "out_for_delivery", "delivered"]
    );
    for bad in ["delivered", "cancelled", "preparing"] {
        let r = order_status(app, &admin, &id, bad).await;
        assert_error(&r, 409, "invalid_transition");
    }
    let r = cancel_order(app, &c.token, &id).await;
    assert_error(&r, 409, "invalid_transition");
    // Stock stays sold.
    assert_eq!(stock_of(app, &product).await, 49);

    // Roles: customers cannot PATCH; no token is 401.
    let r = order_status(app, &c.token, &id, "preparing").await;
    assert_error(&r, 403, "forbidden");
    let r = app
        .patch(
            &format!("/api/v1/orders/{id}/status"),
            None,
            json!({"status": "preparing"}),
        )
        .await;
    assert_error(&r, 401, "unauthorized");

    // An online order goes pending → confirmed via PATCH too.
    add_to_cart(app, &c.token, &product, 1).await;
    let online = place(app, &c, &address, "online").await;
    let r = order_status(app, &admin, &online, "confirmed").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "confirmed");
});

backend_test!(cancelling_gives_the_stock_back, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 10).await;
    let (c, address) = shopper(app, &product, 3).await;
    let id = place(app, &c, &address, "cod").await;
    assert_eq!(stock_of(app, &product).await, 7);

    let r = app
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&c.token),
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(r.body["payment_status"], "cod");
    let last = r.body["status_history"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["status"], "cancelled");
    stock_becomes(app, &product, 10).await;

    // Twice is an invalid transition and the stock is not released again.
    let r = cancel_order(app, &c.token, &id).await;
    assert_error(&r, 409, "invalid_transition");
    assert_eq!(stock_of(app, &product).await, 10);

    // An empty body is fine; a non-JSON body is not; a wrong reason type is 400.
    add_to_cart(app, &c.token, &product, 2).await;
    let id2 = place(app, &c, &address, "online").await;
    let r = app
        .raw(
            "POST",
            &format!("/api/v1/orders/{id2}/cancel"),
            Some(&c.token),
            Some("text/plain"),
            b"please".to_vec(),
        )
        .await;
    assert_error(&r, 415, "unsupported_media_type");
    let r = app
        .post(
            &format!("/api/v1/orders/{id2}/cancel"),
            Some(&c.token),
            json!({"reason": 5}),
        )
        .await;
    assert_invalid_field(&r, "reason");
    let r = app
        .raw(
            "POST",
            &format!("/api/v1/orders/{id2}/cancel"),
            Some(&c.token),
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "cancelled");
    stock_becomes(app, &product, 10).await;

    // The admin cancels a preparing order through PATCH: stock goes back too.
    add_to_cart(app, &c.token, &product, 4).await;
    let id3 = place(app, &c, &address, "cod").await;
    assert_eq!(stock_of(app, &product).await, 6);
    let r = order_status(app, &admin, &id3, "preparing").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = order_status(app, &admin, &id3, "cancelled").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "cancelled");
    stock_becomes(app, &product, 10).await;

    // The admin may cancel any customer's order through /cancel.
    add_to_cart(app, &c.token, &product, 1).await;
    let id4 = place(app, &c, &address, "cod").await;
    let r = cancel_order(app, &admin, &id4).await;
    assert_eq!(r.status, 200, "{}", r.text);
    stock_becomes(app, &product, 10).await;

    // Out for delivery cannot be cancelled.
    add_to_cart(app, &c.token, &product, 1).await;
    let id5 = place(app, &c, &address, "cod").await;
    for step in ["preparing", "out_for_delivery"] {
        let r = order_status(app, &admin, &id5, step).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = cancel_order(app, &c.token, &id5).await;
    assert_error(&r, 409, "invalid_transition");
    assert_eq!(stock_of(app, &product).await, 9);
    let r = app
        .post(&format!("/api/v1/orders/{id5}/cancel"), None, json!({}))
        .await;
    assert_error(&r, 401, "unauthorized");
});

backend_test!(admin_lists_every_order, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 50).await;
    let (a, a_addr) = shopper(app, &product, 1).await;
    let (b, b_addr) = shopper(app, &product, 1).await;
    let ida = place(app, &a, &a_addr, "cod").await;
    let idb = place(app, &b, &b_addr, "online").await;

    let r = app.get("/api/v1/admin/orders", Some(&admin)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["total"], 2, "{}", r.text);
    assert_eq!(r.body["items"][0]["id"], idb.as_str());
    assert_eq!(r.body["items"][1]["id"], ida.as_str());
    let r = app
        .get("/api/v1/admin/orders?status=confirmed", Some(&admin))
        .await;
    assert_eq!(r.body["total"], 1, "{}", r.text);
    assert_eq!(r.body["items"][0]["id"], ida.as_str());
    let r = app
        .get("/api/v1/admin/orders?page_size=1&page=2", Some(&admin))
        .await;
    assert_eq!(r.body["items"][0]["id"], ida.as_str());
    assert_eq!(r.body["page_size"], 1);
    let r = app
        .get("/api/v1/admin/orders?status=lost", Some(&admin))
        .await;
    assert_invalid_field(&r, "status");
    let r = app
        .get("/api/v1/admin/orders?page_size=101", Some(&admin))
        .await;
    assert_invalid_field(&r, "page_size");

    let r = app.get("/api/v1/admin/orders", Some(&a.token)).await;
    assert_error(&r, 403, "forbidden");
    let r = app.get("/api/v1/admin/orders", None).await;
    assert_error(&r, 401, "unauthorized");
    let r = app.get("/api/v1/orders", None).await;
    assert_error(&r, 401, "unauthorized");
    let r = checkout(app, &admin, &a_addr, "cod").await;
    assert_error(&r, 403, "forbidden");
    let r = app
        .post(
            "/api/v1/orders",
            None,
            json!({"address_id": a_addr, "payment_method": "cod"}),
        )
        .await;
    assert_error(&r, 401, "unauthorized");
});

// The production pool size (config/kirana.toml): with the harness's 64 slots, idle warm
// instances of the other plugins exhaust the pool and 20 concurrent checkouts (each
// holding an orders instance plus one callee) get 503s from the host.
backend_test!(
    concurrent_checkouts_never_oversell,
    "[runtime]\npool_instances = 256",
    |app| {
        let admin = app.admin_token().await;
        let product = new_product(app, &admin, 1000, 5).await;
        let mut shoppers = Vec::new();
        for _ in 0..20 {
            shoppers.push(shopper(app, &product, 1).await);
        }
        let answers = futures::future::join_all(
            shoppers
                .iter()
                .map(|(c, address)| checkout(app, &c.token, address, "cod")),
        )
        .await;
        let created = answers.iter().filter(|r| r.status == 201).count();
        let short: Vec<&Resp> = answers.iter().filter(|r| r.status != 201).collect();
        assert_eq!(
            created,
            5,
            "{:?}",
            answers.iter().map(|r| &r.text).collect::<Vec<_>>()
        );
        assert_eq!(short.len(), 15);
        for r in short {
            assert_error(r, 409, "insufficient_stock");
            assert_eq!(r.body["error"]["details"]["items"], json!([product]));
        }
        assert_eq!(stock_of(app, &product).await, 0);
        let r = app.get("/api/v1/admin/orders", Some(&admin)).await;
        assert_eq!(r.body["total"], 5, "{}", r.text);
    }
);

backend_test!(
    unpaid_online_orders_are_cancelled,
    "[orders]\npayment_timeout_seconds = 2\neta_minutes = 45\ndelivery_fee = 3000",
    |app| {
        let admin = app.admin_token().await;
        let product = new_product(app, &admin, 1000, 10).await;
        let (c, address) = shopper(app, &product, 2).await;
        let online = checkout(app, &c.token, &address, "online").await;
        assert_eq!(online.status, 201, "{}", online.text);
        assert_eq!(online.body["delivery_fee"], 3000);
        let eta = ts(&online.body["estimated_delivery_at"]) - ts(&online.body["created_at"]);
        assert_eq!(eta.whole_minutes(), 45);
        add_to_cart(app, &c.token, &product, 1).await;
        let cod = place(app, &c, &address, "cod").await;
        assert_eq!(stock_of(app, &product).await, 7);
        // An online order paid in time is not cancelled by its timeout.
        add_to_cart(app, &c.token, &product, 1).await;
        let paid = place(app, &c, &address, "online").await;
        let (status, body) = internal(
            app,
            "POST",
            "/internal/orders/{id}/payment-status",
            &paid,
            Some(json!({"payment_status": "paid"})),
        )
        .await;
        assert_eq!(status, 200, "{body}");

        let id = online.body["id"].as_str().unwrap_or_default().to_string();
        let cancelled = app
            .eventually(10, || async {
                let r = app
                    .get(&format!("/api/v1/orders/{id}"), Some(&c.token))
                    .await;
                (r.body["status"] == "cancelled").then_some(r.body)
            })
            .await
            .expect("the unpaid online order is cancelled");
        let history: Vec<&str> = cancelled["status_history"]
            .as_array()
            .map(|a| a.iter().filter_map(|h| h["status"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(history, vec!["pending", "cancelled"]);
        assert_eq!(cancelled["payment_status"], "awaiting");
        // Both timeouts were due at about the same time; wait for the second's work.
        settled(app).await;
        stock_becomes(app, &product, 8).await;
        let r = app
            .get(&format!("/api/v1/orders/{paid}"), Some(&c.token))
            .await;
        assert_eq!(r.body["status"], "confirmed", "{}", r.text);
        assert_eq!(r.body["payment_status"], "paid");
        // The COD order is untouched.
        let r = app
            .get(&format!("/api/v1/orders/{cod}"), Some(&c.token))
            .await;
        assert_eq!(r.body["status"], "confirmed");
    }
);

/// Calls one of the orders plugin's internal routes; `route` has an `{id}` parameter.
async fn internal(
    app: &TestApp,
    method: &str,
    route: &str,
    id: &str,
    body: Option<Value>,
) -> (u16, Value) {
    call_internal(app, "orders", method, route, &[("id", id)], body).await
}

/// Every event the orders plugin published so far about `order_id`, as (topic, payload).
async fn events_of(app: &TestApp, order_id: &str) -> Vec<(String, Value)> {
    events_from(app, "orders")
        .await
        .into_iter()
        .filter(|(_, p)| p["order_id"] == order_id)
        .collect()
}

fn topics(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(t, _)| t.as_str()).collect()
}

backend_test!(events_describe_every_change, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1500, 10).await;
    let (c, address) = shopper(app, &product, 2).await;
    let id = place(app, &c, &address, "cod").await;
    let r = order_status(app, &admin, &id, "preparing").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&c.token),
            json!({"reason": "too slow"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let events = events_of(app, &id).await;
    let mut names = topics(&events);
    names.sort();
    assert_eq!(
        names,
        vec![
            "order.cancelled",
            "order.created",
            "order.status_changed",
            "order.status_changed"
        ]
    );
    let created = &events
        .iter()
        .find(|(t, _)| t == "order.created")
        .expect("created")
        .1;
    assert_eq!(created["user_id"], c.user_id.as_str());
    assert_eq!(created["status"], "confirmed");
    assert_eq!(created["payment_method"], "cod");
    assert_eq!(created["payment_status"], "cod");
    assert_eq!(created["total"], 5500);
    assert_eq!(created["items"][0]["product_id"], product.as_str());
    assert_eq!(created["items"][0]["quantity"], 2);
    assert_eq!(created["items"][0]["unit_price"], 1500);
    assert_eq!(created["items"][0]["line_total"], 3000);
    assert!(created["items"][0]["name"].is_string());
    assert!(created["created_at"].is_string());
    let changes: Vec<(Value, Value)> = events
        .iter()
        .filter(|(t, _)| t == "order.status_changed")
        .map(|(_, p)| (p["from"].clone(), p["to"].clone()))
        .collect();
    assert!(changes.contains(&(json!("confirmed"), json!("preparing"))));
    assert!(changes.contains(&(json!("preparing"), json!("cancelled"))));
    let cancelled = &events
        .iter()
        .find(|(t, _)| t == "order.cancelled")
        .expect("cancelled")
        .1;
    assert_eq!(cancelled["user_id"], c.user_id.as_str());
    assert_eq!(cancelled["payment_status"], "cod");
    assert_eq!(cancelled["total"], 5500);
    assert_eq!(cancelled["reason"], "too slow");

    // A failed checkout publishes nothing.
    relay(app).await;
    let before = events_from(app, "orders").await.len();
    let r = checkout(app, &c.token, &address, "cod").await;
    assert_error(&r, 400, "cart_empty");
    relay(app).await;
    let after = events_from(app, "orders").await.len();
    assert_eq!(before, after);
});

backend_test!(internal_routes_for_payments_and_delivery, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 10).await;
    let (c, address) = shopper(app, &product, 2).await;
    let online = place(app, &c, &address, "online").await;

    let (status, body) = internal(app, "GET", "/internal/orders/{id}", &online, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], online.as_str());
    let (status, body) = internal(app, "GET", "/internal/orders/{id}", "ord_nope", None).await;
    assert_eq!(status, 404, "{body}");

    // Payment: paid confirms a pending order; a repeat is harmless.
    let route = "/internal/orders/{id}/payment-status";
    let (status, body) = internal(
        app,
        "POST",
        route,
        &online,
        Some(json!({"payment_status": "bogus"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("validation_failed")),
        "{body}"
    );
    let (status, body) = internal(
        app,
        "POST",
        route,
        &online,
        Some(json!({"payment_status": "refunded"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("invalid_transition")),
        "{body}"
    );
    let (status, body) = internal(
        app,
        "POST",
        route,
        &online,
        Some(json!({"payment_status": "paid"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "confirmed");
    assert_eq!(body["payment_status"], "paid");
    let history: Vec<&str> = body["status_history"]
        .as_array()
        .map(|a| a.iter().filter_map(|h| h["status"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(history, vec!["pending", "confirmed"]);
    let (status, body) = internal(
        app,
        "POST",
        route,
        &online,
        Some(json!({"payment_status": "paid"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "confirmed");
    let (status, _) = internal(
        app,
        "POST",
        route,
        "ord_nope",
        Some(json!({"payment_status": "paid"})),
    )
    .await;
    assert_eq!(status, 404);

    // Cancelling a paid order tells payments to refund it in full.
    let r = cancel_order(app, &c.token, &online).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["payment_status"], "paid");
    let events = events_of(app, &online).await;
    let cancelled = &events
        .iter()
        .find(|(t, _)| t == "order.cancelled")
        .expect("order.cancelled")
        .1;
    assert_eq!(cancelled["payment_status"], "paid");
    assert_eq!(cancelled["total"], 4500);
    let (status, body) = internal(
        app,
        "POST",
        route,
        &online,
        Some(json!({"payment_status": "refunded"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payment_status"], "refunded");
    assert_eq!(body["status"], "cancelled");

    // A COD order has no online payment.
    add_to_cart(app, &c.token, &product, 1).await;
    let cod = place(app, &c, &address, "cod").await;
    let (status, body) = internal(
        app,
        "POST",
        route,
        &cod,
        Some(json!({"payment_status": "paid"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");

    // Delivery: the assigned agent may read the order; moves through the state machine.
    let Agent {
        token: agent,
        user_id: agent_id,
        ..
    } = new_agent(app, &admin).await;
    let path = format!("/api/v1/orders/{cod}");
    assert_eq!(app.get(&path, Some(&agent)).await.status, 404);
    let (status, body) = internal(
        app,
        "PUT",
        "/internal/orders/{id}/agent",
        &cod,
        Some(json!({"agent_user_id": agent_id})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r = app.get(&path, Some(&agent)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], cod.as_str());

    let status_route = "/internal/orders/{id}/status";
    let (status, body) = internal(
        app,
        "POST",
        status_route,
        &cod,
        Some(json!({"status": "delivered"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("invalid_transition")),
        "{body}"
    );
    let (status, body) = internal(
        app,
        "POST",
        status_route,
        &cod,
        Some(json!({"status": "warp"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    for step in ["preparing", "out_for_delivery", "delivered"] {
        let (status, body) = internal(
            app,
            "POST",
            status_route,
            &cod,
            Some(json!({"status": step})),
        )
        .await;
        assert_eq!(status, 200, "{step}: {body}");
        assert_eq!(body["status"], step);
    }
    let (status, _) = internal(
        app,
        "POST",
        status_route,
        "ord_nope",
        Some(json!({"status": "preparing"})),
    )
    .await;
    assert_eq!(status, 404);

    let (status, body) = internal(
        app,
        "PUT",
        "/internal/orders/{id}/agent",
        &cod,
        Some(json!({"agent_user_id": null})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.get(&path, Some(&agent)).await.status, 404);
    let (status, _) = internal(
        app,
        "PUT",
        "/internal/orders/{id}/agent",
        "ord_nope",
        Some(json!({"agent_user_id": null})),
    )
    .await;
    assert_eq!(status, 404);
});

/// `kirana_instantiations_total` of `plugin` from /metrics.
async fn instantiations(app: &TestApp, plugin: &str) -> u64 {
    let text = app.get("/metrics", None).await.text;
    let prefix = format!("kirana_instantiations_total{{plugin=\"{plugin}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

// A checkout commits a transaction in orders; the instance that ran it goes back to the
// warm pool (a committed transaction is no longer open) and serves the next checkout.
backend_test!(an_instance_that_committed_a_transaction_is_reused, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 10).await;
    let (c, address) = shopper(app, &product, 1).await;
    place(app, &c, &address, "cod").await;
    let after_first = instantiations(app, "orders").await;
    assert!(after_first >= 1);
    add_to_cart(app, &c.token, &product, 1).await;
    place(app, &c, &address, "cod").await;
    assert_eq!(
        instantiations(app, "orders").await,
        after_first,
        "the second checkout ran on the warm instance"
    );
});

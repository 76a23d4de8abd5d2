//! The `cart` plugin over HTTP: every route's success and failure cases, live catalog
//! prices and stock, the delivery-fee rule, isolation between users and access rules.

use crate::helpers::*;
use crate::shop::*;

const FORGED: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c3JfeCIsInJvbGUiOiJjdXN0b21lciJ9.c2lnbmF0dXJl";

/// Runs `statements` straight in `plugin`'s own database, behind its back (its caches
/// are left alone). `ids` are the ids spliced into them, checked to be plain.
async fn behind_the_back(app: &TestApp, plugin: &str, ids: &[&str], statements: &[String]) {
    let plain = |s: &&str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    assert!(
        ids.iter().all(plain),
        "ids spliced into SQL must be plain: {ids:?}"
    );
    let db =
        kirana::storage::open_plugin(&app.app().platform.config, plugin, &app.app().platform.db)
            .await
            .unwrap_or_else(|e| panic!("{plugin}'s database: {e}"));
    for statement in statements {
        kirana::capabilities::sql::execute_raw(&db, statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    db.close().await;
}

/// Moves the last change of `user_id`'s cart `days` into the past, straight in the
/// plugin's own database, so expiry can be tested without waiting a week.
async fn age_cart(app: &TestApp, user_id: &str, days: i64) {
    let micros = days * 86_400 * 1_000_000;
    behind_the_back(
        app,
        "cart",
        &[user_id],
        &[format!(
            "UPDATE carts SET updated_us = updated_us - {micros} WHERE user_id = '{user_id}'"
        )],
    )
    .await;
    forget_cached_cart(app, user_id).await;
}

/// A change made behind the plugin's back must also drop the cart's cached read
/// (`kirana_sdk::cache::Revisioned`), as every change through the plugin replaces it.
async fn forget_cached_cart(app: &TestApp, user_id: &str) {
    app.app()
        .platform
        .kv
        .delete("cart", &format!("rcache:carts:{user_id}"))
        .await
        .expect("dropping the cart's cached read");
}

/// Sets a line's quantity straight in the cart's database, leaving its cache alone.
async fn quantity_behind_the_back(app: &TestApp, user_id: &str, product_id: &str, q: i64) {
    behind_the_back(
        app,
        "cart",
        &[user_id, product_id],
        &[format!(
            "UPDATE cart_items SET quantity = {q} \
             WHERE user_id = '{user_id}' AND product_id = '{product_id}'"
        )],
    )
    .await;
}

async fn add(app: &TestApp, token: &str, product_id: &str, quantity: i64) -> Resp {
    app.post(
        "/api/v1/cart/items",
        Some(token),
        json!({"product_id": product_id, "quantity": quantity}),
    )
    .await
}

async fn set(app: &TestApp, token: &str, product_id: &str, quantity: serde_json::Value) -> Resp {
    app.put(
        &format!("/api/v1/cart/items/{product_id}"),
        Some(token),
        json!({ "quantity": quantity }),
    )
    .await
}

/// The product as the admin's writable fields, for a full `PUT` with some changes.
async fn put_product(app: &TestApp, admin: &str, id: &str, changes: serde_json::Value) {
    let current = app.get(&format!("/api/v1/products/{id}"), None).await;
    assert_eq!(current.status, 200, "{}", current.text);
    let mut body = json!({});
    for key in [
        "sku",
        "name",
        "description",
        "category_id",
        "brand",
        "unit",
        "price",
        "mrp",
        "stock",
        "image_url",
    ] {
        body[key] = current.body[key].clone();
    }
    if let (Some(b), Some(c)) = (body.as_object_mut(), changes.as_object()) {
        for (k, v) in c {
            b.insert(k.clone(), v.clone());
        }
    }
    let r = app
        .put(&format!("/api/v1/products/{id}"), Some(admin), body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn set_stock(app: &TestApp, admin: &str, id: &str, stock: i64) {
    let r = app
        .patch(
            &format!("/api/v1/products/{id}/stock"),
            Some(admin),
            json!({ "set": stock }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

backend_test!(empty_cart_has_the_full_shape, |app| {
    let c = app.customer().await;
    let body = cart(app, &c.token).await;
    assert_eq!(
        body,
        json!({
            "items": [], "item_count": 0, "subtotal": 0, "delivery_fee": 0, "total": 0,
            "currency": "INR", "free_delivery_threshold": 19900, "updated_at": null
        })
    );
});

backend_test!(adding_creates_then_merges_a_line, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let id = new_product(app, &admin, 4500, 50).await;

    let r = add(app, &c.token, &id, 2).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let item = &r.body["items"][0];
    assert_eq!(item["product_id"], id.as_str());
    assert!(item["name"]
        .as_str()
        .is_some_and(|n| n.starts_with("Order test dal")));
    assert_eq!(item["unit"], "1 kg");
    assert_eq!(item["image_url"], "https://img.example/dal.jpg");
    assert_eq!(item["unit_price"], 4500);
    assert_eq!(item["mrp"], 5000);
    assert_eq!(item["quantity"], 2);
    assert_eq!(item["line_total"], 9000);
    assert_eq!(item["in_stock"], true);
    assert_eq!(r.body["currency"], "INR");
    assert!(r.body["updated_at"].is_string(), "{}", r.text);

    let r = add(app, &c.token, &id, 3).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
    assert_eq!(r.body["items"][0]["quantity"], 5);
    assert_eq!(r.body["items"][0]["line_total"], 22500);
    assert_eq!(r.body["item_count"], 5);
    assert_eq!(r.body["subtotal"], 22500);

    // The read agrees with the write's answer.
    assert_eq!(cart(app, &c.token).await, r.body);
});

backend_test!(lines_keep_the_order_they_were_added_in, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let a = new_product(app, &admin, 1000, 50).await;
    let b = new_product(app, &admin, 2000, 50).await;
    let d = new_product(app, &admin, 3000, 50).await;
    for id in [&b, &d, &a] {
        assert_eq!(add(app, &c.token, id, 1).await.status, 200);
    }
    assert_eq!(add(app, &c.token, &d, 1).await.status, 200);
    let body = cart(app, &c.token).await;
    let ids: Vec<_> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["product_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [b, d, a]);
    assert_eq!(body["item_count"], 4);
    assert_eq!(body["subtotal"], 2000 + 2 * 3000 + 1000);
});

backend_test!(adding_an_unknown_product_is_404, |app| {
    let c = app.customer().await;
    let r = add(app, &c.token, "prd_does_not_exist", 1).await;
    assert_error(&r, 404, "not_found");
    assert_eq!(cart(app, &c.token).await["items"], json!([]));
});

backend_test!(adding_an_inactive_product_is_404, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let id = new_product(app, &admin, 1500, 50).await;
    let r = app
        .delete(&format!("/api/v1/products/{id}"), Some(&admin))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_error(&add(app, &c.token, &id, 1).await, 404, "not_found");
});

backend_test!(a_deactivated_product_leaves_the_cart, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let keep = new_product(app, &admin, 1500, 50).await;
    let gone = new_product(app, &admin, 2500, 50).await;
    assert_eq!(add(app, &c.token, &keep, 1).await.status, 200);
    assert_eq!(add(app, &c.token, &gone, 2).await.status, 200);
    let r = app
        .delete(&format!("/api/v1/products/{gone}"), Some(&admin))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);

    let body = cart(app, &c.token).await;
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["items"][0]["product_id"], keep.as_str());
    assert_eq!(body["item_count"], 1);
    assert_eq!(body["subtotal"], 1500);
    // The dropped line is gone for good, so it cannot be changed any more.
    assert_error(&set(app, &c.token, &gone, json!(1)).await, 404, "not_found");
    let r = app
        .delete(&format!("/api/v1/cart/items/{gone}"), Some(&c.token))
        .await;
    assert_error(&r, 404, "not_found");
});

backend_test!(bad_quantities_and_fields_are_400, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let id = new_product(app, &admin, 1500, 50).await;
    for q in [
        json!(0),
        json!(21),
        json!(-1),
        json!("2"),
        json!(2.5),
        json!(2.0),
        json!(null),
        json!(1e30),
    ] {
        let r = app
            .post(
                "/api/v1/cart/items",
                Some(&c.token),
                json!({"product_id": id, "quantity": q}),
            )
            .await;
        assert_invalid_field(&r, "quantity");
    }
    let r = app
        .post(
            "/api/v1/cart/items",
            Some(&c.token),
            json!({"product_id": id}),
        )
        .await;
    assert_invalid_field(&r, "quantity");
    let r = app
        .post("/api/v1/cart/items", Some(&c.token), json!({"quantity": 1}))
        .await;
    assert_invalid_field(&r, "product_id");
    let r = app
        .post(
            "/api/v1/cart/items",
            Some(&c.token),
            json!({"product_id": 42, "quantity": 1}),
        )
        .await;
    assert_invalid_field(&r, "product_id");
    let r = app
        .post(
            "/api/v1/cart/items",
            Some(&c.token),
            json!({"product_id": "", "quantity": 1}),
        )
        .await;
    assert_invalid_field(&r, "product_id");
    // Nothing was added by any of them.
    assert_eq!(cart(app, &c.token).await["item_count"], 0);
});

backend_test!(a_merge_past_twenty_is_refused_not_clamped, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let id = new_product(app, &admin, 1000, 100).await;
    assert_eq!(add(app, &c.token, &id, 15).await.status, 200);
    assert_invalid_field(&add(app, &c.token, &id, 6).await, "quantity");
    assert_eq!(cart(app, &c.token).await["items"][0]["quantity"], 15);
    let r = add(app, &c.token, &id, 5).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"][0]["quantity"], 20);
    assert_invalid_field(&add(app, &c.token, &id, 1).await, "quantity");
    assert_eq!(cart(app, &c.token).await["items"][0]["quantity"], 20);
});

backend_test!(exceeding_stock_is_409_with_the_product, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let id = new_product(app, &admin, 1000, 50).await;
    set_stock(app, &admin, &id, 2).await;

    let r = add(app, &c.token, &id, 3).await;
    assert_error(&r, 409, "insufficient_stock");
    assert_eq!(r.body["error"]["details"], json!({ "items": [id] }));
    assert_eq!(cart(app, &c.token).await["items"], json!([]));

    assert_eq!(add(app, &c.token, &id, 2).await.status, 200);
    // Merging one more would pass the stock too.
    let r = add(app, &c.token, &id, 1).await;
    assert_error(&r, 409, "insufficient_stock");
    assert_eq!(r.body["error"]["details"]["items"], json!([id]));
    // So would setting the line above it.
    let r = set(app, &c.token, &id, json!(3)).await;
    assert_error(&r, 409, "insufficient_stock");
    assert_eq!(r.body["error"]["details"]["items"], json!([id]));
    assert_eq!(cart(app, &c.token).await["items"][0]["quantity"], 2);
});

backend_test!(a_line_above_current_stock_stays_flagged, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let id = new_product(app, &admin, 3000, 50).await;
    assert_eq!(add(app, &c.token, &id, 4).await.status, 200);
    set_stock(app, &admin, &id, 1).await;

    let body = cart(app, &c.token).await;
    assert_eq!(body["items"][0]["quantity"], 4);
    assert_eq!(body["items"][0]["in_stock"], false);
    assert_eq!(body["item_count"], 4);
    assert_eq!(body["subtotal"], 12000);
    // Lowering it to what is in stock clears the flag.
    let r = set(app, &c.token, &id, json!(1)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"][0]["in_stock"], true);
});

backend_test!(put_sets_the_quantity_and_zero_removes, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let id = new_product(app, &admin, 1200, 50).await;
    let other = new_product(app, &admin, 800, 50).await;
    assert_eq!(add(app, &c.token, &id, 2).await.status, 200);

    let r = set(app, &c.token, &id, json!(7)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"][0]["quantity"], 7);
    assert_eq!(r.body["items"][0]["line_total"], 8400);
    assert_eq!(r.body["item_count"], 7);

    for bad in [json!(21), json!(-1), json!("3"), json!(1.5), json!(null)] {
        assert_invalid_field(&set(app, &c.token, &id, bad).await, "quantity");
    }
    let r = app
        .put(
            &format!("/api/v1/cart/items/{id}"),
            Some(&c.token),
            json!({}),
        )
        .await;
    assert_invalid_field(&r, "quantity");

    // A product that exists but is not in the cart, and one that does not exist.
    assert_error(
        &set(app, &c.token, &other, json!(1)).await,
        404,
        "not_found",
    );
    assert_error(
        &set(app, &c.token, &other, json!(0)).await,
        404,
        "not_found",
    );
    assert_error(
        &set(app, &c.token, "prd_nope", json!(1)).await,
        404,
        "not_found",
    );

    let r = set(app, &c.token, &id, json!(0)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"], json!([]));
    assert_eq!(r.body["total"], 0);
    assert_eq!(r.body["delivery_fee"], 0);
    assert_error(&set(app, &c.token, &id, json!(0)).await, 404, "not_found");
});

backend_test!(delete_removes_one_line, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let a = new_product(app, &admin, 1000, 50).await;
    let b = new_product(app, &admin, 2000, 50).await;
    assert_eq!(add(app, &c.token, &a, 1).await.status, 200);
    assert_eq!(add(app, &c.token, &b, 2).await.status, 200);

    let r = app
        .delete(&format!("/api/v1/cart/items/{a}"), Some(&c.token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.body["items"][0]["product_id"], b.as_str());
    assert_eq!(r.body["subtotal"], 4000);

    let r = app
        .delete(&format!("/api/v1/cart/items/{a}"), Some(&c.token))
        .await;
    assert_error(&r, 404, "not_found");
    let r = app
        .delete("/api/v1/cart/items/prd_nope", Some(&c.token))
        .await;
    assert_error(&r, 404, "not_found");
});

backend_test!(delete_cart_empties_it, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let a = new_product(app, &admin, 1000, 50).await;
    assert_eq!(add(app, &c.token, &a, 3).await.status, 200);

    let r = app.delete("/api/v1/cart", Some(&c.token)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty(), "{}", r.text);
    let body = cart(app, &c.token).await;
    assert_eq!(body["items"], json!([]));
    assert_eq!(body["item_count"], 0);
    assert_eq!(body["subtotal"], 0);
    assert_eq!(body["delivery_fee"], 0);
    assert_eq!(body["total"], 0);
    // Emptying an empty cart is fine too.
    assert_eq!(app.delete("/api/v1/cart", Some(&c.token)).await.status, 204);
    // And the cart works again afterwards.
    assert_eq!(add(app, &c.token, &a, 1).await.status, 200);
});

backend_test!(delivery_fee_applies_below_the_threshold_only, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let just_below = new_product(app, &admin, 19899, 50).await;
    let at = new_product(app, &admin, 19900, 50).await;

    let r = add(app, &c.token, &just_below, 1).await;
    assert_eq!(r.body["subtotal"], 19899, "{}", r.text);
    assert_eq!(r.body["delivery_fee"], 2500);
    assert_eq!(r.body["total"], 19899 + 2500);
    assert_eq!(r.body["free_delivery_threshold"], 19900);

    let r = set(app, &c.token, &just_below, json!(0)).await;
    assert_eq!(r.body["delivery_fee"], 0, "{}", r.text);
    let r = add(app, &c.token, &at, 1).await;
    assert_eq!(r.body["subtotal"], 19900, "{}", r.text);
    assert_eq!(r.body["delivery_fee"], 0);
    assert_eq!(r.body["total"], 19900);
});

backend_test!(totals_of_seeded_products, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let list = app
        .get("/api/v1/products?sort=price_asc&page_size=100", None)
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    let items = list.body["items"].as_array().cloned().unwrap_or_default();
    let cheap = items
        .iter()
        .find(|p| p["price"].as_i64().is_some_and(|x| x > 0 && x * 2 < 19900))
        .expect("a seeded product under ₹99.50")
        .clone();
    let cheap_id = cheap["id"].as_str().unwrap().to_string();
    let cheap_price = cheap["price"].as_i64().unwrap();
    set_stock(app, &admin, &cheap_id, 100).await;

    let r = add(app, &c.token, &cheap_id, 2).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"][0]["unit_price"], cheap_price);
    assert_eq!(r.body["items"][0]["mrp"], cheap["mrp"]);
    assert_eq!(r.body["items"][0]["name"], cheap["name"]);
    assert_eq!(r.body["subtotal"], 2 * cheap_price);
    assert_eq!(r.body["delivery_fee"], 2500);
    assert_eq!(r.body["total"], 2 * cheap_price + 2500);

    // Enough of the priciest seeded product to pass the threshold.
    let list = app
        .get("/api/v1/products?sort=price_desc&page_size=1", None)
        .await;
    let dear = list.body["items"][0].clone();
    let dear_id = dear["id"].as_str().unwrap().to_string();
    let dear_price = dear["price"].as_i64().unwrap();
    let qty = ((19900 + dear_price - 1) / dear_price).clamp(1, 20);
    assert!(
        qty * dear_price >= 19900,
        "the seed has a product over ₹9.95"
    );
    set_stock(app, &admin, &dear_id, 100).await;
    let r = add(app, &c.token, &dear_id, qty).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let subtotal = 2 * cheap_price + qty * dear_price;
    assert_eq!(r.body["subtotal"], subtotal);
    assert_eq!(r.body["item_count"], 2 + qty);
    assert_eq!(r.body["delivery_fee"], 0);
    assert_eq!(r.body["total"], subtotal);
});

backend_test!(prices_follow_the_catalog, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let id = new_product(app, &admin, 5000, 50).await;
    assert_eq!(add(app, &c.token, &id, 2).await.body["subtotal"], 10000);

    put_product(
        app,
        &admin,
        &id,
        json!({"price": 6000, "mrp": 7000, "name": "Renamed atta"}),
    )
    .await;
    let body = cart(app, &c.token).await;
    assert_eq!(body["items"][0]["unit_price"], 6000);
    assert_eq!(body["items"][0]["mrp"], 7000);
    assert_eq!(body["items"][0]["name"], "Renamed atta");
    assert_eq!(body["items"][0]["line_total"], 12000);
    assert_eq!(body["subtotal"], 12000);
    assert_eq!(body["delivery_fee"], 2500);
    assert_eq!(body["total"], 14500);

    // A write answers with the live price as well.
    put_product(app, &admin, &id, json!({"price": 10000, "mrp": 10000})).await;
    let r = add(app, &c.token, &id, 1).await;
    assert_eq!(r.body["items"][0]["unit_price"], 10000, "{}", r.text);
    assert_eq!(r.body["subtotal"], 30000);
    assert_eq!(r.body["delivery_fee"], 0);
});

backend_test!(carts_are_per_user, |app| {
    let admin = app.admin_token().await;
    let asha = app.customer().await;
    let ravi = app.customer().await;
    let id = new_product(app, &admin, 1000, 50).await;
    add(app, &asha.token, &id, 3).await;

    assert_eq!(cart(app, &ravi.token).await["items"], json!([]));
    // Ravi cannot touch Asha's line: it is simply not in his cart.
    assert_error(
        &set(app, &ravi.token, &id, json!(1)).await,
        404,
        "not_found",
    );
    let r = app
        .delete(&format!("/api/v1/cart/items/{id}"), Some(&ravi.token))
        .await;
    assert_error(&r, 404, "not_found");
    assert_eq!(
        app.delete("/api/v1/cart", Some(&ravi.token)).await.status,
        204
    );
    add(app, &ravi.token, &id, 1).await;

    let body = cart(app, &asha.token).await;
    assert_eq!(body["items"][0]["quantity"], 3);
    assert_eq!(cart(app, &ravi.token).await["items"][0]["quantity"], 1);
});

backend_test!(only_customers_may_use_a_cart, |app| {
    let admin = app.admin_token().await;
    let r = app.get("/api/v1/cart", Some(&admin)).await;
    assert_error(&r, 403, "forbidden");
    let r = app
        .post(
            "/api/v1/cart/items",
            Some(&admin),
            json!({"product_id": "x", "quantity": 1}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    let r = app
        .put("/api/v1/cart/items/x", Some(&admin), json!({"quantity": 1}))
        .await;
    assert_error(&r, 403, "forbidden");
    assert_error(
        &app.delete("/api/v1/cart/items/x", Some(&admin)).await,
        403,
        "forbidden",
    );
    assert_error(
        &app.delete("/api/v1/cart", Some(&admin)).await,
        403,
        "forbidden",
    );
});

backend_test!(a_token_is_required, |app| {
    for token in [None, Some(FORGED), Some("not-a-token")] {
        assert_error(&app.get("/api/v1/cart", token).await, 401, "unauthorized");
        let r = app
            .post(
                "/api/v1/cart/items",
                token,
                json!({"product_id": "x", "quantity": 1}),
            )
            .await;
        assert_error(&r, 401, "unauthorized");
        let r = app
            .put("/api/v1/cart/items/x", token, json!({"quantity": 1}))
            .await;
        assert_error(&r, 401, "unauthorized");
        assert_error(
            &app.delete("/api/v1/cart/items/x", token).await,
            401,
            "unauthorized",
        );
        assert_error(
            &app.delete("/api/v1/cart", token).await,
            401,
            "unauthorized",
        );
    }
});

backend_test!(bodies_must_be_json_objects, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let id = new_product(app, &admin, 1000, 50).await;
    let good = format!(r#"{{"product_id":"{id}","quantity":1}}"#).into_bytes();
    let tok = Some(c.token.as_str());

    app.assert_rejects_bad_bodies("POST", "/api/v1/cart/items", tok, &good)
        .await;
    let r = app
        .raw(
            "POST",
            "/api/v1/cart/items",
            tok,
            Some("application/json"),
            b"[1]".to_vec(),
        )
        .await;
    assert_error(&r, 400, "validation_failed");
    let r = app
        .raw(
            "POST",
            "/api/v1/cart/items",
            tok,
            Some("application/json"),
            Vec::new(),
        )
        .await;
    assert_error(&r, 400, "invalid_json");

    let path = format!("/api/v1/cart/items/{id}");
    let r = app
        .raw(
            "PUT",
            &path,
            tok,
            Some("application/json"),
            b"{\"quantity\":".to_vec(),
        )
        .await;
    assert_error(&r, 400, "invalid_json");
    let r = app
        .raw("PUT", &path, tok, None, b"{\"quantity\":1}".to_vec())
        .await;
    assert_error(&r, 415, "unsupported_media_type");

    // charset parameters are still JSON.
    let r = app
        .raw(
            "POST",
            "/api/v1/cart/items",
            tok,
            Some("application/json; charset=utf-8"),
            good,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["item_count"], 1);
});

backend_test!(internal_routes_are_not_exposed, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    for token in [None, Some(c.token.as_str()), Some(admin.as_str())] {
        let r = app
            .get(&format!("/internal/carts/{}", c.user_id), token)
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        let r = app
            .delete(&format!("/internal/carts/{}", c.user_id), token)
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
    }
});

backend_test!(a_cart_expires_after_seven_days_without_change, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let id = new_product(app, &admin, 1000, 50).await;
    assert_eq!(add(app, &c.token, &id, 3).await.status, 200);

    // Six days old: still there (reading does not reset the clock).
    age_cart(app, &c.user_id, 6).await;
    let body = cart(app, &c.token).await;
    assert_eq!(body["items"][0]["quantity"], 3, "{body}");

    // Eight days without change: emptied when next read, like a never-used cart.
    age_cart(app, &c.user_id, 2).await;
    let body = cart(app, &c.token).await;
    assert_eq!(body["items"], json!([]), "{body}");
    assert_eq!(body["item_count"], 0);
    assert_eq!(body["total"], 0);
    assert_eq!(body["updated_at"], json!(null));
});

backend_test!(an_expired_cart_is_emptied_before_a_change, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let a = new_product(app, &admin, 1000, 50).await;
    let b = new_product(app, &admin, 2000, 50).await;
    assert_eq!(add(app, &c.token, &a, 15).await.status, 200);
    assert_eq!(add(app, &c.token, &b, 1).await.status, 200);
    age_cart(app, &c.user_id, 8).await;

    // Adding 10 more would pass 20 on the old line; the expired line is gone first.
    let r = add(app, &c.token, &a, 10).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
    assert_eq!(r.body["items"][0]["quantity"], 10);

    age_cart(app, &c.user_id, 8).await;
    assert_error(&set(app, &c.token, &a, json!(2)).await, 404, "not_found");
    assert_eq!(add(app, &c.token, &a, 1).await.status, 200);
    age_cart(app, &c.user_id, 8).await;
    let r = app
        .delete(&format!("/api/v1/cart/items/{a}"), Some(&c.token))
        .await;
    assert_error(&r, 404, "not_found");
});

/// The error `statement` gets in the cart's own database (`None`: it ran).
async fn cart_sql_error(app: &TestApp, statement: &str) -> Option<String> {
    let db =
        kirana::storage::open_plugin(&app.app().platform.config, "cart", &app.app().platform.db)
            .await
            .expect("the cart's database");
    let out = kirana::capabilities::sql::execute_raw(&db, statement).await;
    db.close().await;
    out.err().map(|e| format!("{e:#}"))
}

// SQLite carts written before the tables became `WITHOUT ROWID` are rebuilt at the
// next start with every cart, line, quantity, order and revision; later starts leave
// them alone. (PostgreSQL tables never had the option.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_cart_tables_made_with_rowids_are_rebuilt_with_their_rows() {
    let mut app = TestApp::spawn(Backend::Sqlite).await;
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let a = new_product(&app, &admin, 1000, 50).await;
    let b = new_product(&app, &admin, 2000, 50).await;
    for (id, n) in [(&b, 2), (&a, 1), (&b, 1)] {
        assert_eq!(add(&app, &c.token, id, n).await.status, 200);
    }
    let before = cart(&app, &c.token).await;
    let rowid = |table: &str| format!("SELECT rowid FROM {table} WHERE 0");
    for table in ["carts", "cart_items"] {
        let e = cart_sql_error(&app, &rowid(table)).await;
        assert!(
            e.is_some_and(|e| e.contains("rowid")),
            "{table} has a rowid"
        );
    }

    // The tables as the cart made them before: with rowids, the same rows.
    let old = |table: &str, columns: &str| {
        [
            format!("CREATE TABLE old_{table} AS SELECT * FROM {table}"),
            format!("DROP TABLE {table}"),
            format!("CREATE TABLE {table} ({columns})"),
            format!("INSERT INTO {table} SELECT * FROM old_{table}"),
            format!("DROP TABLE old_{table}"),
        ]
    };
    let mut statements = old(
        "carts",
        "user_id TEXT PRIMARY KEY, updated_at TEXT NOT NULL, updated_us BIGINT NOT NULL, \
         coupon_code TEXT, rev BIGINT NOT NULL DEFAULT 0",
    )
    .to_vec();
    statements.extend(old(
        "cart_items",
        "user_id TEXT NOT NULL, product_id TEXT NOT NULL, quantity BIGINT NOT NULL, \
         added_at TEXT NOT NULL, added_us BIGINT NOT NULL, PRIMARY KEY (user_id, product_id)",
    ));
    behind_the_back(&app, "cart", &[], &statements).await;
    for table in ["carts", "cart_items"] {
        assert_eq!(cart_sql_error(&app, &rowid(table)).await, None, "{table}");
    }

    app.restart().await;
    for table in ["carts", "cart_items"] {
        let e = cart_sql_error(&app, &rowid(table)).await;
        assert!(
            e.is_some_and(|e| e.contains("rowid")),
            "{table} kept its rowid"
        );
    }
    // Read from the rebuilt tables (a restart starts with no cached carts).
    assert_eq!(cart(&app, &c.token).await, before);
    let r = add(&app, &c.token, &a, 2).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let quantities: Vec<_> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["product_id"].as_str().unwrap_or("").to_string(),
                i["quantity"].clone(),
            )
        })
        .collect();
    assert_eq!(quantities, [(b.clone(), json!(3)), (a.clone(), json!(3))]);

    app.restart().await;
    assert_eq!(cart(&app, &c.token).await, r.body);
    app.stop().await;
}

backend_test!(forged_expired_and_unknown_session_tokens_are_401, |app| {
    let c = app.customer().await;
    let far = now_secs() + 3600;
    // The customer's live session: only the expiry is wrong in the expired token.
    let sessions = app.get("/api/v1/auth/sessions", Some(&c.token)).await;
    let sid = sessions.body["items"][0]["id"]
        .as_str()
        .expect("the customer's session id")
        .to_string();
    // The same claims with a future expiry are accepted: the expiry alone decides below.
    let fresh = app.sign(&c.user_id, "customer", &sid, far);
    assert_eq!(app.get("/api/v1/cart", Some(&fresh)).await.status, 200);
    let tokens = [
        // Right key, but a session the host never issued.
        app.sign(&c.user_id, "customer", "ses_unknown", far),
        // Right key, user and live session, but expired.
        app.sign(&c.user_id, "customer", &sid, now_secs() - 60),
    ];
    for token in &tokens {
        let r = app.get("/api/v1/cart", Some(token)).await;
        assert_error(&r, 401, "unauthorized");
        let r = add(app, token, "x", 1).await;
        assert_error(&r, 401, "unauthorized");
    }
});

backend_test!(
    fee_threshold_and_ttl_come_from_configuration,
    "[cart]\ndelivery_fee = 3000\nfree_delivery_threshold = 50000\ncart_ttl_days = 1",
    |app| {
        let admin = app.admin_token().await;
        let c = app.customer().await;
        assert_eq!(cart(app, &c.token).await["free_delivery_threshold"], 50000);
        let id = new_product(app, &admin, 19900, 50).await;

        let r = add(app, &c.token, &id, 2).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["subtotal"], 39800);
        assert_eq!(r.body["delivery_fee"], 3000);
        assert_eq!(r.body["total"], 42800);
        assert_eq!(r.body["free_delivery_threshold"], 50000);

        let r = add(app, &c.token, &id, 1).await;
        assert_eq!(r.body["subtotal"], 59700, "{}", r.text);
        assert_eq!(r.body["delivery_fee"], 0);

        // A one-day TTL: two days old is expired.
        age_cart(app, &c.user_id, 2).await;
        assert_eq!(cart(app, &c.token).await["items"], json!([]));
    }
);

backend_test!(concurrent_adds_never_lose_or_overshoot, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let plenty = new_product(app, &admin, 1000, 100).await;
    let scarce = new_product(app, &admin, 1000, 5).await;

    // A burst of single adds: every unit is counted, none twice.
    let burst = (0..8).map(|_| add(app, &c.token, &plenty, 1));
    let answers = futures::future::join_all(burst).await;
    for r in &answers {
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(cart(app, &c.token).await["items"][0]["quantity"], 8);

    // More adds than the line may hold: exactly up to 20 succeed, the rest are 400.
    let burst = (0..16).map(|_| add(app, &c.token, &plenty, 1));
    let answers = futures::future::join_all(burst).await;
    let ok = answers.iter().filter(|r| r.status == 200).count();
    for r in answers.iter().filter(|r| r.status != 200) {
        assert_invalid_field(r, "quantity");
    }
    assert_eq!(ok, 12);
    assert_eq!(cart(app, &c.token).await["items"][0]["quantity"], 20);

    // More adds than the stock: exactly the stock succeeds, the rest are 409.
    let burst = (0..8).map(|_| add(app, &c.token, &scarce, 1));
    let answers = futures::future::join_all(burst).await;
    let ok = answers.iter().filter(|r| r.status == 200).count();
    for r in answers.iter().filter(|r| r.status != 200) {
        assert_error(r, 409, "insufficient_stock");
    }
    assert_eq!(ok, 5);
    let body = cart(app, &c.token).await;
    assert_eq!(body["items"][1]["product_id"], scarce.as_str());
    assert_eq!(body["items"][1]["quantity"], 5);
    assert_eq!(body["item_count"], 25);
});

backend_test!(
    a_cart_says_the_catalog_is_down_and_works_again_after,
    |app| {
        let admin = app.admin_token().await;
        let product = new_product(app, &admin, 2500, 10).await;
        let c = app.customer().await;
        add_to_cart(app, &c.token, &product, 1).await;
        plugin_action(app, "catalog", "disable").await;
        // Without live prices a cart cannot be read or changed: 503, nothing half done.
        app.get("/api/v1/cart", Some(&c.token))
            .await
            .assert_error(503, "plugin_unavailable");
        add(app, &c.token, &product, 1)
            .await
            .assert_error(503, "plugin_unavailable");
        plugin_action(app, "catalog", "enable").await;
        let body = cart(app, &c.token).await;
        assert_eq!(
            body["items"][0]["quantity"], 1,
            "the refused add left the line as it was: {body}"
        );
    }
);

// ------------------------------------------- live prices through the catalog's cache

/// A catalog whose product cache keeps what it reads at once (no settle time) for an
/// hour: what a test then reads twice comes from the cache unless a write invalidated it.
const CACHING: &str = "[catalog]\nproduct_cache_settle_ms = 0\nproduct_cache_secs = 3600";

/// Changes a product's price straight in the catalog's database, behind the plugin's
/// back (no invalidation), so a test can tell a cached answer from a fresh one.
async fn price_behind_the_back(app: &TestApp, id: &str, price: i64) {
    behind_the_back(
        app,
        "catalog",
        &[id],
        &[format!(
            "UPDATE products SET price = {price}, mrp = {price} WHERE id = '{id}'"
        )],
    )
    .await;
}

/// Service calls from the cart to the catalog so far (every outcome).
async fn catalog_calls(app: &TestApp) -> f64 {
    metric(
        app,
        r#"kirana_service_calls_total{caller="cart",callee="catalog""#,
    )
    .await
}

fn unit_prices(body: &Value) -> Vec<i64> {
    body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["unit_price"].as_i64())
                .collect()
        })
        .unwrap_or_default()
}

backend_test!(adding_to_a_cart_with_lines_answers_the_whole_cart, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let a = new_product(app, &admin, 1000, 50).await;
    let b = new_product(app, &admin, 2500, 50).await;
    let d = new_product(app, &admin, 4000, 50).await;
    add_to_cart(app, &c.token, &a, 2).await;
    add_to_cart(app, &c.token, &b, 1).await;

    // A new line among others: every line is in the answer, priced, in order.
    let before = catalog_calls(app).await;
    let r = add(app, &c.token, &d, 3).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        catalog_calls(app).await - before,
        1.0,
        "one catalog call per add, whatever the cart holds"
    );
    assert_eq!(unit_prices(&r.body), [1000, 2500, 4000], "{}", r.text);
    assert_eq!(r.body["item_count"], 6);
    assert_eq!(r.body["subtotal"], 2000 + 2500 + 12000);
    assert_eq!(
        r.body["delivery_fee"], 2500,
        "below the free-delivery threshold"
    );
    assert_eq!(r.body["total"], 16500 + 2500);

    // More of a line in the middle: only its quantity moves, the totals follow.
    let r = add(app, &c.token, &b, 2).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let quantities: Vec<_> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["quantity"].as_i64().unwrap())
        .collect();
    assert_eq!(quantities, [2, 3, 3]);
    assert_eq!(r.body["items"][1]["line_total"], 7500);
    assert_eq!(r.body["subtotal"], 2000 + 7500 + 12000);
    assert_eq!(r.body["delivery_fee"], 0, "past the threshold");
    assert_eq!(r.body["total"], 21500);
    assert_eq!(
        cart(app, &c.token).await,
        r.body,
        "the read agrees with the add"
    );

    // A read makes one catalog call for all three lines.
    let before = catalog_calls(app).await;
    cart(app, &c.token).await;
    assert_eq!(catalog_calls(app).await - before, 1.0);

    // Removing a line answers the rest, priced.
    let r = app
        .delete(&format!("/api/v1/cart/items/{b}"), Some(&c.token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(unit_prices(&r.body), [1000, 4000], "{}", r.text);
    assert_eq!(r.body["subtotal"], 2000 + 12000);
    assert_eq!(cart(app, &c.token).await, r.body);
});

backend_test!(
    a_cached_product_gives_way_to_every_catalog_write,
    CACHING,
    |app| {
        let admin = app.admin_token().await;
        let c = app.customer().await;
        let id = new_product(app, &admin, 5000, 50).await;
        let other = new_product(app, &admin, 700, 50).await;
        add_to_cart(app, &c.token, &other, 1).await;
        add_to_cart(app, &c.token, &id, 2).await;

        // The cache is on: a change made behind the catalog's back is not seen (the cart's
        // summary and the page each have their entry, both filled before the change)...
        assert_eq!(unit_prices(&cart(app, &c.token).await), [700, 5000]);
        let page = app.get(&format!("/api/v1/products/{id}"), None).await;
        assert_eq!(page.body["price"], 5000, "{}", page.text);
        price_behind_the_back(app, &id, 4000).await;
        assert_eq!(unit_prices(&cart(app, &c.token).await), [700, 5000]);
        let page = app.get(&format!("/api/v1/products/{id}"), None).await;
        assert_eq!(page.body["price"], 5000, "{}", page.text);

        // ...but an admin's price change shows in the next add's answer, the next read
        // and the product page.
        put_product(app, &admin, &id, json!({"price": 6000, "mrp": 7000})).await;
        let r = add(app, &c.token, &id, 1).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(unit_prices(&r.body), [700, 6000], "{}", r.text);
        assert_eq!(r.body["subtotal"], 700 + 18000);
        assert_eq!(unit_prices(&cart(app, &c.token).await), [700, 6000]);
        let page = app.get(&format!("/api/v1/products/{id}"), None).await;
        assert_eq!(page.body["price"], 6000, "{}", page.text);
        assert_eq!(page.body["mrp"], 7000);

        // Out of stock: the line stays, flagged, in the next read.
        set_stock(app, &admin, &id, 1).await;
        let body = cart(app, &c.token).await;
        assert_eq!(body["items"][1]["in_stock"], false, "{body}");
        assert_eq!(body["items"][0]["in_stock"], true);
        let page = app.get(&format!("/api/v1/products/{id}"), None).await;
        assert_eq!(page.body["stock"], 1);
        // The stock the cart checks an add against is the live one too.
        set_stock(app, &admin, &other, 0).await;
        let r = add(app, &c.token, &other, 1).await;
        assert_error(&r, 409, "insufficient_stock");
        assert_eq!(r.body["error"]["details"]["items"], json!([other]));

        // Made inactive: the line leaves the cart and the page is 404.
        let r = app
            .delete(&format!("/api/v1/products/{id}"), Some(&admin))
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        let body = cart(app, &c.token).await;
        assert_eq!(body["items"].as_array().map(Vec::len), Some(1), "{body}");
        assert_eq!(body["items"][0]["product_id"], other.as_str());
        assert_eq!(body["items"][0]["in_stock"], false);
        assert_eq!(body["subtotal"], 700);
        app.get(&format!("/api/v1/products/{id}"), None)
            .await
            .assert_error(404, "not_found");
        assert_error(&add(app, &c.token, &id, 1).await, 404, "not_found");
    }
);

backend_test!(
    a_stock_hold_at_checkout_invalidates_cached_products,
    CACHING,
    |app| {
        let admin = app.admin_token().await;
        let id = new_product(app, &admin, 3000, 5).await;
        let (buyer, address) = shopper(app, &id, 2).await;
        // Cached with stock 5, by the page and by a cart read.
        let page = app.get(&format!("/api/v1/products/{id}"), None).await;
        assert_eq!(page.body["stock"], 5);
        let c = app.customer().await;
        add_to_cart(app, &c.token, &id, 4).await;
        assert_eq!(cart(app, &c.token).await["items"][0]["in_stock"], true);

        place(app, &buyer, &address, "cod").await;
        // The hold took 2: the page and the other cart see 3 at once.
        assert_eq!(stock_of(app, &id).await, 3);
        let body = cart(app, &c.token).await;
        assert_eq!(body["items"][0]["in_stock"], false, "{body}");
    }
);

backend_test!(
    reads_right_after_a_write_are_not_cached,
    "[catalog]\nproduct_cache_settle_ms = 3600000\nproduct_cache_secs = 3600",
    |app| {
        // Within the settle time after a write, whose commit a reader cannot see yet,
        // nothing read is kept: a change behind the back shows at once.
        let admin = app.admin_token().await;
        let id = new_product(app, &admin, 5000, 50).await;
        let c = app.customer().await;
        add_to_cart(app, &c.token, &id, 1).await;
        assert_eq!(unit_prices(&cart(app, &c.token).await), [5000]);
        price_behind_the_back(app, &id, 4200).await;
        assert_eq!(unit_prices(&cart(app, &c.token).await), [4200]);
        let page = app.get(&format!("/api/v1/products/{id}"), None).await;
        assert_eq!(page.body["price"], 4200, "{}", page.text);
        price_behind_the_back(app, &id, 4300).await;
        let page = app.get(&format!("/api/v1/products/{id}"), None).await;
        assert_eq!(page.body["price"], 4300, "{}", page.text);
        // Nor may a caller keep what it read: the lookup carries no stamp.
        let (status, body) = lookup(app, json!([id])).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("stamp").is_none(), "{body}");
        // And the cart did not keep its products: a change behind the back shows.
        price_behind_the_back(app, &id, 4400).await;
        let r = add(app, &c.token, &id, 1).await;
        assert_eq!(unit_prices(&r.body), [4400], "{}", r.text);
    }
);

/// Drops the catalog's cached entries (page and summary) of a product, so the next
/// lookup that asks for it reads the database.
async fn forget_cached_product(app: &TestApp, id: &str) {
    let kv = &app.app().platform.kv;
    let entries = kv
        .scan("catalog", "cache:listing:", 10_000)
        .await
        .expect("listing the catalog's cache");
    let ends = [format!("=summary:{id}"), format!("=product:{id}")];
    let mine: Vec<String> = entries
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| ends.iter().any(|end| key.ends_with(end.as_str())))
        .collect();
    assert!(!mine.is_empty(), "no cached entry of {id}");
    for key in mine {
        kv.delete("catalog", &key).await.expect("dropping an entry");
    }
}

backend_test!(
    an_add_asks_the_catalog_only_for_the_product_added_while_nothing_changed,
    CACHING,
    |app| {
        let admin = app.admin_token().await;
        let c = app.customer().await;
        let a = new_product(app, &admin, 5000, 50).await;
        let b = new_product(app, &admin, 700, 50).await;
        let d = new_product(app, &admin, 300, 50).await;
        add_to_cart(app, &c.token, &a, 1).await;
        // A's price changes where only a read of A would see it: behind the catalog's
        // back, with the catalog's cached entry gone.
        price_behind_the_back(app, &a, 4000).await;
        forget_cached_product(app, &a).await;

        // The add reads B alone: A is priced as the cart kept it, in the answer and in
        // the read after it.
        let before = catalog_calls(app).await;
        let r = add(app, &c.token, &b, 2).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(catalog_calls(app).await - before, 1.0);
        assert_eq!(unit_prices(&r.body), [5000, 700], "{}", r.text);
        assert_eq!(r.body["subtotal"], 5000 + 1400);
        assert_eq!(unit_prices(&cart(app, &c.token).await), [5000, 700]);

        // Any catalog write (here D's stock) may have changed what the cart kept: the
        // next read asks for every line again and sees A's price.
        set_stock(app, &admin, &d, 10).await;
        let body = cart(app, &c.token).await;
        assert_eq!(unit_prices(&body), [4000, 700], "{body}");
        let r = add(app, &c.token, &d, 1).await;
        assert_eq!(unit_prices(&r.body), [4000, 700, 300], "{}", r.text);
        assert_eq!(r.body["subtotal"], 4000 + 1400 + 300);
    }
);

// ------------------------------------------- the catalog's batch lookup the cart uses

/// `POST /internal/products/lookup` with this body, as the cart calls it.
async fn lookup_with(app: &TestApp, body: Value) -> (u16, Value) {
    call_internal(
        app,
        "catalog",
        "POST",
        "/internal/products/lookup",
        &[],
        Some(body),
    )
    .await
}

/// The lookup of these ids.
async fn lookup(app: &TestApp, ids: Value) -> (u16, Value) {
    lookup_with(app, json!({ "ids": ids })).await
}

fn looked_up_ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

backend_test!(the_batch_lookup_answers_known_ids_once_in_order, |app| {
    let admin = app.admin_token().await;
    let a = new_product(app, &admin, 1000, 5).await;
    let b = new_product(app, &admin, 2000, 5).await;
    let gone = new_product(app, &admin, 3000, 5).await;
    let r = app
        .delete(&format!("/api/v1/products/{gone}"), Some(&admin))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);

    // Twice: the second answer comes from the cache and must be the same.
    for _ in 0..2 {
        let (status, body) = lookup(app, json!([b, "prd_unknown", a, b, gone, a])).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(looked_up_ids(&body), [b.clone(), a.clone(), gone.clone()]);
        let items = body["items"].as_array().unwrap();
        assert_eq!(items[0]["price"], 2000);
        assert_eq!(items[1]["stock"], 5);
        assert_eq!(items[2]["is_active"], false, "inactive products are listed");
        // What a line needs of the product, as the product page has it, and no more.
        let page = app.get(&format!("/api/v1/products/{a}"), None).await;
        let fields = [
            "id",
            "name",
            "unit",
            "image_url",
            "price",
            "mrp",
            "stock",
            "is_active",
        ];
        let summary: serde_json::Map<String, Value> = fields
            .iter()
            .map(|f| (f.to_string(), page.body[*f].clone()))
            .collect();
        assert_eq!(items[1], Value::Object(summary));
    }
    let (status, body) = lookup(app, json!([])).await;
    assert_eq!((status, &body["items"]), (200, &json!([])), "{body}");
});

backend_test!(the_batch_lookup_refuses_bad_lists_with_400, |app| {
    let too_many: Vec<String> = (0..101).map(|i| format!("prd_{i}")).collect();
    let (status, body) = lookup(app, json!(too_many)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "validation_failed");
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "ids");
    let hundred: Vec<String> = (0..100).map(|i| format!("prd_{i}")).collect();
    let (status, body) = lookup(app, json!(hundred)).await;
    assert_eq!((status, &body["items"]), (200, &json!([])), "{body}");

    for bad in [json!("prd_1"), json!([1, "prd_1"]), json!(null)] {
        let (status, body) = lookup(app, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed", "{bad}");
    }
    let (status, body) = lookup_with(app, json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "ids");
});

backend_test!(the_batch_lookup_is_internal_only, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let id = new_product(app, &admin, 1000, 5).await;
    for token in [None, Some(c.token.as_str()), Some(admin.as_str())] {
        let r = app
            .post("/internal/products/lookup", token, json!({"ids": [id]}))
            .await;
        assert_error(&r, 404, "not_found");
    }
});

/// `POST /internal/products/lookup` with products kept from an earlier answer.
async fn lookup_known(app: &TestApp, ids: Value, stamp: &str, known: Value) -> Value {
    let (status, body) = lookup_with(
        app,
        json!({"ids": ids, "known": {"stamp": stamp, "ids": known}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

backend_test!(
    the_batch_lookup_answers_known_products_again_only_after_a_catalog_write,
    CACHING,
    |app| {
        let admin = app.admin_token().await;
        let a = new_product(app, &admin, 1000, 5).await;
        let b = new_product(app, &admin, 2000, 5).await;
        let d = new_product(app, &admin, 3000, 5).await;
        let (status, first) = lookup(app, json!([a])).await;
        assert_eq!(status, 200, "{first}");
        let stamp = first["stamp"].as_str().expect("a stamp").to_string();
        assert!(first.get("unchanged").is_none(), "{first}");

        // Nothing written since: only the ids asked for, under the same stamp.
        let body = lookup_known(app, json!([b]), &stamp, json!([a])).await;
        assert_eq!(looked_up_ids(&body), std::slice::from_ref(&b));
        assert_eq!(body["unchanged"], true, "{body}");
        assert_eq!(body["stamp"], stamp.as_str());
        let body = lookup_known(app, json!([]), &stamp, json!([a, b])).await;
        assert_eq!(
            body,
            json!({"items": [], "stamp": stamp, "unchanged": true})
        );

        // A stamp the catalog did not give, or too old, is never current.
        for bad in ["", "x", "1.2", "0.0.1", &format!("{stamp}.1")] {
            let body = lookup_known(app, json!([b]), bad, json!([a])).await;
            assert_eq!(looked_up_ids(&body), [b.clone(), a.clone()], "{bad}");
            assert!(body.get("unchanged").is_none(), "{bad}: {body}");
        }

        // After a catalog write every known product comes again, under a new stamp.
        set_stock(app, &admin, &d, 1).await;
        let body = lookup_known(app, json!([b]), &stamp, json!([a, b])).await;
        assert_eq!(looked_up_ids(&body), [b.clone(), a.clone()]);
        assert!(body.get("unchanged").is_none(), "{body}");
        let fresh = body["stamp"].as_str().expect("a new stamp");
        assert_ne!(fresh, stamp);
        let body = lookup_known(app, json!([]), fresh, json!([a])).await;
        assert_eq!(body["unchanged"], true, "{body}");

        // 100 ids in all.
        let many: Vec<String> = (0..60).map(|i| format!("prd_{i}")).collect();
        let known: Vec<String> = (60..101).map(|i| format!("prd_{i}")).collect();
        let (status, body) = lookup_with(
            app,
            json!({"ids": many, "known": {"stamp": fresh, "ids": known}}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["details"]["fields"][0]["field"], "known.ids");
    }
);

backend_test!(every_cart_route_says_the_catalog_is_down, |app| {
    let admin = app.admin_token().await;
    let a = new_product(app, &admin, 2500, 10).await;
    let b = new_product(app, &admin, 1500, 10).await;
    let c = app.customer().await;
    add_to_cart(app, &c.token, &a, 1).await;
    add_to_cart(app, &c.token, &b, 1).await;
    let empty = app.customer().await;
    plugin_action(app, "catalog", "disable").await;

    add(app, &c.token, &a, 1)
        .await
        .assert_error(503, "plugin_unavailable");
    set(app, &c.token, &a, json!(3))
        .await
        .assert_error(503, "plugin_unavailable");
    app.delete(&format!("/api/v1/cart/items/{b}"), Some(&c.token))
        .await
        .assert_error(503, "plugin_unavailable");
    // An empty cart needs no prices; emptying one needs none either.
    assert_eq!(cart(app, &empty.token).await["items"], json!([]));
    let r = app.delete("/api/v1/cart", Some(&empty.token)).await;
    assert_eq!(r.status, 204, "{}", r.text);

    plugin_action(app, "catalog", "enable").await;
    let body = cart(app, &c.token).await;
    let quantities: Vec<_> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["quantity"].as_i64().unwrap())
        .collect();
    assert_eq!(quantities, [1, 1], "nothing refused was half done: {body}");
});

// A cart read is served from KV until the cart changes: a change made behind the
// plugin's back stays unseen (so the read really is cached), and every change through
// the API (add, set, delete, empty, checkout's empty) is seen by the next read.
backend_test!(a_cached_cart_is_replaced_by_every_change, |app| {
    let admin = app.admin_token().await;
    let c = app.customer().await;
    let a = new_product(app, &admin, 1000, 50).await;
    let b = new_product(app, &admin, 2000, 50).await;
    assert_eq!(lines_of(&cart(app, &c.token).await), vec![]);
    assert_eq!(add(app, &c.token, &a, 2).await.status, 200);
    assert_eq!(lines_of(&cart(app, &c.token).await), vec![(a.clone(), 2)]);

    // Cached: the database says 7, the read still says 2.
    quantity_behind_the_back(app, &c.user_id, &a, 7).await;
    assert_eq!(
        lines_of(&cart(app, &c.token).await),
        vec![(a.clone(), 2)],
        "the second read came from the cache"
    );
    // A change through the API is made on the database's 7 and read back at once.
    let r = add(app, &c.token, &a, 1).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(lines_of(&r.body), vec![(a.clone(), 8)]);
    assert_eq!(lines_of(&cart(app, &c.token).await), vec![(a.clone(), 8)]);

    assert_eq!(add(app, &c.token, &b, 1).await.status, 200);
    assert_eq!(
        lines_of(&cart(app, &c.token).await),
        vec![(a.clone(), 8), (b.clone(), 1)]
    );
    assert_eq!(set(app, &c.token, &a, json!(3)).await.status, 200);
    assert_eq!(
        lines_of(&cart(app, &c.token).await),
        vec![(a.clone(), 3), (b.clone(), 1)]
    );
    let r = app
        .delete(&format!("/api/v1/cart/items/{a}"), Some(&c.token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(lines_of(&cart(app, &c.token).await), vec![(b.clone(), 1)]);
    let r = app.delete("/api/v1/cart", Some(&c.token)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(lines_of(&cart(app, &c.token).await), vec![]);

    // Checkout empties the cart through the internal route.
    assert_eq!(add(app, &c.token, &a, 1).await.status, 200);
    assert_eq!(lines_of(&cart(app, &c.token).await), vec![(a.clone(), 1)]);
    let address = new_address(app, &c.token).await;
    let r = checkout(app, &c.token, &address, "cod").await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(lines_of(&cart(app, &c.token).await), vec![]);
});

/// Adds a line straight in the cart's database as a change through the plugin would
/// (bumping the cart's revision) but without the cache hearing of it: a change whose
/// write after commit was lost.
async fn change_the_cache_missed(app: &TestApp, user_id: &str, product_id: &str) {
    behind_the_back(
        app,
        "cart",
        &[user_id, product_id],
        &[
            format!("UPDATE carts SET rev = rev + 1 WHERE user_id = '{user_id}'"),
            format!(
                "INSERT INTO cart_items (user_id, product_id, quantity, added_at, added_us) \
                 VALUES ('{user_id}', '{product_id}', 4, '2026-01-01T00:00:00Z', 1) \
                 ON CONFLICT (user_id, product_id) DO NOTHING"
            ),
        ],
    )
    .await;
}

backend_test!(
    a_change_started_from_a_cached_cart_the_database_moved_past_reads_it_again,
    |app| {
        let admin = app.admin_token().await;
        let c = app.customer().await;
        let a = new_product(app, &admin, 1000, 50).await;
        let b = new_product(app, &admin, 2000, 50).await;
        let d = new_product(app, &admin, 3000, 50).await;
        assert_eq!(add(app, &c.token, &a, 1).await.status, 200);
        // The add recorded the cart it left: B, added behind its back, is not seen.
        change_the_cache_missed(app, &c.user_id, &b).await;
        assert_eq!(lines_of(&cart(app, &c.token).await), vec![(a.clone(), 1)]);
        // The next change starts from that cached cart, finds from its revision that the
        // database moved on, and answers (and records) the cart as it now is.
        let r = add(app, &c.token, &d, 2).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let all = vec![(b.clone(), 4), (a.clone(), 1), (d.clone(), 2)];
        assert_eq!(
            lines_of(&r.body),
            all,
            "the add answered a cart the database had left"
        );
        assert_eq!(r.body["item_count"], 7);
        assert_eq!(lines_of(&cart(app, &c.token).await), all);
        // The same for a set.
        // A's line exists: only the bump counts.
        change_the_cache_missed(app, &c.user_id, &a).await;
        let r = set(app, &c.token, &d, json!(3)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let all = vec![(b.clone(), 4), (a.clone(), 1), (d.clone(), 3)];
        assert_eq!(lines_of(&r.body), all);
        assert_eq!(lines_of(&cart(app, &c.token).await), all);
    }
);

/// A cart answer's lines as (product id, quantity), in order.
fn lines_of(body: &Value) -> Vec<(String, i64)> {
    body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    (
                        i["product_id"].as_str().unwrap_or("").to_string(),
                        i["quantity"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

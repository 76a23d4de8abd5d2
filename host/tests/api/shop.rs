//! Shop helpers shared by the domain tests: products, carts, addresses, orders,
//! delivery agents, sandbox signatures, and calls to plugins' internal routes.

use crate::helpers::*;

/// A fresh active product with a known price and stock.
pub async fn new_product(app: &TestApp, admin: &str, price: i64, stock: i64) -> String {
    let (category_id, _) = app.new_category(admin).await;
    let sku = app.unique("ORD-SKU");
    let r = app
        .post(
            "/api/v1/products",
            Some(admin),
            json!({
                "sku": sku, "name": format!("Order test dal {sku}"),
                "description": "Toor dal", "category_id": category_id,
                "brand": "Test Mills", "unit": "1 kg", "price": price, "mrp": price + 500,
                "stock": stock, "image_url": "https://img.example/dal.jpg"
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().expect("product id").to_string()
}

pub async fn stock_of(app: &TestApp, product_id: &str) -> i64 {
    let r = app
        .get(&format!("/api/v1/products/{product_id}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["stock"].as_i64().expect("stock")
}

/// Waits until `product_id` has `want` units (stock comes back through events, after
/// the answer) and asserts it.
pub async fn stock_becomes(app: &TestApp, product_id: &str, want: i64) {
    let reached = app
        .eventually(15, || async {
            (stock_of(app, product_id).await == want).then_some(())
        })
        .await;
    assert!(
        reached.is_some(),
        "stock of {product_id} stayed {} instead of {want}",
        stock_of(app, product_id).await
    );
}

pub async fn add_to_cart(app: &TestApp, token: &str, product_id: &str, quantity: i64) {
    let r = app
        .post(
            "/api/v1/cart/items",
            Some(token),
            json!({"product_id": product_id, "quantity": quantity}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

pub async fn cart(app: &TestApp, token: &str) -> Value {
    let r = app.get("/api/v1/cart", Some(token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

pub async fn new_address(app: &TestApp, token: &str) -> String {
    let r = app
        .post(
            "/api/v1/addresses",
            Some(token),
            json!({"label": "Home", "line1": "12 MG Road", "city": "Bengaluru",
                   "pincode": "560001", "lat": 12.97, "lon": 77.59}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().expect("address id").to_string()
}

pub async fn checkout(app: &TestApp, token: &str, address_id: &str, method: &str) -> Resp {
    app.post(
        "/api/v1/orders",
        Some(token),
        json!({"address_id": address_id, "payment_method": method}),
    )
    .await
}

/// A customer with an address and `quantity` of `product_id` in the cart.
pub async fn shopper(app: &TestApp, product_id: &str, quantity: i64) -> (Customer, String) {
    let c = app.customer().await;
    let address = new_address(app, &c.token).await;
    add_to_cart(app, &c.token, product_id, quantity).await;
    (c, address)
}

/// A placed COD order's id.
pub async fn place(app: &TestApp, c: &Customer, address: &str, method: &str) -> String {
    let r = checkout(app, &c.token, address, method).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().expect("order id").to_string()
}

/// `POST /api/v1/orders/{id}/cancel` with no reason, as `token`.
pub async fn cancel_order(app: &TestApp, token: &str, id: &str) -> Resp {
    app.post(
        &format!("/api/v1/orders/{id}/cancel"),
        Some(token),
        json!({}),
    )
    .await
}

/// `PATCH /api/v1/orders/{id}/status` to `status` as `token` (an admin's, or not).
pub async fn order_status(app: &TestApp, token: &str, id: &str, status: &str) -> Resp {
    app.patch(
        &format!("/api/v1/orders/{id}/status"),
        Some(token),
        json!({ "status": status }),
    )
    .await
}

/// An admin moves order `id` to `status` (asserting 200).
pub async fn move_order(app: &TestApp, admin: &str, id: &str, status: &str) {
    let r = order_status(app, admin, id, status).await;
    assert_eq!(r.status, 200, "{id} → {status}: {}", r.text);
}

/// `POST /api/v1/orders` with an `Idempotency-Key`.
pub async fn checkout_with_key(app: &TestApp, token: &str, key: &str, body: Value) -> Resp {
    let body = serde_json::to_vec(&body).expect("json");
    post_with_headers(
        app,
        "/api/v1/orders",
        Some(token),
        &[("idempotency-key", key)],
        body,
    )
    .await
}

/// `POST path` with extra headers (e.g. `Idempotency-Key`, `X-Razorpay-Signature`).
pub async fn post_with_headers(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Resp {
    let mut rb = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    into_resp(rb.send().await.expect("request sent")).await
}

/// Lowercase hex HMAC-SHA256 of `message` under `secret`, as the sandbox provider signs.
pub fn hmac_hex(secret: &str, message: &[u8]) -> String {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// The sandbox payment provider's key secret (config/development.toml, which every
/// test host runs with).
pub const SANDBOX_KEY_SECRET: &str = "kirana_sandbox_key_secret";

/// The signature the sandbox provider returns for payment `payment_id` of its order
/// `provider_order_id`: HMAC-SHA256 of `provider_order_id|payment_id` under the key
/// secret, as `POST /api/v1/payments/verify` checks it.
pub fn payment_signature(provider_order_id: &str, payment_id: &str) -> String {
    hmac_hex(
        SANDBOX_KEY_SECRET,
        format!("{provider_order_id}|{payment_id}").as_bytes(),
    )
}

/// A delivery agent made by the admin.
#[derive(Debug, Clone)]
pub struct Agent {
    pub token: String,
    pub user_id: String,
    pub phone: String,
}

/// Creates a `delivery_agent` user through `POST /api/v1/admin/users` and logs it in.
pub async fn new_agent(app: &TestApp, admin: &str) -> Agent {
    let email = format!("{}@agents.example.in", app.unique("agent"));
    let password = "agent-password-1";
    let r = app
        .post(
            "/api/v1/admin/users",
            Some(admin),
            json!({"email": email, "password": password, "name": "Test Agent",
                   "role": "delivery_agent"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let user_id = r.body["id"].as_str().expect("user id").to_string();
    let phone = unique_phone();
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.body["access_token"].as_str().expect("token").to_string();
    let r = app
        .patch("/api/v1/auth/me", Some(&token), json!({"phone": phone}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    Agent {
        token,
        user_id,
        phone,
    }
}

/// `PUT /api/v1/delivery/me/status` as `agent`.
pub async fn set_status(app: &TestApp, agent: &Agent, status: &str) -> Resp {
    app.put(
        "/api/v1/delivery/me/status",
        Some(&agent.token),
        json!({ "status": status }),
    )
    .await
}

/// The agent goes available (asserting 200); the agent's profile.
pub async fn available(app: &TestApp, agent: &Agent) -> Value {
    let r = set_status(app, agent, "available").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// The agent reports its position (asserting 204).
pub async fn locate(app: &TestApp, agent: &Agent, at: (f64, f64)) {
    let r = app
        .post(
            "/api/v1/delivery/me/location",
            Some(&agent.token),
            json!({"lat": at.0, "lon": at.1}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
}

/// Calls a plugin's internal route the way another plugin would (through the host's
/// runtime; the gateway never exposes them) and commits the events of a successful
/// call like the gateway does. `route` is the pattern, `params` fill it.
pub async fn call_internal(
    app: &TestApp,
    plugin: &str,
    method: &str,
    route: &str,
    params: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    use kirana::bindings::wit;
    use kirana::core::CallCtx;
    let platform = app.app().platform.clone();
    let loaded = platform.registry.get(plugin).expect("the plugin is loaded");
    let mut path = route.to_string();
    for (k, v) in params {
        path = path.replace(&format!("{{{k}}}"), v);
    }
    let request = wit::Request {
        method: method.to_string(),
        path,
        route: route.to_string(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        query: String::new(),
        headers: vec![("content-type".to_string(), "application/json".to_string())],
        body: body
            .map(|b| serde_json::to_vec(&b).expect("json"))
            .unwrap_or_default(),
        caller: None,
        request_id: "req_internal_test".to_string(),
    };
    let call = CallCtx::new("req_internal_test".to_string(), None, 1, loaded.ctx.timeout);
    // The gateway's own path: run, then commit what the answer commits.
    let resp = platform
        .handle(&loaded, call, request)
        .await
        .expect("the internal call runs and commits");
    let body = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    (resp.status, body)
}

/// Every event `source` published so far, oldest first, as (topic, payload).
pub async fn events_from(app: &TestApp, source: &str) -> Vec<(String, Value)> {
    relay(app).await;
    let rows =
        sqlx::query("SELECT topic, payload FROM events WHERE source = $1 ORDER BY created_at, id")
            .bind(source)
            .fetch_all(&app.app().platform.db.pool)
            .await
            .expect("reading the outbox");
    // A row that does not decode fails the test: dropping it would let a "no such
    // event" check pass on an event that is there.
    rows.iter()
        .map(|r| {
            use sqlx::Row;
            let topic: String = r.try_get(0).expect("an event's topic");
            let payload: String = r.try_get(1).expect("an event's payload");
            let payload: Value = serde_json::from_str(&payload)
                .unwrap_or_else(|e| panic!("event {topic} has a payload that is not JSON: {e}"));
            (topic, payload)
        })
        .collect()
}

/// The body of the newest password-reset email to `email`, from the admin outbox (the
/// welcome email may arrive around it, so the newest message carrying `token=` is it).
pub async fn reset_email(app: &TestApp, email: &str) -> String {
    let admin = app.admin_token().await;
    app.eventually(5, || async {
        let r = app
            .get(
                &format!("/api/v1/admin/outbox?channel=email&to={email}"),
                Some(&admin),
            )
            .await;
        r.body["items"].as_array().and_then(|items| {
            items
                .iter()
                .filter_map(|m| m["body"].as_str())
                .find(|b| b.contains("token="))
                .map(str::to_string)
        })
    })
    .await
    .expect("a reset email")
}

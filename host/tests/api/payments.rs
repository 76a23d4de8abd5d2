//! The `payments` plugin over HTTP: intents and their refusals, checkout signature
//! verification, signed and replay-safe webhooks, failed payments, admin refunds,
//! the automatic refund of a cancelled paid order, captures that arrive after the
//! order was cancelled or paid, Idempotency-Key replays and listing rules; Razorpay's
//! own webhook bodies (captured, failed, refund.processed) signed as Razorpay signs them,
//! checked with the official `razorpay` Python SDK; and that unset secrets mean
//! "payments are not configured", never a signature under an empty key.

use crate::helpers::*;
use crate::shop::*;

/// The sandbox secrets of the development configuration (config/development.toml,
/// which test hosts run with).
const KEY_SECRET: &str = SANDBOX_KEY_SECRET;
const WEBHOOK_SECRET: &str = "kirana_sandbox_webhook_secret";

/// A customer with a placed online order of one product at `price` (≥ 19900: no fee).
async fn online_order(app: &TestApp, admin: &str, price: i64) -> (Customer, String) {
    let product = new_product(app, admin, price, 10).await;
    let (c, address) = shopper(app, &product, 1).await;
    let order_id = place(app, &c, &address, "online").await;
    (c, order_id)
}

async fn intent(app: &TestApp, token: &str, order_id: &str) -> Resp {
    app.post(
        "/api/v1/payments/intents",
        Some(token),
        json!({ "order_id": order_id }),
    )
    .await
}

/// An intent that must succeed; its body.
async fn new_intent(app: &TestApp, token: &str, order_id: &str) -> Value {
    let r = intent(app, token, order_id).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

async fn verify_with(app: &TestApp, token: &str, order_id: &str, pid: &str, sig: &str) -> Resp {
    app.post(
        "/api/v1/payments/verify",
        Some(token),
        json!({"order_id": order_id, "provider_payment_id": pid, "signature": sig}),
    )
    .await
}

/// Verifies `intent` with a correct signature for `pid`.
async fn verify(app: &TestApp, token: &str, intent: &Value, pid: &str) -> Resp {
    let sig = payment_signature(str_of(&intent["provider_order_id"]), pid);
    verify_with(app, token, str_of(&intent["order_id"]), pid, &sig).await
}

async fn webhook_signed(app: &TestApp, body: &[u8], sig: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = sig
        .map(|s| vec![("x-razorpay-signature", s)])
        .unwrap_or_default();
    post_with_headers(
        app,
        "/api/v1/payments/webhook",
        None,
        &headers,
        body.to_vec(),
    )
    .await
}

/// A correctly signed webhook.
async fn webhook(app: &TestApp, event: &str, provider_order_id: &str, pid: &str) -> Resp {
    let body = serde_json::to_vec(&json!({
        "event": event,
        "payload": {"provider_order_id": provider_order_id, "provider_payment_id": pid}
    }))
    .expect("json");
    let sig = hmac_hex(WEBHOOK_SECRET, &body);
    webhook_signed(app, &body, Some(&sig)).await
}

async fn order(app: &TestApp, token: &str, id: &str) -> Value {
    let r = app.get(&format!("/api/v1/orders/{id}"), Some(token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

async fn payments_of(app: &TestApp, token: &str, order_id: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/api/v1/payments?order_id={order_id}"),
            Some(token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

async fn payment(app: &TestApp, admin: &str, order_id: &str, id: &str) -> Value {
    payments_of(app, admin, order_id)
        .await
        .into_iter()
        .find(|p| p["id"] == id)
        .expect("the payment is listed")
}

async fn refund(app: &TestApp, token: &str, id: &str, body: Value) -> Resp {
    app.post(&format!("/api/v1/payments/{id}/refund"), Some(token), body)
        .await
}

fn str_of(v: &Value) -> &str {
    v.as_str().expect("a string")
}

/// Delivers `payload` on `topic` once more as a new event from `source` (what an
/// at-least-once bus may do) and waits until the payments plugin handled it.
async fn redeliver(app: &TestApp, source: &str, topic: &str, payload: &Value) {
    let id = format!("evt_test_{}", app.unique("redeliver"));
    inject_event(app, &id, source, topic, payload, 0).await;
    let done = app
        .eventually(5, || async {
            let r = app
                .get("/admin/events?status=done", Some(OPERATOR_TOKEN))
                .await;
            r.body["items"]
                .as_array()?
                .iter()
                .any(|d| d["id"] == id.as_str() && d["subscriber"] == "payments")
                .then_some(())
        })
        .await;
    assert!(
        done.is_some(),
        "payments did not handle the redelivered {topic}"
    );
}

/// The payments plugin's events on `topic` about payment `id`.
async fn events(app: &TestApp, topic: &str, id: &str) -> Vec<Value> {
    events_from(app, "payments")
        .await
        .into_iter()
        .filter(|(t, p)| t == topic && p["payment_id"] == id)
        .map(|(_, p)| p)
        .collect()
}

backend_test!(
    intents_open_only_for_the_customers_pending_online_order,
    |app| {
        let admin = app.admin_token().await;
        let (c, order_id) = online_order(app, &admin, 25000).await;

        let r = intent(app, &c.token, &order_id).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let p = &r.body;
        assert!(str_of(&p["id"]).starts_with("pmt_"), "{}", r.text);
        assert_eq!(p["order_id"], order_id.as_str());
        assert_eq!(p["user_id"], c.user_id.as_str());
        assert_eq!(p["amount"], 25000);
        assert_eq!(p["currency"], "INR");
        assert_eq!(p["provider"], "sandbox");
        assert!(!str_of(&p["provider_order_id"]).is_empty());
        assert_eq!(p["key_id"], "rzp_test_kirana");
        assert_eq!(p["status"], "created");
        assert!(p["provider_payment_id"].is_null());
        assert_eq!(p["refunded_amount"], 0);
        assert!(p["captured_at"].is_null());
        assert!(p["created_at"].is_string() && p["updated_at"].is_string());

        // Another customer's order is unknown to them; an unknown order is 404.
        let other = app.customer().await;
        intent(app, &other.token, &order_id)
            .await
            .assert_error(404, "not_found");
        intent(app, &c.token, "ord_nope")
            .await
            .assert_error(404, "not_found");
        intent(app, &c.token, "../../etc")
            .await
            .assert_error(404, "not_found");
        // Bad bodies.
        app.post("/api/v1/payments/intents", Some(&c.token), json!({}))
            .await
            .assert_invalid_field("order_id");
        app.post(
            "/api/v1/payments/intents",
            Some(&c.token),
            json!({"order_id": 12}),
        )
        .await
        .assert_invalid_field("order_id");
        app.raw(
            "POST",
            "/api/v1/payments/intents",
            Some(&c.token),
            Some("application/json"),
            b"{nope".to_vec(),
        )
        .await
        .assert_error(400, "invalid_json");
        // Customers only.
        intent(app, &admin, &order_id)
            .await
            .assert_error(403, "forbidden");
        app.post(
            "/api/v1/payments/intents",
            None,
            json!({ "order_id": order_id }),
        )
        .await
        .assert_error(401, "unauthorized");

        // A COD order has no online payment.
        let product = new_product(app, &admin, 5000, 10).await;
        let (cod_customer, address) = shopper(app, &product, 1).await;
        let cod = place(app, &cod_customer, &address, "cod").await;
        intent(app, &cod_customer.token, &cod)
            .await
            .assert_error(409, "conflict");

        // Once paid, no new intent.
        let r = verify(app, &c.token, p, "pay_intent_test").await;
        assert_eq!(r.status, 200, "{}", r.text);
        intent(app, &c.token, &order_id)
            .await
            .assert_error(409, "conflict");

        // A cancelled order neither.
        let (c2, order2) = online_order(app, &admin, 25000).await;
        let r = cancel_order(app, &c2.token, &order2).await;
        assert_eq!(r.status, 200, "{}", r.text);
        intent(app, &c2.token, &order2)
            .await
            .assert_error(409, "conflict");
    }
);

backend_test!(verify_checks_the_signature_and_confirms_the_order, |app| {
    let admin = app.admin_token().await;
    let (c, order_id) = online_order(app, &admin, 30000).await;
    let p = new_intent(app, &c.token, &order_id).await;
    let id = str_of(&p["id"]).to_string();
    let provider_order_id = str_of(&p["provider_order_id"]).to_string();

    // Missing fields are all listed.
    let r = app
        .post("/api/v1/payments/verify", Some(&c.token), json!({}))
        .await;
    r.assert_error(400, "validation_failed");
    let mut fields = r.fields();
    fields.sort();
    assert_eq!(
        fields,
        vec!["order_id", "provider_payment_id", "signature"],
        "{}",
        r.text
    );

    // Wrong signatures: another secret, another payment id, not hex at all.
    let wrong = hmac_hex(
        "not-the-secret",
        format!("{provider_order_id}|pay_1").as_bytes(),
    );
    verify_with(app, &c.token, &order_id, "pay_1", &wrong)
        .await
        .assert_error(400, "invalid_signature");
    let for_other_pid = payment_signature(&provider_order_id, "pay_2");
    verify_with(app, &c.token, &order_id, "pay_1", &for_other_pid)
        .await
        .assert_error(400, "invalid_signature");
    verify_with(app, &c.token, &order_id, "pay_1", "xyz-not-hex")
        .await
        .assert_error(400, "invalid_signature");
    // Nothing changed.
    let o = order(app, &c.token, &order_id).await;
    assert_eq!(
        (o["status"].clone(), o["payment_status"].clone()),
        (json!("pending"), json!("awaiting"))
    );
    assert_eq!(
        payment(app, &admin, &order_id, &id).await["status"],
        "created"
    );
    assert!(events(app, "payment.captured", &id).await.is_empty());

    // Another customer cannot verify this order, even with a good signature.
    let other = app.customer().await;
    verify(app, &other.token, &p, "pay_ok_1")
        .await
        .assert_error(404, "not_found");

    // The right signature captures and confirms the order.
    let r = verify(app, &c.token, &p, "pay_ok_1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["status"], "captured");
    assert_eq!(r.body["provider_payment_id"], "pay_ok_1");
    assert!(r.body["captured_at"].is_string(), "{}", r.text);
    assert_eq!(r.body["amount"], 30000);
    let o = order(app, &c.token, &order_id).await;
    assert_eq!(o["status"], "confirmed");
    assert_eq!(o["payment_status"], "paid");

    // Verifying again is idempotent: the same payment, no second event.
    let again = verify(app, &c.token, &p, "pay_ok_1").await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["status"], "captured");
    assert_eq!(again.body["captured_at"], r.body["captured_at"]);
    // A different (validly signed) payment id for the captured intent is a conflict.
    verify(app, &c.token, &p, "pay_ok_2")
        .await
        .assert_error(409, "conflict");

    let captured = events(app, "payment.captured", &id).await;
    assert_eq!(captured.len(), 1, "{captured:?}");
    let e = &captured[0];
    assert_eq!(e["order_id"], order_id.as_str());
    assert_eq!(e["user_id"], c.user_id.as_str());
    assert_eq!(e["amount"], 30000);
    assert_eq!(e["currency"], "INR");
    assert_eq!(e["provider_payment_id"], "pay_ok_1");
    assert!(e["at"].is_string());
});

backend_test!(webhooks_are_signed_and_replays_change_nothing, |app| {
    let admin = app.admin_token().await;
    let (c, order_id) = online_order(app, &admin, 20000).await;
    let p = new_intent(app, &c.token, &order_id).await;
    let id = str_of(&p["id"]).to_string();
    let provider_order_id = str_of(&p["provider_order_id"]).to_string();
    let body = serde_json::to_vec(&json!({
        "event": "payment.captured",
        "payload": {"provider_order_id": provider_order_id, "provider_payment_id": "pay_wh_1"}
    }))
    .expect("json");

    // Missing, wrong and non-hex signatures are refused before anything happens.
    webhook_signed(app, &body, None)
        .await
        .assert_error(400, "invalid_signature");
    let wrong = hmac_hex(KEY_SECRET, &body);
    webhook_signed(app, &body, Some(&wrong))
        .await
        .assert_error(400, "invalid_signature");
    webhook_signed(app, &body, Some("zz"))
        .await
        .assert_error(400, "invalid_signature");
    // A signature over another body does not fit this one.
    let mut tampered = body.clone();
    tampered.push(b' ');
    webhook_signed(app, &tampered, Some(&hmac_hex(WEBHOOK_SECRET, &body)))
        .await
        .assert_error(400, "invalid_signature");
    assert_eq!(
        order(app, &c.token, &order_id).await["payment_status"],
        "awaiting"
    );

    // A good one captures and the order is paid.
    let sig = hmac_hex(WEBHOOK_SECRET, &body);
    let r = webhook_signed(app, &body, Some(&sig)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "processed");
    let o = order(app, &c.token, &order_id).await;
    assert_eq!(o["status"], "confirmed");
    assert_eq!(o["payment_status"], "paid");
    let after = payment(app, &admin, &order_id, &id).await;
    assert_eq!(after["status"], "captured");
    assert_eq!(after["provider_payment_id"], "pay_wh_1");

    // The same delivery again: a duplicate, nothing changes.
    let r = webhook_signed(app, &body, Some(&sig)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "duplicate");
    // The same event with another layout is recognised by state.
    let r = webhook(app, "payment.captured", &provider_order_id, "pay_wh_1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let o2 = order(app, &c.token, &order_id).await;
    assert_eq!(o2["updated_at"], o["updated_at"]);
    assert_eq!(o2["status_history"], o["status_history"]);
    assert_eq!(payment(app, &admin, &order_id, &id).await, after);
    assert_eq!(events(app, "payment.captured", &id).await.len(), 1);
    // The checkout's own verification of the same payment agrees.
    let r = verify(app, &c.token, &p, "pay_wh_1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(events(app, "payment.captured", &id).await.len(), 1);
    // A later failure notice cannot undo the capture.
    let r = webhook(app, "payment.failed", &provider_order_id, "pay_wh_other").await;
    assert_eq!(r.body["status"], "ignored", "{}", r.text);
    assert_eq!(
        payment(app, &admin, &order_id, &id).await["status"],
        "captured"
    );

    // Unknown provider orders and other events are acknowledged and ignored.
    let r = webhook(app, "payment.captured", "order_unknown", "pay_x").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "ignored");
    let other =
        serde_json::to_vec(&json!({"event": "refund.created", "payload": {}})).expect("json");
    let r = webhook_signed(app, &other, Some(&hmac_hex(WEBHOOK_SECRET, &other))).await;
    assert_eq!(r.body["status"], "ignored", "{}", r.text);
    // refund.processed is acted on, so it must say which refund.
    let refund_body =
        serde_json::to_vec(&json!({"event": "refund.processed", "payload": {}})).expect("json");
    webhook_signed(
        app,
        &refund_body,
        Some(&hmac_hex(WEBHOOK_SECRET, &refund_body)),
    )
    .await
    .assert_invalid_field("payload.refund.entity.id");
    // A correctly signed but malformed body is 400.
    let bad = br#"{"event":"payment.captured","payload":{}}"#;
    let r = webhook_signed(app, bad, Some(&hmac_hex(WEBHOOK_SECRET, bad))).await;
    r.assert_invalid_field("payload.provider_order_id");
    let junk = b"{not json";
    webhook_signed(app, junk, Some(&hmac_hex(WEBHOOK_SECRET, junk)))
        .await
        .assert_error(400, "invalid_json");
});

backend_test!(a_failed_payment_leaves_the_order_pending, |app| {
    let admin = app.admin_token().await;
    let (c, order_id) = online_order(app, &admin, 20000).await;
    let p = new_intent(app, &c.token, &order_id).await;
    let id = str_of(&p["id"]).to_string();
    let provider_order_id = str_of(&p["provider_order_id"]).to_string();

    let r = webhook(app, "payment.failed", &provider_order_id, "pay_declined").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "processed");
    let failed = payment(app, &admin, &order_id, &id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["provider_payment_id"], "pay_declined");
    assert!(failed["captured_at"].is_null());
    let o = order(app, &c.token, &order_id).await;
    assert_eq!(o["status"], "pending");
    assert_eq!(o["payment_status"], "awaiting");
    let ev = events(app, "payment.failed", &id).await;
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["order_id"], order_id.as_str());
    assert_eq!(ev[0]["user_id"], c.user_id.as_str());
    assert_eq!(ev[0]["provider_payment_id"], "pay_declined");
    assert!(ev[0]["at"].is_string());
    // A failed payment cannot be refunded.
    refund(app, &admin, &id, json!({}))
        .await
        .assert_error(409, "conflict");

    // The customer may retry: a new intent, or a later successful attempt on the same
    // provider order (Razorpay allows retries on one order).
    let retry = new_intent(app, &c.token, &order_id).await;
    assert_ne!(retry["id"], p["id"]);
    let r = verify(app, &c.token, &p, "pay_second_try").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "captured");
    assert_eq!(r.body["provider_payment_id"], "pay_second_try");
    let o = order(app, &c.token, &order_id).await;
    assert_eq!(o["payment_status"], "paid");
    // The other intent is still open but can no longer pay the order twice: its capture
    // is refunded at once and the client is told.
    let r = verify(app, &c.token, &retry, "pay_third").await;
    r.assert_error(409, "conflict");
    assert_eq!(
        r.body["error"]["details"]["reason"], "duplicate",
        "{}",
        r.text
    );
    let dup = payment(app, &admin, &order_id, str_of(&retry["id"])).await;
    assert_eq!(dup["status"], "refunded");
    assert_eq!(dup["refunded_amount"], 20000);
    assert_eq!(
        order(app, &c.token, &order_id).await["payment_status"],
        "paid"
    );
    assert_eq!(
        events(app, "payment.refunded", str_of(&retry["id"]))
            .await
            .len(),
        1
    );
});

backend_test!(admin_refunds_partially_then_the_rest_never_more, |app| {
    let admin = app.admin_token().await;
    let (c, order_id) = online_order(app, &admin, 30000).await;
    let p = new_intent(app, &c.token, &order_id).await;
    let id = str_of(&p["id"]).to_string();

    // Not captured yet.
    refund(app, &admin, &id, json!({}))
        .await
        .assert_error(409, "conflict");
    let r = verify(app, &c.token, &p, "pay_refund_1").await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Bad input, unknown payment, wrong role.
    for bad in [
        json!({"amount": 0}),
        json!({"amount": 10.5}),
        json!({"amount": "100"}),
        json!({"amount": -1}),
    ] {
        refund(app, &admin, &id, bad)
            .await
            .assert_invalid_field("amount");
    }
    refund(app, &admin, "pmt_nope", json!({}))
        .await
        .assert_error(404, "not_found");
    refund(app, &c.token, &id, json!({}))
        .await
        .assert_error(403, "forbidden");

    // Partial.
    let r = refund(app, &admin, &id, json!({"amount": 10000})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["status"], "captured");
    assert_eq!(r.body["refunded_amount"], 10000);
    assert_eq!(r.body["refunds"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.body["refunds"][0]["amount"], 10000);
    assert_eq!(
        order(app, &c.token, &order_id).await["payment_status"],
        "paid"
    );
    // More than is left.
    let r = refund(app, &admin, &id, json!({"amount": 20001})).await;
    r.assert_error(409, "conflict");
    assert_eq!(r.body["error"]["details"]["refundable"], 20000);
    // The rest, exactly.
    let r = refund(app, &admin, &id, json!({"amount": 20000})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "refunded");
    assert_eq!(r.body["refunded_amount"], 30000);
    // Nothing is left.
    refund(app, &admin, &id, json!({"amount": 1}))
        .await
        .assert_error(409, "conflict");
    refund(app, &admin, &id, json!({}))
        .await
        .assert_error(409, "conflict");
    let o = order(app, &c.token, &order_id).await;
    assert_eq!(o["payment_status"], "refunded");
    assert_eq!(o["status"], "confirmed");

    let ev = events(app, "payment.refunded", &id).await;
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(
        (
            ev[0]["amount"].clone(),
            ev[0]["refunded_amount"].clone(),
            ev[0]["full"].clone()
        ),
        (json!(10000), json!(10000), json!(false))
    );
    assert_eq!(
        (
            ev[1]["amount"].clone(),
            ev[1]["refunded_amount"].clone(),
            ev[1]["full"].clone()
        ),
        (json!(20000), json!(30000), json!(true))
    );
    assert_eq!(ev[1]["order_id"], order_id.as_str());
    assert_eq!(ev[1]["user_id"], c.user_id.as_str());

    // `{}` refunds everything that is left, and an empty body means `{}`.
    let (c2, order2) = online_order(app, &admin, 25000).await;
    let p2 = new_intent(app, &c2.token, &order2).await;
    let id2 = str_of(&p2["id"]).to_string();
    assert_eq!(
        verify(app, &c2.token, &p2, "pay_refund_2").await.status,
        200
    );
    let r = refund(app, &admin, &id2, json!({"amount": 5000})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = refund(app, &admin, &id2, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["refunded_amount"], 25000);
    assert_eq!(r.body["status"], "refunded");
    assert_eq!(
        order(app, &c2.token, &order2).await["payment_status"],
        "refunded"
    );

    let (c3, order3) = online_order(app, &admin, 25000).await;
    let p3 = new_intent(app, &c3.token, &order3).await;
    assert_eq!(
        verify(app, &c3.token, &p3, "pay_refund_3").await.status,
        200
    );
    let r = app
        .raw(
            "POST",
            &format!("/api/v1/payments/{}/refund", str_of(&p3["id"])),
            Some(&admin),
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["refunded_amount"], 25000);
});

backend_test!(concurrent_refunds_never_exceed_the_capture, |app| {
    let admin = app.admin_token().await;
    let (c, order_id) = online_order(app, &admin, 20000).await;
    let p = new_intent(app, &c.token, &order_id).await;
    let id = str_of(&p["id"]).to_string();
    assert_eq!(verify(app, &c.token, &p, "pay_race").await.status, 200);

    // Eight refunds of 5000 against 20000: exactly four succeed.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let base = app.base.clone();
        let admin = admin.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}/api/v1/payments/{id}/refund"))
                .bearer_auth(admin)
                .json(&json!({"amount": 5000}))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let status = t.await.unwrap_or(0);
        assert!(status == 200 || status == 409, "unexpected status {status}");
        if status == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 4);
    let after = payment(app, &admin, &order_id, &id).await;
    assert_eq!(after["refunded_amount"], 20000);
    assert_eq!(after["status"], "refunded");
    assert_eq!(events(app, "payment.refunded", &id).await.len(), 4);
});

backend_test!(cancelling_a_paid_order_refunds_it_in_full, |app| {
    let admin = app.admin_token().await;
    let (c, order_id) = online_order(app, &admin, 30000).await;
    let p = new_intent(app, &c.token, &order_id).await;
    let id = str_of(&p["id"]).to_string();
    assert_eq!(verify(app, &c.token, &p, "pay_cancel_1").await.status, 200);
    // A partial refund first: the cancellation refunds what is left.
    assert_eq!(
        refund(app, &admin, &id, json!({"amount": 7000}))
            .await
            .status,
        200
    );

    let r = app
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(&c.token),
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let refunded = app
        .eventually(5, || async {
            let o = order(app, &c.token, &order_id).await;
            (o["payment_status"] == "refunded").then_some(o)
        })
        .await
        .expect("the order becomes payment_status refunded");
    assert_eq!(refunded["status"], "cancelled");
    let after = payment(app, &admin, &order_id, &id).await;
    assert_eq!(after["status"], "refunded");
    assert_eq!(after["refunded_amount"], 30000);
    assert_eq!(after["refunds"][1]["reason"], "order_cancelled", "{after}");
    let ev = events(app, "payment.refunded", &id).await;
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[1]["amount"], 23000);
    assert_eq!(ev[1]["full"], true);

    // The bus may deliver order.cancelled again: nothing more is refunded.
    let cancelled = events_from(app, "orders")
        .await
        .into_iter()
        .find(|(t, p)| t == "order.cancelled" && p["order_id"] == order_id.as_str())
        .map(|(_, p)| p)
        .expect("order.cancelled was published");
    assert_eq!(cancelled["payment_status"], "paid");
    redeliver(app, "orders", "order.cancelled", &cancelled).await;
    assert_eq!(payment(app, &admin, &order_id, &id).await, after);
    assert_eq!(events(app, "payment.refunded", &id).await.len(), 2);

    // An unpaid cancelled order refunds nothing (there is nothing captured).
    let (c2, order2) = online_order(app, &admin, 20000).await;
    let p2 = new_intent(app, &c2.token, &order2).await;
    let r = cancel_order(app, &c2.token, &order2).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Once the cancellation's events were handled, there is no refund for it.
    settled(app).await;
    assert!(events(app, "payment.refunded", str_of(&p2["id"]))
        .await
        .is_empty());
    assert_eq!(
        payment(app, &admin, &order2, str_of(&p2["id"])).await["status"],
        "created"
    );
    assert_eq!(events(app, "payment.refunded", &id).await.len(), 2);
});

backend_test!(a_capture_after_cancellation_is_refunded_at_once, |app| {
    let admin = app.admin_token().await;
    // The order is cancelled while the customer is still paying.
    let (c, order_id) = online_order(app, &admin, 22000).await;
    let p = new_intent(app, &c.token, &order_id).await;
    let id = str_of(&p["id"]).to_string();
    let r = cancel_order(app, &c.token, &order_id).await;
    assert_eq!(r.status, 200, "{}", r.text);

    let r = verify(app, &c.token, &p, "pay_late").await;
    r.assert_error(409, "conflict");
    assert_eq!(
        r.body["error"]["details"]["payment_id"],
        id.as_str(),
        "{}",
        r.text
    );
    assert_eq!(r.body["error"]["details"]["status"], "refunded");
    let after = payment(app, &admin, &order_id, &id).await;
    assert_eq!(after["status"], "refunded");
    assert_eq!(after["refunded_amount"], 22000);
    assert_eq!(after["provider_payment_id"], "pay_late");
    // Both events were committed although the client got 409.
    assert_eq!(events(app, "payment.captured", &id).await.len(), 1);
    let ev = events(app, "payment.refunded", &id).await;
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["full"], true);
    let o = order(app, &c.token, &order_id).await;
    assert_eq!(o["status"], "cancelled");
    assert_eq!(o["payment_status"], "awaiting");

    // The same through the webhook.
    let (c2, order2) = online_order(app, &admin, 22000).await;
    let p2 = new_intent(app, &c2.token, &order2).await;
    let r = cancel_order(app, &c2.token, &order2).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = webhook(
        app,
        "payment.captured",
        str_of(&p2["provider_order_id"]),
        "pay_late_wh",
    )
    .await;
    assert_eq!(r.body["status"], "processed", "{}", r.text);
    let after = payment(app, &admin, &order2, str_of(&p2["id"])).await;
    assert_eq!(after["status"], "refunded");
    assert_eq!(after["refunded_amount"], 22000);
});

backend_test!(idempotency_keys_replay_intents_and_refunds, |app| {
    let admin = app.admin_token().await;
    let (c, order_id) = online_order(app, &admin, 20000).await;
    let body = serde_json::to_vec(&json!({ "order_id": order_id })).expect("json");

    let first = post_with_headers(
        app,
        "/api/v1/payments/intents",
        Some(&c.token),
        &[("idempotency-key", "intent-key-1")],
        body.clone(),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let second = post_with_headers(
        app,
        "/api/v1/payments/intents",
        Some(&c.token),
        &[("idempotency-key", "intent-key-1")],
        body.clone(),
    )
    .await;
    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(payments_of(app, &c.token, &order_id).await.len(), 1);
    // The same key with another body is a conflict; a bad key is 400.
    let other = serde_json::to_vec(&json!({"order_id": "ord_other"})).expect("json");
    post_with_headers(
        app,
        "/api/v1/payments/intents",
        Some(&c.token),
        &[("idempotency-key", "intent-key-1")],
        other,
    )
    .await
    .assert_error(409, "conflict");
    post_with_headers(
        app,
        "/api/v1/payments/intents",
        Some(&c.token),
        &[("idempotency-key", "has space")],
        body,
    )
    .await
    .assert_invalid_field("Idempotency-Key");

    let id = str_of(&first.body["id"]).to_string();
    assert_eq!(
        verify(app, &c.token, &first.body, "pay_idem").await.status,
        200
    );
    let refund_body = serde_json::to_vec(&json!({"amount": 6000})).expect("json");
    let path = format!("/api/v1/payments/{id}/refund");
    let r1 = post_with_headers(
        app,
        &path,
        Some(&admin),
        &[("idempotency-key", "refund-1")],
        refund_body.clone(),
    )
    .await;
    assert_eq!(r1.status, 200, "{}", r1.text);
    assert_eq!(r1.body["refunded_amount"], 6000);
    let r2 = post_with_headers(
        app,
        &path,
        Some(&admin),
        &[("idempotency-key", "refund-1")],
        refund_body.clone(),
    )
    .await;
    assert_eq!(r2.status, 200, "{}", r2.text);
    assert_eq!(r2.body, r1.body);
    assert_eq!(r2.header("idempotent-replayed"), Some("true"));
    let after = payment(app, &admin, &order_id, &id).await;
    assert_eq!(after["refunded_amount"], 6000);
    assert_eq!(events(app, "payment.refunded", &id).await.len(), 1);
    // A new key refunds again.
    let r3 = post_with_headers(
        app,
        &path,
        Some(&admin),
        &[("idempotency-key", "refund-2")],
        refund_body,
    )
    .await;
    assert_eq!(r3.body["refunded_amount"], 12000, "{}", r3.text);
});

backend_test!(
    listing_shows_an_orders_payments_to_its_customer_and_admins,
    |app| {
        let admin = app.admin_token().await;
        let (c, order_id) = online_order(app, &admin, 20000).await;
        assert!(payments_of(app, &c.token, &order_id).await.is_empty());
        let first = new_intent(app, &c.token, &order_id).await;
        let second = new_intent(app, &c.token, &order_id).await;

        let items = payments_of(app, &c.token, &order_id).await;
        assert_eq!(items.len(), 2);
        // Newest first.
        assert_eq!(items[0]["id"], second["id"]);
        assert_eq!(items[1]["id"], first["id"]);
        assert_eq!(items[1], first);
        assert_eq!(payments_of(app, &admin, &order_id).await, items);

        let other = app.customer().await;
        app.get(
            &format!("/api/v1/payments?order_id={order_id}"),
            Some(&other.token),
        )
        .await
        .assert_error(404, "not_found");
        app.get("/api/v1/payments?order_id=ord_unknown", Some(&admin))
            .await
            .assert_error(404, "not_found");
        app.get("/api/v1/payments", Some(&c.token))
            .await
            .assert_invalid_field("order_id");
        app.get("/api/v1/payments?order_id=", Some(&admin))
            .await
            .assert_invalid_field("order_id");
        app.get(&format!("/api/v1/payments?order_id={order_id}"), None)
            .await
            .assert_error(401, "unauthorized");
        let agent = new_agent(app, &admin).await;
        app.get(
            &format!("/api/v1/payments?order_id={order_id}"),
            Some(&agent.token),
        )
        .await
        .assert_error(403, "forbidden");
    }
);

// ---------------------------------------------------------------------------------
// Razorpay's own bodies, and its official SDK as the judge of our signatures

/// Asks the official `razorpay` Python SDK (PyPI) whether a signature is right, with
/// its own `Utility.verify_webhook_signature` / `verify_payment_signature`. Prints
/// `verified` or `rejected`; exits 3 when the SDK is not installed.
const RAZORPAY_SDK_CHECK: &str = r#"
import os, sys
try:
    import razorpay
    from razorpay.errors import SignatureVerificationError
except ImportError as e:
    sys.stderr.write("cannot import razorpay: %s\n" % e)
    sys.exit(3)
env = os.environ
utility = razorpay.Utility(razorpay.Client(auth=(env["RZP_KEY_ID"], env["RZP_KEY_SECRET"])))
try:
    if env["RZP_CHECK"] == "webhook":
        ok = utility.verify_webhook_signature(
            env["RZP_BODY"], env["RZP_SIGNATURE"], env["RZP_WEBHOOK_SECRET"])
    else:
        ok = utility.verify_payment_signature({
            "razorpay_order_id": env["RZP_ORDER_ID"],
            "razorpay_payment_id": env["RZP_PAYMENT_ID"],
            "razorpay_signature": env["RZP_SIGNATURE"],
        })
except SignatureVerificationError:
    ok = False
print("verified" if ok else "rejected")
"#;

/// How to get the SDK; the test fails (never skips) without it.
const RAZORPAY_SDK_HINT: &str = "python3 -m pip install razorpay";

/// Runs [`RAZORPAY_SDK_CHECK`] with `vars`; true when the SDK verified the signature.
fn razorpay_sdk_verifies(vars: &[(&str, &str)]) -> bool {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(RAZORPAY_SDK_CHECK)
        .envs(vars.iter().copied())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "python3 could not be run ({e}): this test checks signatures with the official \
                 razorpay SDK; install Python 3, then `{RAZORPAY_SDK_HINT}`"
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        panic!("the razorpay Python SDK is not installed: run `{RAZORPAY_SDK_HINT}` ({stderr})");
    }
    assert!(
        out.status.success(),
        "the razorpay SDK check failed: {stderr}"
    );
    match stdout.trim() {
        "verified" => true,
        "rejected" => false,
        other => panic!("unexpected answer from the razorpay SDK check: {other:?} {stderr}"),
    }
}

/// The SDK's `verify_webhook_signature(body, signature, secret)`.
fn sdk_verifies_webhook(body: &[u8], signature: &str, secret: &str) -> bool {
    let body = std::str::from_utf8(body).expect("a JSON body is UTF-8");
    razorpay_sdk_verifies(&[
        ("RZP_CHECK", "webhook"),
        ("RZP_KEY_ID", "rzp_test_kirana"),
        ("RZP_KEY_SECRET", KEY_SECRET),
        ("RZP_BODY", body),
        ("RZP_SIGNATURE", signature),
        ("RZP_WEBHOOK_SECRET", secret),
    ])
}

/// The SDK's `verify_payment_signature` for a client made with `key_secret`.
fn sdk_verifies_payment(
    provider_order_id: &str,
    provider_payment_id: &str,
    signature: &str,
    key_secret: &str,
) -> bool {
    razorpay_sdk_verifies(&[
        ("RZP_CHECK", "payment"),
        ("RZP_KEY_ID", "rzp_test_kirana"),
        ("RZP_KEY_SECRET", key_secret),
        ("RZP_ORDER_ID", provider_order_id),
        ("RZP_PAYMENT_ID", provider_payment_id),
        ("RZP_SIGNATURE", signature),
    ])
}

/// A payment entity as Razorpay puts it in a webhook (fields from its docs' samples).
fn razorpay_payment(
    id: &str,
    order_id: &str,
    amount: i64,
    status: &str,
    amount_refunded: i64,
) -> Value {
    let failed = status == "failed";
    json!({
        "id": id, "entity": "payment", "amount": amount, "currency": "INR",
        "status": status, "order_id": order_id, "invoice_id": null, "international": false,
        "method": "upi", "amount_refunded": amount_refunded,
        "refund_status": match amount_refunded {
            0 => Value::Null,
            a if a < amount => json!("partial"),
            _ => json!("full"),
        },
        "captured": !failed, "description": "Kirana order", "card_id": null, "bank": null,
        "wallet": null, "vpa": "success@razorpay", "email": "gaurav.kumar@example.com",
        "contact": "+919876543210", "notes": [],
        "fee": if failed { Value::Null } else { json!(236) },
        "tax": if failed { Value::Null } else { json!(36) },
        "error_code": if failed { json!("BAD_REQUEST_ERROR") } else { Value::Null },
        "error_description": if failed { json!("Payment failed") } else { Value::Null },
        "acquirer_data": {"rrn": "033814379298"}, "created_at": 1_700_000_000
    })
}

/// Razorpay's `payment.captured` / `payment.failed` event body.
fn razorpay_payment_event(
    event: &str,
    order_id: &str,
    payment_id: &str,
    amount: i64,
    created_at: i64,
) -> Vec<u8> {
    let status = if event == "payment.failed" {
        "failed"
    } else {
        "captured"
    };
    serde_json::to_vec(&json!({
        "entity": "event", "account_id": "acc_KiranaTest0001", "event": event,
        "contains": ["payment"],
        "payload": {"payment": {
            "entity": razorpay_payment(payment_id, order_id, amount, status, 0)
        }},
        "created_at": created_at
    }))
    .expect("json")
}

/// Razorpay's `refund.processed` event body: the refund, and the payment after it.
fn razorpay_refund_event(
    refund_id: &str,
    payment_id: &str,
    order_id: &str,
    amount: i64,
    paid: i64,
    refunded_so_far: i64,
    created_at: i64,
) -> Vec<u8> {
    let status = if refunded_so_far >= paid {
        "refunded"
    } else {
        "captured"
    };
    serde_json::to_vec(&json!({
        "entity": "event", "account_id": "acc_KiranaTest0001", "event": "refund.processed",
        "contains": ["refund", "payment"],
        "payload": {
            "refund": {"entity": {
                "id": refund_id, "entity": "refund", "amount": amount, "currency": "INR",
                "payment_id": payment_id, "notes": [], "receipt": null,
                "acquirer_data": {"arn": null}, "created_at": created_at, "batch_id": null,
                "status": "processed", "speed_processed": "normal", "speed_requested": "normal"
            }},
            "payment": {
                "entity": razorpay_payment(payment_id, order_id, paid, status, refunded_so_far)
            }
        },
        "created_at": created_at
    }))
    .expect("json")
}

/// Signs `body` as Razorpay does, has the SDK confirm it, and posts it.
async fn razorpay_webhook(app: &TestApp, body: &[u8]) -> Resp {
    let sig = hmac_hex(WEBHOOK_SECRET, body);
    assert!(
        sdk_verifies_webhook(body, &sig, WEBHOOK_SECRET),
        "the razorpay SDK rejects our webhook signature"
    );
    webhook_signed(app, body, Some(&sig)).await
}

backend_test!(
    razorpay_capture_and_refunds_signed_as_razorpay_signs_them,
    |app| {
        let admin = app.admin_token().await;
        let (c, order_id) = online_order(app, &admin, 24000).await;
        let p = new_intent(app, &c.token, &order_id).await;
        let id = str_of(&p["id"]).to_string();
        let rzp_order = str_of(&p["provider_order_id"]).to_string();
        let pay = format!("pay_{}", app.word("rzp"));

        // The SDK is a real judge: it refuses a signature under another secret.
        let captured =
            razorpay_payment_event("payment.captured", &rzp_order, &pay, 24000, 1_700_000_100);
        assert!(!sdk_verifies_webhook(
            &captured,
            &hmac_hex("not-the-webhook-secret", &captured),
            WEBHOOK_SECRET
        ));
        // payment.captured in Razorpay's body: the payment is captured, the order paid.
        let r = razorpay_webhook(app, &captured).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["status"], "processed", "{}", r.text);
        let after = payment(app, &admin, &order_id, &id).await;
        assert_eq!(after["status"], "captured");
        assert_eq!(after["provider_payment_id"], pay.as_str());
        let o = order(app, &c.token, &order_id).await;
        assert_eq!(
            (&o["status"], &o["payment_status"]),
            (&json!("confirmed"), &json!("paid"))
        );
        // Razorpay redelivers the same body: nothing changes.
        let r = razorpay_webhook(app, &captured).await;
        assert_eq!(r.body["status"], "duplicate", "{}", r.text);
        assert_eq!(events(app, "payment.captured", &id).await.len(), 1);

        // refund.processed for part of it: recorded once, with the provider's refund id.
        let rfnd1 = format!("rfnd_{}", app.word("a"));
        let partial =
            razorpay_refund_event(&rfnd1, &pay, &rzp_order, 9000, 24000, 9000, 1_700_000_200);
        let r = razorpay_webhook(app, &partial).await;
        assert_eq!(r.body["status"], "processed", "{}", r.text);
        let after = payment(app, &admin, &order_id, &id).await;
        assert_eq!(after["refunded_amount"], 9000, "{after}");
        assert_eq!(after["status"], "captured");
        assert_eq!(after["refunds"][0]["amount"], 9000);
        assert_eq!(after["refunds"][0]["reason"], "provider");
        assert_eq!(after["refunds"][0]["provider_refund_id"], rfnd1.as_str());
        assert_eq!(
            order(app, &c.token, &order_id).await["payment_status"],
            "paid"
        );
        // The same refund again, as the same body or in another delivery: harmless.
        let r = razorpay_webhook(app, &partial).await;
        assert_eq!(r.body["status"], "duplicate", "{}", r.text);
        let again =
            razorpay_refund_event(&rfnd1, &pay, &rzp_order, 9000, 24000, 9000, 1_700_000_260);
        let r = razorpay_webhook(app, &again).await;
        assert_eq!(r.body["status"], "duplicate", "{}", r.text);
        assert_eq!(payment(app, &admin, &order_id, &id).await, after);

        // A refund beyond what is left (15,000 of it) is refused: nothing is recorded.
        let too_much = format!("rfnd_{}", app.word("b"));
        let body = razorpay_refund_event(
            &too_much,
            &pay,
            &rzp_order,
            15001,
            24000,
            24001,
            1_700_000_300,
        );
        let r = razorpay_webhook(app, &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["status"], "ignored", "{}", r.text);
        assert_eq!(payment(app, &admin, &order_id, &id).await, after);
        // An admin cannot go past it either (the provider's refund counts).
        refund(app, &admin, &id, json!({"amount": 15001}))
            .await
            .assert_error(409, "conflict");

        // The rest: the payment is refunded in full and so is the order.
        let rfnd3 = format!("rfnd_{}", app.word("c"));
        let body =
            razorpay_refund_event(&rfnd3, &pay, &rzp_order, 15000, 24000, 24000, 1_700_000_400);
        let r = razorpay_webhook(app, &body).await;
        assert_eq!(r.body["status"], "processed", "{}", r.text);
        let done = payment(app, &admin, &order_id, &id).await;
        assert_eq!(done["status"], "refunded");
        assert_eq!(done["refunded_amount"], 24000);
        assert_eq!(done["refunds"].as_array().map(Vec::len), Some(2));
        let refunded = app
            .eventually(5, || async {
                let o = order(app, &c.token, &order_id).await;
                (o["payment_status"] == "refunded").then_some(o)
            })
            .await;
        assert!(refunded.is_some(), "the order is marked refunded");
        let ev = events(app, "payment.refunded", &id).await;
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(
            (&ev[0]["amount"], &ev[1]["amount"]),
            (&json!(9000), &json!(15000))
        );
        assert_eq!(ev[1]["full"], true);
        // A refund of a payment nobody here knows is acknowledged and ignored.
        let body = razorpay_refund_event(
            "rfnd_unknown1",
            "pay_unknown1",
            "order_unknown1",
            100,
            100,
            100,
            1,
        );
        let r = razorpay_webhook(app, &body).await;
        assert_eq!(r.body["status"], "ignored", "{}", r.text);
    }
);

backend_test!(razorpay_checkout_signature_and_failed_payments, |app| {
    let admin = app.admin_token().await;
    let (c, order_id) = online_order(app, &admin, 21000).await;
    let p = new_intent(app, &c.token, &order_id).await;
    let id = str_of(&p["id"]).to_string();
    let rzp_order = str_of(&p["provider_order_id"]).to_string();

    // payment.failed in Razorpay's body: the payment fails, the order stays pending.
    let declined = format!("pay_{}", app.word("declined"));
    let failed = razorpay_payment_event(
        "payment.failed",
        &rzp_order,
        &declined,
        21000,
        1_700_000_100,
    );
    let r = razorpay_webhook(app, &failed).await;
    assert_eq!(r.body["status"], "processed", "{}", r.text);
    let now = payment(app, &admin, &order_id, &id).await;
    assert_eq!(now["status"], "failed");
    assert_eq!(now["provider_payment_id"], declined.as_str());
    let o = order(app, &c.token, &order_id).await;
    assert_eq!(
        (&o["status"], &o["payment_status"]),
        (&json!("pending"), &json!("awaiting"))
    );
    assert_eq!(events(app, "payment.failed", &id).await.len(), 1);

    // A capture that is not the intent's amount never pays the order.
    let short = format!("pay_{}", app.word("short"));
    let body = razorpay_payment_event("payment.captured", &rzp_order, &short, 100, 1_700_000_150);
    let r = razorpay_webhook(app, &body).await;
    assert_eq!(r.body["status"], "ignored", "{}", r.text);
    assert_eq!(
        payment(app, &admin, &order_id, &id).await["status"],
        "failed"
    );
    assert_eq!(
        order(app, &c.token, &order_id).await["payment_status"],
        "awaiting"
    );

    // The checkout's retry succeeds: signed as Razorpay's checkout signs
    // (order_id|payment_id under the key secret), which the SDK confirms.
    let pay = format!("pay_{}", app.word("retry"));
    let sig = payment_signature(&rzp_order, &pay);
    assert!(sdk_verifies_payment(&rzp_order, &pay, &sig, KEY_SECRET));
    assert!(!sdk_verifies_payment(
        &rzp_order,
        &pay,
        &sig,
        "another-key-secret"
    ));
    let r = verify(app, &c.token, &p, &pay).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "captured");
    assert_eq!(r.body["provider_payment_id"], pay.as_str());
    let o = order(app, &c.token, &order_id).await;
    assert_eq!(
        (&o["status"], &o["payment_status"]),
        (&json!("confirmed"), &json!("paid"))
    );
    // Razorpay's payment.captured for the same payment arrives later: nothing new.
    let body = razorpay_payment_event("payment.captured", &rzp_order, &pay, 21000, 1_700_000_200);
    let r = razorpay_webhook(app, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(events(app, "payment.captured", &id).await.len(), 1);
    assert_eq!(
        payment(app, &admin, &order_id, &id).await["status"],
        "captured"
    );
});

backend_test!(
    an_unset_webhook_secret_accepts_no_webhook,
    "[payments]\nkey_secret = \"kirana_sandbox_key_secret\"\nwebhook_secret = \"\"",
    |app| {
        let admin = app.admin_token().await;
        let (c, order_id) = online_order(app, &admin, 20000).await;
        let p = new_intent(app, &c.token, &order_id).await;
        let rzp_order = str_of(&p["provider_order_id"]).to_string();
        // Anyone can sign under the empty key: such a webhook must not pay the order.
        let body = razorpay_payment_event("payment.captured", &rzp_order, "pay_forged1", 20000, 1);
        for sig in [hmac_hex("", &body), hmac_hex(WEBHOOK_SECRET, &body)] {
            let r = webhook_signed(app, &body, Some(&sig)).await;
            r.assert_error(503, "plugin_unavailable");
            let m = r.body["error"]["message"].as_str().unwrap_or_default();
            assert!(m.contains("KIRANA_PAYMENTS_WEBHOOK_SECRET"), "{}", r.text);
        }
        assert_eq!(
            payment(app, &admin, &order_id, str_of(&p["id"])).await["status"],
            "created"
        );
        assert_eq!(
            order(app, &c.token, &order_id).await["payment_status"],
            "awaiting"
        );
    }
);

backend_test!(
    an_unset_key_secret_opens_and_verifies_nothing,
    "[payments]\nkey_secret = \"\"\nwebhook_secret = \"kirana_sandbox_webhook_secret\"",
    |app| {
        let admin = app.admin_token().await;
        let (c, order_id) = online_order(app, &admin, 20000).await;
        let r = intent(app, &c.token, &order_id).await;
        r.assert_error(503, "plugin_unavailable");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("KIRANA_PAYMENTS_KEY_SECRET")),
            "{}",
            r.text
        );
        let sig = hmac_hex("", b"order_x|pay_forged2");
        let r = verify_with(app, &c.token, &order_id, "pay_forged2", &sig).await;
        r.assert_error(503, "plugin_unavailable");
        assert!(r.text.contains("KIRANA_PAYMENTS_KEY_SECRET"), "{}", r.text);
        assert_eq!(
            order(app, &c.token, &order_id).await["payment_status"],
            "awaiting"
        );
    }
);

backend_test!(
    a_capture_while_orders_is_down_settles_once_orders_is_back,
    // Enough retries of the settlement to outlast the outage below.
    "[events]\nmax_attempts = 200\nbackoff_ms = 20\nmax_backoff_ms = 100",
    |app| {
        let admin = app.admin_token().await;
        let (c, order_id) = online_order(app, &admin, 25000).await;
        let p = new_intent(app, &c.token, &order_id).await;
        let id = str_of(&p["id"]).to_string();
        settled(app).await;

        // The provider's webhook arrives while orders is out of service: the capture is
        // recorded and acknowledged, and the order's settlement is queued for retry.
        plugin_action(app, "orders", "disable").await;
        let r = webhook(
            app,
            "payment.captured",
            str_of(&p["provider_order_id"]),
            "pay_during_outage",
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["status"], "processed");
        // The customer's own verification cannot reach orders either: 503, nothing lost.
        verify(app, &c.token, &p, "pay_during_outage")
            .await
            .assert_error(503, "plugin_unavailable");
        // The retry has been tried and failed at least once while orders is down.
        let failed_once = app
            .eventually(10, || async {
                let r = app
                    .get("/admin/events?status=pending", Some(OPERATOR_TOKEN))
                    .await;
                r.body["items"]
                    .as_array()?
                    .iter()
                    .any(|d| {
                        d["topic"] == "payments.settle"
                            && d["payload"]["order_id"] == order_id.as_str()
                            && d["attempts"].as_u64().is_some_and(|n| n >= 1)
                    })
                    .then_some(())
            })
            .await;
        assert!(failed_once.is_some(), "no settlement retry was queued");

        // Orders is back: the queued settlement pays the order, once.
        plugin_action(app, "orders", "enable").await;
        settled(app).await;
        let o = order(app, &c.token, &order_id).await;
        assert_eq!(o["status"], "confirmed", "{o}");
        assert_eq!(o["payment_status"], "paid");
        let after = payment(app, &admin, &order_id, &id).await;
        assert_eq!(after["status"], "captured");
        assert_eq!(after["provider_payment_id"], "pay_during_outage");
        assert_eq!(events(app, "payment.captured", &id).await.len(), 1);
        // The checkout's verification now agrees, and changes nothing.
        let r = verify(app, &c.token, &p, "pay_during_outage").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["status"], "captured");
        settled(app).await;
        assert_eq!(events(app, "payment.captured", &id).await.len(), 1);
        assert_eq!(
            order(app, &c.token, &order_id).await["status_history"],
            o["status_history"]
        );
    }
);

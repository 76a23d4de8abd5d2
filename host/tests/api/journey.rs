//! The whole customer journey of the README, end to end over HTTP on both databases:
//! sign up, browse, fill a cart, check out online, pay in the sandbox (signature with
//! the key secret), watch live events over SSE, an agent delivers (picked up → in
//! transit → delivered, driving the order), then notifications, tracking and the admin
//! dashboard tell the story.

use std::time::Duration;

use crate::helpers::*;
use crate::messaging::Sse;
use crate::shop::*;

backend_test!(a_customer_journey_from_signup_to_delivery, |app| {
    let admin = app.admin_token().await;

    // Browse the seeded catalog and fill the cart with three products.
    let r = app.get("/api/v1/categories", None).await;
    assert!(r.body["items"].as_array().map(Vec::len).unwrap_or(0) >= 8);
    let r = app
        .get(
            "/api/v1/products?category=dairy-bread&in_stock=true&page_size=3",
            None,
        )
        .await;
    let products: Vec<String> = r.body["items"]
        .as_array()
        .expect("products")
        .iter()
        .filter_map(|p| p["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(products.len(), 3);
    let asha = app.customer().await;
    for p in &products {
        add_to_cart(app, &asha.token, p, 2).await;
    }
    let address = new_address(app, &asha.token).await;
    let mut live = Sse::open(app, &asha.token, true).await;

    // Check out paying online.
    let r = checkout(app, &asha.token, &address, "online").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let order = r.body["id"].as_str().expect("order id").to_string();
    let total = r.body["total"].as_i64().expect("total");
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["payment_status"], "awaiting");

    // Pay: intent, the provider's signature, verify.
    let r = app
        .post(
            "/api/v1/payments/intents",
            Some(&asha.token),
            json!({ "order_id": order }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["amount"], total);
    let provider_order = r.body["provider_order_id"]
        .as_str()
        .expect("provider order");
    let signature = payment_signature(provider_order, "pay_journey_1");
    let r = app
        .post(
            "/api/v1/payments/verify",
            Some(&asha.token),
            json!({"order_id": order, "provider_payment_id": "pay_journey_1", "signature": signature}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "captured");
    let r = app
        .get(&format!("/api/v1/orders/{order}"), Some(&asha.token))
        .await;
    assert_eq!(r.body["status"], "confirmed");
    assert_eq!(r.body["payment_status"], "paid");

    // An agent at the store goes available; the store starts preparing.
    let agent = new_agent(app, &admin).await;
    locate(app, &agent, (12.9716, 77.5946)).await;
    available(app, &agent).await;
    move_order(app, &admin, &order, "preparing").await;
    let delivery = app
        .eventually(10, || async {
            let r = app
                .get("/api/v1/delivery/assignments", Some(&agent.token))
                .await;
            r.body["items"]
                .as_array()
                .and_then(|a| a.iter().find(|d| d["order_id"] == order.as_str()))
                .and_then(|d| d["id"].as_str().map(str::to_string))
        })
        .await
        .expect("the agent was assigned");

    // The agent drives the order to the door.
    let step = |status: &'static str| {
        let (delivery, token) = (delivery.clone(), agent.token.clone());
        async move {
            let r = app
                .put(
                    &format!("/api/v1/delivery/{delivery}/status"),
                    Some(&token),
                    json!({ "status": status }),
                )
                .await;
            assert_eq!(r.status, 200, "{status}: {}", r.text);
        }
    };
    step("picked_up").await;
    let r = app
        .post(
            "/api/v1/delivery/me/location",
            Some(&agent.token),
            json!({"lat": 12.975, "lon": 77.601}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    step("in_transit").await;
    let r = app
        .get(
            &format!("/api/v1/delivery/track/{order}"),
            Some(&asha.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["agent"]["phone"], agent.phone.as_str());
    assert!(!r.body["path"].as_array().expect("path").is_empty());
    step("delivered").await;
    let r = app
        .get(&format!("/api/v1/orders/{order}"), Some(&asha.token))
        .await;
    assert_eq!(r.body["status"], "delivered");
    let history: Vec<&str> = r.body["status_history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["status"].as_str())
        .collect();
    assert_eq!(
        history,
        [
            "pending",
            "confirmed",
            "preparing",
            "out_for_delivery",
            "delivered"
        ]
    );

    // The live stream told the story. Events are delivered at least once and side by
    // side, so a later status may reach the stream before an earlier one: read until
    // every step was seen (or the stream goes quiet).
    let expected = [
        "order.created",
        "payment.captured",
        "confirmed",
        "preparing",
        "delivery.assigned",
        "out_for_delivery",
        "delivery.location_updated",
        "delivered",
    ];
    let mut seen = Vec::new();
    while let Some(e) = live.next(Duration::from_secs(3)).await {
        if e.event == "order.status_changed" {
            seen.push(e.data["to"].as_str().unwrap_or_default().to_string());
        } else {
            seen.push(e.event.clone());
        }
        if expected.iter().all(|x| seen.iter().any(|s| s == x)) {
            break;
        }
    }
    for expected in expected {
        assert!(
            seen.iter().any(|s| s == expected),
            "{expected} missing from {seen:?}"
        );
    }

    // Notifications and the admin's dashboard.
    let notes = app
        .eventually(10, || async {
            let r = app.get("/api/v1/notifications", Some(&asha.token)).await;
            let types: Vec<String> = r.body["items"]
                .as_array()?
                .iter()
                .filter_map(|n| n["type"].as_str().map(str::to_string))
                .collect();
            (types.len() >= 7).then_some(types)
        })
        .await
        .expect("notifications");
    for t in [
        "welcome",
        "order.placed",
        "payment.captured",
        "delivery.assigned",
    ] {
        assert!(notes.iter().any(|n| n == t), "{t} missing from {notes:?}");
    }
    let dashboard = app
        .eventually(10, || async {
            let r = app.get("/api/v1/analytics/dashboard", Some(&admin)).await;
            (r.body["orders_by_status"]["delivered"] == 1).then_some(r.body)
        })
        .await
        .expect("the dashboard counts the delivered order");
    assert_eq!(dashboard["orders_today"], 1);
    assert_eq!(dashboard["revenue_today"], total);
    assert_eq!(dashboard["new_users_today"], 1);
});

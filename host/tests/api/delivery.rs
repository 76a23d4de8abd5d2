//! The `delivery` plugin over HTTP: agent profiles and their status and location, the
//! delivery made when an order is being prepared and given to the nearest available
//! agent, the agent's steps (which move the order), tracking, the waiting queue,
//! cancellation, and the admin's list and reassignment.

use crate::helpers::*;
use crate::shop::*;

/// Near the default store (12.9716, 77.5946): a few hundred metres away.
const NEAR: (f64, f64) = (12.9740, 77.5960);
/// About 20 km north of the store.
const FAR: (f64, f64) = (13.15, 77.60);

async fn me(app: &TestApp, agent: &Agent) -> Value {
    let r = app.get("/api/v1/delivery/me", Some(&agent.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

async fn step(app: &TestApp, agent: &Agent, delivery_id: &str, status: &str) -> Resp {
    app.put(
        &format!("/api/v1/delivery/{delivery_id}/status"),
        Some(&agent.token),
        json!({ "status": status }),
    )
    .await
}

/// Places a COD order and moves it to `preparing`; its id.
async fn preparing_order(app: &TestApp, admin: &str, c: &Customer, address: &str) -> String {
    let id = place(app, c, address, "cod").await;
    let r = order_status(app, admin, &id, "preparing").await;
    assert_eq!(r.status, 200, "{}", r.text);
    id
}

/// The order's delivery as the admin list shows it, if it exists yet.
async fn delivery_of(app: &TestApp, admin: &str, order_id: &str) -> Option<Value> {
    let r = app
        .get("/api/v1/admin/deliveries?page_size=100", Some(admin))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"]
        .as_array()?
        .iter()
        .find(|d| d["order_id"] == order_id)
        .cloned()
}

/// Waits until the order's delivery has `status`.
async fn wait_delivery(app: &TestApp, admin: &str, order_id: &str, status: &str) -> Value {
    app.eventually(10, || async {
        delivery_of(app, admin, order_id)
            .await
            .filter(|d| d["status"] == status)
    })
    .await
    .unwrap_or_else(|| panic!("the delivery of {order_id} never became {status}"))
}

async fn wait_agent_status(app: &TestApp, agent: &Agent, status: &str) {
    app.eventually(10, || async {
        (me(app, agent).await["status"] == status).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the agent never became {status}"));
}

async fn get_order(app: &TestApp, token: &str, order_id: &str) -> Resp {
    app.get(&format!("/api/v1/orders/{order_id}"), Some(token))
        .await
}

async fn delivery_events(app: &TestApp, topic: &str) -> Vec<Value> {
    events_from(app, "delivery")
        .await
        .into_iter()
        .filter(|(t, _)| t == topic)
        .map(|(_, p)| p)
        .collect()
}

backend_test!(agent_profiles_and_their_status, |app| {
    let admin = app.admin_token().await;
    let agent = new_agent(app, &admin).await;

    // The profile exists from the user.created event alone, before the agent calls.
    let listed = app
        .eventually(10, || async {
            let r = app
                .get("/api/v1/admin/delivery-agents?page_size=100", Some(&admin))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body["items"]
                .as_array()
                .and_then(|a| a.iter().find(|p| p["user_id"] == agent.user_id.as_str()))
                .cloned()
        })
        .await
        .expect("a profile for the admin-made agent");
    assert_eq!(listed["status"], "offline");

    let p = me(app, &agent).await;
    assert_eq!(p["id"], listed["id"]);
    assert_eq!(p["user_id"], agent.user_id.as_str());
    assert_eq!(p["name"], "Test Agent");
    assert_eq!(
        p["phone"],
        agent.phone.as_str(),
        "the phone set after creation"
    );
    assert_eq!(p["status"], "offline");
    assert!(p["last_location"].is_null());

    // Exactly one profile, whichever path made it first.
    let r = app
        .get("/api/v1/admin/delivery-agents?page_size=100", Some(&admin))
        .await;
    let mine = r.body["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["user_id"] == agent.user_id.as_str())
                .count()
        })
        .unwrap_or(0);
    assert_eq!(mine, 1, "{}", r.text);

    // A second agent whose first call may beat the event: one profile all the same.
    let other = new_agent(app, &admin).await;
    let first = me(app, &other).await;
    assert_eq!(first["status"], "offline");
    settled(app).await;
    assert_eq!(me(app, &other).await["id"], first["id"]);

    // Status changes and their refusals.
    let r = available(app, &agent).await;
    assert_eq!(r["status"], "available");
    assert_eq!(
        available(app, &agent).await["status"],
        "available",
        "repeat is a no-op"
    );
    set_status(app, &agent, "busy")
        .await
        .assert_invalid_field("status");
    set_status(app, &agent, "sleeping")
        .await
        .assert_invalid_field("status");
    app.put("/api/v1/delivery/me/status", Some(&agent.token), json!({}))
        .await
        .assert_invalid_field("status");
    app.raw(
        "PUT",
        "/api/v1/delivery/me/status",
        Some(&agent.token),
        None,
        br#"{"status":"offline"}"#.to_vec(),
    )
    .await
    .assert_error(415, "unsupported_media_type");
    let r = set_status(app, &agent, "offline").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "offline");
    assert_eq!(
        app.get("/api/v1/admin/delivery-agents?status=offline", Some(&admin))
            .await
            .body["total"],
        2
    );
    app.get("/api/v1/admin/delivery-agents?status=napping", Some(&admin))
        .await
        .assert_invalid_field("status");

    // Only agents have these routes.
    let c = app.customer().await;
    app.get("/api/v1/delivery/me", Some(&c.token))
        .await
        .assert_error(403, "forbidden");
    app.get("/api/v1/delivery/me", None)
        .await
        .assert_error(401, "unauthorized");
    app.get("/api/v1/admin/delivery-agents", Some(&agent.token))
        .await
        .assert_error(403, "forbidden");
});

backend_test!(location_is_validated_stored_and_published, |app| {
    let admin = app.admin_token().await;
    let agent = new_agent(app, &admin).await;
    let post = |body: Value| {
        let token = agent.token.clone();
        async move {
            app.post("/api/v1/delivery/me/location", Some(&token), body)
                .await
        }
    };
    post(json!({"lat": 91, "lon": 77}))
        .await
        .assert_invalid_field("lat");
    post(json!({"lat": 12, "lon": -180.5}))
        .await
        .assert_invalid_field("lon");
    post(json!({"lat": "12.9", "lon": 77}))
        .await
        .assert_invalid_field("lat");
    post(json!({"lat": 12.9})).await.assert_invalid_field("lon");
    let r = post(json!({"lat": -100, "lon": 200})).await;
    assert_eq!(r.fields(), vec!["lat", "lon"], "{}", r.text);
    app.raw(
        "POST",
        "/api/v1/delivery/me/location",
        Some(&agent.token),
        Some("application/json"),
        b"{not json".to_vec(),
    )
    .await
    .assert_error(400, "invalid_json");
    assert!(me(app, &agent).await["last_location"].is_null());

    // Works without an active delivery; edges of the ranges are fine.
    let r = post(json!({"lat": -90, "lon": 180})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    locate(app, &agent, NEAR).await;
    let p = me(app, &agent).await;
    assert_eq!(p["last_location"]["lat"], NEAR.0);
    assert_eq!(p["last_location"]["lon"], NEAR.1);
    assert!(p["last_location"]["at"].is_string());

    let events = delivery_events(app, "delivery.location_updated").await;
    assert_eq!(events.len(), 2, "{events:?}");
    let e = &events[1];
    assert_eq!(e["agent_id"], p["id"]);
    assert_eq!(e["agent_user_id"], agent.user_id.as_str());
    assert_eq!(
        (e["lat"].clone(), e["lon"].clone()),
        (json!(NEAR.0), json!(NEAR.1))
    );
    assert!(e["delivery_id"].is_null() && e["order_id"].is_null() && e["user_id"].is_null());
});

backend_test!(an_order_is_delivered_by_the_nearest_agent, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 4500, 10).await;
    let (c, address) = shopper(app, &product, 2).await;
    let far = new_agent(app, &admin).await;
    let near = new_agent(app, &admin).await;
    // The far agent became available first: distance wins over waiting time.
    available(app, &far).await;
    locate(app, &far, FAR).await;
    available(app, &near).await;
    locate(app, &near, NEAR).await;
    let near_id = me(app, &near).await["id"].clone();

    let order_id = preparing_order(app, &admin, &c, &address).await;
    let d = wait_delivery(app, &admin, &order_id, "assigned").await;
    assert_eq!(d["agent_id"], near_id, "{d}");
    assert_eq!(d["user_id"], c.user_id.as_str());
    assert_eq!(d["address"]["id"], address.as_str());
    assert_eq!(d["address"]["city"], "Bengaluru");
    assert_eq!(d["items"][0]["product_id"], product.as_str());
    assert_eq!(d["items"][0]["quantity"], 2);
    assert!(d["assigned_at"].is_string() && d["picked_up_at"].is_null());
    assert!(d["created_at"].is_string() && d["delivered_at"].is_null());
    let delivery_id = d["id"].as_str().expect("delivery id").to_string();
    assert_eq!(me(app, &near).await["status"], "busy");
    assert_eq!(me(app, &far).await["status"], "available");

    let assigned = delivery_events(app, "delivery.assigned").await;
    assert_eq!(assigned.len(), 1, "{assigned:?}");
    assert_eq!(assigned[0]["delivery_id"], delivery_id.as_str());
    assert_eq!(assigned[0]["order_id"], order_id.as_str());
    assert_eq!(assigned[0]["user_id"], c.user_id.as_str());
    assert_eq!(assigned[0]["agent_id"], near_id);
    assert_eq!(assigned[0]["agent_user_id"], near.user_id.as_str());
    assert_eq!(assigned[0]["agent_name"], "Test Agent");

    // The agent sees the work and may read the order; the other agent may not.
    let r = app
        .get("/api/v1/delivery/assignments", Some(&near.token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{}", r.text);
    assert_eq!(items[0]["id"], delivery_id.as_str());
    assert_eq!(items[0]["order_id"], order_id.as_str());
    assert_eq!(items[0]["status"], "assigned");
    assert_eq!(items[0]["address"]["line1"], "12 MG Road");
    assert_eq!(items[0]["items"][0]["name"], d["items"][0]["name"]);
    let r = app
        .get("/api/v1/delivery/assignments", Some(&far.token))
        .await;
    assert_eq!(r.body["items"], json!([]), "{}", r.text);
    assert_eq!(get_order(app, &near.token, &order_id).await.status, 200);
    get_order(app, &far.token, &order_id)
        .await
        .assert_error(404, "not_found");
    step(app, &far, &delivery_id, "picked_up")
        .await
        .assert_error(404, "not_found");
    step(app, &near, "dlv_unknown", "picked_up")
        .await
        .assert_error(404, "not_found");

    // A busy agent cannot leave or re-announce itself.
    set_status(app, &near, "offline")
        .await
        .assert_error(409, "conflict");
    set_status(app, &near, "available")
        .await
        .assert_error(409, "conflict");

    // Skipped steps and unknown values.
    step(app, &near, &delivery_id, "in_transit")
        .await
        .assert_error(409, "invalid_transition");
    step(app, &near, &delivery_id, "delivered")
        .await
        .assert_error(409, "invalid_transition");
    step(app, &near, &delivery_id, "teleported")
        .await
        .assert_invalid_field("status");
    step(app, &near, &delivery_id, "assigned")
        .await
        .assert_invalid_field("status");

    let track_url = format!("/api/v1/delivery/track/{order_id}");
    let t = app.get(&track_url, Some(&c.token)).await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(t.body["status"], "assigned");
    assert_eq!(t.body["agent"]["name"], "Test Agent");
    assert_eq!(t.body["agent"]["phone"], near.phone.as_str());
    assert_eq!(t.body["path"], json!([]));
    assert_eq!(t.body["last_location"]["lat"], NEAR.0);

    // Picked up: the order is out for delivery.
    let r = step(app, &near, &delivery_id, "picked_up").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], delivery_id.as_str());
    assert_eq!(r.body["status"], "picked_up");
    assert!(r.body["picked_up_at"].is_string());
    let o = get_order(app, &c.token, &order_id).await;
    assert_eq!(o.body["status"], "out_for_delivery", "{}", o.text);
    step(app, &near, &delivery_id, "picked_up")
        .await
        .assert_error(409, "invalid_transition");

    // Location updates make the path and reach the customer as events.
    let p1 = (12.9760, 77.5990);
    let p2 = (12.9700, 77.5920);
    locate(app, &near, p1).await;
    locate(app, &near, p2).await;
    let t = app.get(&track_url, Some(&c.token)).await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(t.body["status"], "picked_up");
    let path = t.body["path"].as_array().expect("path");
    assert_eq!(path.len(), 2, "{}", t.text);
    assert_eq!(
        (path[0]["lat"].clone(), path[0]["lon"].clone()),
        (json!(p1.0), json!(p1.1))
    );
    assert_eq!(
        (path[1]["lat"].clone(), path[1]["lon"].clone()),
        (json!(p2.0), json!(p2.1))
    );
    assert!(path[0]["at"].is_string());
    assert_eq!(t.body["last_location"]["lat"], p2.0);
    assert!(t.body["estimated_delivery_at"].is_string());
    let located = delivery_events(app, "delivery.location_updated").await;
    let last = located.last().expect("a location event");
    assert_eq!(last["delivery_id"], delivery_id.as_str());
    assert_eq!(last["order_id"], order_id.as_str());
    assert_eq!(last["user_id"], c.user_id.as_str());
    assert_eq!(last["lat"], p2.0);

    let r = step(app, &near, &delivery_id, "in_transit").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "in_transit");
    step(app, &near, &delivery_id, "in_transit")
        .await
        .assert_error(409, "invalid_transition");
    let r = step(app, &near, &delivery_id, "delivered").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "delivered");
    assert!(r.body["delivered_at"].is_string());
    step(app, &near, &delivery_id, "delivered")
        .await
        .assert_error(409, "invalid_transition");

    let o = get_order(app, &c.token, &order_id).await;
    assert_eq!(o.body["status"], "delivered", "{}", o.text);
    assert_eq!(me(app, &near).await["status"], "available");
    let r = app
        .get("/api/v1/delivery/assignments", Some(&near.token))
        .await;
    assert_eq!(r.body["items"], json!([]));
    // Finished: the last location is where the path ended, even if the agent moves on.
    locate(app, &near, FAR).await;
    let t = app.get(&track_url, Some(&c.token)).await;
    assert_eq!(t.body["status"], "delivered");
    assert_eq!(t.body["path"].as_array().map(Vec::len), Some(2));
    assert_eq!(t.body["last_location"]["lat"], p2.0);

    let changes: Vec<(String, String)> = delivery_events(app, "delivery.status_changed")
        .await
        .iter()
        .filter(|e| e["delivery_id"] == delivery_id.as_str())
        .map(|e| {
            assert_eq!(e["order_id"], order_id.as_str());
            assert_eq!(e["user_id"], c.user_id.as_str());
            assert_eq!(e["agent_id"], near_id);
            (
                e["from"].as_str().unwrap_or_default().to_string(),
                e["to"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("assigned", "picked_up"),
        ("picked_up", "in_transit"),
        ("in_transit", "delivered"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(changes, expected);
});

backend_test!(
    waiting_deliveries_go_to_the_next_free_agent_oldest_first,
    |app| {
        let admin = app.admin_token().await;
        let product = new_product(app, &admin, 4500, 10).await;
        let (c1, a1) = shopper(app, &product, 1).await;
        let (c2, a2) = shopper(app, &product, 1).await;
        let agent = new_agent(app, &admin).await;
        me(app, &agent).await; // offline: no one to assign

        let first = preparing_order(app, &admin, &c1, &a1).await;
        let d1 = wait_delivery(app, &admin, &first, "unassigned").await;
        assert!(
            d1["agent_id"].is_null() && d1["assigned_at"].is_null(),
            "{d1}"
        );
        let second = preparing_order(app, &admin, &c2, &a2).await;
        wait_delivery(app, &admin, &second, "unassigned").await;
        let t = app
            .get(&format!("/api/v1/delivery/track/{first}"), Some(&c1.token))
            .await;
        assert_eq!(t.body["status"], "unassigned", "{}", t.text);
        assert!(t.body["agent"].is_null());

        // Going available takes the oldest waiting delivery at once (no location needed).
        let p = available(app, &agent).await;
        assert_eq!(p["status"], "busy", "{p}");
        let d1 = wait_delivery(app, &admin, &first, "assigned").await;
        assert_eq!(d1["agent_id"], p["id"]);
        assert_eq!(
            delivery_of(app, &admin, &second).await.expect("second")["status"],
            "unassigned"
        );
        assert_eq!(get_order(app, &agent.token, &first).await.status, 200);

        // Finishing it takes the next one.
        let id1 = d1["id"].as_str().expect("id").to_string();
        for s in ["picked_up", "in_transit", "delivered"] {
            let r = step(app, &agent, &id1, s).await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        let d2 = wait_delivery(app, &admin, &second, "assigned").await;
        assert_eq!(d2["agent_id"], p["id"]);
        assert_eq!(me(app, &agent).await["status"], "busy");
        let r = app
            .get("/api/v1/delivery/assignments", Some(&agent.token))
            .await;
        assert_eq!(
            r.body["items"][0]["order_id"],
            second.as_str(),
            "{}",
            r.text
        );
        assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    }
);

backend_test!(tracking_is_for_the_owner_and_admins, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 4500, 10).await;
    let (c, address) = shopper(app, &product, 1).await;
    let stranger = app.customer().await;
    let agent = new_agent(app, &admin).await;
    let order_id = place(app, &c, &address, "cod").await;
    let url = format!("/api/v1/delivery/track/{order_id}");

    // Before preparing there is no delivery yet.
    let t = app.get(&url, Some(&c.token)).await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(t.body["order_id"], order_id.as_str());
    assert_eq!(t.body["status"], "unassigned");
    assert_eq!(t.body["order_status"], "confirmed");
    assert!(t.body["delivery_id"].is_null() && t.body["agent"].is_null());
    assert!(t.body["last_location"].is_null());
    assert_eq!(t.body["path"], json!([]));
    assert!(t.body["estimated_delivery_at"].is_string());

    app.get(&url, Some(&stranger.token))
        .await
        .assert_error(404, "not_found");
    app.get("/api/v1/delivery/track/ord_nope", Some(&c.token))
        .await
        .assert_error(404, "not_found");
    app.get("/api/v1/delivery/track/bad%20id", Some(&admin))
        .await
        .assert_error(404, "not_found");
    app.get(&url, Some(&agent.token))
        .await
        .assert_error(403, "forbidden");
    app.get(&url, None).await.assert_error(401, "unauthorized");

    let r = order_status(app, &admin, &order_id, "preparing").await;
    assert_eq!(r.status, 200, "{}", r.text);
    wait_delivery(app, &admin, &order_id, "unassigned").await;
    let t = app.get(&url, Some(&admin)).await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(t.body["status"], "unassigned");
    assert!(t.body["delivery_id"].is_string());
    let t = app.get(&url, Some(&c.token)).await;
    assert_eq!(t.body["status"], "unassigned", "{}", t.text);
    app.get(&url, Some(&stranger.token))
        .await
        .assert_error(404, "not_found");
});

backend_test!(cancelling_a_preparing_order_cancels_its_delivery, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 4500, 10).await;
    let (c1, a1) = shopper(app, &product, 1).await;
    let (c2, a2) = shopper(app, &product, 1).await;
    let agent = new_agent(app, &admin).await;
    let agent_id = available(app, &agent).await["id"].clone();

    let first = preparing_order(app, &admin, &c1, &a1).await;
    let d1 = wait_delivery(app, &admin, &first, "assigned").await;
    assert_eq!(d1["agent_id"], agent_id);
    // A second order waits for the only agent.
    let second = preparing_order(app, &admin, &c2, &a2).await;
    wait_delivery(app, &admin, &second, "unassigned").await;

    let r = app
        .post(
            &format!("/api/v1/orders/{first}/cancel"),
            Some(&c1.token),
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d1 = wait_delivery(app, &admin, &first, "cancelled").await;
    assert!(d1["cancelled_at"].is_string(), "{d1}");
    // The freed agent took the waiting delivery.
    let d2 = wait_delivery(app, &admin, &second, "assigned").await;
    assert_eq!(d2["agent_id"], agent_id);
    let id1 = d1["id"].as_str().expect("id").to_string();
    step(app, &agent, &id1, "picked_up")
        .await
        .assert_error(409, "invalid_transition");
    let t = app
        .get(&format!("/api/v1/delivery/track/{first}"), Some(&c1.token))
        .await;
    assert_eq!(t.body["status"], "cancelled", "{}", t.text);
    let cancelled: Vec<Value> = delivery_events(app, "delivery.status_changed")
        .await
        .into_iter()
        .filter(|e| e["to"] == "cancelled")
        .collect();
    assert_eq!(cancelled.len(), 1, "{cancelled:?}");
    assert_eq!(cancelled[0]["order_id"], first.as_str());
    assert_eq!(cancelled[0]["from"], "assigned");

    // Cancelling the second one leaves the agent simply available.
    let r = cancel_order(app, &admin, &second).await;
    assert_eq!(r.status, 200, "{}", r.text);
    wait_delivery(app, &admin, &second, "cancelled").await;
    wait_agent_status(app, &agent, "available").await;

    // An order cancelled before it was prepared never gets a delivery.
    let (c3, a3) = shopper(app, &product, 1).await;
    let third = place(app, &c3, &a3, "cod").await;
    let r = cancel_order(app, &c3.token, &third).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let t = app
        .get(&format!("/api/v1/delivery/track/{third}"), Some(&c3.token))
        .await;
    assert_eq!(t.body["status"], "cancelled", "{}", t.text);
    assert!(t.body["delivery_id"].is_null());
    settled(app).await;
    assert!(delivery_of(app, &admin, &third).await.is_none());
});

backend_test!(admins_list_filter_and_reassign_deliveries, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 4500, 10).await;
    let (c1, a1) = shopper(app, &product, 1).await;
    let (c2, a2) = shopper(app, &product, 1).await;
    let first_agent = new_agent(app, &admin).await;
    let second_agent = new_agent(app, &admin).await;
    let first_id = available(app, &first_agent).await["id"].clone();
    let second_id = me(app, &second_agent).await["id"].clone(); // offline

    let o1 = preparing_order(app, &admin, &c1, &a1).await;
    let d1 = wait_delivery(app, &admin, &o1, "assigned").await;
    assert_eq!(d1["agent_id"], first_id);
    let o2 = preparing_order(app, &admin, &c2, &a2).await;
    let d2 = wait_delivery(app, &admin, &o2, "unassigned").await;
    let (id1, id2) = (
        d1["id"].as_str().expect("id").to_string(),
        d2["id"].as_str().expect("id").to_string(),
    );

    // Listing: newest first, paged, filtered.
    let r = app.get("/api/v1/admin/deliveries", Some(&admin)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["total"], 2);
    assert_eq!(
        (r.body["page"].clone(), r.body["page_size"].clone()),
        (json!(1), json!(20))
    );
    assert_eq!(r.body["items"][0]["id"], id2.as_str());
    assert_eq!(r.body["items"][1]["id"], id1.as_str());
    let r = app
        .get("/api/v1/admin/deliveries?status=assigned", Some(&admin))
        .await;
    assert_eq!(r.body["total"], 1, "{}", r.text);
    assert_eq!(r.body["items"][0]["id"], id1.as_str());
    let r = app
        .get("/api/v1/admin/deliveries?page=2&page_size=1", Some(&admin))
        .await;
    assert_eq!(r.body["items"][0]["id"], id1.as_str(), "{}", r.text);
    let r = app
        .get("/api/v1/admin/deliveries?page=9", Some(&admin))
        .await;
    assert_eq!(
        (r.body["items"].clone(), r.body["total"].clone()),
        (json!([]), json!(2))
    );
    app.get("/api/v1/admin/deliveries?status=lost", Some(&admin))
        .await
        .assert_invalid_field("status");
    app.get("/api/v1/admin/deliveries?page_size=0", Some(&admin))
        .await
        .assert_invalid_field("page_size");
    app.get("/api/v1/admin/deliveries", Some(&c1.token))
        .await
        .assert_error(403, "forbidden");

    // Reassignment rules.
    let reassign = |id: String, agent_id: Value| {
        let admin = admin.clone();
        async move {
            app.put(
                &format!("/api/v1/admin/deliveries/{id}/reassign"),
                Some(&admin),
                json!({ "agent_id": agent_id }),
            )
            .await
        }
    };
    reassign(id1.clone(), second_id.clone())
        .await
        .assert_error(409, "conflict"); // offline
    reassign(id1.clone(), json!("agt_nobody"))
        .await
        .assert_error(404, "not_found");
    reassign("dlv_nope".into(), second_id.clone())
        .await
        .assert_error(404, "not_found");
    reassign(id1.clone(), json!(42))
        .await
        .assert_invalid_field("agent_id");
    // Going available takes the waiting second delivery; the agent is then busy.
    assert_eq!(available(app, &second_agent).await["status"], "busy");
    wait_delivery(app, &admin, &o2, "assigned").await;
    reassign(id1.clone(), second_id.clone())
        .await
        .assert_error(409, "conflict"); // busy
                                        // Free the second agent by giving its delivery back to... nobody is free: deliver it.
    for s in ["picked_up", "in_transit", "delivered"] {
        let r = step(app, &second_agent, &id2, s).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(me(app, &second_agent).await["status"], "available");

    let r = reassign(id1.clone(), second_id.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["agent_id"], second_id);
    assert_eq!(r.body["status"], "assigned");
    assert_eq!(
        me(app, &first_agent).await["status"],
        "available",
        "the old agent is freed"
    );
    assert_eq!(me(app, &second_agent).await["status"], "busy");
    assert_eq!(get_order(app, &second_agent.token, &o1).await.status, 200);
    let r = app
        .get("/api/v1/delivery/assignments", Some(&first_agent.token))
        .await;
    assert_eq!(r.body["items"], json!([]));
    step(app, &first_agent, &id1, "picked_up")
        .await
        .assert_error(404, "not_found");
    let last = delivery_events(app, "delivery.assigned")
        .await
        .into_iter()
        .last()
        .expect("an assignment event");
    assert_eq!(last["delivery_id"], id1.as_str());
    assert_eq!(last["agent_id"], second_id);
    assert_eq!(last["agent_user_id"], second_agent.user_id.as_str());
    // The same agent again is a no-op.
    let r = reassign(id1.clone(), second_id.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // After pickup it cannot move; delivered ones neither.
    let r = step(app, &second_agent, &id1, "picked_up").await;
    assert_eq!(r.status, 200, "{}", r.text);
    reassign(id1.clone(), first_id.clone())
        .await
        .assert_error(409, "invalid_transition");
    reassign(id2.clone(), first_id.clone())
        .await
        .assert_error(409, "invalid_transition");

    // An admin finishing the order by hand completes the delivery and frees the agent.
    let r = order_status(app, &admin, &o1, "delivered").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = wait_delivery(app, &admin, &o1, "delivered").await;
    assert!(d["delivered_at"].is_string());
    wait_agent_status(app, &second_agent, "available").await;
});

//! The `auth` plugin through the gateway: signup, login and lockout, token rotation,
//! logout, sessions, the profile, addresses, admin user management, the bootstrap
//! admin, password changes, brute-force limits under concurrency and proven phones.

use crate::helpers::*;
use base64::Engine;
use serde_json::Value;

const PASSWORD: &str = "secret-pass-1";

fn token(r: &Resp, name: &str) -> String {
    r.body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {}", r.text))
        .to_string()
}

/// The claims of a JWT (unverified), e.g. to read `sid`.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// The JWT with its claims replaced and the original signature kept.
fn with_claims(jwt: &str, claims: &Value) -> String {
    let mut parts: Vec<String> = jwt.split('.').map(String::from).collect();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(claims).expect("claims serialise"));
    parts.join(".")
}

async fn signup(app: &TestApp, email: &str, password: &str) -> Resp {
    app.post(
        "/api/v1/auth/signup",
        None,
        json!({"email": email, "password": password, "name": "Asha Rao"}),
    )
    .await
}

async fn login(app: &TestApp, email: &str, password: &str) -> Resp {
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.get("/api/v1/auth/me", Some(token)).await.status
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Resp {
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({ "refresh_token": refresh_token }),
    )
    .await
}

fn home() -> Value {
    json!({"label": "Home", "line1": "12, 4th Cross, Indiranagar", "line2": "Near CMH Road",
           "city": "Bengaluru", "pincode": "560038", "lat": 12.9784, "lon": 77.6408})
}

fn office() -> Value {
    json!({"label": "Office", "line1": "Prestige Tech Park", "city": "Bengaluru",
           "pincode": "560103", "lat": 12.9352, "lon": 77.6950})
}

fn assert_token_shape(r: &Resp) {
    assert!(
        r.body["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{}",
        r.text
    );
    assert!(
        r.body["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{}",
        r.text
    );
    assert_eq!(r.body["token_type"], "Bearer", "{}", r.text);
    assert!(
        r.body["expires_in"].as_u64().is_some_and(|n| n > 0),
        "{}",
        r.text
    );
    let user = &r.body["user"];
    for key in [
        "id",
        "email",
        "phone",
        "phone_verified",
        "name",
        "role",
        "created_at",
    ] {
        assert!(user.get(key).is_some(), "user lacks {key}: {}", r.text);
    }
    assert!(user.get("password_hash").is_none(), "{}", r.text);
}

// ---------------------------------------------------------------- signup

backend_test!(signup_creates_a_customer_with_tokens, |app| {
    let email = format!("{}@Example.IN", app.unique("Asha"));
    let r = app
        .post(
            "/api/v1/auth/signup",
            None,
            json!({"email": email, "password": PASSWORD, "name": "Asha Rao",
                   "phone": "+919876543210"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_token_shape(&r);
    let user = &r.body["user"];
    assert!(user["id"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(user["email"], email.to_lowercase());
    assert_eq!(user["role"], "customer");
    assert_eq!(user["name"], "Asha Rao");
    assert_eq!(user["phone"], "+919876543210");

    let access = token(&r, "access_token");
    let jwt = claims(&access);
    assert_eq!(jwt["sub"], user["id"]);
    assert_eq!(jwt["role"], "customer");
    assert!(jwt["sid"].is_string() && jwt["exp"].is_number());

    let me = app.get("/api/v1/auth/me", Some(&access)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["id"], user["id"]);
    assert_eq!(me.body["email"], email.to_lowercase());
});

backend_test!(signup_never_grants_another_role, |app| {
    let email = format!("{}@x.in", app.unique("sneaky"));
    let r = app
        .post(
            "/api/v1/auth/signup",
            None,
            json!({"email": email, "password": PASSWORD, "name": "S", "role": "admin"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["user"]["role"], "customer");
    let t = token(&r, "access_token");
    assert_error(
        &app.get("/api/v1/admin/users", Some(&t)).await,
        403,
        "forbidden",
    );
});

backend_test!(signup_rejects_a_taken_email_in_any_case, |app| {
    let name = app.unique("dup");
    let first = signup(app, &format!("{name}@x.in"), PASSWORD).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = signup(app, &format!("{}@X.IN", name.to_uppercase()), PASSWORD).await;
    assert_error(&again, 409, "already_exists");
    let padded = signup(app, &format!("  {name}@x.in "), PASSWORD).await;
    assert_error(&padded, 409, "already_exists");
});

backend_test!(signup_validates_its_body, |app| {
    let path = "/api/v1/auth/signup";
    let email = format!("{}@x.in", app.unique("v"));

    let body =
        serde_json::to_vec(&json!({"email": email, "password": PASSWORD, "name": "A"})).unwrap();
    app.assert_rejects_bad_bodies("POST", path, None, &body)
        .await;

    let r = app
        .post(
            path,
            None,
            json!({"email": 5, "password": PASSWORD, "name": "A"}),
        )
        .await;
    assert_invalid_field(&r, "email");
    let r = app
        .post(
            path,
            None,
            json!({"email": email, "password": 12345678, "name": "A"}),
        )
        .await;
    assert_invalid_field(&r, "password");
    let r = app
        .post(path, None, json!({"email": email, "name": "A"}))
        .await;
    assert_invalid_field(&r, "password");
    let r = app
        .post(
            path,
            None,
            json!({"email": email, "password": "short7!", "name": "A"}),
        )
        .await;
    assert_invalid_field(&r, "password");
    let long = "p".repeat(129);
    let r = app
        .post(
            path,
            None,
            json!({"email": email, "password": long, "name": "A"}),
        )
        .await;
    assert_invalid_field(&r, "password");
    let r = app
        .post(
            path,
            None,
            json!({"email": "not-an-email", "password": PASSWORD, "name": "A"}),
        )
        .await;
    assert_invalid_field(&r, "email");
    let r = app
        .post(
            path,
            None,
            json!({"email": email, "password": PASSWORD, "name": " "}),
        )
        .await;
    assert_invalid_field(&r, "name");
    let r = app
        .post(
            path,
            None,
            json!({"email": email, "password": PASSWORD, "name": "n".repeat(101)}),
        )
        .await;
    assert_invalid_field(&r, "name");
    let r = app
        .post(
            path,
            None,
            json!({"email": email, "password": PASSWORD, "name": "A", "phone": "98765 43210"}),
        )
        .await;
    assert_invalid_field(&r, "phone");
    let r = app.post(path, None, json!(["not", "an", "object"])).await;
    assert_error(&r, 400, "validation_failed");

    // Nothing above created the account.
    assert_eq!(signup(app, &email, PASSWORD).await.status, 201);
});

// ---------------------------------------------------------------- login

backend_test!(login_returns_the_same_shape, |app| {
    let c = app.customer().await;
    let r = login(app, &c.email.to_uppercase(), &c.password).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_token_shape(&r);
    assert_eq!(r.body["user"]["id"], c.user_id.as_str());
    assert_eq!(me_status(app, &token(&r, "access_token")).await, 200);
});

backend_test!(
    login_rejects_wrong_password_and_unknown_email_alike,
    |app| {
        let c = app.customer().await;
        let wrong = login(app, &c.email, "not-the-password").await;
        assert_error(&wrong, 401, "invalid_credentials");
        let unknown = login(app, &format!("{}@x.in", app.unique("ghost")), PASSWORD).await;
        assert_error(&unknown, 401, "invalid_credentials");
        assert_eq!(
            wrong.body["error"]["message"],
            unknown.body["error"]["message"]
        );
    }
);

backend_test!(login_validates_its_body, |app| {
    let path = "/api/v1/auth/login";
    app.assert_rejects_bad_bodies("POST", path, None, br#"{"email":"a@x.in","password":"p"}"#)
        .await;
    let r = app.post(path, None, json!({"email": "a@x.in"})).await;
    assert_invalid_field(&r, "password");
    let r = app
        .post(
            path,
            None,
            json!({"email": ["a@x.in"], "password": PASSWORD}),
        )
        .await;
    assert_invalid_field(&r, "email");
    // Longer than any stored email: simply unknown.
    let long = format!("{}@x.in", "a".repeat(600));
    assert_error(
        &login(app, &long, PASSWORD).await,
        401,
        "invalid_credentials",
    );
});

backend_test!(five_failures_lock_the_account_but_not_others, |app| {
    let victim = app.customer().await;
    let bystander = app.customer().await;
    for _ in 0..5 {
        let r = login(app, &victim.email, "wrong-password").await;
        assert_error(&r, 401, "invalid_credentials");
    }
    // Locked: even the right password (in another case) is refused.
    let r = login(app, &victim.email, &victim.password).await;
    assert_error(&r, 429, "rate_limited");
    let r = login(app, &victim.email.to_uppercase(), &victim.password).await;
    assert_error(&r, 429, "rate_limited");
    // Another account is unaffected, and the victim's live session still works.
    let r = login(app, &bystander.email, &bystander.password).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(me_status(app, &victim.token).await, 200);
});

backend_test!(a_successful_login_resets_the_failure_count, |app| {
    let c = app.customer().await;
    for _ in 0..4 {
        assert_eq!(login(app, &c.email, "wrong-password").await.status, 401);
    }
    assert_eq!(login(app, &c.email, &c.password).await.status, 200);
    for _ in 0..4 {
        assert_eq!(login(app, &c.email, "wrong-password").await.status, 401);
    }
    let r = login(app, &c.email, &c.password).await;
    assert_eq!(r.status, 200, "{}", r.text);
});

backend_test!(unknown_emails_lock_too, |app| {
    let ghost = format!("{}@x.in", app.unique("ghost"));
    for _ in 0..5 {
        assert_error(
            &login(app, &ghost, PASSWORD).await,
            401,
            "invalid_credentials",
        );
    }
    assert_error(&login(app, &ghost, PASSWORD).await, 429, "rate_limited");
});

// ---------------------------------------------------------------- tokens

backend_test!(refresh_rotates_and_a_replay_kills_the_session, |app| {
    let c = app.customer().await;
    let r = refresh(app, &c.refresh_token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_token_shape(&r);
    assert_eq!(r.body["user"]["id"], c.user_id.as_str());
    let new_access = token(&r, "access_token");
    let new_refresh = token(&r, "refresh_token");
    assert_ne!(new_refresh, c.refresh_token);
    assert_eq!(claims(&new_access)["sid"], claims(&c.token)["sid"]);
    assert_eq!(me_status(app, &new_access).await, 200);

    // The rotated token is dead, and presenting it kills the whole session.
    assert_error(&refresh(app, &c.refresh_token).await, 401, "unauthorized");
    assert_error(&refresh(app, &new_refresh).await, 401, "unauthorized");
    assert_eq!(me_status(app, &new_access).await, 401);
});

backend_test!(refresh_rejects_bad_input, |app| {
    assert_error(&refresh(app, "not-a-token").await, 401, "unauthorized");
    let c = app.customer().await;
    // An access token is not a refresh token.
    assert_error(&refresh(app, &c.token).await, 401, "unauthorized");
    let r = app.post("/api/v1/auth/refresh", None, json!({})).await;
    assert_invalid_field(&r, "refresh_token");
    let r = app
        .post("/api/v1/auth/refresh", None, json!({"refresh_token": 42}))
        .await;
    assert_invalid_field(&r, "refresh_token");
    app.assert_rejects_bad_bodies("POST", "/api/v1/auth/refresh", None, b"{}")
        .await;
});

backend_test!(bad_tokens_are_refused_before_the_plugin, |app| {
    let c = app.customer().await;
    assert_error(&app.get("/api/v1/auth/me", None).await, 401, "unauthorized");
    assert_error(
        &app.get("/api/v1/auth/me", Some("garbage")).await,
        401,
        "unauthorized",
    );
    // A refresh token is not a bearer token.
    assert_error(
        &app.get("/api/v1/auth/me", Some(&c.refresh_token)).await,
        401,
        "unauthorized",
    );

    // Forged: claims changed, signature kept.
    let mut forged = claims(&c.token);
    forged["role"] = json!("admin");
    let forged = with_claims(&c.token, &forged);
    assert_error(
        &app.get("/api/v1/auth/me", Some(&forged)).await,
        401,
        "unauthorized",
    );
    assert_error(
        &app.get("/api/v1/admin/users", Some(&forged)).await,
        401,
        "unauthorized",
    );

    // Forged: signature tampered.
    let mut bad_sig = c.token.clone();
    let last = bad_sig.pop().unwrap();
    bad_sig.push(if last == 'A' { 'B' } else { 'A' });
    assert_error(
        &app.get("/api/v1/auth/me", Some(&bad_sig)).await,
        401,
        "unauthorized",
    );

    // Edited exp: the signature no longer matches, so a token cannot be extended.
    let mut extended = claims(&c.token);
    extended["exp"] = json!(now_secs() + 86_400 * 365);
    let extended = with_claims(&c.token, &extended);
    assert_error(
        &app.get("/api/v1/auth/me", Some(&extended)).await,
        401,
        "unauthorized",
    );

    // Expired: properly signed, live session, exp in the past.
    let sid = claims(&c.token)["sid"].as_str().unwrap().to_string();
    let live = app.sign(&c.user_id, "customer", &sid, now_secs() + 600);
    assert_eq!(me_status(app, &live).await, 200, "the signing helper works");
    let expired = app.sign(&c.user_id, "customer", &sid, now_secs() - 60);
    assert_error(
        &app.get("/api/v1/auth/me", Some(&expired)).await,
        401,
        "unauthorized",
    );

    // Forged: signed with another key.
    let claims_json = claims(&c.token);
    let other_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims_json,
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-host-key"),
    )
    .unwrap();
    assert_error(
        &app.get("/api/v1/auth/me", Some(&other_key)).await,
        401,
        "unauthorized",
    );

    // Every authenticated route refuses a missing token.
    for path in [
        "/api/v1/auth/sessions",
        "/api/v1/addresses",
        "/api/v1/admin/users",
    ] {
        assert_error(&app.get(path, None).await, 401, "unauthorized");
    }
    assert_error(
        &app.post("/api/v1/auth/logout", None, json!({})).await,
        401,
        "unauthorized",
    );
    assert_error(
        &app.post("/api/v1/auth/logout-all", None, json!({})).await,
        401,
        "unauthorized",
    );
    assert_error(
        &app.delete("/api/v1/auth/sessions/x", None).await,
        401,
        "unauthorized",
    );
    assert_error(
        &app.patch("/api/v1/auth/me", None, json!({"name": "X"}))
            .await,
        401,
        "unauthorized",
    );
});

backend_test!(logout_kills_the_session_and_its_refresh_token, |app| {
    let c = app.customer().await;
    let other = login(app, &c.email, &c.password).await;
    assert_eq!(other.status, 200, "{}", other.text);
    let other_access = token(&other, "access_token");

    let r = app
        .post("/api/v1/auth/logout", Some(&c.token), json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_error(
        &app.get("/api/v1/auth/me", Some(&c.token)).await,
        401,
        "unauthorized",
    );
    assert_error(&refresh(app, &c.refresh_token).await, 401, "unauthorized");
    // Only that session ended.
    assert_eq!(me_status(app, &other_access).await, 200);
});

backend_test!(logout_all_kills_every_session, |app| {
    let c = app.customer().await;
    let second = login(app, &c.email, &c.password).await;
    let second_access = token(&second, "access_token");
    let second_refresh = token(&second, "refresh_token");
    let bystander = app.customer().await;

    let r = app
        .post("/api/v1/auth/logout-all", Some(&second_access), json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(me_status(app, &c.token).await, 401);
    assert_eq!(me_status(app, &second_access).await, 401);
    assert_error(&refresh(app, &c.refresh_token).await, 401, "unauthorized");
    assert_error(&refresh(app, &second_refresh).await, 401, "unauthorized");
    assert_eq!(me_status(app, &bystander.token).await, 200);
    // The account itself still works.
    assert_eq!(login(app, &c.email, &c.password).await.status, 200);
});

// ---------------------------------------------------------------- sessions

backend_test!(sessions_list_marks_exactly_the_current_one, |app| {
    let c = app.customer().await;
    let second = login(app, &c.email, &c.password).await;
    let second_access = token(&second, "access_token");

    let r = app.get("/api/v1/auth/sessions", Some(&second_access)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{}", r.text);
    for s in items {
        for key in ["id", "created_at", "last_used_at", "user_agent", "current"] {
            assert!(s.get(key).is_some(), "session lacks {key}: {}", r.text);
        }
    }
    let current: Vec<&Value> = items.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{}", r.text);
    assert_eq!(current[0]["id"], claims(&second_access)["sid"]);

    // From the first session's point of view the other one is current.
    let r = app.get("/api/v1/auth/sessions", Some(&c.token)).await;
    let items = r.body["items"].as_array().expect("items");
    let current: Vec<&Value> = items.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{}", r.text);
    assert_eq!(current[0]["id"], claims(&c.token)["sid"]);

    // Another user's sessions are not listed.
    let other = app.customer().await;
    let r = app.get("/api/v1/auth/sessions", Some(&other.token)).await;
    assert_eq!(
        r.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
});

backend_test!(deleting_a_session_ends_only_own_sessions, |app| {
    let c = app.customer().await;
    let second = login(app, &c.email, &c.password).await;
    let second_access = token(&second, "access_token");
    let second_sid = claims(&second_access)["sid"].as_str().unwrap().to_string();
    let other = app.customer().await;
    let other_sid = claims(&other.token)["sid"].as_str().unwrap().to_string();

    // Another user's session is 404 and stays alive.
    let r = app
        .delete(
            &format!("/api/v1/auth/sessions/{other_sid}"),
            Some(&c.token),
        )
        .await;
    assert_error(&r, 404, "not_found");
    assert_eq!(me_status(app, &other.token).await, 200);
    let r = app
        .delete("/api/v1/auth/sessions/ses_unknown", Some(&c.token))
        .await;
    assert_error(&r, 404, "not_found");

    let r = app
        .delete(
            &format!("/api/v1/auth/sessions/{second_sid}"),
            Some(&c.token),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(me_status(app, &second_access).await, 401);
    assert_eq!(me_status(app, &c.token).await, 200);
    // Already ended.
    let r = app
        .delete(
            &format!("/api/v1/auth/sessions/{second_sid}"),
            Some(&c.token),
        )
        .await;
    assert_error(&r, 404, "not_found");
    let r = app.get("/api/v1/auth/sessions", Some(&c.token)).await;
    assert_eq!(
        r.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
});

// ---------------------------------------------------------------- me

backend_test!(me_is_patched_without_changing_role_or_email, |app| {
    let c = app.customer().await;
    let r = app
        .patch(
            "/api/v1/auth/me",
            Some(&c.token),
            json!({"name": "  Ravi Kumar ", "phone": "+919812345678", "role": "admin",
                   "email": "evil@x.in"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "Ravi Kumar");
    assert_eq!(r.body["phone"], "+919812345678");
    // A stated phone is unproven.
    assert_eq!(r.body["phone_verified"], false);
    assert_eq!(r.body["role"], "customer");
    assert_eq!(r.body["email"], c.email.to_lowercase().as_str());
    for key in ["id", "email", "phone", "name", "role", "created_at"] {
        assert!(r.body.get(key).is_some(), "user lacks {key}: {}", r.text);
    }

    let me = app.get("/api/v1/auth/me", Some(&c.token)).await;
    assert_eq!(me.body["role"], "customer");
    assert_eq!(me.body["name"], "Ravi Kumar");
    // Still a customer: the admin route is forbidden.
    assert_error(
        &app.get("/api/v1/admin/users", Some(&c.token)).await,
        403,
        "forbidden",
    );

    // Absent fields stay; phone null clears.
    let r = app
        .patch("/api/v1/auth/me", Some(&c.token), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["phone"], "+919812345678");
    let r = app
        .patch("/api/v1/auth/me", Some(&c.token), json!({"phone": null}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["phone"], Value::Null);
    assert_eq!(r.body["name"], "Ravi Kumar");
});

backend_test!(me_patch_validates, |app| {
    let c = app.customer().await;
    let t = Some(c.token.as_str());
    let before = app.get("/api/v1/auth/me", t).await;
    assert_eq!(before.status, 200, "{}", before.text);
    assert_invalid_field(
        &app.patch("/api/v1/auth/me", t, json!({"phone": "12345"}))
            .await,
        "phone",
    );
    assert_invalid_field(
        &app.patch("/api/v1/auth/me", t, json!({"name": ""})).await,
        "name",
    );
    assert_invalid_field(
        &app.patch("/api/v1/auth/me", t, json!({"name": null})).await,
        "name",
    );
    assert_invalid_field(
        &app.patch("/api/v1/auth/me", t, json!({"name": 7})).await,
        "name",
    );
    app.assert_rejects_bad_bodies("PATCH", "/api/v1/auth/me", t, br#"{"name":"B"}"#)
        .await;
    // Nothing changed.
    let after = app.get("/api/v1/auth/me", t).await;
    assert_eq!(after.body, before.body);
});

// ---------------------------------------------------------------- addresses

backend_test!(addresses_crud_and_default_switching, |app| {
    let c = app.customer().await;
    let t = Some(c.token.as_str());

    let r = app.get("/api/v1/addresses", t).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"], json!([]));

    // The first address becomes the default by itself.
    let r = app.post("/api/v1/addresses", t, home()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let home_id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["is_default"], true);
    assert_eq!(r.body["pincode"], "560038");
    assert_eq!(r.body["line2"], "Near CMH Road");
    assert_eq!(r.body["lat"], 12.9784);
    for key in [
        "id",
        "label",
        "line1",
        "line2",
        "city",
        "pincode",
        "lat",
        "lon",
        "is_default",
    ] {
        assert!(r.body.get(key).is_some(), "address lacks {key}: {}", r.text);
    }

    // The second is not, and has line2 null.
    let r = app.post("/api/v1/addresses", t, office()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let office_id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["is_default"], false);
    assert_eq!(r.body["line2"], Value::Null);

    // Making the office the default clears home.
    let mut body = office();
    body["is_default"] = json!(true);
    body["label"] = json!("Work");
    let r = app
        .put(&format!("/api/v1/addresses/{office_id}"), t, body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["is_default"], true);
    assert_eq!(r.body["label"], "Work");
    let list = app.get("/api/v1/addresses", t).await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let defaults: Vec<&Value> = items.iter().filter(|a| a["is_default"] == true).collect();
    assert_eq!(defaults.len(), 1, "{}", list.text);
    assert_eq!(defaults[0]["id"], office_id.as_str());

    // A new default from POST clears the office.
    let mut third = home();
    third["label"] = json!("Parents");
    third["is_default"] = json!(true);
    let r = app.post("/api/v1/addresses", t, third).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let parents_id = r.body["id"].as_str().unwrap().to_string();
    let list = app.get("/api/v1/addresses", t).await;
    let defaults: Vec<&Value> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["is_default"] == true)
        .collect();
    assert_eq!(defaults.len(), 1, "{}", list.text);
    assert_eq!(defaults[0]["id"], parents_id.as_str());

    // PUT is a full replace: line2 omitted becomes null; is_default omitted is kept.
    let r = app
        .put(&format!("/api/v1/addresses/{home_id}"), t, office())
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["line2"], Value::Null);
    assert_eq!(r.body["label"], "Office");
    assert_eq!(r.body["is_default"], false);

    // Delete the default: another address becomes the default.
    let r = app
        .delete(&format!("/api/v1/addresses/{parents_id}"), t)
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let list = app.get("/api/v1/addresses", t).await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items.iter().filter(|a| a["is_default"] == true).count(),
        1,
        "{}",
        list.text
    );

    let r = app
        .delete(&format!("/api/v1/addresses/{parents_id}"), t)
        .await;
    assert_error(&r, 404, "not_found");
    let r = app.put("/api/v1/addresses/adr_unknown", t, home()).await;
    assert_error(&r, 404, "not_found");
});

backend_test!(another_users_address_is_not_found, |app| {
    let owner = app.customer().await;
    let other = app.customer().await;
    let r = app
        .post("/api/v1/addresses", Some(&owner.token), home())
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/addresses/{id}");

    assert_error(
        &app.put(&path, Some(&other.token), office()).await,
        404,
        "not_found",
    );
    assert_error(
        &app.delete(&path, Some(&other.token)).await,
        404,
        "not_found",
    );
    let r = app.get("/api/v1/addresses", Some(&other.token)).await;
    assert_eq!(r.body["items"], json!([]));
    // Still there, unchanged, for the owner.
    let r = app.get("/api/v1/addresses", Some(&owner.token)).await;
    assert_eq!(r.body["items"][0]["label"], "Home");
    // A default at the other user does not touch the owner's default.
    let mut d = office();
    d["is_default"] = json!(true);
    assert_eq!(
        app.post("/api/v1/addresses", Some(&other.token), d)
            .await
            .status,
        201
    );
    let r = app.get("/api/v1/addresses", Some(&owner.token)).await;
    assert_eq!(r.body["items"][0]["is_default"], true);
});

backend_test!(addresses_validate_their_body, |app| {
    let c = app.customer().await;
    let t = Some(c.token.as_str());
    let path = "/api/v1/addresses";
    let with = |key: &str, value: Value| {
        let mut b = home();
        b[key] = value;
        b
    };
    assert_invalid_field(
        &app.post(path, t, with("pincode", json!(560038))).await,
        "pincode",
    );
    assert_invalid_field(
        &app.post(path, t, with("pincode", json!("56003"))).await,
        "pincode",
    );
    assert_invalid_field(
        &app.post(path, t, with("pincode", json!("5600381"))).await,
        "pincode",
    );
    assert_invalid_field(
        &app.post(path, t, with("pincode", json!("56003a"))).await,
        "pincode",
    );
    assert_invalid_field(&app.post(path, t, with("lat", json!(90.5))).await, "lat");
    assert_invalid_field(&app.post(path, t, with("lat", json!("12.9"))).await, "lat");
    assert_invalid_field(&app.post(path, t, with("lon", json!(-180.5))).await, "lon");
    assert_invalid_field(&app.post(path, t, with("label", json!(""))).await, "label");
    assert_invalid_field(
        &app.post(path, t, with("label", json!("l".repeat(51))))
            .await,
        "label",
    );
    assert_invalid_field(&app.post(path, t, with("line1", json!(" "))).await, "line1");
    assert_invalid_field(&app.post(path, t, with("city", json!(null))).await, "city");
    assert_invalid_field(
        &app.post(path, t, with("is_default", json!("yes"))).await,
        "is_default",
    );
    let mut missing = home();
    missing.as_object_mut().unwrap().remove("lon");
    assert_invalid_field(&app.post(path, t, missing).await, "lon");

    app.assert_rejects_bad_bodies("POST", path, t, &serde_json::to_vec(&home()).unwrap())
        .await;

    // Edges are accepted.
    let mut edge = with("lat", json!(-90));
    edge["lon"] = json!(180);
    let r = app.post(path, t, edge).await;
    assert_eq!(r.status, 201, "{}", r.text);

    // PUT validates the same way.
    let id = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .put(&format!("{path}/{id}"), t, with("pincode", json!(123456)))
        .await;
    assert_invalid_field(&r, "pincode");

    // Nothing invalid was stored.
    let r = app.get(path, t).await;
    assert_eq!(
        r.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
});

backend_test!(addresses_are_for_customers, |app| {
    let admin = app.admin_token().await;
    assert_error(
        &app.get("/api/v1/addresses", Some(&admin)).await,
        403,
        "forbidden",
    );
    assert_error(
        &app.post("/api/v1/addresses", Some(&admin), home()).await,
        403,
        "forbidden",
    );
    assert_error(
        &app.get("/api/v1/addresses", None).await,
        401,
        "unauthorized",
    );
});

// ---------------------------------------------------------------- admin

backend_test!(the_first_admin_comes_from_configuration, |app| {
    let admin = app.admin_token().await;
    let me = app.get("/api/v1/auth/me", Some(&admin)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["role"], "admin");
});

backend_test!(admins_create_users_of_any_role, |app| {
    let admin = app.admin_token().await;
    let email = format!("{}@kirana.in", app.unique("agent"));
    let r = app
        .post(
            "/api/v1/admin/users",
            Some(&admin),
            json!({"email": email, "password": PASSWORD, "name": "Ramesh", "role": "delivery_agent",
                   "phone": "+919900112233"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["role"], "delivery_agent");
    assert_eq!(r.body["phone"], "+919900112233");
    assert!(r.body.get("password_hash").is_none());

    let l = login(app, &email, PASSWORD).await;
    assert_eq!(l.status, 200, "{}", l.text);
    assert_eq!(l.body["user"]["role"], "delivery_agent");
    assert_eq!(claims(&token(&l, "access_token"))["role"], "delivery_agent");
    // A delivery agent is not a customer.
    let agent = token(&l, "access_token");
    assert_error(
        &app.get("/api/v1/addresses", Some(&agent)).await,
        403,
        "forbidden",
    );
    assert_eq!(me_status(app, &agent).await, 200);

    // Another admin can be made and can use admin routes.
    let admin2 = format!("{}@kirana.in", app.unique("ops"));
    let r = app
        .post(
            "/api/v1/admin/users",
            Some(&admin),
            json!({"email": admin2, "password": PASSWORD, "name": "Ops", "role": "admin"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let t2 = token(&login(app, &admin2, PASSWORD).await, "access_token");
    assert_eq!(app.get("/api/v1/admin/users", Some(&t2)).await.status, 200);
});

backend_test!(admin_user_creation_validates, |app| {
    let admin = app.admin_token().await;
    let t = Some(admin.as_str());
    let path = "/api/v1/admin/users";
    let email = format!("{}@kirana.in", app.unique("u"));
    let r = app
        .post(
            path,
            t,
            json!({"email": email, "password": PASSWORD, "name": "X", "role": "superuser"}),
        )
        .await;
    assert_invalid_field(&r, "role");
    let r = app
        .post(
            path,
            t,
            json!({"email": email, "password": PASSWORD, "name": "X"}),
        )
        .await;
    assert_invalid_field(&r, "role");
    let r = app
        .post(
            path,
            t,
            json!({"email": email, "password": "short", "name": "X", "role": "customer"}),
        )
        .await;
    assert_invalid_field(&r, "password");
    let r = app
        .raw("POST", path, t, Some("application/json"), b"[".to_vec())
        .await;
    assert_error(&r, 400, "invalid_json");
    let r = app.raw("POST", path, t, None, b"{}".to_vec()).await;
    assert_error(&r, 415, "unsupported_media_type");

    let c = app.customer().await;
    let r = app.post(path, t, json!({"email": c.email.to_uppercase(), "password": PASSWORD, "name": "X", "role": "admin"})).await;
    assert_error(&r, 409, "already_exists");

    // Customers and anonymous callers cannot.
    let r = app
        .post(
            path,
            Some(&c.token),
            json!({"email": email, "password": PASSWORD, "name": "X", "role": "admin"}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    let r = app
        .post(
            path,
            None,
            json!({"email": email, "password": PASSWORD, "name": "X", "role": "admin"}),
        )
        .await;
    assert_error(&r, 401, "unauthorized");
});

backend_test!(admins_list_users_paged_newest_first, |app| {
    let admin = app.admin_token().await;
    let t = Some(admin.as_str());
    let a = app.customer().await;
    let b = app.customer().await;

    let r = app.get("/api/v1/admin/users?page_size=100", t).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["page"], 1);
    assert_eq!(r.body["page_size"], 100);
    let total = r.body["total"].as_i64().unwrap();
    assert!(total >= 3, "{}", r.text);
    let items = r.body["items"].as_array().unwrap();
    let pos = |id: &str| items.iter().position(|u| u["id"] == id).unwrap();
    assert!(
        pos(&b.user_id) < pos(&a.user_id),
        "newest first: {}",
        r.text
    );
    assert!(!items.is_empty());
    assert!(items.iter().all(|u| u.get("password_hash").is_none()));

    let r = app
        .get("/api/v1/admin/users?role=customer&page_size=1", t)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.body["items"][0]["role"], "customer");
    let customers = r.body["total"].as_i64().unwrap();
    assert!(customers >= 2 && customers < total, "{}", r.text);

    let r = app.get("/api/v1/admin/users?role=admin", t).await;
    let admins = r.body["items"].as_array().expect("items");
    assert!(
        !admins.is_empty(),
        "the bootstrap admin is listed: {}",
        r.text
    );
    assert!(admins.iter().all(|u| u["role"] == "admin"), "{}", r.text);

    let r = app.get("/api/v1/admin/users?page=1000", t).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"], json!([]));
    assert_eq!(r.body["total"].as_i64(), Some(total));

    assert_invalid_field(
        &app.get("/api/v1/admin/users?page_size=101", t).await,
        "page_size",
    );
    assert_invalid_field(&app.get("/api/v1/admin/users?page=0", t).await, "page");
    assert_invalid_field(&app.get("/api/v1/admin/users?page=x", t).await, "page");
    assert_invalid_field(&app.get("/api/v1/admin/users?role=root", t).await, "role");
    assert_error(
        &app.get("/api/v1/admin/users", Some(&a.token)).await,
        403,
        "forbidden",
    );
});

// ---------------------------------------------------------------- internal

backend_test!(internal_routes_are_not_exposed, |app| {
    let c = app.customer().await;
    let r = app
        .get(&format!("/internal/users/{}", c.user_id), Some(&c.token))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let admin = app.admin_token().await;
    let r = app
        .get(&format!("/internal/users/{}", c.user_id), Some(&admin))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
});

backend_test!(sessions_record_the_user_agent, |app| {
    let c = app.customer().await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("user-agent", "KiranaApp/2.1 (Android 14)")
        .json(&json!({"email": c.email, "password": c.password}))
        .send()
        .await
        .expect("login sent");
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.expect("JSON");
    let sid = claims(body["access_token"].as_str().unwrap())["sid"].clone();
    let list = app.get("/api/v1/auth/sessions", Some(&c.token)).await;
    let items = list.body["items"].as_array().unwrap();
    let s = items
        .iter()
        .find(|s| s["id"] == sid)
        .expect("the new session is listed");
    assert_eq!(s["user_agent"], "KiranaApp/2.1 (Android 14)");
    assert_eq!(s["current"], false);
});

// The first admin is created once: a restart (migrate runs again) neither fails nor
// duplicates it, and the admin's sessions and password keep working.
backend_test!(first_admin_survives_restarts, |mut app| {
    let before = app.admin_token().await;
    let c = app.customer().await;
    app.restart().await;
    let admin = app.admin_token().await;
    assert_eq!(me_status(app, &before).await, 200);
    let r = app
        .get("/api/v1/admin/users?role=admin", Some(&admin))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let admins: Vec<&Value> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["email"] == ADMIN_EMAIL)
        .collect();
    assert_eq!(admins.len(), 1, "{}", r.text);
    // Data written before the restart is still there.
    assert_eq!(login(app, &c.email, &c.password).await.status, 200);
});

// Without `admin_password` no admin is made, and the configured email can sign up as
// an ordinary customer.
backend_test!(
    no_admin_without_a_password,
    "[auth]\nadmin_password = \"\"",
    |app| {
        let r = login(app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(r.status, 401, "{}", r.text);
        let r = signup(app, ADMIN_EMAIL, PASSWORD).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["user"]["role"], "customer");
    }
);

/// The newest message on `channel` to `to` in the admin outbox, once it is there.
async fn last_message(app: &TestApp, channel: &str, to: &str) -> Option<Value> {
    let admin = app.admin_token().await;
    let to_q = to.replace('+', "%2B");
    app.eventually(5, || async {
        let r = app
            .get(
                &format!("/api/v1/admin/outbox?channel={channel}&to={to_q}"),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["items"].get(0).cloned()
    })
    .await
}

/// The 6-digit code of the newest OTP SMS to `phone`.
async fn otp_code(app: &TestApp, phone: &str) -> String {
    let sms = last_message(app, "sms", phone).await.expect("an OTP SMS");
    let body = sms["body"].as_str().expect("sms body");
    body.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no 6-digit code in {body:?}"))
        .to_string()
}

async fn otp_request(app: &TestApp, phone: &str) -> Resp {
    app.post("/api/v1/auth/otp/request", None, json!({ "phone": phone }))
        .await
}

async fn otp_verify(app: &TestApp, phone: &str, code: &str) -> Resp {
    app.post(
        "/api/v1/auth/otp/verify",
        None,
        json!({"phone": phone, "code": code}),
    )
    .await
}

/// A code that is not `code` (same length).
fn wrong(code: &str) -> String {
    code.chars()
        .map(|c| {
            if c == '9' {
                '0'
            } else {
                ((c as u8) + 1) as char
            }
        })
        .collect()
}

backend_test!(
    otp_login_creates_a_customer_and_codes_are_single_use,
    |app| {
        let phone = unique_phone();
        let r = otp_request(app, &phone).await;
        assert_eq!(r.status, 202, "{}", r.text);
        assert_eq!(r.body["expires_in"], 300);
        let code = otp_code(app, &phone).await;

        let r = otp_verify(app, &phone, &code).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["user"]["role"], "customer");
        assert_eq!(r.body["user"]["phone"], phone.as_str());
        // The code that logged it in proved the phone.
        assert_eq!(r.body["user"]["phone_verified"], true);
        assert_eq!(r.body["token_type"], "Bearer");
        let user_id = r.body["user"]["id"].as_str().expect("user id").to_string();
        let token = r.body["access_token"].as_str().expect("token").to_string();
        let me = app.get("/api/v1/auth/me", Some(&token)).await;
        assert_eq!(me.body["id"], user_id.as_str());

        // The code worked once.
        otp_verify(app, &phone, &code)
            .await
            .assert_error(401, "invalid_credentials");

        // The next login of the same phone is the same user, not a new one.
        assert_eq!(otp_request(app, &phone).await.status, 202);
        let code = otp_code(app, &phone).await;
        let r = otp_verify(app, &phone, &code).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["user"]["id"], user_id.as_str());
    }
);

backend_test!(otp_three_wrong_codes_void_it, |app| {
    let phone = unique_phone();
    assert_eq!(otp_request(app, &phone).await.status, 202);
    let code = otp_code(app, &phone).await;
    for _ in 0..3 {
        otp_verify(app, &phone, &wrong(&code))
            .await
            .assert_error(401, "invalid_credentials");
    }
    // Voided: even the right code fails now.
    otp_verify(app, &phone, &code)
        .await
        .assert_error(401, "invalid_credentials");
    // A phone with no code, and malformed input.
    otp_verify(app, &unique_phone(), "123456")
        .await
        .assert_error(401, "invalid_credentials");
    otp_request(app, "98765")
        .await
        .assert_invalid_field("phone");
    otp_verify(app, "not-a-phone", "123456")
        .await
        .assert_invalid_field("phone");
    app.raw(
        "POST",
        "/api/v1/auth/otp/request",
        None,
        Some("text/plain"),
        b"{}".to_vec(),
    )
    .await
    .assert_error(415, "unsupported_media_type");
});

backend_test!(
    otp_requests_replace_the_code_and_are_limited_per_phone,
    "[auth]\notp_ttl_minutes = 1\notp_max_per_hour = 2",
    |app| {
        let phone = unique_phone();
        let r = otp_request(app, &phone).await;
        assert_eq!(r.body["expires_in"], 60);
        let first = otp_code(app, &phone).await;
        // A new request replaces the code: the first one is dead.
        assert_eq!(otp_request(app, &phone).await.status, 202);
        let r = otp_request(app, &phone).await;
        r.assert_error(429, "rate_limited");
        let second = otp_code(app, &phone).await;
        if first != second {
            otp_verify(app, &phone, &first)
                .await
                .assert_error(401, "invalid_credentials");
        }
        // Other phones are not limited by this one.
        assert_eq!(otp_request(app, &unique_phone()).await.status, 202);
        assert_eq!(otp_verify(app, &phone, &second).await.status, 200);
    }
);

backend_test!(
    parallel_otp_requests_send_no_more_codes_than_the_hourly_limit,
    "[auth]\notp_max_per_hour = 3",
    |app| {
        // 12 requests for one phone at once: exactly the limit are sent, the rest 429,
        // and the outbox holds exactly that many SMS (each counted under the phone's
        // lock, not checked and then recorded).
        let phone = unique_phone();
        let answers = futures::future::join_all((0..12).map(|_| otp_request(app, &phone))).await;
        let sent = answers.iter().filter(|r| r.status == 202).count();
        for r in answers.iter().filter(|r| r.status != 202) {
            r.assert_error(429, "rate_limited");
        }
        assert_eq!(sent, 3, "codes sent for one phone in parallel");
        let admin = app.admin_token().await;
        let r = app
            .get(
                &format!(
                    "/api/v1/admin/outbox?channel=sms&to={}",
                    phone.replace('+', "%2B")
                ),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["total"], 3, "{}", r.text);
    }
);

async fn forgot(app: &TestApp, email: &str) -> Resp {
    app.post(
        "/api/v1/auth/password/forgot",
        None,
        json!({ "email": email }),
    )
    .await
}

async fn reset(app: &TestApp, token: &str, password: &str) -> Resp {
    app.post(
        "/api/v1/auth/password/reset",
        None,
        json!({"token": token, "new_password": password}),
    )
    .await
}

/// The token of the newest reset email to `email`.
async fn reset_token(app: &TestApp, email: &str) -> String {
    let body = crate::shop::reset_email(app, email).await;
    let at = body.find("token=").expect("token= in the email") + "token=".len();
    body[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

backend_test!(password_reset_works_once_and_ends_every_session, |app| {
    let c = app.customer().await;
    let r = forgot(app, &c.email.to_uppercase()).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let token = reset_token(app, &c.email).await;

    // A too-short password is refused and leaves the token usable.
    reset(app, &token, "short")
        .await
        .assert_invalid_field("new_password");
    let r = reset(app, &token, "brand-new-password").await;
    assert_eq!(r.status, 204, "{}", r.text);

    // Every session is over; the old password is dead, the new one works.
    app.get("/api/v1/auth/me", Some(&c.token))
        .await
        .assert_error(401, "unauthorized");
    login(app, &c.email, &c.password)
        .await
        .assert_error(401, "invalid_credentials");
    assert_eq!(login(app, &c.email, "brand-new-password").await.status, 200);
    // The token worked once.
    reset(app, &token, "another-password-1")
        .await
        .assert_invalid_field("token");
    reset(app, "not-a-token", "another-password-1")
        .await
        .assert_invalid_field("token");
});

backend_test!(password_forgot_never_tells_who_has_an_account, |app| {
    let c = app.customer().await;
    let known = forgot(app, &c.email).await;
    let unknown = forgot(app, "nobody-here@example.in").await;
    assert_eq!(known.status, 202);
    assert_eq!(unknown.status, 202);
    assert_eq!(known.body, unknown.body);
    // Only the real account got a reset email.
    assert_eq!(reset_token(app, &c.email).await.len(), 64);
    let admin = app.admin_token().await;
    let r = app
        .get(
            "/api/v1/admin/outbox?channel=email&to=nobody-here@example.in",
            Some(&admin),
        )
        .await;
    assert_eq!(r.body["total"], 0, "{}", r.text);
    forgot(app, "not an email")
        .await
        .assert_invalid_field("email");
});

// ---------------------------------------------------------------- bootstrap admin

/// Every admin account, through the admin API.
async fn admins(app: &TestApp, admin_token: &str) -> Vec<Value> {
    let r = app
        .get(
            "/api/v1/admin/users?role=admin&page_size=100",
            Some(admin_token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

const NEW_ADMIN_EMAIL: &str = "boss@kirana.test";
const NEW_ADMIN_PASSWORD: &str = "the-operators-own-456";

backend_test!(
    a_changed_admin_email_renames_the_one_bootstrap_admin,
    |mut app| {
        let before = login(app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(before.status, 200, "{}", before.text);
        let admin_id = before.body["user"]["id"].clone();
        let session = token(&before, "access_token");

        app.restart_with(&format!("[auth]\nadmin_email = \"{NEW_ADMIN_EMAIL}\""))
            .await;
        login(app, ADMIN_EMAIL, ADMIN_PASSWORD)
            .await
            .assert_error(401, "invalid_credentials");
        let after = login(app, NEW_ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(after.status, 200, "{}", after.text);
        assert_eq!(after.body["user"]["id"], admin_id, "the same account");
        assert_eq!(after.body["user"]["role"], "admin");
        let list = admins(app, &token(&after, "access_token")).await;
        assert_eq!(list.len(), 1, "one admin: {list:?}");
        assert_eq!(list[0]["email"], NEW_ADMIN_EMAIL);
        // The password did not change, so its sessions live on.
        assert_eq!(me_status(app, &session).await, 200);

        // A second restart with the same configuration changes nothing.
        app.restart().await;
        assert_eq!(
            login(app, NEW_ADMIN_EMAIL, ADMIN_PASSWORD).await.status,
            200
        );
        assert_eq!(me_status(app, &session).await, 200);
    }
);

backend_test!(
    a_changed_admin_password_replaces_it_and_ends_its_sessions,
    |mut app| {
        let before = login(app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let session = token(&before, "access_token");
        let refresh_token = token(&before, "refresh_token");

        app.restart_with(&format!(
            "[auth]\nadmin_password = \"{NEW_ADMIN_PASSWORD}\""
        ))
        .await;
        login(app, ADMIN_EMAIL, ADMIN_PASSWORD)
            .await
            .assert_error(401, "invalid_credentials");
        app.get("/api/v1/auth/me", Some(&session))
            .await
            .assert_error(401, "unauthorized");
        refresh(app, &refresh_token)
            .await
            .assert_error(401, "unauthorized");
        let after = login(app, ADMIN_EMAIL, NEW_ADMIN_PASSWORD).await;
        assert_eq!(after.status, 200, "{}", after.text);
        assert_eq!(admins(app, &token(&after, "access_token")).await.len(), 1);

        // Both at once: still one admin, with both.
        app.restart_with(&format!(
            "[auth]\nadmin_email = \"{NEW_ADMIN_EMAIL}\"\nadmin_password = \"{ADMIN_PASSWORD}\""
        ))
        .await;
        let last = login(app, NEW_ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(last.status, 200, "{}", last.text);
        assert_eq!(last.body["user"]["id"], after.body["user"]["id"]);
        assert_eq!(admins(app, &token(&last, "access_token")).await.len(), 1);
    }
);

backend_test!(
    an_unchanged_configured_password_keeps_the_admins_own,
    |mut app| {
        let admin = app.admin_token().await;
        let r = app
            .post(
                "/api/v1/auth/password",
                Some(&admin),
                json!({"current_password": ADMIN_PASSWORD, "new_password": "admins-own-choice-1"}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);

        // Same configuration: the admin's own password stays.
        app.restart().await;
        login(app, ADMIN_EMAIL, ADMIN_PASSWORD)
            .await
            .assert_error(401, "invalid_credentials");
        assert_eq!(
            login(app, ADMIN_EMAIL, "admins-own-choice-1").await.status,
            200
        );
        assert_eq!(me_status(app, &admin).await, 200);

        // A new configured password is the operator's word: it wins.
        app.restart_with(&format!(
            "[auth]\nadmin_password = \"{NEW_ADMIN_PASSWORD}\""
        ))
        .await;
        login(app, ADMIN_EMAIL, "admins-own-choice-1")
            .await
            .assert_error(401, "invalid_credentials");
        assert_eq!(
            login(app, ADMIN_EMAIL, NEW_ADMIN_PASSWORD).await.status,
            200
        );
        assert_eq!(me_status(app, &admin).await, 401);
    }
);

backend_test!(
    an_admin_email_held_by_another_account_is_left_alone,
    |mut app| {
        let taken = signup(app, NEW_ADMIN_EMAIL, PASSWORD).await;
        assert_eq!(taken.status, 201, "{}", taken.text);

        app.restart_with(&format!("[auth]\nadmin_email = \"{NEW_ADMIN_EMAIL}\""))
            .await;
        // The customer is still a customer with its own password; nothing was merged.
        let customer = login(app, NEW_ADMIN_EMAIL, PASSWORD).await;
        assert_eq!(customer.status, 200, "{}", customer.text);
        assert_eq!(customer.body["user"]["role"], "customer");
        assert_eq!(customer.body["user"]["id"], taken.body["user"]["id"]);
        login(app, NEW_ADMIN_EMAIL, ADMIN_PASSWORD)
            .await
            .assert_error(401, "invalid_credentials");
        // The bootstrap admin keeps its email, and is still the only admin.
        let admin = app.admin_token().await;
        let list = admins(app, &admin).await;
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0]["email"], ADMIN_EMAIL);
    }
);

backend_test!(
    an_empty_admin_password_leaves_the_bootstrap_admin_as_it_is,
    |mut app| {
        let session = app.admin_token().await;
        app.restart_with(&format!(
            "[auth]\nadmin_password = \"\"\nadmin_email = \"{NEW_ADMIN_EMAIL}\""
        ))
        .await;
        // Neither renamed nor re-passworded nor revoked; no second admin either.
        assert_eq!(me_status(app, &session).await, 200);
        let admin = app.admin_token().await;
        login(app, NEW_ADMIN_EMAIL, ADMIN_PASSWORD)
            .await
            .assert_error(401, "invalid_credentials");
        assert_eq!(admins(app, &admin).await.len(), 1);
    }
);

/// Runs one statement on the auth plugin's own database, behind its back (as data
/// left by an older version would be).
async fn auth_db_execute(app: &TestApp, statement: &str) {
    use kirana::storage::PluginDb;
    let platform = &app.app().platform;
    let auth = platform.registry.get("auth").expect("auth is loaded");
    match &auth.ctx.db {
        PluginDb::Postgres(pool) => {
            sqlx::query(statement)
                .execute(pool)
                .await
                .expect("running the statement");
        }
        PluginDb::Sqlite(_) => {
            let path = platform.config.data_dir.join("plugins").join("auth.db");
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
                "sqlite://{}",
                path.display()
            ))
            .await
            .expect("opening the auth database");
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .expect("running the statement");
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

backend_test!(an_admin_made_by_an_older_version_is_adopted, |mut app| {
    // Older versions kept no record of the admin they made from configuration.
    let first = login(app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let admin_id = first.body["user"]["id"].clone();
    let session = token(&first, "access_token");
    auth_db_execute(app, "DELETE FROM bootstrap_admin").await;

    // A new email and password at the upgrade: the old admin is taken over, not left
    // working beside a new one.
    app.restart_with(&format!(
        "[auth]\nadmin_email = \"{NEW_ADMIN_EMAIL}\"\nadmin_password = \"{NEW_ADMIN_PASSWORD}\""
    ))
    .await;
    login(app, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .assert_error(401, "invalid_credentials");
    assert_eq!(me_status(app, &session).await, 401);
    let r = login(app, NEW_ADMIN_EMAIL, NEW_ADMIN_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user"]["id"], admin_id);
    assert_eq!(admins(app, &token(&r, "access_token")).await.len(), 1);
});

backend_test!(
    a_second_admin_with_the_published_password_is_locked_at_the_upgrade,
    |mut app| {
        // Older versions added a second admin when KIRANA_ADMIN_EMAIL changed, leaving
        // the first one with the published default password.
        let admin = token(
            &login(app, ADMIN_EMAIL, ADMIN_PASSWORD).await,
            "access_token",
        );
        let stale_email = format!("{}@kirana.local", app.unique("old-admin"));
        let r = app
            .post(
                "/api/v1/admin/users",
                Some(&admin),
                json!({"email": stale_email, "password": "kirana-admin-123", "name": "Old", "role": "admin"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let stale = login(app, &stale_email, "kirana-admin-123").await;
        assert_eq!(stale.status, 200, "{}", stale.text);
        let stale_session = token(&stale, "access_token");
        auth_db_execute(app, "DELETE FROM bootstrap_admin").await;
        app.restart().await;
        // The upgrade's first start locks it: no login with the published password, and
        // its sessions are gone; the bootstrap admin is untouched.
        login(app, &stale_email, "kirana-admin-123")
            .await
            .assert_error(401, "invalid_credentials");
        assert_eq!(me_status(app, &stale_session).await, 401);
        assert_eq!(login(app, ADMIN_EMAIL, ADMIN_PASSWORD).await.status, 200);
    }
);

backend_test!(
    phones_of_sms_login_accounts_stay_proven_across_the_upgrade,
    |mut app| {
        // An account made by an SMS login before phones were proven: its proof rows are
        // gone, as on a database from an older version.
        let phone = unique_phone();
        otp_request(app, &phone).await;
        let code = otp_code(app, &phone).await;
        let first = otp_verify(app, &phone, &code).await;
        assert_eq!(first.status, 200, "{}", first.text);
        let user_id = first.body["user"]["id"].clone();
        // A customer who merely stated the same phone must not be the one signed in.
        let c = app.customer().await;
        let r = app
            .patch("/api/v1/auth/me", Some(&c.token), json!({ "phone": phone }))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        auth_db_execute(app, "DELETE FROM proven_phones").await;
        auth_db_execute(app, "DROP TABLE backfills").await;
        app.restart().await;
        // The upgrade keeps the SMS account's phone proven: the next SMS login is the same
        // account, not a new empty one, and never the stating customer.
        otp_request(app, &phone).await;
        let code = otp_code(app, &phone).await;
        let again = otp_verify(app, &phone, &code).await;
        assert_eq!(again.status, 200, "{}", again.text);
        assert_eq!(again.body["user"]["id"], user_id);
        assert_eq!(again.body["user"]["phone_verified"], true);
        // It runs once: a later start does not prove phones changed meanwhile.
        let r = app
            .patch(
                "/api/v1/auth/me",
                Some(&token(&again, "access_token")),
                json!({ "phone": unique_phone() }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["phone_verified"], false, "{}", r.text);
        app.restart().await;
        let me = app
            .get("/api/v1/auth/me", Some(&token(&again, "access_token")))
            .await;
        assert_eq!(me.body["phone_verified"], false, "{}", me.text);
    }
);

// ---------------------------------------------------------------- password change

async fn change_password(app: &TestApp, token: &str, current: &str, new: &str) -> Resp {
    app.post(
        "/api/v1/auth/password",
        Some(token),
        json!({"current_password": current, "new_password": new}),
    )
    .await
}

backend_test!(
    a_password_change_keeps_this_session_and_ends_the_others,
    |app| {
        let c = app.customer().await;
        let other = login(app, &c.email, &c.password).await;
        let other_access = token(&other, "access_token");
        let other_refresh = token(&other, "refresh_token");

        let r = change_password(app, &c.token, &c.password, "a-brand-new-one-1").await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert_eq!(
            me_status(app, &c.token).await,
            200,
            "the caller keeps its session"
        );
        app.get("/api/v1/auth/me", Some(&other_access))
            .await
            .assert_error(401, "unauthorized");
        refresh(app, &other_refresh)
            .await
            .assert_error(401, "unauthorized");
        let sessions = app.get("/api/v1/auth/sessions", Some(&c.token)).await;
        assert_eq!(sessions.body["items"].as_array().map(Vec::len), Some(1));
        login(app, &c.email, &c.password)
            .await
            .assert_error(401, "invalid_credentials");
        assert_eq!(login(app, &c.email, "a-brand-new-one-1").await.status, 200);
        // The caller's refresh token still rotates.
        assert_eq!(refresh(app, &c.refresh_token).await.status, 200);
    }
);

backend_test!(
    a_wrong_current_password_is_refused_and_counts_as_a_failed_login,
    |app| {
        let c = app.customer().await;
        let r = change_password(app, &c.token, "not-my-password", "a-brand-new-one-1").await;
        r.assert_error(401, "invalid_credentials");
        assert_eq!(
            me_status(app, &c.token).await,
            200,
            "a wrong guess is not a logout"
        );
        assert_eq!(login(app, &c.email, &c.password).await.status, 200);
        // Five wrong guesses through this route lock the account like five failed logins.
        for _ in 0..5 {
            change_password(app, &c.token, "not-my-password", "a-brand-new-one-1")
                .await
                .assert_error(401, "invalid_credentials");
        }
        login(app, &c.email, &c.password)
            .await
            .assert_error(429, "rate_limited");
        change_password(app, &c.token, &c.password, "a-brand-new-one-1")
            .await
            .assert_error(429, "rate_limited");
        login(app, &c.email, "a-brand-new-one-1")
            .await
            .assert_error(429, "rate_limited");
    }
);

backend_test!(a_password_change_validates, |app| {
    let c = app.customer().await;
    let t = Some(c.token.as_str());
    let path = "/api/v1/auth/password";
    change_password(app, &c.token, &c.password, "short")
        .await
        .assert_invalid_field("new_password");
    app.post(path, t, json!({"new_password": "long-enough-1"}))
        .await
        .assert_invalid_field("current_password");
    app.post(
        path,
        t,
        json!({"current_password": "", "new_password": "long-enough-1"}),
    )
    .await
    .assert_invalid_field("current_password");
    app.raw("POST", path, t, Some("application/json"), b"{".to_vec())
        .await
        .assert_error(400, "invalid_json");
    app.post(
        path,
        None,
        json!({"current_password": c.password, "new_password": "long-enough-1"}),
    )
    .await
    .assert_error(401, "unauthorized");
    // Nothing changed.
    assert_eq!(login(app, &c.email, &c.password).await.status, 200);
});

// ---------------------------------------------------------------- concurrent guesses

backend_test!(parallel_wrong_logins_each_count_and_then_lock, |app| {
    let c = app.customer().await;
    let burst = (0..20).map(|_| login(app, &c.email, "wrong-password"));
    for r in futures::future::join_all(burst).await {
        assert!(r.status == 401 || r.status == 429, "{}", r.text);
    }
    login(app, &c.email, &c.password)
        .await
        .assert_error(429, "rate_limited");
});

backend_test!(parallel_wrong_logins_consume_exactly_one_try_each, |app| {
    let c = app.customer().await;
    let four = || futures::future::join_all((0..4).map(|_| login(app, &c.email, "wrong-password")));
    // Four overlapping failures leave one try: the right password still gets in (and
    // clears the count).
    for r in four().await {
        r.assert_error(401, "invalid_credentials");
    }
    assert_eq!(login(app, &c.email, &c.password).await.status, 200);
    // Four more and a fifth: that fifth is an ordinary failure, the next is locked.
    for r in four().await {
        r.assert_error(401, "invalid_credentials");
    }
    login(app, &c.email, "wrong-password")
        .await
        .assert_error(401, "invalid_credentials");
    login(app, &c.email, &c.password)
        .await
        .assert_error(429, "rate_limited");
});

backend_test!(parallel_wrong_otp_guesses_void_the_code, |app| {
    let phone = unique_phone();
    assert_eq!(otp_request(app, &phone).await.status, 202);
    let code = otp_code(app, &phone).await;
    let bad = wrong(&code);
    let burst = (0..20).map(|_| otp_verify(app, &phone, &bad));
    for r in futures::future::join_all(burst).await {
        r.assert_error(401, "invalid_credentials");
    }
    otp_verify(app, &phone, &code)
        .await
        .assert_error(401, "invalid_credentials");
});

backend_test!(parallel_otp_guesses_consume_exactly_one_try_each, |app| {
    // Two overlapping wrong guesses leave the third try for the right code.
    let phone = unique_phone();
    assert_eq!(otp_request(app, &phone).await.status, 202);
    let code = otp_code(app, &phone).await;
    let bad = wrong(&code);
    for r in futures::future::join_all((0..2).map(|_| otp_verify(app, &phone, &bad))).await {
        r.assert_error(401, "invalid_credentials");
    }
    assert_eq!(otp_verify(app, &phone, &code).await.status, 200);

    // Three use them all: the right code comes too late.
    let phone = unique_phone();
    assert_eq!(otp_request(app, &phone).await.status, 202);
    let code = otp_code(app, &phone).await;
    let bad = wrong(&code);
    for r in futures::future::join_all((0..3).map(|_| otp_verify(app, &phone, &bad))).await {
        r.assert_error(401, "invalid_credentials");
    }
    otp_verify(app, &phone, &code)
        .await
        .assert_error(401, "invalid_credentials");
});

// ---------------------------------------------------------------- proven phones

async fn set_phone(app: &TestApp, token: &str, phone: &str) -> Resp {
    let r = app
        .patch("/api/v1/auth/me", Some(token), json!({ "phone": phone }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

async fn prove_request(app: &TestApp, token: &str) -> Resp {
    app.post("/api/v1/auth/me/phone/request", Some(token), json!({}))
        .await
}

async fn prove_verify(app: &TestApp, token: &str, code: &str) -> Resp {
    app.post(
        "/api/v1/auth/me/phone/verify",
        Some(token),
        json!({ "code": code }),
    )
    .await
}

/// Proves `phone` for the account of `token` (sets it first).
async fn prove(app: &TestApp, token: &str, phone: &str) {
    set_phone(app, token, phone).await;
    let r = prove_request(app, token).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let code = otp_code(app, phone).await;
    let r = prove_verify(app, token, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["phone_verified"], true, "{}", r.text);
}

/// OTP login of `phone`; the answer's user.
async fn sms_login(app: &TestApp, phone: &str) -> Value {
    assert_eq!(otp_request(app, phone).await.status, 202);
    let code = otp_code(app, phone).await;
    let r = otp_verify(app, phone, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["user"].clone()
}

backend_test!(a_stated_phone_never_logs_into_its_account, |app| {
    let victim_phone = unique_phone();
    // The attacker signs up stating the victim's number.
    let email = format!("{}@example.in", app.unique("mallory"));
    let attacker = app
        .post(
            "/api/v1/auth/signup",
            None,
            json!({"email": email, "password": PASSWORD, "name": "M", "phone": victim_phone}),
        )
        .await;
    assert_eq!(attacker.status, 201, "{}", attacker.text);
    assert_eq!(attacker.body["user"]["phone_verified"], false);

    // The victim's SMS login lands in a new account of the victim's own.
    let user = sms_login(app, &victim_phone).await;
    assert_ne!(user["id"], attacker.body["user"]["id"]);
    assert_eq!(user["role"], "customer");
    assert_eq!(user["phone"], victim_phone.as_str());
    assert_eq!(user["phone_verified"], true);
    assert_eq!(sms_login(app, &victim_phone).await["id"], user["id"]);

    // The attacker can state the number but never prove it now.
    let t = token(&attacker, "access_token");
    let me = app.get("/api/v1/auth/me", Some(&t)).await;
    assert_eq!(me.body["phone"], victim_phone.as_str());
    assert_eq!(me.body["phone_verified"], false);
    prove_request(app, &t).await.assert_error(409, "conflict");
});

backend_test!(owners_prove_their_phone_and_then_log_in_by_sms, |app| {
    let c = app.customer().await;
    let phone = unique_phone();
    // Nothing to prove without a phone.
    prove_request(app, &c.token)
        .await
        .assert_error(409, "conflict");
    set_phone(app, &c.token, &phone).await;
    assert_eq!(prove_request(app, &c.token).await.status, 202);
    let code = otp_code(app, &phone).await;
    // A wrong code is a counted try; a malformed one too.
    prove_verify(app, &c.token, &wrong(&code))
        .await
        .assert_error(401, "invalid_credentials");
    let r = prove_verify(app, &c.token, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], c.user_id.as_str());
    assert_eq!(r.body["phone_verified"], true);
    // The code worked once, and a proven phone needs no second proof.
    prove_verify(app, &c.token, &code)
        .await
        .assert_error(401, "invalid_credentials");
    prove_request(app, &c.token)
        .await
        .assert_error(409, "conflict");
    let me = app.get("/api/v1/auth/me", Some(&c.token)).await;
    assert_eq!(me.body["phone_verified"], true);

    // Now the phone logs into this account.
    assert_eq!(sms_login(app, &phone).await["id"], c.user_id.as_str());

    // Proof codes void after three wrong tries, like login codes.
    let d = app.customer().await;
    let phone = unique_phone();
    set_phone(app, &d.token, &phone).await;
    assert_eq!(prove_request(app, &d.token).await.status, 202);
    let code = otp_code(app, &phone).await;
    for _ in 0..3 {
        prove_verify(app, &d.token, &wrong(&code))
            .await
            .assert_error(401, "invalid_credentials");
    }
    prove_verify(app, &d.token, &code)
        .await
        .assert_error(401, "invalid_credentials");
    let me = app.get("/api/v1/auth/me", Some(&d.token)).await;
    assert_eq!(me.body["phone_verified"], false);
    prove_verify(app, &d.token, "12345")
        .await
        .assert_error(401, "invalid_credentials");
    app.post("/api/v1/auth/me/phone/verify", Some(&d.token), json!({}))
        .await
        .assert_invalid_field("code");
    app.post("/api/v1/auth/me/phone/request", None, json!({}))
        .await
        .assert_error(401, "unauthorized");
});

backend_test!(a_proven_phone_belongs_to_one_account, |app| {
    let owner = app.customer().await;
    let phone = unique_phone();
    prove(app, &owner.token, &phone).await;

    // Another account may state the number, unproven, and can never prove it.
    let other = app.customer().await;
    let r = set_phone(app, &other.token, &phone).await;
    assert_eq!(r.body["phone_verified"], false);
    prove_request(app, &other.token)
        .await
        .assert_error(409, "conflict");
    prove_verify(app, &other.token, "123456")
        .await
        .assert_error(401, "invalid_credentials");
    // The number still logs into its owner only.
    assert_eq!(sms_login(app, &phone).await["id"], owner.user_id.as_str());
    let me = app.get("/api/v1/auth/me", Some(&owner.token)).await;
    assert_eq!(me.body["phone_verified"], true);
});

backend_test!(a_proof_that_loses_the_race_is_a_conflict, |app| {
    // Two accounts state one number; both get a code (nobody has proven it yet); the
    // first to verify owns it and the second's right code is then 409.
    let phone = unique_phone();
    let first = app.customer().await;
    let second = app.customer().await;
    set_phone(app, &first.token, &phone).await;
    set_phone(app, &second.token, &phone).await;
    assert_eq!(prove_request(app, &second.token).await.status, 202);
    let second_code = otp_code(app, &phone).await;
    prove(app, &first.token, &phone).await;
    prove_verify(app, &second.token, &second_code)
        .await
        .assert_error(409, "conflict");
    let me = app.get("/api/v1/auth/me", Some(&second.token)).await;
    assert_eq!(me.body["phone_verified"], false);
    assert_eq!(sms_login(app, &phone).await["id"], first.user_id.as_str());
});

backend_test!(changing_the_phone_drops_its_proof, |app| {
    let c = app.customer().await;
    let phone = unique_phone();
    prove(app, &c.token, &phone).await;
    // A pending proof code dies with the phone it was sent to.
    let next = unique_phone();
    set_phone(app, &c.token, &next).await;
    assert_eq!(prove_request(app, &c.token).await.status, 202);
    let code = otp_code(app, &next).await;
    let r = set_phone(app, &c.token, &unique_phone()).await;
    assert_eq!(r.body["phone_verified"], false);
    prove_verify(app, &c.token, &code)
        .await
        .assert_error(401, "invalid_credentials");

    // The old number is free: its SMS login is a new customer now.
    let stranger = sms_login(app, &phone).await;
    assert_ne!(stranger["id"], c.user_id.as_str());
    // Setting it back states it again, unproven, and it is someone else's by now.
    let r = set_phone(app, &c.token, &phone).await;
    assert_eq!(r.body["phone_verified"], false);
    prove_request(app, &c.token)
        .await
        .assert_error(409, "conflict");
    // Clearing the phone works and proves nothing.
    let r = app
        .patch("/api/v1/auth/me", Some(&c.token), json!({"phone": null}))
        .await;
    assert_eq!(r.body["phone"], Value::Null);
    assert_eq!(r.body["phone_verified"], false);
});

backend_test!(
    agents_prove_their_phone_and_admins_never_log_in_by_sms,
    |app| {
        let admin = app.admin_token().await;
        let agent_phone = unique_phone();
        let email = format!("{}@kirana.in", app.unique("agent"));
        let r = app
            .post(
                "/api/v1/admin/users",
                Some(&admin),
                json!({"email": email, "password": PASSWORD, "name": "Ramesh",
                   "role": "delivery_agent", "phone": agent_phone}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["phone_verified"], false);
        let agent_id = r.body["id"].clone();
        let agent = token(&login(app, &email, PASSWORD).await, "access_token");
        assert_eq!(prove_request(app, &agent).await.status, 202);
        let code = otp_code(app, &agent_phone).await;
        assert_eq!(prove_verify(app, &agent, &code).await.status, 200);
        let user = sms_login(app, &agent_phone).await;
        assert_eq!(user["id"], agent_id);
        assert_eq!(user["role"], "delivery_agent");

        // An admin may prove a phone, but SMS login never signs an admin in.
        let admin_phone = unique_phone();
        prove(app, &admin, &admin_phone).await;
        assert_eq!(otp_request(app, &admin_phone).await.status, 202);
        let code = otp_code(app, &admin_phone).await;
        otp_verify(app, &admin_phone, &code)
            .await
            .assert_error(401, "invalid_credentials");
    }
);

backend_test!(
    sms_codes_and_reset_tokens_stop_working_when_they_expire,
    "[auth]\notp_ttl_secs = 1\npassword_reset_secs = 1",
    |app| {
        let phone = unique_phone();
        let r = otp_request(app, &phone).await;
        assert_eq!(r.status, 202, "{}", r.text);
        assert_eq!(r.body["expires_in"], 1);
        let code = otp_code(app, &phone).await;
        // The message rounds the lifetime up to whole minutes.
        let sms = last_message(app, "sms", &phone).await.expect("an OTP SMS");
        assert!(
            sms["body"]
                .as_str()
                .is_some_and(|b| b.contains("expires in 1 minute.")),
            "{sms}"
        );

        let c = app.customer().await;
        assert_eq!(forgot(app, &c.email).await.status, 202);
        let token = reset_token(app, &c.email).await;

        // Both are past their lifetime: the right code and the right token are refused.
        tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
        otp_verify(app, &phone, &code)
            .await
            .assert_error(401, "invalid_credentials");
        reset(app, &token, "brand-new-password")
            .await
            .assert_invalid_field("token");
        // The old password still signs in: nothing was reset.
        let r = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": c.email, "password": c.password}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
);

//! Sign-in with OpenID Connect providers, against a real provider: `oidc-provider-mock`
//! (PyPI, started per test on a free port) for the whole browser flow, and a small
//! provider written here whose token endpoint answers ID tokens the test forges
//! (foreign key, expired, wrong audience), which a real provider never issues.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{into_resp, urlencode, Backend, Resp, TestApp, ADMIN_EMAIL};

/// The client id every test host is configured with.
const CLIENT_ID: &str = "kirana-test";

/// `oidc-provider-mock` in its own process, killed on drop.
struct MockProvider {
    issuer: String,
    child: Child,
    http: reqwest::Client,
}

impl MockProvider {
    async fn start() -> Self {
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("oidc-provider-mock")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "oidc-provider-mock runs (install it: python3 -m pip install oidc-provider-mock==0.3.4)",
            );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let provider = Self {
            issuer: format!("http://127.0.0.1:{port}"),
            child,
            http,
        };
        let discovery = format!("{}/.well-known/openid-configuration", provider.issuer);
        for _ in 0..300 {
            if let Ok(r) = provider.http.get(&discovery).send().await {
                if r.status().is_success() {
                    return provider;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("oidc-provider-mock did not answer at {discovery}");
    }

    /// Sets the claims the provider reports for `sub`.
    async fn user(&self, sub: &str, claims: Value) {
        let r = self
            .http
            .put(format!("{}/users/{sub}", self.issuer))
            .json(&claims)
            .send()
            .await
            .expect("provider reachable");
        assert_eq!(r.status(), 204, "setting the provider's user");
    }

    /// Logs `sub` in on the provider's authorization page (as the browser would, sent
    /// there by `authorize_url`); returns the callback URL the provider redirects to.
    async fn log_in(&self, authorize_url: &str, sub: &str) -> String {
        let r = self
            .http
            .post(authorize_url)
            .form(&[("sub", sub)])
            .send()
            .await
            .expect("provider reachable");
        assert_eq!(r.status(), 302, "the provider's login answer");
        r.headers()["location"]
            .to_str()
            .expect("location")
            .to_string()
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A provider whose token endpoint returns whatever ID token the test put in `next`.
struct FakeProvider {
    issuer: String,
    next: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeProvider {
    async fn start() -> Self {
        use axum::routing::{get, post};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let issuer = format!("http://{}", listener.local_addr().expect("addr"));
        let next = Arc::new(Mutex::new(String::new()));
        let discovery = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        let jwks: Value =
            serde_json::from_str(include_str!("../fixtures/oidc/trusted.jwks.json")).expect("jwks");
        let token = next.clone();
        let router = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { axum::Json(discovery) }),
            )
            .route("/jwks", get(move || async move { axum::Json(jwks) }))
            .route(
                "/token",
                post(move || {
                    let id_token = token.lock().expect("lock").clone();
                    async move {
                        axum::Json(json!({
                            "access_token": "fake-access-token",
                            "token_type": "Bearer",
                            "expires_in": 3600,
                            "id_token": id_token,
                        }))
                    }
                }),
            );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { issuer, next, task }
    }

    /// Signs `claims` with a fixture key (`trusted` is the one the JWKS publishes) and
    /// makes it the next token answer.
    fn issue(&self, key: &str, claims: Value) {
        let pem = match key {
            "trusted" => include_str!("../fixtures/oidc/trusted.pem"),
            _ => include_str!("../fixtures/oidc/foreign.pem"),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("test-key".into());
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).expect("pem");
        *self.next.lock().expect("lock") =
            jsonwebtoken::encode(&header, &claims, &key).expect("sign");
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The host's providers: `mock` (the real one), `fake` (forged tokens) and `down`
/// (nothing listens there).
fn providers_toml(mock: &MockProvider, fake: &FakeProvider) -> String {
    let closed = StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    format!(
        "[oidc.mock]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"mock-secret\"\n\
         [oidc.fake]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\n\
         [oidc.down]\nissuer = \"http://127.0.0.1:{closed}\"\nclient_id = \"{CLIENT_ID}\"\n",
        mock.issuer, fake.issuer
    )
}

macro_rules! oidc_test {
    ($name:ident, |$app:ident, $idp:ident, $fake:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run(backend: Backend) {
                let $idp = &MockProvider::start().await;
                let $fake = &FakeProvider::start().await;
                let app = TestApp::spawn_with(backend, &providers_toml($idp, $fake)).await;
                {
                    let $app = &app;
                    $body
                }
                app.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(Backend::Postgres).await;
            }
        }
    };
}

/// A started sign-in: the provider URL and the browser cookie the start set.
struct Started {
    url: String,
    /// `name=value` of the host's browser cookie, as a browser sends it back.
    cookie: String,
}

impl std::ops::Deref for Started {
    type Target = str;
    fn deref(&self) -> &str {
        &self.url
    }
}

/// `GET /start` for `provider` from a browser without cookies: asserts the 302 and the
/// browser cookie, and returns both.
async fn start(app: &TestApp, provider: &str, query: &str) -> Started {
    start_in(app, provider, query, None).await
}

/// [`start`] from a browser that already holds `cookie` (`name=value`).
async fn start_in(app: &TestApp, provider: &str, query: &str, cookie: Option<&str>) -> Started {
    let mut rb = app
        .client
        .get(app.url(&format!("/api/v1/auth/oidc/{provider}/start{query}")));
    if let Some(c) = cookie {
        rb = rb.header("cookie", c);
    }
    let r = into_resp(rb.send().await.expect("start sent")).await;
    assert_eq!(r.status, 302, "start: {}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let set = r
        .header("set-cookie")
        .expect("the start sets the browser cookie");
    let attrs: Vec<&str> = set.split(';').map(str::trim).collect();
    for want in ["Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(attrs.contains(&want), "{want} in {set}");
    }
    let cookie = attrs[0].to_string();
    assert!(cookie.starts_with("kirana_browser="), "{set}");
    Started {
        url: r.header("location").expect("location").to_string(),
        cookie,
    }
}

/// A query parameter of `url`, decoded.
fn param(url: &str, name: &str) -> String {
    let url = reqwest::Url::parse(url).expect("url");
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{name} in {url}"))
}

/// Follows the provider's redirect back to the host from the browser that `started`.
async fn callback(app: &TestApp, started: &Started, provider_redirect: &str) -> Resp {
    callback_with(app, Some(&started.cookie), provider_redirect).await
}

/// The callback as a browser holding `cookie` (or none) would send it.
async fn callback_with(app: &TestApp, cookie: Option<&str>, provider_redirect: &str) -> Resp {
    let url = reqwest::Url::parse(provider_redirect).expect("callback url");
    let path = format!("{}?{}", url.path(), url.query().unwrap_or_default());
    let mut rb = app.client.get(app.url(&path));
    if let Some(c) = cookie {
        rb = rb.header("cookie", c);
    }
    into_resp(rb.send().await.expect("callback sent")).await
}

/// A whole sign-in of `sub` through the real provider: start, log in, callback.
async fn sign_in(app: &TestApp, idp: &MockProvider, sub: &str) -> Resp {
    let authorize = start(app, "mock", "").await;
    let back = idp.log_in(&authorize, sub).await;
    callback(app, &authorize, &back).await
}

fn token(r: &Resp) -> String {
    r.body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

oidc_test!(
    a_new_user_signs_in_with_the_provider_and_gets_a_session_like_a_password_login,
    |app, idp, _fake| {
        let sub = app.unique("alice");
        let email = format!("{sub}@mail.example");
        idp.user(
            &sub,
            json!({"email": email, "email_verified": true, "name": "Alice Rao"}),
        )
        .await;

        let authorize = start(app, "mock", "").await;
        assert!(authorize.starts_with(&format!("{}/oauth2/authorize?", idp.issuer)));
        assert_eq!(param(&authorize, "response_type"), "code");
        assert_eq!(param(&authorize, "client_id"), CLIENT_ID);
        assert_eq!(param(&authorize, "code_challenge_method"), "S256");
        assert!(param(&authorize, "code_challenge").len() >= 43);
        assert!(param(&authorize, "state").len() >= 16);
        assert!(param(&authorize, "nonce").len() >= 16);
        let scopes = param(&authorize, "scope");
        for s in ["openid", "email", "profile"] {
            assert!(scopes.split(' ').any(|x| x == s), "{scopes}");
        }
        assert_eq!(
            param(&authorize, "redirect_uri"),
            app.url("/api/v1/auth/oidc/mock/callback")
        );

        let back = idp.log_in(&authorize, &sub).await;
        let r = callback(app, &authorize, &back).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["token_type"], "Bearer");
        assert!(r.body["refresh_token"].as_str().is_some());
        let first = token(&r);
        let me = app.get("/api/v1/auth/me", Some(&first)).await;
        assert_eq!(me.status, 200, "{}", me.text);
        assert_eq!(me.body["email"], email.as_str());
        assert_eq!(me.body["name"], "Alice Rao");
        assert_eq!(me.body["role"], "customer");
        let user_id = me.body["id"].as_str().expect("id").to_string();

        let ids = app.get("/api/v1/auth/identities", Some(&first)).await;
        assert_eq!(ids.status, 200, "{}", ids.text);
        let items = ids.body["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{}", ids.text);
        assert_eq!(items[0]["provider"], "mock");
        assert_eq!(items[0]["subject"], sub.as_str());
        assert_eq!(items[0]["email"], email.as_str());
        assert!(items[0]["linked_at"].as_str().is_some());

        // The next sign-in finds the same account.
        let again = sign_in(app, idp, &sub).await;
        assert_eq!(again.status, 200, "{}", again.text);
        assert_eq!(again.body["user"]["id"], user_id.as_str());
        let second = token(&again);

        // Sessions behave as a password login's: logout ends this one, logout-all the rest.
        let out = app
            .post("/api/v1/auth/logout", Some(&first), json!({}))
            .await;
        assert_eq!(out.status, 204, "{}", out.text);
        app.get("/api/v1/auth/me", Some(&first))
            .await
            .assert_error(401, "unauthorized");
        assert_eq!(app.get("/api/v1/auth/me", Some(&second)).await.status, 200);
        let all = app
            .post("/api/v1/auth/logout-all", Some(&second), json!({}))
            .await;
        assert_eq!(all.status, 204, "{}", all.text);
        app.get("/api/v1/auth/me", Some(&second))
            .await
            .assert_error(401, "unauthorized");

        // The provider is this account's only way in: it cannot be unlinked.
        let third = token(&sign_in(app, idp, &sub).await);
        let id = items[0]["id"].as_str().expect("id");
        app.delete(&format!("/api/v1/auth/identities/{id}"), Some(&third))
            .await
            .assert_error(409, "conflict");
        // Nor by anyone else.
        let other = app.customer().await;
        app.delete(&format!("/api/v1/auth/identities/{id}"), Some(&other.token))
            .await
            .assert_error(404, "not_found");
        app.get("/api/v1/auth/identities", None)
            .await
            .assert_error(401, "unauthorized");
    }
);

oidc_test!(
    a_wrong_state_a_replayed_callback_and_a_provider_refusal_are_each_refused,
    |app, idp, _fake| {
        let sub = app.unique("bob");
        idp.user(
            &sub,
            json!({"email": format!("{sub}@mail.example"), "email_verified": true}),
        )
        .await;
        let authorize = start(app, "mock", "").await;
        let back = idp.log_in(&authorize, &sub).await;
        let state = param(&back, "state");
        let code = param(&back, "code");
        let cb = "/api/v1/auth/oidc/mock/callback";

        let forged = app
            .get(&format!("{cb}?code={code}&state=not-{state}"), None)
            .await;
        forged.assert_error(400, "validation_failed");
        assert!(forged.text.contains("state"), "{}", forged.text);
        // A state of another provider is no good either (and is used up by trying).
        app.get(
            &format!("/api/v1/auth/oidc/fake/callback?code={code}&state={state}"),
            None,
        )
        .await
        .assert_error(400, "validation_failed");
        let authorize = start(app, "mock", "").await;
        let back = idp.log_in(&authorize, &sub).await;

        let ok = callback(app, &authorize, &back).await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        let replay = callback(app, &authorize, &back).await;
        replay.assert_error(400, "validation_failed");
        assert!(replay.text.contains("already used"), "{}", replay.text);

        let denied = app
            .get(&format!("{cb}?error=access_denied&state=x"), None)
            .await;
        denied.assert_error(400, "validation_failed");
        assert!(denied.text.contains("access_denied"), "{}", denied.text);
        app.get(&format!("{cb}?state=x"), None)
            .await
            .assert_error(400, "validation_failed");
    }
);

oidc_test!(
    an_id_token_for_another_nonce_is_refused,
    |app, idp, _fake| {
        let sub = app.unique("carol");
        let authorize = start(app, "mock", "").await;
        // The provider puts the nonce it was given in the ID token: swap it on the way.
        let nonce = param(&authorize, "nonce");
        let tampered = authorize.replace(&format!("nonce={nonce}"), "nonce=someone-elses-nonce");
        assert_ne!(tampered, authorize.url);
        let back = idp.log_in(&tampered, &sub).await;
        let r = callback(app, &authorize, &back).await;
        r.assert_error(400, "validation_failed");
        assert!(r.text.to_lowercase().contains("nonce"), "{}", r.text);
    }
);

oidc_test!(
    an_email_links_to_an_existing_account_only_when_the_provider_verified_it,
    |app, idp, _fake| {
        let owner = app.customer().await;

        let squatter = app.unique("squat");
        idp.user(
            &squatter,
            json!({"email": owner.email, "email_verified": false}),
        )
        .await;
        let r = sign_in(app, idp, &squatter).await;
        r.assert_error(409, "conflict");
        assert!(r.text.contains("verified"), "{}", r.text);
        let ids = app.get("/api/v1/auth/identities", Some(&owner.token)).await;
        assert_eq!(ids.body["items"], json!([]), "{}", ids.text);

        let real = app.unique("real");
        idp.user(
            &real,
            json!({"email": owner.email.to_uppercase(), "email_verified": true}),
        )
        .await;
        let r = sign_in(app, idp, &real).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["user"]["id"], owner.user_id.as_str());
        let linked = token(&r);
        let ids = app.get("/api/v1/auth/identities", Some(&linked)).await;
        let items = ids.body["items"].as_array().expect("items").clone();
        assert_eq!(items.len(), 1, "{}", ids.text);
        assert_eq!(items[0]["subject"], real.as_str());
        // Signup never proved the email, so whoever made the account may not own it
        // (pre-hijacking): the email's owner now holds it, and the password that
        // opened it and every session it had are gone.
        app.get("/api/v1/auth/me", Some(&owner.token))
            .await
            .assert_error(401, "unauthorized");
        app.post(
            "/api/v1/auth/login",
            None,
            json!({"email": owner.email, "password": owner.password}),
        )
        .await
        .assert_error(401, "invalid_credentials");
        // So the provider is now its only way in, and cannot be unlinked.
        let id = items[0]["id"].as_str().expect("id");
        app.delete(&format!("/api/v1/auth/identities/{id}"), Some(&linked))
            .await
            .assert_error(409, "conflict");

        // An unverified email with no account makes an account without that email.
        let fresh = app.unique("fresh");
        let fresh_email = format!("{fresh}@mail.example");
        idp.user(
            &fresh,
            json!({"email": fresh_email, "email_verified": false}),
        )
        .await;
        let r = sign_in(app, idp, &fresh).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["user"]["email"], Value::Null);
        let signup = app
            .post(
                "/api/v1/auth/signup",
                None,
                json!({"email": fresh_email, "password": "password123", "name": "Owner"}),
            )
            .await;
        assert_eq!(
            signup.status, 201,
            "the address stays free: {}",
            signup.text
        );

        // Admins sign in with their password only.
        let boss = app.unique("boss");
        idp.user(&boss, json!({"email": ADMIN_EMAIL, "email_verified": true}))
            .await;
        sign_in(app, idp, &boss)
            .await
            .assert_error(403, "forbidden");
    }
);

oidc_test!(
    forged_expired_and_misaddressed_id_tokens_are_refused,
    |app, _idp, fake| {
        let now = crate::helpers::now_secs();
        let cb = "/api/v1/auth/oidc/fake/callback";
        let cases = [
            ("trusted", now + 600, CLIENT_ID, None),
            ("foreign", now + 600, CLIENT_ID, Some("signature")),
            ("trusted", now - 60, CLIENT_ID, Some("expired")),
            ("trusted", now + 600, "another-client", Some("audience")),
        ];
        for (key, exp, aud, refused) in cases {
            let authorize = start(app, "fake", "").await;
            let state = param(&authorize, "state");
            let sub = app.unique("dave");
            fake.issue(
                key,
                json!({
                    "iss": fake.issuer, "sub": sub, "aud": aud, "exp": exp, "iat": now - 120,
                    "nonce": param(&authorize, "nonce"),
                    "email": format!("{sub}@mail.example"), "email_verified": true,
                }),
            );
            let back = app.url(&format!("{cb}?code=any-code&state={state}"));
            let r = callback(app, &authorize, &back).await;
            match refused {
                None => assert_eq!(r.status, 200, "the fake's good token: {}", r.text),
                Some(why) => {
                    r.assert_error(400, "validation_failed");
                    assert!(
                        r.text.to_lowercase().contains(why),
                        "{key} {aud}: {}",
                        r.text
                    );
                }
            }
        }
    }
);

oidc_test!(
    unknown_and_unreachable_providers_and_foreign_return_paths_are_clear_errors,
    |app, _idp, _fake| {
        app.get("/api/v1/auth/oidc/nope/start", None)
            .await
            .assert_error(404, "not_found");
        app.get("/api/v1/auth/oidc/nope/callback?code=a&state=b", None)
            .await
            .assert_error(404, "not_found");
        let down = app.get("/api/v1/auth/oidc/down/start", None).await;
        down.assert_error(503, "plugin_unavailable");
        assert_eq!(down.body["error"]["details"]["provider"], "down");
        for bad in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
        ] {
            let q = format!("?redirect_uri={}", urlencode(bad));
            app.get(&format!("/api/v1/auth/oidc/mock/start{q}"), None)
                .await
                .assert_error(400, "validation_failed");
        }
    }
);

oidc_test!(
    a_start_with_a_return_path_comes_back_there_with_the_tokens,
    |app, idp, _fake| {
        let sub = app.unique("erin");
        let authorize = start(app, "mock", "?redirect_uri=%2Forders%3Ftab%3Dlive").await;
        let back = idp.log_in(&authorize, &sub).await;
        let r = callback(app, &authorize, &back).await;
        assert_eq!(r.status, 302, "{}", r.text);
        let location = r.header("location").expect("location");
        let fragment = location
            .strip_prefix("/orders?tab=live#")
            .unwrap_or_else(|| panic!("{location}"));
        let pairs: Vec<(String, String)> = fragment
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let access = pairs
            .iter()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.clone())
            .expect("access_token");
        assert!(pairs
            .iter()
            .any(|(k, v)| k == "token_type" && v == "Bearer"));
        assert!(pairs.iter().any(|(k, _)| k == "refresh_token"));
        assert_eq!(app.get("/api/v1/auth/me", Some(&access)).await.status, 200);
    }
);

oidc_test!(
    a_callback_only_signs_in_the_browser_that_started_the_sign_in,
    |app, idp, _fake| {
        // Login CSRF: the attacker starts a sign-in with their own provider account and
        // hands the callback URL to a victim, whose browser lacks the attacker's cookie.
        let attacker = app.unique("mallory");
        idp.user(
            &attacker,
            json!({"email": format!("{attacker}@mail.example"), "email_verified": true}),
        )
        .await;
        let victim = start(app, "mock", "").await;
        for cookie in [None, Some(victim.cookie.as_str())] {
            let theirs = start(app, "mock", "").await;
            assert_ne!(victim.cookie, theirs.cookie, "each browser gets its own id");
            let back = idp.log_in(&theirs, &attacker).await;
            let r = callback_with(app, cookie, &back).await;
            r.assert_error(400, "validation_failed");
            assert!(r.text.contains("another browser"), "{}", r.text);
            assert!(
                r.header("set-cookie").is_none(),
                "{:?}",
                r.header("set-cookie")
            );
            // The refused callback used the state up: not even the attacker can
            // finish now.
            let late = callback(app, &theirs, &back).await;
            late.assert_error(400, "validation_failed");
            assert!(late.text.contains("already used"), "{}", late.text);
        }
        let theirs = start(app, "mock", "").await;

        // A browser keeps its id across sign-ins (two tabs both finish), and a cookie
        // the host did not make is replaced rather than trusted.
        let again = start_in(app, "mock", "", Some(&theirs.cookie)).await;
        assert_eq!(again.cookie, theirs.cookie);
        let tab = start_in(app, "mock", "", Some(&theirs.cookie)).await;
        let first = idp.log_in(&again, &attacker).await;
        let second = idp.log_in(&tab, &attacker).await;
        assert_eq!(callback(app, &tab, &second).await.status, 200);
        assert_eq!(callback(app, &again, &first).await.status, 200);
        let chosen = start_in(app, "mock", "", Some("kirana_browser=chosen-by-attacker")).await;
        assert_ne!(chosen.cookie, "kirana_browser=chosen-by-attacker");
    }
);

oidc_test!(
    the_configured_providers_are_listed_for_sign_in_buttons,
    |app, _idp, _fake| {
        let r = app.get("/api/v1/auth/oidc/providers", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let items = r.body["items"].as_array().expect("items");
        let names: Vec<&str> = items.iter().filter_map(|i| i["name"].as_str()).collect();
        assert_eq!(names, ["down", "fake", "mock"], "{}", r.text);
        assert_eq!(items[2]["start_url"], "/api/v1/auth/oidc/mock/start");
        // Each listed start works (or says why its provider is down).
        let s = start(app, "mock", "").await;
        assert!(s.url.starts_with("http://127.0.0.1:"), "{}", s.url);
    }
);

backend_test!(a_shop_without_providers_lists_none, |app| {
    let r = app.get("/api/v1/auth/oidc/providers", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"], json!([]), "{}", r.text);
});

/// A provider address that answers discovery with an endless document: the host reads
/// at most 256 KiB of it and says the provider answered badly (503), and serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_answer_too_large_to_read_is_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let issuer = format!("http://{}", listener.local_addr().expect("addr"));
    let served = issuer.clone();
    let server = tokio::spawn(async move {
        let app = axum::Router::new().fallback(move || {
            let issuer = served.clone();
            async move {
                // A valid start, then padding without end (16 MiB here).
                let head = format!("{{\"issuer\":\"{issuer}\",\"pad\":\"");
                let chunk = bytes::Bytes::from(vec![b'a'; 64 * 1024]);
                let pad = std::iter::repeat_n(chunk, 256);
                let body = futures::stream::iter(
                    std::iter::once(bytes::Bytes::from(head))
                        .chain(pad)
                        .map(Ok::<_, std::io::Error>),
                );
                axum::response::Response::builder()
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from_stream(body))
                    .expect("response")
            }
        });
        let _ = axum::serve(listener, app).await;
    });
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &format!("[oidc.huge]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\n"),
    )
    .await;
    let r = app.get("/api/v1/auth/oidc/huge/start", None).await;
    r.assert_error(503, "plugin_unavailable");
    assert!(r.text.contains("larger than 256 KiB"), "{}", r.text);
    assert_eq!(app.get("/health", None).await.status, 200);
    app.stop().await;
    server.abort();
}

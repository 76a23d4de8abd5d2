//! Web Push (the `push` channel of the host's mail capability, routes of the
//! `notifications` plugin): the VAPID key, subscribing and its validation, an order's
//! status change delivered to a local push service as an RFC 8291 message this test
//! decrypts with the subscription's keys (VAPID header verified), and a 410 from the
//! push service dropping the subscription.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

use crate::helpers::*;
use crate::shop::*;

/// Test hosts post to the in-test push service over plain HTTP on loopback, and the
/// mail sender looks often.
const PUSH: &str =
    "[push]\nallow_insecure_endpoints = true\n[mail]\npoll_ms = 50\nbackoff_ms = 200\n";

/// One request the push service received.
#[derive(Clone, Debug)]
struct PushRequest {
    path: String,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

/// A local push service: records every POST and answers 201, or 410 for paths under
/// `/gone/`, or 503 to the first request to a path under `/flaky/`; a request to a path
/// under `/stall/` is recorded, then held unanswered until [`PushService::release`].
struct PushService {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<PushRequest>>>,
    release: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl PushService {
    async fn start() -> Self {
        let received: Arc<Mutex<Vec<PushRequest>>> = Arc::default();
        let (release, released) = tokio::sync::watch::channel(false);
        let log = received.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: bytes::Bytes| {
                let (log, mut released) = (log.clone(), released.clone());
                async move {
                    let path = uri.path().to_string();
                    let status = {
                        let mut log = log.lock().expect("push log");
                        let first = !log.iter().any(|r| r.path == path);
                        let status = if path.starts_with("/gone/") {
                            axum::http::StatusCode::GONE
                        } else if path.starts_with("/flaky/") && first {
                            axum::http::StatusCode::SERVICE_UNAVAILABLE
                        } else {
                            axum::http::StatusCode::CREATED
                        };
                        log.push(PushRequest {
                            path: path.clone(),
                            headers,
                            body: body.to_vec(),
                        });
                        status
                    };
                    if path.starts_with("/stall/") {
                        let _ = released.wait_for(|r| *r).await;
                    }
                    status
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("push service port");
        let addr = listener.local_addr().expect("push service address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            received,
            release,
            task,
        }
    }

    /// Answers the held `/stall/` requests (and every later one at once).
    fn release(&self) {
        let _ = self.release.send(true);
    }

    fn endpoint(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn received(&self) -> Vec<PushRequest> {
        self.received.lock().expect("push log").clone()
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A browser's side of a subscription: its ECDH key pair and auth secret.
struct Browser {
    secret: SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new() -> Self {
        let mut auth = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut auth);
        Self {
            secret: SecretKey::random(&mut rand::thread_rng()),
            auth,
        }
    }

    fn public(&self) -> Vec<u8> {
        self.secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// `PushSubscription.toJSON()` for `endpoint`.
    fn subscription(&self, endpoint: &str) -> Value {
        json!({"endpoint": endpoint, "keys": {
            "p256dh": URL_SAFE_NO_PAD.encode(self.public()),
            "auth": URL_SAFE_NO_PAD.encode(self.auth),
        }})
    }

    /// What the browser does with an `aes128gcm` body (RFC 8291 §3, RFC 8188 §2).
    fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        if body.len() < 21 {
            return Err("shorter than the header".into());
        }
        let salt = &body[..16];
        let rs = u32::from_be_bytes([body[16], body[17], body[18], body[19]]);
        let idlen = usize::from(body[20]);
        let keyid = body.get(21..21 + idlen).ok_or("no key id")?;
        let sealed = &body[21 + idlen..];
        // One record: the whole ciphertext fits the announced record size.
        if idlen != 65 || sealed.len() > rs as usize {
            return Err(format!("unexpected header: idlen {idlen}, rs {rs}"));
        }
        let as_public = PublicKey::from_sec1_bytes(keyid).map_err(|e| e.to_string())?;
        let shared =
            p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), as_public.as_affine());
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(&self.public());
        info.extend_from_slice(keyid);
        let mut ikm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&self.auth), shared.raw_secret_bytes())
            .expand(&info, &mut ikm)
            .map_err(|e| e.to_string())?;
        let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
        let mut cek = [0u8; 16];
        let mut nonce = [0u8; 12];
        prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
            .map_err(|e| e.to_string())?;
        prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
            .map_err(|e| e.to_string())?;
        let mut plain = Aes128Gcm::new_from_slice(&cek)
            .map_err(|e| e.to_string())?
            .decrypt(Nonce::from_slice(&nonce), sealed)
            .map_err(|_| "the tag does not verify".to_string())?;
        // Padding: zeros after the 0x02 delimiter of the last record.
        while plain.last() == Some(&0) {
            plain.pop();
        }
        match plain.pop() {
            Some(2) => Ok(plain),
            other => Err(format!("bad record delimiter {other:?}")),
        }
    }
}

/// The payload JSON of every request to `path` that `browser` can decrypt.
fn payloads(service: &PushService, path: &str, browser: &Browser) -> Vec<Value> {
    service
        .received()
        .iter()
        .filter(|r| r.path == path)
        .filter_map(|r| browser.decrypt(&r.body).ok())
        .filter_map(|p| serde_json::from_slice(&p).ok())
        .collect()
}

async fn subscribe(app: &TestApp, token: &str, body: Value) -> Resp {
    app.post(
        "/api/v1/notifications/push/subscriptions",
        Some(token),
        body,
    )
    .await
}

async fn vapid_key(app: &TestApp) -> String {
    let r = app.get("/api/v1/notifications/push/key", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["vapid_public_key"]
        .as_str()
        .expect("vapid_public_key")
        .to_string()
}

backend_test!(push_key_and_subscriptions, PUSH, |app| {
    // The key is public, one uncompressed P-256 point, the same every time.
    let key = vapid_key(app).await;
    let point = URL_SAFE_NO_PAD.decode(&key).expect("base64url");
    assert_eq!((point.len(), point[0]), (65, 4));
    assert!(PublicKey::from_sec1_bytes(&point).is_ok());
    assert_eq!(vapid_key(app).await, key);

    let c = app.customer().await;
    let browser = Browser::new();
    let endpoint = "http://127.0.0.1:9/push/one";
    let sub = browser.subscription(endpoint);
    let r = app
        .post(
            "/api/v1/notifications/push/subscriptions",
            None,
            sub.clone(),
        )
        .await;
    r.assert_error(401, "unauthorized");

    let r = subscribe(app, &c.token, sub.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().expect("id").to_string();
    // The same endpoint again: 200 and the same id.
    let r = subscribe(app, &c.token, sub.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());

    // Validation: each bad field named, never a 500.
    let p256dh = sub["keys"]["p256dh"].clone();
    let auth = sub["keys"]["auth"].clone();
    let cases = [
        (json!({"keys": sub["keys"]}), "endpoint"),
        (json!({"endpoint": endpoint}), "keys"),
        (json!({"endpoint": endpoint, "keys": "x"}), "keys"),
        (json!({"endpoint": 7, "keys": sub["keys"]}), "endpoint"),
        (
            json!({"endpoint": endpoint, "keys": {"auth": auth}}),
            "keys.p256dh",
        ),
        (
            json!({"endpoint": endpoint, "keys": {"p256dh": "not base64!", "auth": auth}}),
            "keys.p256dh",
        ),
        (
            json!({"endpoint": endpoint, "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(browser.secret.public_key().to_encoded_point(true)),
                "auth": auth}}),
            "keys.p256dh",
        ),
        (
            json!({"endpoint": endpoint, "keys": {"p256dh": p256dh,
                   "auth": URL_SAFE_NO_PAD.encode([1u8; 8])}}),
            "keys.auth",
        ),
        (
            json!({"endpoint": "ftp://127.0.0.1/x", "keys": sub["keys"]}),
            "endpoint",
        ),
        (
            json!({"endpoint": format!("https://push.example.net/{}", "a".repeat(1100)),
                   "keys": sub["keys"]}),
            "endpoint",
        ),
        (json!(["endpoint"]), "body"),
    ];
    for (body, field) in cases {
        let r = subscribe(app, &c.token, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        r.assert_invalid_field(field);
    }

    // Delete: someone else's is 404, one's own 204, then gone.
    let other = app.customer().await;
    let path = format!("/api/v1/notifications/push/subscriptions/{id}");
    app.delete(&path, Some(&other.token))
        .await
        .assert_error(404, "not_found");
    app.delete(&path, None)
        .await
        .assert_error(401, "unauthorized");
    let r = app.delete(&path, Some(&c.token)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    app.delete(&path, Some(&c.token))
        .await
        .assert_error(404, "not_found");
    // Subscribing again makes a new one.
    let r = subscribe(app, &c.token, sub.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_ne!(r.body["id"], id.as_str());
    // The same new endpoint twice at once: one 201, one 200, one id.
    let twin = browser.subscription("http://127.0.0.1:9/push/twin");
    let (x, y) = tokio::join!(
        subscribe(app, &c.token, twin.clone()),
        subscribe(app, &c.token, twin.clone())
    );
    let mut statuses = [x.status, y.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 201], "{} / {}", x.text, y.text);
    assert_eq!(x.body["id"], y.body["id"]);
    // Another account signing in on that browser takes the endpoint over.
    let r = subscribe(app, &other.token, sub).await;
    assert_eq!(r.status, 201, "{}", r.text);
});

backend_test!(push_endpoints_must_be_public_https, |app| {
    let c = app.customer().await;
    let browser = Browser::new();
    for endpoint in [
        "http://push.example.net/send/1",
        "https://127.0.0.1/send/1",
        "https://localhost/send/1",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/send/1",
    ] {
        let r = subscribe(app, &c.token, browser.subscription(endpoint)).await;
        assert_eq!(r.status, 400, "{endpoint}: {}", r.text);
        r.assert_invalid_field("endpoint");
    }
    let r = subscribe(
        app,
        &c.token,
        browser.subscription("https://push.example.net/send/abc"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
});

backend_test!(order_status_arrives_as_an_encrypted_push, PUSH, |app| {
    let service = PushService::start().await;
    let key = vapid_key(app).await;
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 4500, 10).await;
    let (c, address) = shopper(app, &product, 1).await;
    let browser = Browser::new();
    let path = format!("/push/{}", app.unique("b"));
    subscribed(app, &c.token, &browser, &service, &path).await;

    let started = std::time::Instant::now();
    let order = place(app, &c, &address, "cod").await;
    move_order(app, &admin, &order, "preparing").await;
    let payload = app
        .eventually(10, || async {
            payloads(&service, &path, &browser)
                .into_iter()
                .find(|p| p["data"]["status"] == "preparing")
        })
        .await
        .expect("the status change arrived at the push service");
    eprintln!(
        "push: order placed to decrypted status change in {} ms",
        started.elapsed().as_millis()
    );
    assert_eq!(payload["title"], "Order preparing");
    assert_eq!(payload["data"]["order_id"], order.as_str());
    assert_eq!(payload["data"]["type"], "order.status_changed");
    assert!(
        payload["body"]
            .as_str()
            .is_some_and(|b| b.contains("packing your order")),
        "{payload}"
    );

    // The request as RFC 8030/8291/8292 want it.
    let request = service
        .received()
        .into_iter()
        .find(|r| r.path == path && browser.decrypt(&r.body).is_ok())
        .expect("a request");
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-encoding"), "aes128gcm");
    assert_eq!(header("ttl"), "3600");
    assert!(request.body.len() <= 4096);
    let authorization = header("authorization");
    let rest = authorization
        .strip_prefix("vapid t=")
        .unwrap_or_else(|| panic!("not a vapid header: {authorization}"));
    let (token, k) = rest.split_once(", k=").expect("t=..., k=...");
    assert_eq!(k, key, "the header carries the key from /push/key");
    let point = URL_SAFE_NO_PAD.decode(&key).expect("key");
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..65]),
    )
    .expect("decoding key");
    let origin = format!("http://{}", service.addr);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[origin.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(token, &decoding, &validation)
        .expect("the VAPID JWT verifies with the published key")
        .claims;
    assert_eq!(claims["aud"], origin.as_str());
    assert_eq!(claims["sub"], format!("mailto:{ADMIN_EMAIL}").as_str());
    let exp = claims["exp"].as_i64().unwrap_or_default();
    assert!(
        exp > now_secs() && exp <= now_secs() + 24 * 3600,
        "{claims}"
    );

    // The admin outbox lists the push message, sent, to the user.
    let admin_view = sent_push(app, &admin, &c.user_id, "Order preparing", 5)
        .await
        .expect("the outbox lists the push as sent");
    assert_eq!(admin_view["channel"], "push");
    assert_eq!(admin_view["to"], c.user_id.as_str());

    // Each event reaches the browser once: settle, then count.
    move_order(app, &admin, &order, "out_for_delivery").await;
    app.eventually(10, || async {
        payloads(&service, &path, &browser)
            .iter()
            .any(|p| p["data"]["status"] == "out_for_delivery")
            .then_some(())
    })
    .await
    .expect("the second change arrived");
    settled(app).await;
    let statuses: Vec<String> = payloads(&service, &path, &browser)
        .iter()
        .filter_map(|p| p["data"]["status"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| s.as_str() == "preparing")
            .count(),
        1,
        "{statuses:?}"
    );
    // Someone with no subscription gets nothing, and nothing is queued for them.
    let r = app
        .get(
            &format!(
                "/api/v1/admin/outbox?channel=push&to={}",
                admin_user(app, &admin).await
            ),
            Some(&admin),
        )
        .await;
    assert_eq!(r.body["total"], 0, "{}", r.text);
});

/// The admin's user id (from `/auth/me`).
async fn admin_user(app: &TestApp, admin: &str) -> String {
    let r = app.get("/api/v1/auth/me", Some(admin)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["id"].as_str().expect("id").to_string()
}

backend_test!(a_gone_subscription_is_dropped, PUSH, |app| {
    let service = PushService::start().await;
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 4500, 10).await;
    let (c, address) = shopper(app, &product, 1).await;
    let (live, gone) = (Browser::new(), Browser::new());
    let live_path = format!("/push/{}", app.unique("live"));
    let gone_path = format!("/gone/{}", app.unique("gone"));
    let r = subscribe(
        app,
        &c.token,
        live.subscription(&service.endpoint(&live_path)),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let gone_sub = gone.subscription(&service.endpoint(&gone_path));
    let r = subscribe(app, &c.token, gone_sub.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let gone_id = r.body["id"].as_str().expect("id").to_string();

    let order = place(app, &c, &address, "cod").await;
    move_order(app, &admin, &order, "preparing").await;
    // Both browsers are tried; the push service answers 410 for one.
    app.eventually(10, || async {
        let got_live = !payloads(&service, &live_path, &live).is_empty();
        let got_gone = !payloads(&service, &gone_path, &gone).is_empty();
        (got_live && got_gone).then_some(())
    })
    .await
    .expect("both endpoints were posted to");
    // The outbox records the gone one as failed, not retried ...
    let failed = app
        .eventually(5, || async {
            let r = app
                .get(
                    &format!("/api/v1/admin/outbox?channel=push&to={}", c.user_id),
                    Some(&admin),
                )
                .await;
            let items = r.body["items"].as_array()?.clone();
            let failed = items.iter().filter(|m| m["status"] == "failed").count();
            let sent = items.iter().filter(|m| m["status"] == "sent").count();
            (failed == 1 && sent == 1).then_some(items)
        })
        .await;
    assert!(failed.is_some(), "one push sent, one failed");
    // ... and the subscription is gone: deleting it is 404, subscribing makes a new one.
    app.delete(
        &format!("/api/v1/notifications/push/subscriptions/{gone_id}"),
        Some(&c.token),
    )
    .await
    .assert_error(404, "not_found");
    // The next status change goes to the live browser only.
    move_order(app, &admin, &order, "out_for_delivery").await;
    app.eventually(10, || async {
        payloads(&service, &live_path, &live)
            .iter()
            .any(|p| p["data"]["status"] == "out_for_delivery")
            .then_some(())
    })
    .await
    .expect("the live browser got the next change");
    settled(app).await;
    let tried_gone = service
        .received()
        .iter()
        .filter(|r| r.path == gone_path)
        .count();
    assert_eq!(
        tried_gone, 1,
        "a dropped subscription is not posted to again"
    );
    let r = subscribe(app, &c.token, gone_sub).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_ne!(r.body["id"], gone_id.as_str());
});

backend_test!(a_failing_push_service_is_retried, PUSH, |app| {
    let service = PushService::start().await;
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 4500, 10).await;
    let (c, address) = shopper(app, &product, 1).await;
    let browser = Browser::new();
    let path = format!("/flaky/{}", app.unique("f"));
    subscribed(app, &c.token, &browser, &service, &path).await;
    let order = place(app, &c, &address, "cod").await;
    move_order(app, &admin, &order, "preparing").await;
    // 503 first, then (after the backoff) 201: the same message, newly encrypted.
    let sent = sent_push(app, &admin, &c.user_id, "Order preparing", 10).await;
    assert!(sent.is_some(), "the push was sent after a retry");
    let tries: Vec<PushRequest> = service
        .received()
        .into_iter()
        .filter(|r| r.path == path)
        .collect();
    assert_eq!(tries.len(), 2, "one 503, one 201");
    let bodies: Vec<Value> = tries
        .iter()
        .map(|r| {
            serde_json::from_slice(&browser.decrypt(&r.body).expect("decrypts")).expect("json")
        })
        .collect();
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1]["data"]["status"], "preparing");
    assert_ne!(
        tries[0].body, tries[1].body,
        "a fresh key and salt per attempt"
    );
});

/// A push service that does not answer holds up only its own message: email queued
/// behind it goes out over SMTP while the push is still waiting for its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_push_service_does_not_hold_up_email() {
    let service = PushService::start().await;
    let sink = crate::messaging::SmtpSink::start().await;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &format!("{PUSH}smtp_url = \"smtp://127.0.0.1:{}\"\n", sink.port),
    )
    .await;
    let admin = app.admin_token().await;
    let product = new_product(&app, &admin, 4500, 10).await;
    let (c, address) = shopper(&app, &product, 1).await;
    let browser = Browser::new();
    let path = format!("/stall/{}", app.unique("s"));
    subscribed(&app, &c.token, &browser, &service, &path).await;
    let order = place(&app, &c, &address, "cod").await;
    move_order(&app, &admin, &order, "preparing").await;
    let stalled = app
        .eventually(10, || async {
            service
                .received()
                .iter()
                .any(|r| r.path == path)
                .then_some(())
        })
        .await;
    assert!(stalled.is_some(), "the push reached the stalled service");

    let to = format!("{}@example.in", app.word("during"));
    let r = app
        .post(
            "/api/v1/hello/postcards",
            Some(&admin),
            json!({"to": to, "message": "while a push hangs"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let mailed = app
        .eventually(10, || async {
            sink.received()
                .iter()
                .any(|m| m.contains(&to))
                .then_some(())
        })
        .await;
    assert!(
        mailed.is_some(),
        "the email went out while the push was held"
    );
    let outbox = app
        .get(
            &format!("/api/v1/admin/outbox?channel=push&to={}", c.user_id),
            Some(&admin),
        )
        .await;
    let pushes = outbox.body["items"].as_array().expect("push outbox items");
    let held = pushes
        .iter()
        .find(|m| m["subject"] == "Order preparing")
        .expect("the held push is in the outbox");
    assert_eq!(
        held["status"], "pending",
        "the push was still unanswered when the email went: {held}"
    );

    service.release();
    let sent = sent_push(&app, &admin, &c.user_id, "Order preparing", 10).await;
    assert!(sent.is_some(), "the released push is recorded as sent");
    app.stop().await;
}

/// The VAPID key pair is made once and kept in the host database: a restart and a
/// second replica on the same database publish the same key (browsers' subscriptions
/// are bound to it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vapid_key_survives_restarts_and_is_shared_by_replicas() {
    let mut a = TestApp::spawn_with(Backend::Postgres, PUSH).await;
    let key = vapid_key(&a).await;
    let b = a.replica(PUSH).await;
    assert_eq!(vapid_key(&b).await, key);
    b.stop().await;
    a.restart().await;
    assert_eq!(vapid_key(&a).await, key);
    a.stop().await;
}

backend_test!(assignment_and_failed_payment_are_pushed_once, PUSH, |app| {
    let service = PushService::start().await;
    let admin = app.admin_token().await;
    let agent = new_agent(app, &admin).await;
    available(app, &agent).await;
    let product = new_product(app, &admin, 4500, 10).await;
    let (c, address) = shopper(app, &product, 1).await;
    let browser = Browser::new();
    let path = format!("/push/{}", app.unique("a"));
    subscribed(app, &c.token, &browser, &service, &path).await;
    let order = place(app, &c, &address, "cod").await;
    move_order(app, &admin, &order, "preparing").await;
    inject_event(
        app,
        &app.unique("evt"),
        "payments",
        "payment.failed",
        &json!({"payment_id": "pay_x", "order_id": order, "user_id": c.user_id,
                "provider_payment_id": "pay_declined", "at": "2026-12-06T00:00:00Z"}),
        0,
    )
    .await;
    let titles = |service: &PushService| -> Vec<String> {
        payloads(service, &path, &browser)
            .iter()
            .filter_map(|p| p["title"].as_str().map(str::to_string))
            .collect()
    };
    app.eventually(10, || async {
        let t = titles(&service);
        (t.iter().any(|t| t == "Delivery partner assigned")
            && t.iter().any(|t| t == "Payment failed"))
        .then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("assignment and payment pushes: {:?}", titles(&service)));
    let assigned = payloads(&service, &path, &browser)
        .into_iter()
        .find(|p| p["title"] == "Delivery partner assigned")
        .expect("assigned");
    assert!(
        assigned["body"]
            .as_str()
            .is_some_and(|b| b.contains("Test Agent")),
        "{assigned}"
    );
    assert_eq!(assigned["data"]["order_id"], order.as_str());

    // Every event delivered to notifications again (as after a crash before the ack):
    // no browser gets anything twice.
    settled(app).await;
    let pool = &app.app().platform.db.pool;
    sqlx::query(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = 0, locked_until = 0 \
         WHERE subscriber = 'notifications'",
    )
    .execute(pool)
    .await
    .expect("re-queueing deliveries");
    settled(app).await;
    // Let the sender finish what is queued, then count.
    app.eventually(10, || async {
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM mail_outbox WHERE channel = 'push' AND status = 'pending'",
        )
        .fetch_one(pool)
        .await
        .ok()?;
        (pending == 0 && titles(&service).len() >= 3).then_some(())
    })
    .await
    .expect("every push was delivered");
    let mut t = titles(&service);
    t.sort();
    assert_eq!(
        t,
        [
            "Delivery partner assigned",
            "Order preparing",
            "Payment failed"
        ],
        "one push per event"
    );
    // The agent's own notification stays in-app: nothing was queued for the agent.
    let r = app
        .get(
            &format!("/api/v1/admin/outbox?channel=push&to={}", agent.user_id),
            Some(&admin),
        )
        .await;
    assert_eq!(r.body["total"], 0, "{}", r.text);
});

/// The push message with `subject` to `user_id` once the admin outbox shows it sent,
/// waiting up to `secs`.
async fn sent_push(
    app: &TestApp,
    admin: &str,
    user_id: &str,
    subject: &str,
    secs: u64,
) -> Option<Value> {
    app.eventually(secs, || async {
        let r = app
            .get(
                &format!("/api/v1/admin/outbox?channel=push&to={user_id}"),
                Some(admin),
            )
            .await;
        r.body["items"]
            .as_array()?
            .iter()
            .find(|m| m["subject"] == subject && m["status"] == "sent")
            .cloned()
    })
    .await
}

/// Subscribes `browser` for the caller of `token` at `path` of the push service,
/// asserting the 201.
async fn subscribed(
    app: &TestApp,
    token: &str,
    browser: &Browser,
    service: &PushService,
    path: &str,
) {
    let r = subscribe(app, token, browser.subscription(&service.endpoint(path))).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

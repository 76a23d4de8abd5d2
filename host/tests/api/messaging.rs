//! The host's messaging capabilities over HTTP: realtime pushes as Server-Sent Events
//! (`GET /api/v1/realtime`) and the mail outbox with SMTP delivery to a local sink.
//! The `hello` example plugin drives them (`/api/v1/hello/wave`, `/hello/postcards`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::helpers::*;

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub data: Value,
}

/// A live `GET /api/v1/realtime` connection.
pub struct Sse {
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl Sse {
    /// Opens a stream with the token in the header (or `?access_token=` when
    /// `in_query`) and waits for its `ready` event.
    pub async fn open(app: &TestApp, token: &str, in_query: bool) -> Self {
        let rb = if in_query {
            app.client
                .get(app.url(&format!("/api/v1/realtime?access_token={token}")))
        } else {
            app.client
                .get(app.url("/api/v1/realtime"))
                .bearer_auth(token)
        };
        let resp = rb.send().await.expect("realtime request");
        assert_eq!(resp.status(), 200, "realtime stream refused");
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        let mut sse = Self {
            stream: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        };
        let ready = sse.next(Duration::from_secs(5)).await.expect("ready event");
        assert_eq!(ready.event, "ready");
        sse
    }

    /// The next event within `wait` (keep-alive comments skipped), or `None`.
    pub async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() && event == "message" {
                    continue; // a keep-alive comment
                }
                let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Some(SseEvent { event, data });
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??
                .ok()?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event named `event`, skipping others, within `wait`.
    pub async fn next_named(&mut self, event: &str, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = self.next(left).await?;
            if e.event == event {
                return Some(e);
            }
        }
    }
}

impl Sse {
    /// Whether the server ends the stream within `wait` (events before the end are
    /// skipped).
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}

/// The session id inside a test host's access token.
fn session_of(token: &str) -> String {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_exp = false;
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
        &v,
    )
    .expect("a test host's token")
    .claims["sid"]
        .as_str()
        .expect("sid")
        .to_string()
}

/// Streams recheck their token every 200 ms here (15 s by default).
const FAST_RECHECK: &str = "[realtime]\nrecheck_ms = 200";

backend_test!(a_logout_ends_the_live_stream, FAST_RECHECK, |app| {
    let c = app.customer().await;
    let mut live = Sse::open(app, &c.token, false).await;
    let mut other = Sse::open(app, &c.token, true).await;
    let r = app
        .post("/api/v1/auth/logout", Some(&c.token), json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(
        live.ends_within(Duration::from_secs(10)).await,
        "the stream outlived the logout"
    );
    assert!(
        other.ends_within(Duration::from_secs(10)).await,
        "the stream opened with ?access_token= outlived the logout"
    );
    // And the token no longer opens one.
    let r = app
        .client
        .get(app.url("/api/v1/realtime"))
        .bearer_auth(&c.token)
        .send()
        .await
        .expect("realtime request");
    assert_eq!(r.status(), 401);
});

backend_test!(
    an_expiring_token_ends_the_live_stream,
    FAST_RECHECK,
    |app| {
        let c = app.customer().await;
        // A token of the customer's live session that expires in two seconds.
        let short = app.sign(
            &c.user_id,
            "customer",
            &session_of(&c.token),
            now_secs() + 2,
        );
        let mut live = Sse::open(app, &short, false).await;
        assert!(
            live.ends_within(Duration::from_secs(15)).await,
            "the stream outlived its token"
        );
        // The session itself is still live: its own token streams on.
        let mut still = Sse::open(app, &c.token, false).await;
        wave(app, &c.token, &c.user_id, "still here").await;
        let e = still
            .next_named("hello.wave", Duration::from_secs(5))
            .await
            .expect("a push on the live session's stream");
        assert_eq!(e.data["message"], "still here");
    }
);

pub async fn wave(app: &TestApp, token: &str, to: &str, message: &str) {
    let r = app
        .post(
            "/api/v1/hello/wave",
            Some(token),
            json!({"user_id": to, "message": message}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
}

backend_test!(realtime_reaches_the_right_user_only, |app| {
    let asha = app.customer().await;
    let ravi = app.customer().await;
    let mut asha_stream = Sse::open(app, &asha.token, false).await;
    let mut ravi_stream = Sse::open(app, &ravi.token, true).await;

    // Waves are matched by name: the signup's welcome notification may reach a stream
    // at any moment (it comes from an event), and is not what this test is about.
    wave(app, &ravi.token, &asha.user_id, "namaste asha").await;
    let e = asha_stream
        .next_named("hello.wave", Duration::from_secs(1))
        .await
        .expect("asha gets her wave within a second");
    assert_eq!(e.data["message"], "namaste asha");
    assert_eq!(e.data["from"], ravi.user_id.as_str());

    // Ravi's stream saw nothing of Asha's wave: his next wave is his own.
    wave(app, &asha.token, &ravi.user_id, "namaste ravi").await;
    let e = ravi_stream
        .next_named("hello.wave", Duration::from_secs(2))
        .await
        .expect("ravi's wave");
    assert_eq!(e.data["message"], "namaste ravi");

    // Two connections of one user both get the push.
    let mut asha_second = Sse::open(app, &asha.token, true).await;
    wave(app, &ravi.token, &asha.user_id, "again").await;
    for s in [&mut asha_stream, &mut asha_second] {
        let e = s
            .next_named("hello.wave", Duration::from_secs(2))
            .await
            .expect("both streams");
        assert_eq!(e.data["message"], "again");
    }
});

backend_test!(realtime_refuses_bad_tokens_before_streaming, |app| {
    let r = app.get("/api/v1/realtime", None).await;
    r.assert_error(401, "unauthorized");
    let r = app.get("/api/v1/realtime?access_token=nope", None).await;
    r.assert_error(401, "unauthorized");
    let expired = app.sign("usr_x", "customer", "sid_x", now_secs() - 60);
    let r = app.get("/api/v1/realtime", Some(&expired)).await;
    r.assert_error(401, "unauthorized");
    // A logged-out session cannot open a stream.
    let c = app.customer().await;
    let r = app
        .post("/api/v1/auth/logout", Some(&c.token), json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = app
        .get(&format!("/api/v1/realtime?access_token={}", c.token), None)
        .await;
    r.assert_error(401, "unauthorized");
    let other = app.customer().await;
    let r = app
        .post("/api/v1/realtime", Some(&other.token), json!({}))
        .await;
    r.assert_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET"));
});

backend_test!(realtime_pushes_are_checked, |app| {
    let c = app.customer().await;
    // The plugin checks its input before pushing.
    let r = app
        .post(
            "/api/v1/hello/wave",
            Some(&c.token),
            json!({"user_id": "", "message": "x"}),
        )
        .await;
    r.assert_invalid_field("user_id");
    // Nobody listening is fine: the push goes nowhere.
    wave(app, &c.token, "usr_nobody_listens", "hello?").await;
});

/// A minimal SMTP server that accepts every message and keeps its raw DATA.
pub struct SmtpSink {
    pub port: u16,
    pub messages: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("sink binds");
        let port = listener.local_addr().expect("sink addr").port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let store = messages.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve_smtp(socket, store.clone()));
            }
        });
        Self { port, messages }
    }

    pub fn received(&self) -> Vec<String> {
        self.messages.lock().expect("sink lock").clone()
    }
}

async fn serve_smtp(socket: tokio::net::TcpStream, store: Arc<Mutex<Vec<String>>>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let mut data: Option<String> = None;
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(body) = data.as_mut() {
            if line == "." {
                store.lock().expect("sink lock").push(std::mem::take(body));
                data = None;
                let _ = write.write_all(b"250 queued\r\n").await;
            } else {
                body.push_str(&line);
                body.push('\n');
            }
            continue;
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 sink\r\n",
            "DATA" => {
                data = Some(String::new());
                b"354 end with .\r\n"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"250 ok\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

async fn postcard(app: &TestApp, admin: &str, to: &str, message: &str) -> Resp {
    app.post(
        "/api/v1/hello/postcards",
        Some(admin),
        json!({"to": to, "message": message}),
    )
    .await
}

async fn postcard_status(app: &TestApp, admin: &str, to: &str) -> Option<String> {
    let r = app
        .get(&format!("/api/v1/hello/postcards?to={to}"), Some(admin))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"][0]["status"].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_goes_out_over_smtp_and_stays_in_the_outbox() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &format!(
            "[mail]\nsmtp_url = \"smtp://127.0.0.1:{}\"\npoll_ms = 20\n",
            sink.port
        ),
    )
    .await;
    let admin = app.admin_token().await;
    let to = format!("{}@example.in", app.word("postcard"));
    let r = postcard(&app, &admin, &to, "Greetings from Bengaluru").await;
    assert_eq!(r.status, 202, "{}", r.text);
    let status = app
        .eventually(5, || async {
            postcard_status(&app, &admin, &to)
                .await
                .filter(|s| s == "sent")
        })
        .await;
    assert_eq!(status.as_deref(), Some("sent"));
    let received = sink.received();
    let mail = received
        .iter()
        .find(|m| m.contains(&to))
        .expect("the sink got the email");
    assert!(mail.contains("Subject: A postcard from Kirana"), "{mail}");
    assert!(mail.contains("Greetings from Bengaluru"), "{mail}");
    assert!(mail.contains("no-reply@kirana.local"), "{mail}");

    // The outbox lists it, newest first, filtered by recipient.
    let r = app
        .get(&format!("/api/v1/hello/postcards?to={to}"), Some(&admin))
        .await;
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["items"][0]["to"], to.as_str());
    // An address the host cannot deliver to is refused before it is recorded.
    let r = postcard(&app, &admin, "not-an-address", "x").await;
    r.assert_invalid_field("to");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeliverable_email_is_retried_then_failed_but_recorded() {
    // A port nobody listens on: every attempt fails.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &format!(
            "[mail]\nsmtp_url = \"smtp://127.0.0.1:{port}\"\npoll_ms = 20\nbackoff_ms = 20\nmax_attempts = 2\n"
        ),
    )
    .await;
    let admin = app.admin_token().await;
    let to = format!("{}@example.in", app.word("lost"));
    let r = postcard(&app, &admin, &to, "Into the void").await;
    assert_eq!(r.status, 202, "{}", r.text);
    let status = app
        .eventually(10, || async {
            postcard_status(&app, &admin, &to)
                .await
                .filter(|s| s == "failed")
        })
        .await;
    assert_eq!(status.as_deref(), Some("failed"));
    app.stop().await;
}

backend_test!(without_smtp_email_is_only_recorded, |app| {
    let admin = app.admin_token().await;
    let to = format!("{}@example.in", app.word("rec"));
    let r = postcard(app, &admin, &to, "Kept on file").await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["id"].as_str().expect("message id").to_string();
    let r = app
        .get(&format!("/api/v1/hello/postcards?to={to}"), Some(&admin))
        .await;
    assert_eq!(r.body["items"][0]["id"], id.as_str());
    assert_eq!(r.body["items"][0]["status"], "recorded");
    assert_eq!(r.body["items"][0]["body"], "Kept on file");
    let c = app.customer().await;
    let r = app.get("/api/v1/hello/postcards", Some(&c.token)).await;
    r.assert_error(403, "forbidden");
});

backend_test!(order_events_stream_to_their_customer_only, |app| {
    use crate::shop::*;
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 4500, 10).await;
    let (asha, address) = shopper(app, &product, 2).await;
    let ravi = app.customer().await;
    let mut asha_stream = Sse::open(app, &asha.token, false).await;
    let mut ravi_stream = Sse::open(app, &ravi.token, false).await;

    let order_id = place(app, &asha, &address, "cod").await;
    let created = asha_stream
        .next_named("order.created", Duration::from_secs(3))
        .await
        .expect("order.created reaches the customer");
    assert_eq!(created.data["order_id"], order_id.as_str());

    move_order(app, &admin, &order_id, "preparing").await;
    // The in-app notification is announced just before the event itself.
    let note = asha_stream
        .next_named("notification.created", Duration::from_secs(3))
        .await
        .expect("notification.created");
    assert_eq!(note.data["data"]["order_id"], order_id.as_str());
    assert_eq!(note.data["type"], "order.status_changed");
    let changed = asha_stream
        .next_named("order.status_changed", Duration::from_secs(3))
        .await
        .expect("order.status_changed reaches the customer");
    assert_eq!(changed.data["order_id"], order_id.as_str());
    assert_eq!(changed.data["user_id"], asha.user_id.as_str());
    assert_eq!(changed.data["from"], "confirmed");
    assert_eq!(changed.data["to"], "preparing");

    // Ravi saw none of it: the first thing on his stream is a wave sent after, but for
    // his own welcome notification (from his signup's event, which may arrive late).
    wave(app, &asha.token, &ravi.user_id, "marker").await;
    let first = loop {
        let e = ravi_stream
            .next(Duration::from_secs(3))
            .await
            .expect("ravi's marker");
        if e.event == "notification.created" && e.data["type"] == "welcome" {
            continue;
        }
        break e;
    };
    assert_eq!(first.event, "hello.wave", "ravi got {first:?}");
    assert_eq!(first.data["message"], "marker");
});

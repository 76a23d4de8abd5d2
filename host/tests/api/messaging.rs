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

/// One message an [`SmtpSink`] accepted: its raw DATA and whether it came over TLS.
#[derive(Debug, Clone)]
pub struct Received {
    pub data: String,
    pub over_tls: bool,
}

/// A minimal SMTP server that accepts every message and keeps its raw DATA. Made by
/// [`SmtpSink::start_tls`], it offers STARTTLS and upgrades with the test certificate
/// of `host/tests/fixtures/smtp-tls` (signed by its `ca.pem`).
pub struct SmtpSink {
    pub port: u16,
    messages: Arc<Mutex<Vec<Received>>>,
    /// Every command line the sink read (DATA excluded), and whether over TLS.
    commands: Arc<Mutex<Vec<(String, bool)>>>,
}

/// The test certificate authority the STARTTLS sink's certificate chains to.
pub fn smtp_test_ca() -> std::path::PathBuf {
    workspace().join("host/tests/fixtures/smtp-tls/ca.pem")
}

/// A TLS acceptor with the fixture's server certificate (names localhost and 127.0.0.1).
fn fixture_acceptor() -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = workspace().join("host/tests/fixtures/smtp-tls");
    let chain = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .expect("server.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("server.pem's certificates");
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("server.key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("the fixture certificate and key match");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

impl SmtpSink {
    /// A plain-text sink (no STARTTLS offered).
    pub async fn start() -> Self {
        Self::listen(None).await
    }

    /// A sink that offers STARTTLS and upgrades with the fixture certificate.
    pub async fn start_tls() -> Self {
        Self::listen(Some(fixture_acceptor())).await
    }

    async fn listen(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("sink binds");
        let port = listener.local_addr().expect("sink addr").port();
        let sink = Self {
            port,
            messages: Arc::default(),
            commands: Arc::default(),
        };
        let (messages, commands) = (sink.messages.clone(), sink.commands.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (tls, messages, commands) = (tls.clone(), messages.clone(), commands.clone());
                tokio::spawn(async move {
                    let mut socket = socket;
                    if socket.write_all(b"220 sink ESMTP\r\n").await.is_err() {
                        return;
                    }
                    let Upgrade::StartTls(socket) =
                        converse(socket, tls.is_some(), false, &messages, &commands).await
                    else {
                        return;
                    };
                    let Some(acceptor) = tls else { return };
                    // A client that gives up on the handshake just ends the conversation.
                    if let Ok(secure) = acceptor.accept(socket).await {
                        converse(secure, false, true, &messages, &commands).await;
                    }
                });
            }
        });
        sink
    }

    /// The raw DATA of every accepted message.
    pub fn received(&self) -> Vec<String> {
        self.received_with_tls()
            .into_iter()
            .map(|m| m.data)
            .collect()
    }

    /// Every accepted message with whether it came over TLS.
    pub fn received_with_tls(&self) -> Vec<Received> {
        self.messages.lock().expect("sink lock").clone()
    }

    /// Every command line read (DATA excluded), with whether it came over TLS.
    pub fn commands(&self) -> Vec<(String, bool)> {
        self.commands.lock().expect("sink lock").clone()
    }
}

/// How one SMTP conversation ended.
enum Upgrade<S> {
    Closed,
    /// The client asked for STARTTLS and was told to go ahead: the bare stream.
    StartTls(S),
}

/// Answers SMTP commands on `stream` (the greeting already sent) until QUIT, a closed
/// connection or an accepted STARTTLS (only when `offer_starttls`).
async fn converse<S>(
    stream: S,
    offer_starttls: bool,
    over_tls: bool,
    messages: &Mutex<Vec<Received>>,
    commands: &Mutex<Vec<(String, bool)>>,
) -> Upgrade<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut stream = BufReader::new(stream);
    let mut data: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        match stream.read_line(&mut line).await {
            Ok(0) | Err(_) => return Upgrade::Closed,
            Ok(_) => {}
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(body) = data.as_mut() {
            if line == "." {
                messages.lock().expect("sink lock").push(Received {
                    data: std::mem::take(body),
                    over_tls,
                });
                data = None;
                if stream.get_mut().write_all(b"250 queued\r\n").await.is_err() {
                    return Upgrade::Closed;
                }
            } else {
                body.push_str(line);
                body.push('\n');
            }
            continue;
        }
        commands
            .lock()
            .expect("sink lock")
            .push((line.to_string(), over_tls));
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" if offer_starttls => b"250-sink\r\n250 STARTTLS\r\n",
            "EHLO" | "HELO" => b"250 sink\r\n",
            "STARTTLS" if offer_starttls => {
                if stream
                    .get_mut()
                    .write_all(b"220 go ahead\r\n")
                    .await
                    .is_err()
                {
                    return Upgrade::Closed;
                }
                // The client says nothing more until the handshake, so nothing is
                // left in the buffer.
                return Upgrade::StartTls(stream.into_inner());
            }
            "STARTTLS" => b"502 not offered\r\n",
            "DATA" => {
                data = Some(String::new());
                b"354 end with .\r\n"
            }
            "QUIT" => {
                let _ = stream.get_mut().write_all(b"221 bye\r\n").await;
                return Upgrade::Closed;
            }
            _ => b"250 ok\r\n",
        };
        if stream.get_mut().write_all(reply).await.is_err() {
            return Upgrade::Closed;
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

/// The postcard's status once it is `want` (waiting up to `secs`), else `None`.
async fn postcard_becomes(
    app: &TestApp,
    admin: &str,
    to: &str,
    want: &str,
    secs: u64,
) -> Option<String> {
    app.eventually(secs, || async {
        postcard_status(app, admin, to).await.filter(|s| s == want)
    })
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
    let status = postcard_becomes(&app, &admin, &to, "sent", 5).await;
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

/// `[mail]` for a relay at a port nobody listens on: every attempt fails.
fn dead_relay_config() -> String {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    format!(
        "[mail]\nsmtp_url = \"smtp://127.0.0.1:{port}\"\npoll_ms = 20\nbackoff_ms = 20\nmax_attempts = 2\n"
    )
}

backend_test!(
    undeliverable_email_is_retried_then_failed_but_recorded,
    &dead_relay_config(),
    |app| {
        let admin = app.admin_token().await;
        let to = format!("{}@example.in", app.word("lost"));
        let r = postcard(app, &admin, &to, "Into the void").await;
        assert_eq!(r.status, 202, "{}", r.text);
        let status = postcard_becomes(app, &admin, &to, "failed", 10).await;
        assert_eq!(status.as_deref(), Some("failed"));
        let (attempts, last_error) = delivery_record(app, "failed", &to).await;
        assert_eq!(attempts, 2, "max_attempts = 2");
        assert!(
            last_error.is_some_and(|e| !e.is_empty()),
            "a failure says why"
        );
        // The operator's view: an unknown status is refused, a shop admin is not an operator.
        let r = app
            .get("/admin/mail?status=lost", Some(OPERATOR_TOKEN))
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("validation_failed"))
        );
        assert_eq!(app.get("/admin/mail", Some(&admin)).await.status, 403);
    }
);

/// `[mail]` for a STARTTLS-only relay on `port` that trusts the fixture's CA.
fn starttls_config(port: u16, extra: &str) -> String {
    format!(
        "[mail]\nsmtp_url = \"smtp://127.0.0.1:{port}?tls=required\"\ntls_ca_file = \"{}\"\n\
         poll_ms = 20\n{extra}",
        smtp_test_ca().display()
    )
}

/// How the delivery of the message to `to` went, from the operator's mail view
/// (`GET /admin/mail?status=`): `(attempts, last_error)`. The shop's admin outbox shows
/// the status only.
async fn delivery_record(app: &TestApp, status: &str, to: &str) -> (i64, Option<String>) {
    let r = app
        .get(
            &format!("/admin/mail?status={status}"),
            Some(OPERATOR_TOKEN),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.body["items"].as_array().expect("items");
    let item = items
        .iter()
        .find(|m| m["to"] == to)
        .unwrap_or_else(|| panic!("no {status} message to {to}: {}", r.text));
    assert_eq!(item["status"], status);
    assert_eq!(item["channel"], "email");
    assert!(
        item.get("body").is_none(),
        "the operator view shows no body"
    );
    (
        item["attempts"].as_i64().expect("attempts"),
        item["last_error"].as_str().map(str::to_owned),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_goes_out_over_starttls_to_a_private_ca_relay() {
    let sink = SmtpSink::start_tls().await;
    let app = TestApp::spawn_with(Backend::Sqlite, &starttls_config(sink.port, "")).await;
    let admin = app.admin_token().await;
    let to = format!("{}@example.in", app.word("sealed"));
    let r = postcard(&app, &admin, &to, "Sealed in Mysuru").await;
    assert_eq!(r.status, 202, "{}", r.text);
    let status = postcard_becomes(&app, &admin, &to, "sent", 10).await;
    assert_eq!(status.as_deref(), Some("sent"), "{:?}", sink.commands());
    let received = sink.received_with_tls();
    let mail = received
        .iter()
        .find(|m| m.data.contains(&to))
        .expect("the sink got the email");
    assert!(mail.over_tls, "the message came in clear text");
    assert_eq!(delivery_record(&app, "sent", &to).await, (1, None));
    assert!(mail.data.contains("Sealed in Mysuru"), "{}", mail.data);
    // In clear text only the greeting and the upgrade: the envelope, recipient and
    // message all came after STARTTLS.
    let commands = sink.commands();
    let clear: Vec<&str> = commands
        .iter()
        .filter(|(_, tls)| !tls)
        .map(|(c, _)| c.as_str())
        .collect();
    assert!(
        clear
            .iter()
            .all(|c| c.starts_with("EHLO") || *c == "STARTTLS"),
        "commands in clear text: {clear:?}"
    );
    assert!(clear.contains(&"STARTTLS"), "{commands:?}");
    for verb in ["MAIL FROM", "RCPT TO", "DATA"] {
        assert!(
            commands.iter().any(|(c, tls)| *tls && c.starts_with(verb)),
            "no {verb} over TLS: {commands:?}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_without_starttls_never_gets_the_email_in_clear_text() {
    // The relay speaks SMTP but does not offer STARTTLS, which the URL requires.
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &starttls_config(sink.port, "backoff_ms = 20\nmax_attempts = 3\n"),
    )
    .await;
    let admin = app.admin_token().await;
    let to = format!("{}@example.in", app.word("clear"));
    let r = postcard(&app, &admin, &to, "Not for prying eyes").await;
    assert_eq!(r.status, 202, "{}", r.text);
    // Retried (each attempt reaches the relay) and failed after max_attempts.
    let status = postcard_becomes(&app, &admin, &to, "failed", 10).await;
    assert_eq!(status.as_deref(), Some("failed"), "{:?}", sink.commands());
    let (attempts, last_error) = delivery_record(&app, "failed", &to).await;
    assert_eq!(attempts, 3);
    let last_error = last_error.expect("last_error");
    assert!(
        last_error.to_lowercase().contains("tls"),
        "last_error does not say why: {last_error}"
    );
    let commands = sink.commands();
    let greetings = commands
        .iter()
        .filter(|(c, _)| c.starts_with("EHLO"))
        .count();
    assert!(
        greetings >= 3,
        "three attempts reached the relay: {commands:?}"
    );
    // Nothing beyond the greeting was said: no envelope, no message.
    assert!(
        commands
            .iter()
            .all(|(c, _)| c.starts_with("EHLO") || c == "QUIT"),
        "{commands:?}"
    );
    assert!(sink.received().is_empty(), "{:?}", sink.received());
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

//! The smallest complete Kirana plugin, used by docs/plugin-authoring.md and the tests.
//!
//! `GET /api/v1/hello?name=Asha` answers `{"message": "Namaste, Asha!", "count": n}` where
//! `n` counts greetings in the plugin's key-value store; `GET /api/v1/hello/ping` answers
//! a fixed small JSON document without touching any capability (the benchmarks' no-op).
//! `POST /api/v1/hello/wave {user_id, message}` pushes a live `hello.wave` event to that
//! user's realtime connections; `POST /api/v1/hello/postcards {to, message}` (admin) sends
//! an email through the host's outbox and `GET /api/v1/hello/postcards` lists them.

use kirana_sdk::prelude::*;
use kirana_sdk::{kv, mail, realtime, Validator};

pub struct Hello;

#[derive(Serialize)]
struct Greeting {
    message: String,
    count: i64,
}

fn greet(req: &Request) -> Result<Response, ApiError> {
    let name = req.query("name").unwrap_or("world").trim().to_string();
    Validator::new().length("name", &name, 1, 50).finish()?;
    let count = kv::incr("greetings", 1, None)?;
    Ok(Response::ok(&Greeting {
        message: format!("Namaste, {name}!"),
        count,
    }))
}

fn ping(_req: &Request) -> Result<Response, ApiError> {
    Ok(Response::ok(&json!({ "status": "ok" })))
}

#[derive(Deserialize)]
struct Wave {
    user_id: String,
    message: String,
}

fn wave(req: &Request) -> Result<Response, ApiError> {
    let from = req.user()?.user_id.clone();
    let body: Wave = req.json()?;
    Validator::new()
        .length("user_id", &body.user_id, 1, 128)
        .length("message", &body.message, 1, 200)
        .finish()?;
    realtime::push(
        &body.user_id,
        "hello.wave",
        &json!({"from": from, "message": body.message}),
    )?;
    Ok(Response::no_content())
}

#[derive(Deserialize)]
struct Postcard {
    to: String,
    message: String,
}

fn send_postcard(req: &Request) -> Result<Response, ApiError> {
    let body: Postcard = req.json()?;
    Validator::new()
        .length("to", &body.to, 3, 254)
        .length("message", &body.message, 1, 2000)
        .finish()?;
    match mail::send("email", &body.to, "A postcard from Kirana", &body.message) {
        Ok(id) => Ok(Response::accepted(&json!({ "id": id }))),
        // The host refuses addresses it cannot deliver to.
        Err(kirana_sdk::CapError::Invalid(m)) => Err(ApiError::invalid_field("to", m)),
        Err(e) => Err(e.into()),
    }
}

fn postcards(req: &Request) -> Result<Response, ApiError> {
    let paging = Paging::from_request(req)?;
    let page = mail::outbox(
        Some("email"),
        req.query("to"),
        u32::try_from(paging.limit()).unwrap_or(100),
        u32::try_from(paging.offset()).unwrap_or(u32::MAX),
    )?;
    let items: Vec<_> = page
        .items
        .into_iter()
        .map(|m| {
            json!({"id": m.id, "to": m.to, "subject": m.subject, "body": m.body,
                   "status": m.status, "created_at": m.created_at})
        })
        .collect();
    let total = i64::try_from(page.total).unwrap_or(i64::MAX);
    Ok(Response::ok(&Paged::new(items, paging, total)))
}

impl Plugin for Hello {
    const NAME: &'static str = "hello";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn router() -> Router {
        Router::new()
            .get("/api/v1/hello", Access::Public, greet)
            .summary("Greets the caller and counts greetings")
            .get("/api/v1/hello/ping", Access::Public, ping)
            .summary("A constant answer, for overhead measurements")
            .post(
                "/api/v1/hello/wave",
                Access::Roles(&["customer", "admin", "delivery_agent"]),
                wave,
            )
            .summary("Pushes a live hello.wave event to another user")
            .post(
                "/api/v1/hello/postcards",
                Access::Roles(&["admin"]),
                send_postcard,
            )
            .summary("Emails a postcard through the host's outbox")
            .get(
                "/api/v1/hello/postcards",
                Access::Roles(&["admin"]),
                postcards,
            )
            .summary("The postcards sent, newest first")
    }

    fn capabilities() -> Capabilities {
        Capabilities::new().kv().realtime().mail()
    }
}

kirana_sdk::export_plugin!(Hello);

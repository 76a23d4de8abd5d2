//! Misbehaves on purpose so the tests can show the host survives it: an endless loop,
//! an allocation without bound, a trap, an event handler that fails on demand, and
//! SQL that reaches for data that is not its own.

use kirana_sdk::prelude::*;
use kirana_sdk::{events, kv, services, sql};

pub struct Faulty;

fn spin(_req: &Request) -> Result<Response, ApiError> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn hog(_req: &Request) -> Result<Response, ApiError> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        chunks.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&chunks);
    }
}

fn trap(_req: &Request) -> Result<Response, ApiError> {
    panic!("faulty plugin panics on purpose");
}

fn ok(_req: &Request) -> Result<Response, ApiError> {
    Ok(Response::ok(&json!({ "ok": true })))
}

/// Publishes `faulty.flaky`; the handler below fails until `/fail-off` is called.
fn publish(req: &Request) -> Result<Response, ApiError> {
    let id = events::publish(
        "faulty.flaky",
        &json!({ "n": req.query("n").unwrap_or("0") }),
    )?;
    Ok(Response::created(&json!({ "event_id": id })))
}

fn fail_off(_req: &Request) -> Result<Response, ApiError> {
    kv::set("healthy", b"1", None)?;
    Ok(Response::no_content())
}

/// How many times each event was seen, so tests can count deliveries.
fn seen(_req: &Request) -> Result<Response, ApiError> {
    let items: Vec<_> = kv::scan("seen:", 1000)?
        .into_iter()
        .map(|(k, v)| json!({ "key": k, "attempts": String::from_utf8_lossy(&v) }))
        .collect();
    Ok(Response::ok(&json!({ "items": items })))
}

/// Tries to reach data that is not its own; answers what each attempt got.
fn snoop(_req: &Request) -> Result<Response, ApiError> {
    let attempt = |statement: &str| match sql::query(statement, &[]) {
        Ok(rows) => format!("read {} rows", rows.len()),
        Err(e) => format!("refused: {}", kirana_sdk::cap_error_message(&e)),
    };
    Ok(Response::ok(&json!({
        "attach": attempt("ATTACH DATABASE ':memory:' AS other"),
        "host_secrets": attempt("SELECT value FROM public.secrets"),
        "other_plugin": attempt("SELECT id FROM plugin_auth.users"),
    })))
}

/// Calls its own route `/api/v1/faulty/{to}` through `services.call` (for the circuit
/// breaker tests): answers the callee's status, or the capability error.
fn relay(req: &Request) -> Result<Response, ApiError> {
    let to = req.query("to").unwrap_or("ok");
    let reply = services::get("faulty", &format!("/api/v1/faulty/{to}"), "")?;
    Ok(Response::ok(&json!({ "callee_status": reply.status })))
}

impl Plugin for Faulty {
    const NAME: &'static str = "faulty";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn router() -> Router {
        Router::new()
            .get("/api/v1/faulty/spin", Access::Public, spin)
            .get("/api/v1/faulty/hog", Access::Public, hog)
            .get("/api/v1/faulty/trap", Access::Public, trap)
            .get("/api/v1/faulty/ok", Access::Public, ok)
            .post("/api/v1/faulty/publish", Access::Public, publish)
            .post("/api/v1/faulty/fail-off", Access::Public, fail_off)
            .get("/api/v1/faulty/seen", Access::Public, seen)
            .get("/api/v1/faulty/snoop", Access::Public, snoop)
            .get("/api/v1/faulty/relay", Access::Public, relay)
    }

    fn capabilities() -> Capabilities {
        Capabilities::new()
            .sql()
            .kv()
            .publish(&["faulty.flaky"])
            .call(&["faulty"])
    }

    fn subscriptions() -> Vec<String> {
        vec!["faulty.flaky".into()]
    }

    fn on_event(event: &Event) -> Result<(), String> {
        let key = format!("seen:{}", event.id);
        kv::incr(&key, 1, None).map_err(|e| kirana_sdk::cap_error_message(&e))?;
        match kv::get("healthy") {
            Ok(Some(_)) => Ok(()),
            _ => Err(format!("faulty fails attempt {} on purpose", event.attempt)),
        }
    }
}

kirana_sdk::export_plugin!(Faulty);

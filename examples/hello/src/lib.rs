//! The smallest complete Kirana plugin, used by docs/plugin-authoring.md and the tests.
//!
//! `GET /api/v1/hello?name=Asha` answers `{"message": "Namaste, Asha!", "count": n}` where
//! `n` counts greetings in the plugin's key-value store; `GET /api/v1/hello/ping` answers
//! a fixed small JSON document without touching any capability (the benchmarks' no-op).

use kirana_sdk::prelude::*;
use kirana_sdk::{kv, Validator};

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

impl Plugin for Hello {
    const NAME: &'static str = "hello";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn router() -> Router {
        Router::new()
            .get("/api/v1/hello", Access::Public, greet)
            .summary("Greets the caller and counts greetings")
            .get("/api/v1/hello/ping", Access::Public, ping)
            .summary("A constant answer, for overhead measurements")
    }

    fn capabilities() -> Capabilities {
        Capabilities::new().kv()
    }
}

kirana_sdk::export_plugin!(Hello);

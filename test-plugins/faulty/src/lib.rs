//! Misbehaves on purpose so the tests can show the host survives it: an endless loop,
//! an allocation without bound, a trap, an event handler that fails on demand, SQL that
//! reaches for data that is not its own, SQL that asks the database for huge values,
//! SQL that never ends, events on topics it does not own, and file paths that try to
//! leave its own tree or fill it past the quota.

use kirana_sdk::prelude::*;
use kirana_sdk::{events, files, kv, services, sql, CapError};

pub struct Faulty;

/// What the host answered a files call: `{"ok": ...}` or `{"refused": "kind: message"}`,
/// so the tests see the exact error kind.
fn outcome<T: Serialize>(r: Result<T, CapError>) -> Response {
    match r {
        Ok(v) => Response::ok(&json!({ "ok": v })),
        Err(e) => Response::ok(&json!({ "refused": kirana_sdk::cap_error_message(&e) })),
    }
}

fn path(req: &Request) -> &str {
    req.query("path").unwrap_or_default()
}

/// `GET /file?path=`: the file's bytes as they are, 404 when absent.
fn file_read(req: &Request) -> Result<Response, ApiError> {
    Ok(match files::read(path(req)) {
        Ok(Some(bytes)) => Response {
            status: 200,
            headers: vec![("content-type".into(), "application/octet-stream".into())],
            body: bytes,
        },
        Ok(None) => return Err(ApiError::not_found("file")),
        Err(e) => outcome::<()>(Err(e)),
    })
}

/// `PUT /file?path=` with the bytes as the body.
fn file_write(req: &Request) -> Result<Response, ApiError> {
    Ok(outcome(files::write(path(req), req.body())))
}

fn file_delete(req: &Request) -> Result<Response, ApiError> {
    Ok(outcome(files::delete(path(req))))
}

/// `GET /files?prefix=`: the listing and the usage.
fn file_list(req: &Request) -> Result<Response, ApiError> {
    let listed = files::list(req.query("prefix").unwrap_or_default(), 100).map(|items| {
        items
            .into_iter()
            .map(|f| json!({"path": f.path, "size": f.size, "modified_at": f.modified_at}))
            .collect::<Vec<_>>()
    });
    let usage = files::usage().map(|u| json!({"used": u.used, "quota": u.quota}));
    Ok(match (listed, usage) {
        (Ok(items), Ok(usage)) => Response::ok(&json!({"ok": {"items": items, "usage": usage}})),
        (Err(e), _) | (_, Err(e)) => outcome::<()>(Err(e)),
    })
}

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

/// Tries to publish (or, with `delay_ms`, schedule) an event on `topic`, which may be
/// one it does not own: answers what the host said.
fn forge(req: &Request) -> Result<Response, ApiError> {
    let topic = req.query("topic").unwrap_or("faulty.flaky");
    let payload = json!({ "role": "delivery_agent" });
    let sent = match req.query("delay_ms") {
        Some(ms) => {
            let ms: u64 = ms
                .parse()
                .map_err(|_| ApiError::invalid_field("delay_ms", "a number of milliseconds"))?;
            events::schedule(topic, &payload, std::time::Duration::from_millis(ms))
        }
        None => events::publish(topic, &payload),
    };
    let outcome = match sent {
        Ok(id) => format!("sent {id}"),
        Err(e) => format!("refused: {}", kirana_sdk::cap_error_message(&e)),
    };
    Ok(Response::ok(&json!({ "outcome": outcome })))
}

/// Writes a row and asks for `after_commit` to go up by 1 once the call commits (and,
/// with `?inner=rollback`, by 100 inside a transaction it rolls back), then answers
/// `?status=` (200 by default). The answer carries the value as the call saw it.
fn after_commit(req: &Request) -> Result<Response, ApiError> {
    let status: u16 = req
        .query("status")
        .unwrap_or("200")
        .parse()
        .map_err(|_| ApiError::invalid_field("status", "an HTTP status"))?;
    sql::execute("INSERT INTO after_commit_writes (n) VALUES (1)", &[])?;
    if req.query("inner") == Some("rollback") {
        let tx = sql::begin()?;
        kv::incr_after_commit("after_commit", 100, None)?;
        tx.rollback()?;
    }
    kv::incr_after_commit("after_commit", 1, None)?;
    // `?revisions=N`: also hold N values of 1 MiB for after the commit.
    if let Some(n) = req.query("revisions") {
        let n: u64 = n
            .parse()
            .map_err(|_| ApiError::invalid_field("revisions", "a count"))?;
        let mib = vec![b'r'; 1 << 20];
        for i in 1..=n {
            kv::put_revision_after_commit(&format!("rev:{i}"), i, &mib, None).map_err(|e| {
                ApiError::invalid_field("revisions", kirana_sdk::cap_error_message(&e))
            })?;
        }
    }
    let during = after_commit_now()?;
    if status >= 400 {
        return Err(ApiError::new(status, "test_failure", "failing on purpose")
            .with_details(json!({ "during_call": during })));
    }
    Ok(Response::ok(&json!({ "during_call": during })))
}

fn after_commit_now() -> Result<i64, ApiError> {
    Ok(match kv::get("after_commit")? {
        None => 0,
        Some(raw) => String::from_utf8_lossy(&raw).parse().unwrap_or(-1),
    })
}

/// `after_commit` now, and how many rows the route has committed.
fn after_commit_value(_req: &Request) -> Result<Response, ApiError> {
    let rows: i64 = sql::query("SELECT COUNT(*) AS n FROM after_commit_writes", &[])?.scalar()?;
    let mut revisions = 0;
    for i in 1..=8 {
        if kv::get_revision(&format!("rev:{i}"))?.is_some() {
            revisions += 1;
        }
    }
    Ok(Response::ok(
        &json!({ "value": after_commit_now()?, "rows": rows, "revisions": revisions }),
    ))
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

/// One statement per bomb `kind` and dialect, each building a value larger than a
/// plugin may have. PostgreSQL has no `randomblob`/`zeroblob`; its nearest statements
/// ask for more than its own 1 GB value limit (the server refuses), and its growing
/// strings stop at 10 MB, past the plugins' 1 MiB but light on the test server.
fn bomb_sql(kind: &str, dialect: sql::Dialect) -> Option<&'static str> {
    let sqlite = matches!(dialect, sql::Dialect::Sqlite);
    Some(match (kind, sqlite) {
        ("randomblob", true) => "SELECT randomblob(999999999) AS v",
        ("randomblob", false) => "SELECT decode(repeat('ab', 999999999), 'hex') AS v",
        ("zeroblob", true) => "SELECT zeroblob(999999999) AS v",
        ("zeroblob", false) => "SELECT lpad('', 1999999999, '0') AS v",
        // String growth: each `replace` doubles what the last one made, to 32 MB.
        ("concat", true) => {
            "SELECT replace(replace(replace(replace(hex(zeroblob(1000000)), \
             '0', '00'), '0', '00'), '0', '00'), '0', '00') AS v"
        }
        ("concat", false) => "SELECT repeat('ab', 2500000) || repeat('cd', 2500000) AS v",
        // A recursive CTE that doubles a string until it is 8 MiB.
        ("cte", _) => {
            "WITH RECURSIVE c(n, s) AS (SELECT 1, 'x' UNION ALL \
             SELECT n + 1, s || s FROM c WHERE n < 24) \
             SELECT s AS v FROM c WHERE n = 24"
        }
        // One row of 100 values, each just under the per-value limit (SQLite only: on
        // PostgreSQL a row arrives whole, see docs/operations.md).
        ("wide", true) => WIDE_ROW,
        _ => return None,
    })
}

/// `SELECT randomblob(1000000) AS c0, ..., randomblob(1000000) AS c99`: 100 MB in one row.
const WIDE_ROW: &str = concat!(
    "SELECT ",
    "randomblob(1000000) AS c0, randomblob(1000000) AS c1, randomblob(1000000) AS c2, ",
    "randomblob(1000000) AS c3, randomblob(1000000) AS c4, randomblob(1000000) AS c5, ",
    "randomblob(1000000) AS c6, randomblob(1000000) AS c7, randomblob(1000000) AS c8, ",
    "randomblob(1000000) AS c9, randomblob(1000000) AS c10, randomblob(1000000) AS c11, ",
    "randomblob(1000000) AS c12, randomblob(1000000) AS c13, randomblob(1000000) AS c14, ",
    "randomblob(1000000) AS c15, randomblob(1000000) AS c16, randomblob(1000000) AS c17, ",
    "randomblob(1000000) AS c18, randomblob(1000000) AS c19, randomblob(1000000) AS c20, ",
    "randomblob(1000000) AS c21, randomblob(1000000) AS c22, randomblob(1000000) AS c23, ",
    "randomblob(1000000) AS c24, randomblob(1000000) AS c25, randomblob(1000000) AS c26, ",
    "randomblob(1000000) AS c27, randomblob(1000000) AS c28, randomblob(1000000) AS c29, ",
    "randomblob(1000000) AS c30, randomblob(1000000) AS c31, randomblob(1000000) AS c32, ",
    "randomblob(1000000) AS c33, randomblob(1000000) AS c34, randomblob(1000000) AS c35, ",
    "randomblob(1000000) AS c36, randomblob(1000000) AS c37, randomblob(1000000) AS c38, ",
    "randomblob(1000000) AS c39, randomblob(1000000) AS c40, randomblob(1000000) AS c41, ",
    "randomblob(1000000) AS c42, randomblob(1000000) AS c43, randomblob(1000000) AS c44, ",
    "randomblob(1000000) AS c45, randomblob(1000000) AS c46, randomblob(1000000) AS c47, ",
    "randomblob(1000000) AS c48, randomblob(1000000) AS c49, randomblob(1000000) AS c50, ",
    "randomblob(1000000) AS c51, randomblob(1000000) AS c52, randomblob(1000000) AS c53, ",
    "randomblob(1000000) AS c54, randomblob(1000000) AS c55, randomblob(1000000) AS c56, ",
    "randomblob(1000000) AS c57, randomblob(1000000) AS c58, randomblob(1000000) AS c59, ",
    "randomblob(1000000) AS c60, randomblob(1000000) AS c61, randomblob(1000000) AS c62, ",
    "randomblob(1000000) AS c63, randomblob(1000000) AS c64, randomblob(1000000) AS c65, ",
    "randomblob(1000000) AS c66, randomblob(1000000) AS c67, randomblob(1000000) AS c68, ",
    "randomblob(1000000) AS c69, randomblob(1000000) AS c70, randomblob(1000000) AS c71, ",
    "randomblob(1000000) AS c72, randomblob(1000000) AS c73, randomblob(1000000) AS c74, ",
    "randomblob(1000000) AS c75, randomblob(1000000) AS c76, randomblob(1000000) AS c77, ",
    "randomblob(1000000) AS c78, randomblob(1000000) AS c79, randomblob(1000000) AS c80, ",
    "randomblob(1000000) AS c81, randomblob(1000000) AS c82, randomblob(1000000) AS c83, ",
    "randomblob(1000000) AS c84, randomblob(1000000) AS c85, randomblob(1000000) AS c86, ",
    "randomblob(1000000) AS c87, randomblob(1000000) AS c88, randomblob(1000000) AS c89, ",
    "randomblob(1000000) AS c90, randomblob(1000000) AS c91, randomblob(1000000) AS c92, ",
    "randomblob(1000000) AS c93, randomblob(1000000) AS c94, randomblob(1000000) AS c95, ",
    "randomblob(1000000) AS c96, randomblob(1000000) AS c97, randomblob(1000000) AS c98, ",
    "randomblob(1000000) AS c99"
);

/// Runs the SQL bomb `?kind=`; a refusal answers 413 with the capability's message
/// (which names the limit), a timeout 504.
fn sql_bomb(req: &Request) -> Result<Response, ApiError> {
    let kind = req.query("kind").unwrap_or("randomblob");
    let statement = bomb_sql(kind, sql::dialect()).ok_or_else(|| {
        ApiError::invalid_field(
            "kind",
            "one of randomblob, zeroblob, concat, cte, wide (SQLite)",
        )
    })?;
    match sql::query(statement, &[]) {
        Ok(rows) => Ok(Response::ok(&json!({ "kind": kind, "rows": rows.len() }))),
        Err(CapError::Invalid(m) | CapError::Failed(m)) => Err(ApiError::new(
            413,
            "payload_too_large",
            format!("the database refused the query: {m}"),
        )
        .with_details(json!({ "kind": kind }))),
        Err(e) => Err(e.into()),
    }
}

/// A statement that runs far longer than the plugin's time limit.
fn slow_sql(req: &Request) -> Result<Response, ApiError> {
    let statement = match sql::dialect() {
        sql::Dialect::Postgres => "SELECT pg_sleep(30) IS NULL AS v",
        sql::Dialect::Sqlite => {
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
             SELECT COUNT(*) AS v FROM n"
        }
    };
    // `?unlimited=true` on PostgreSQL: first switch off the statement timeout the host
    // set for this transaction, as a plugin that wants to outlive its call would.
    if req.query("unlimited") == Some("true") && matches!(sql::dialect(), sql::Dialect::Postgres) {
        let tx = sql::begin()?;
        tx.query(
            "SELECT set_config('statement_timeout', '0', true) AS v",
            &[],
        )?;
        tx.query(statement, &[])?;
        tx.commit()?;
    } else {
        sql::query(statement, &[])?;
    }
    Ok(Response::ok(&json!({ "finished": true })))
}

/// The `statement_timeout` its PostgreSQL connections run with, outside and inside a
/// transaction (SQLite has none: its statements are interrupted at the deadline).
fn sql_settings(_req: &Request) -> Result<Response, ApiError> {
    if matches!(sql::dialect(), sql::Dialect::Sqlite) {
        return Ok(Response::ok(&json!({ "dialect": "sqlite" })));
    }
    let read = "SELECT current_setting('statement_timeout') AS v";
    let outside: String = sql::query(read, &[])?.scalar()?;
    let tx = sql::begin()?;
    let inside: String = tx.query(read, &[])?.scalar()?;
    tx.rollback()?;
    Ok(Response::ok(&json!({
        "dialect": "postgres",
        "statement_timeout": outside,
        "in_transaction": inside,
    })))
}

/// Tries to create a table outside its own schema (`public` on PostgreSQL).
fn create_public(_req: &Request) -> Result<Response, ApiError> {
    let outcome = match sql::execute("CREATE TABLE public.faulty_probe (x INTEGER)", &[]) {
        Ok(_) => "created".to_string(),
        Err(e) => format!("refused: {}", kirana_sdk::cap_error_message(&e)),
    };
    Ok(Response::ok(&json!({ "outcome": outcome })))
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
            .get("/api/v1/faulty/file", Access::Public, file_read)
            .put("/api/v1/faulty/file", Access::Public, file_write)
            .raw_body(&[])
            .delete("/api/v1/faulty/file", Access::Public, file_delete)
            .get("/api/v1/faulty/files", Access::Public, file_list)
            .get("/api/v1/faulty/spin", Access::Public, spin)
            .get("/api/v1/faulty/hog", Access::Public, hog)
            .get("/api/v1/faulty/trap", Access::Public, trap)
            .get("/api/v1/faulty/ok", Access::Public, ok)
            .post("/api/v1/faulty/publish", Access::Public, publish)
            .post("/api/v1/faulty/forge", Access::Public, forge)
            .post("/api/v1/faulty/fail-off", Access::Public, fail_off)
            .post("/api/v1/faulty/after-commit", Access::Public, after_commit)
            .get(
                "/api/v1/faulty/after-commit",
                Access::Public,
                after_commit_value,
            )
            .get("/api/v1/faulty/seen", Access::Public, seen)
            .get("/api/v1/faulty/snoop", Access::Public, snoop)
            .get("/api/v1/faulty/relay", Access::Public, relay)
            .get("/api/v1/faulty/sql-bomb", Access::Public, sql_bomb)
            .get("/api/v1/faulty/slow-sql", Access::Public, slow_sql)
            .get("/api/v1/faulty/sql-settings", Access::Public, sql_settings)
            .post(
                "/api/v1/faulty/create-public",
                Access::Public,
                create_public,
            )
    }

    fn migrate(_from: Option<&str>) -> Result<(), String> {
        sql::execute(
            "CREATE TABLE IF NOT EXISTS after_commit_writes (n INTEGER)",
            &[],
        )
        .map(|_| ())
        .map_err(|e| kirana_sdk::cap_error_message(&e))
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

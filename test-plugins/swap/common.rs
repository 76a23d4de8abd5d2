// The body of the `swap` test plugin, shared by its builds (swap-v1, swap-v2, swap-bad,
// swap-flaky, swap-clash, swap-greedy, swap-squatter, swap-wildcard); each build sets VERSION and
// BUILD before including this file. The
// registry tests install, enable, canary and roll back these builds while traffic runs.
//
// Routes: GET /api/v1/swap → {"version", "build"}; POST /api/v1/swap/notes {text} and
// GET /api/v1/swap/notes (data that must survive a failed migration); GET
// /api/v1/swap/seen → how many `faulty.flaky` events this plugin handled, and how many
// each build handled (`by_build`; events held
// while it is disabled); GET /api/v1/swap/asset?path= → an asset of the installed
// bundle, with its SHA-256 as the ETag (404 when the version has none by that path). The `flaky` build answers 500 on GET /api/v1/swap; the `bad`
// build's migrate writes then fails; the `clash` build also claims `GET /api/v1/hello`,
// which the hello plugin serves; the `greedy` build asks for kv, identity, its own topic
// `swap.greedy` and 128 MiB beyond the others' sql, and lets only admins call GET
// /api/v1/swap; the `squatter` build declares `user.created`, which auth owns; the
// `wildcard` build declares the topic `*`, which no manifest may.

use kirana_sdk::prelude::*;
use kirana_sdk::{files, sql};

pub struct Swap;

fn asset(req: &Request) -> Result<Response, ApiError> {
    let path = req.query("path").unwrap_or_default();
    match files::asset(path) {
        Ok(Some(a)) => Ok(Response {
            status: 200,
            headers: vec![
                ("content-type".into(), "text/plain".into()),
                ("etag".into(), format!("\"{}\"", a.sha256)),
            ],
            body: a.data,
        }),
        Ok(None) => Err(ApiError::not_found("asset")),
        Err(e) => Err(ApiError::new(400, "validation_failed", kirana_sdk::cap_error_message(&e))),
    }
}

fn whoami(_req: &Request) -> Result<Response, ApiError> {
    if BUILD == "flaky" {
        return Err(ApiError::internal("the flaky build fails on purpose"));
    }
    Ok(Response::ok(&json!({ "version": VERSION, "build": BUILD })))
}

#[derive(Deserialize)]
struct Note {
    text: String,
}

fn add_note(req: &Request) -> Result<Response, ApiError> {
    let note: Note = req.json()?;
    Validator::new()
        .length("text", &note.text, 1, 200)
        .finish()?;
    sql::execute(
        "INSERT INTO notes (id, text) VALUES ($1, $2)",
        &params![new_id("note"), note.text],
    )?;
    Ok(Response::created(&json!({ "text": note.text })))
}

fn notes(_req: &Request) -> Result<Response, ApiError> {
    let rows = sql::query("SELECT text FROM notes ORDER BY id", &params![])?;
    let texts: Vec<String> = rows
        .iter()
        .map(|r| r.get::<String>("text"))
        .collect::<Result<_, _>>()?;
    Ok(Response::ok(&json!({ "items": texts })))
}

fn seen(_req: &Request) -> Result<Response, ApiError> {
    let n: i64 = sql::query("SELECT COUNT(*) AS n FROM seen", &params![])?.scalar()?;
    let rows = sql::query(
        "SELECT build, COUNT(*) AS n FROM handled_by GROUP BY build",
        &params![],
    )?;
    let mut by_build = std::collections::BTreeMap::new();
    for row in rows.iter() {
        by_build.insert(row.get::<String>("build")?, row.get::<i64>("n")?);
    }
    Ok(Response::ok(&json!({ "seen": n, "by_build": by_build })))
}

impl Plugin for Swap {
    const NAME: &'static str = "swap";
    const VERSION: &'static str = VERSION;

    fn router() -> Router {
        let router = if BUILD == "clash" {
            Router::new().get("/api/v1/hello", Access::Public, whoami)
        } else {
            Router::new()
        };
        let whoami_access = if BUILD == "greedy" {
            Access::Roles(&["admin"])
        } else {
            Access::Public
        };
        router
            .get("/api/v1/swap", whoami_access, whoami)
            .summary("Which build answers")
            .post("/api/v1/swap/notes", Access::Public, add_note)
            .summary("Stores a note")
            .get("/api/v1/swap/notes", Access::Public, notes)
            .summary("Every note")
            .get("/api/v1/swap/asset", Access::Public, asset)
            .summary("An asset of this version's bundle")
            .get("/api/v1/swap/seen", Access::Public, seen)
            .summary("How many faulty.flaky events were handled")
    }

    fn capabilities() -> Capabilities {
        match BUILD {
            "greedy" => Capabilities::new()
                .sql()
                .kv()
                .identity()
                .publish(&["swap.greedy"]),
            "squatter" => Capabilities::new().sql().publish(&["user.created"]),
            "wildcard" => Capabilities::new().sql().publish(&["*"]),
            _ => Capabilities::new().sql(),
        }
    }

    fn limits() -> Limits {
        Limits {
            memory_mb: (BUILD == "greedy").then_some(128),
            timeout_ms: None,
        }
    }

    fn subscriptions() -> Vec<String> {
        vec!["faulty.flaky".into()]
    }

    fn migrate(_from: Option<&str>) -> Result<(), String> {
        let schema = sql::execute_batch(&[
            "CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY, text TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS seen (event_id TEXT PRIMARY KEY)",
            "CREATE TABLE IF NOT EXISTS handled_by (event_id TEXT PRIMARY KEY, build TEXT NOT NULL)",
        ]);
        schema.map_err(|e| kirana_sdk::cap_error_message(&e))?;
        if BUILD == "bad" {
            // Writes first, so the test can check the transaction rolled them back.
            sql::execute("DELETE FROM notes", &params![])
                .map_err(|e| kirana_sdk::cap_error_message(&e))?;
            return Err("the bad build's migration fails on purpose".into());
        }
        Ok(())
    }

    fn on_event(event: &Event) -> Result<(), String> {
        sql::execute(
            "INSERT INTO seen (event_id) VALUES ($1) ON CONFLICT (event_id) DO NOTHING",
            &params![event.id],
        )
        .and_then(|_| {
            sql::execute(
                "INSERT INTO handled_by (event_id, build) VALUES ($1, $2) \
                 ON CONFLICT (event_id) DO NOTHING",
                &params![event.id, BUILD],
            )
        })
        .map(|_| ())
        .map_err(|e| kirana_sdk::cap_error_message(&e))
    }
}

kirana_sdk::export_plugin!(Swap);

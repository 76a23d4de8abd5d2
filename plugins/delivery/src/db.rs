//! The delivery database: schema, agents and deliveries as stored and read back.

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::Value as Json;
use kirana_sdk::sql::{self, Tx};
use kirana_sdk::CapError;

use crate::rules::{AgentStatus, Status};

/// Idempotent schema (run at every load).
pub fn migrate() -> Result<(), CapError> {
    sql::execute_batch(&[
        "CREATE TABLE IF NOT EXISTS agents (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            phone TEXT,
            status TEXT NOT NULL,
            status_since TEXT NOT NULL,
            last_lat DOUBLE PRECISION,
            last_lon DOUBLE PRECISION,
            last_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS agents_status ON agents (status, status_since)",
        "CREATE TABLE IF NOT EXISTS deliveries (
            id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL UNIQUE,
            user_id TEXT NOT NULL,
            agent_id TEXT,
            status TEXT NOT NULL,
            address TEXT NOT NULL,
            items TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            assigned_at TEXT,
            picked_up_at TEXT,
            in_transit_at TEXT,
            delivered_at TEXT,
            cancelled_at TEXT
        )",
        "CREATE INDEX IF NOT EXISTS deliveries_status_created ON deliveries (status, created_at)",
        "CREATE INDEX IF NOT EXISTS deliveries_agent_status ON deliveries (agent_id, status)",
        "CREATE TABLE IF NOT EXISTS delivery_path (
            id TEXT PRIMARY KEY,
            delivery_id TEXT NOT NULL,
            lat DOUBLE PRECISION NOT NULL,
            lon DOUBLE PRECISION NOT NULL,
            at TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS delivery_path_delivery ON delivery_path (delivery_id, id)",
        // Orders cancelled before (or while) their delivery was being created.
        "CREATE TABLE IF NOT EXISTS cancelled_orders (
            order_id TEXT PRIMARY KEY,
            at TEXT NOT NULL
        )",
    ])
}

/// A point with its time.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
    pub at: String,
}

/// An agent profile as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Agent {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub phone: Option<String>,
    pub status: String,
    pub last_location: Option<Point>,
    #[serde(skip)]
    pub status_since: String,
}

impl Agent {
    pub fn status(&self) -> Option<AgentStatus> {
        AgentStatus::parse(&self.status)
    }

    pub fn location(&self) -> Option<(f64, f64)> {
        self.last_location.as_ref().map(|p| (p.lat, p.lon))
    }
}

/// By hand: `last_location` is one point made of three nullable columns.
impl FromRow for Agent {
    fn from_row(r: &Row<'_>) -> Result<Self, CapError> {
        let lat: Option<f64> = r.get("last_lat")?;
        let lon: Option<f64> = r.get("last_lon")?;
        let at: Option<String> = r.get("last_at")?;
        let last_location = match (lat, lon, at) {
            (Some(lat), Some(lon), Some(at)) => Some(Point { lat, lon, at }),
            _ => None,
        };
        Ok(Agent {
            id: r.get("id")?,
            user_id: r.get("user_id")?,
            name: r.get("name")?,
            phone: r.get("phone")?,
            status: r.get("status")?,
            last_location,
            status_since: r.get("status_since")?,
        })
    }
}

const AGENT_COLUMNS: &str =
    "id, user_id, name, phone, status, status_since, last_lat, last_lon, last_at";

pub fn agent(id: &str) -> Result<Option<Agent>, CapError> {
    sql::query_one(
        &format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1"),
        &params![id],
    )
}

pub fn agent_by_user(user_id: &str) -> Result<Option<Agent>, CapError> {
    sql::query_one(
        &format!("SELECT {AGENT_COLUMNS} FROM agents WHERE user_id = $1"),
        &params![user_id],
    )
}

/// Creates the profile of `user_id` as `offline` unless it exists (either path may run
/// first: the `user.created` event or the agent's first call).
pub fn insert_agent(user_id: &str, name: &str, phone: Option<&str>) -> Result<(), CapError> {
    let now = now_rfc3339();
    sql::execute(
        "INSERT INTO agents (id, user_id, name, phone, status, status_since, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $6) ON CONFLICT (user_id) DO NOTHING",
        &params![
            new_id("agt"),
            user_id,
            name,
            phone,
            AgentStatus::Offline.as_str(),
            now
        ],
    )?;
    Ok(())
}

/// Keeps the profile's copy of the user's name and phone current.
pub fn update_contact(agent_id: &str, name: &str, phone: Option<&str>) -> Result<(), CapError> {
    sql::execute(
        "UPDATE agents SET name = $1, phone = $2, updated_at = $3 WHERE id = $4",
        &params![name, phone, now_rfc3339(), agent_id],
    )?;
    Ok(())
}

/// Every available agent (the assignment ranks them).
pub fn available_agents() -> Result<Vec<Agent>, CapError> {
    sql::query_as(
        &format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE status = $1 \
             ORDER BY status_since, id LIMIT 1000"
        ),
        &params![AgentStatus::Available.as_str()],
    )
}

/// A page of agents, oldest profile first, optionally of one status.
pub fn list_agents(
    status: Option<AgentStatus>,
    paging: Paging,
) -> Result<(Vec<Agent>, i64), CapError> {
    let (filter, mut params) = match status {
        Some(s) => ("WHERE status = $1", params![s.as_str()]),
        None => ("", params![]),
    };
    let total: i64 =
        sql::query(&format!("SELECT COUNT(*) FROM agents {filter}"), &params)?.scalar()?;
    let n = params.len();
    params.push(Value::Int(paging.limit()));
    params.push(Value::Int(paging.offset()));
    let items = sql::query_as(
        &format!(
            "SELECT {AGENT_COLUMNS} FROM agents {filter} ORDER BY created_at, id \
             LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        ),
        &params,
    )?;
    Ok((items, total))
}

/// Moves an agent from `from` to `to`; the rows affected (0 when it was not in `from`).
pub fn set_agent_status(
    tx: Option<&Tx>,
    agent_id: &str,
    from: AgentStatus,
    to: AgentStatus,
    now: &str,
) -> Result<u64, CapError> {
    let statement = "UPDATE agents SET status = $1, status_since = $2, updated_at = $2 \
                     WHERE id = $3 AND status = $4";
    let params = params![to.as_str(), now, agent_id, from.as_str()];
    match tx {
        Some(tx) => tx.execute(statement, &params),
        None => sql::execute(statement, &params),
    }
}

/// A busy agent becomes available again, unless another active delivery still holds it.
pub fn free_agent(tx: &Tx, agent_id: &str, now: &str) -> Result<u64, CapError> {
    tx.execute(
        "UPDATE agents SET status = $1, status_since = $2, updated_at = $2 \
         WHERE id = $3 AND status = $4 AND NOT EXISTS (SELECT 1 FROM deliveries \
         WHERE agent_id = $3 AND status IN ($5, $6, $7))",
        &params![
            AgentStatus::Available.as_str(),
            now,
            agent_id,
            AgentStatus::Busy.as_str(),
            Status::Assigned.as_str(),
            Status::PickedUp.as_str(),
            Status::InTransit.as_str()
        ],
    )
}

pub fn set_location(agent_id: &str, lat: f64, lon: f64, at: &str) -> Result<(), CapError> {
    sql::execute(
        "UPDATE agents SET last_lat = $1, last_lon = $2, last_at = $3, updated_at = $3 \
         WHERE id = $4",
        &params![lat, lon, at, agent_id],
    )?;
    Ok(())
}

/// A delivery as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: String,
    pub order_id: String,
    pub user_id: String,
    pub agent_id: Option<String>,
    pub status: String,
    pub address: Json,
    pub items: Json,
    pub created_at: String,
    pub updated_at: String,
    pub assigned_at: Option<String>,
    pub picked_up_at: Option<String>,
    pub in_transit_at: Option<String>,
    pub delivered_at: Option<String>,
    pub cancelled_at: Option<String>,
}

impl Delivery {
    /// The status, or an internal error for a row nobody should have written.
    pub fn state(&self) -> Result<Status, ApiError> {
        Status::parse(&self.status).ok_or_else(|| {
            ApiError::internal(format!("delivery {} has status {}", self.id, self.status))
        })
    }
}

/// By hand: `address` and `items` are JSON text parsed into values.
impl FromRow for Delivery {
    fn from_row(r: &Row<'_>) -> Result<Self, CapError> {
        let parse = |text: String, empty: Json| {
            kirana_sdk::serde_json::from_str::<Json>(&text).unwrap_or(empty)
        };
        Ok(Delivery {
            id: r.get("id")?,
            order_id: r.get("order_id")?,
            user_id: r.get("user_id")?,
            agent_id: r.get("agent_id")?,
            status: r.get("status")?,
            address: parse(r.get("address")?, Json::Null),
            items: parse(r.get("items")?, json!([])),
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
            assigned_at: r.get("assigned_at")?,
            picked_up_at: r.get("picked_up_at")?,
            in_transit_at: r.get("in_transit_at")?,
            delivered_at: r.get("delivered_at")?,
            cancelled_at: r.get("cancelled_at")?,
        })
    }
}

const DELIVERY_COLUMNS: &str = "id, order_id, user_id, agent_id, status, address, items, \
    created_at, updated_at, assigned_at, picked_up_at, in_transit_at, delivered_at, cancelled_at";

pub fn delivery(id: &str) -> Result<Option<Delivery>, CapError> {
    sql::query_one(
        &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"),
        &params![id],
    )
}

pub fn delivery_for_order(order_id: &str) -> Result<Option<Delivery>, CapError> {
    sql::query_one(
        &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE order_id = $1"),
        &params![order_id],
    )
}

/// Creates the order's delivery as `unassigned` unless it has one already.
pub fn insert_delivery(
    order_id: &str,
    user_id: &str,
    address: &Json,
    items: &Json,
) -> Result<(), CapError> {
    let now = now_rfc3339();
    sql::execute(
        "INSERT INTO deliveries (id, order_id, user_id, status, address, items, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (order_id) DO NOTHING",
        &params![
            new_id("dlv"),
            order_id,
            user_id,
            Status::Unassigned.as_str(),
            address.to_string(),
            items.to_string(),
            now
        ],
    )?;
    Ok(())
}

/// The oldest deliveries waiting for an agent.
pub fn waiting(limit: i64) -> Result<Vec<Delivery>, CapError> {
    sql::query_as(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE status = $1 \
             ORDER BY created_at, id LIMIT $2"
        ),
        &params![Status::Unassigned.as_str(), limit],
    )
}

/// The agent's active deliveries, the earliest assigned first.
pub fn active_for_agent(agent_id: &str) -> Result<Vec<Delivery>, CapError> {
    sql::query_as(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE agent_id = $1 \
             AND status IN ($2, $3, $4) ORDER BY assigned_at, id LIMIT 100"
        ),
        &params![
            agent_id,
            Status::Assigned.as_str(),
            Status::PickedUp.as_str(),
            Status::InTransit.as_str()
        ],
    )
}

/// A page of deliveries, newest first, optionally of one status.
pub fn list_deliveries(
    status: Option<Status>,
    paging: Paging,
) -> Result<(Vec<Delivery>, i64), CapError> {
    let (filter, mut params) = match status {
        Some(s) => ("WHERE status = $1", params![s.as_str()]),
        None => ("", params![]),
    };
    let total: i64 = sql::query(
        &format!("SELECT COUNT(*) FROM deliveries {filter}"),
        &params,
    )?
    .scalar()?;
    let n = params.len();
    params.push(Value::Int(paging.limit()));
    params.push(Value::Int(paging.offset()));
    let items = sql::query_as(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries {filter} \
             ORDER BY created_at DESC, id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        ),
        &params,
    )?;
    Ok((items, total))
}

/// Moves a delivery `from → to`, stamping `to`'s timestamp column, only if it is still
/// in `from` (and, when given, still held by `agent_id`). The rows affected.
pub fn move_delivery(
    tx: &Tx,
    id: &str,
    from: Status,
    to: Status,
    agent_id: Option<&str>,
    now: &str,
) -> Result<u64, CapError> {
    let stamp = to
        .timestamp_column()
        .map(|c| format!(", {c} = $2"))
        .unwrap_or_default();
    let mut params = params![to.as_str(), now, id, from.as_str()];
    let agent_cond = match agent_id {
        Some(a) => {
            params.push(Value::Text(a.to_string()));
            " AND agent_id = $5"
        }
        None => "",
    };
    tx.execute(
        &format!(
            "UPDATE deliveries SET status = $1, updated_at = $2{stamp} \
             WHERE id = $3 AND status = $4{agent_cond}"
        ),
        &params,
    )
}

/// Gives a delivery to `agent_id` (status `assigned`), only if it is still in `from`
/// and still held by `current` (`None`: by nobody). The rows affected.
pub fn assign_delivery(
    tx: &Tx,
    id: &str,
    from: Status,
    current: Option<&str>,
    agent_id: &str,
    now: &str,
) -> Result<u64, CapError> {
    let mut params = params![Status::Assigned.as_str(), agent_id, now, id, from.as_str()];
    let holder = match current {
        Some(c) => {
            params.push(Value::Text(c.to_string()));
            "agent_id = $6"
        }
        None => "agent_id IS NULL",
    };
    tx.execute(
        &format!(
            "UPDATE deliveries SET status = $1, agent_id = $2, assigned_at = $3, \
             updated_at = $3 WHERE id = $4 AND status = $5 AND {holder}"
        ),
        &params,
    )
}

/// Longest path returned by tracking (the most recent points).
pub const PATH_LIMIT: i64 = 1000;

pub fn append_path(delivery_id: &str, lat: f64, lon: f64, at: &str) -> Result<(), CapError> {
    sql::execute(
        "INSERT INTO delivery_path (id, delivery_id, lat, lon, at) VALUES ($1, $2, $3, $4, $5)",
        &params![new_id("pt"), delivery_id, lat, lon, at],
    )?;
    Ok(())
}

/// The delivery's path, oldest first (at most the last [`PATH_LIMIT`] points).
pub fn path(delivery_id: &str) -> Result<Vec<Point>, CapError> {
    let rows = sql::query(
        "SELECT lat, lon, at FROM delivery_path WHERE delivery_id = $1 \
         ORDER BY id DESC LIMIT $2",
        &params![delivery_id, PATH_LIMIT],
    )?;
    let mut points = rows
        .iter()
        .map(|r| {
            Ok(Point {
                lat: r.get("lat")?,
                lon: r.get("lon")?,
                at: r.get("at")?,
            })
        })
        .collect::<Result<Vec<_>, CapError>>()?;
    points.reverse();
    Ok(points)
}

/// Remembers that an order was cancelled (idempotent).
pub fn mark_cancelled(order_id: &str) -> Result<(), CapError> {
    sql::execute(
        "INSERT INTO cancelled_orders (order_id, at) VALUES ($1, $2) \
         ON CONFLICT (order_id) DO NOTHING",
        &params![order_id, now_rfc3339()],
    )?;
    Ok(())
}

pub fn is_cancelled(order_id: &str) -> Result<bool, CapError> {
    let n: i64 = sql::query(
        "SELECT COUNT(*) FROM cancelled_orders WHERE order_id = $1",
        &params![order_id],
    )?
    .scalar()?;
    Ok(n > 0)
}

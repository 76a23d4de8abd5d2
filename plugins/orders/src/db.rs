//! The orders database: schema, the order as stored and read back, listing.

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::Value as Json;
use kirana_sdk::sql::{self, Tx};
use kirana_sdk::CapError;

/// Idempotent schema (run at every load).
pub fn migrate() -> Result<(), CapError> {
    sql::execute_batch(&[
        "CREATE TABLE IF NOT EXISTS orders (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            status TEXT NOT NULL,
            subtotal BIGINT NOT NULL,
            delivery_fee BIGINT NOT NULL,
            total BIGINT NOT NULL,
            currency TEXT NOT NULL,
            payment_method TEXT NOT NULL,
            payment_status TEXT NOT NULL,
            address TEXT NOT NULL,
            notes TEXT,
            agent_user_id TEXT,
            cancel_reason TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            estimated_delivery_at TEXT NOT NULL,
            delivered_at TEXT
        )",
        "CREATE INDEX IF NOT EXISTS orders_user_created ON orders (user_id, created_at)",
        "CREATE INDEX IF NOT EXISTS orders_status_created ON orders (status, created_at)",
        "CREATE TABLE IF NOT EXISTS order_items (
            order_id TEXT NOT NULL,
            position BIGINT NOT NULL,
            product_id TEXT NOT NULL,
            name TEXT NOT NULL,
            unit TEXT NOT NULL,
            unit_price BIGINT NOT NULL,
            quantity BIGINT NOT NULL,
            line_total BIGINT NOT NULL,
            PRIMARY KEY (order_id, position)
        )",
        "CREATE TABLE IF NOT EXISTS order_status_history (
            id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL,
            status TEXT NOT NULL,
            at TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS order_status_history_order ON order_status_history (order_id, id)",
    ])?;
    // `hold_id`: the catalog stock hold the order's units came from, which is also the
    // id of its coupon redemption in promotions (`NULL` for orders placed before holds
    // existed). `coupon_code` and `discount`: the coupon redeemed with the order
    // (`NULL` and 0 without one, and for orders placed before coupons existed).
    add_column("hold_id", "TEXT")?;
    add_column("coupon_code", "TEXT")?;
    add_column("discount", "BIGINT NOT NULL DEFAULT 0")?;
    sql::execute(
        "CREATE INDEX IF NOT EXISTS orders_hold ON orders (hold_id)",
        &[],
    )?;
    kirana_sdk::idempotency::migrate()
}

/// Adds `column` (with its type and constraints, `ddl`) to `orders` once; SQLite has
/// no `ADD COLUMN IF NOT EXISTS`, so there the schema is asked first.
fn add_column(column: &str, ddl: &str) -> Result<(), CapError> {
    match sql::dialect() {
        sql::Dialect::Postgres => {
            sql::execute(
                &format!("ALTER TABLE orders ADD COLUMN IF NOT EXISTS {column} {ddl}"),
                &[],
            )?;
        }
        sql::Dialect::Sqlite => {
            let present: i64 = sql::query(
                "SELECT COUNT(*) AS n FROM pragma_table_info('orders') WHERE name = $1",
                &params![column],
            )?
            .scalar()?;
            if present == 0 {
                sql::execute(
                    &format!("ALTER TABLE orders ADD COLUMN {column} {ddl}"),
                    &[],
                )?;
            }
        }
    }
    Ok(())
}

/// One order line, a snapshot taken at checkout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub product_id: String,
    pub name: String,
    pub unit: String,
    pub unit_price: i64,
    pub quantity: i64,
    pub line_total: i64,
}

/// One entry of `status_history`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub status: String,
    pub at: String,
}

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub id: String,
    pub user_id: String,
    pub status: String,
    pub items: Vec<Item>,
    pub subtotal: i64,
    pub delivery_fee: i64,
    /// Paise the coupon took off (0 without one).
    pub discount: i64,
    /// The coupon redeemed with the order, as promotions spells it.
    pub coupon_code: Option<String>,
    /// `subtotal + delivery_fee - discount`, never below `delivery_fee`.
    pub total: i64,
    pub currency: String,
    pub payment_method: String,
    pub payment_status: String,
    pub address: Json,
    pub notes: Option<String>,
    pub agent_user_id: Option<String>,
    pub cancel_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub estimated_delivery_at: String,
    pub delivered_at: Option<String>,
    pub status_history: Vec<HistoryEntry>,
    /// The catalog hold of the order's units (and the id of its coupon redemption);
    /// not part of the order's public shape.
    #[serde(skip)]
    pub hold_id: Option<String>,
}

/// By hand: `address` is JSON text parsed into a value; `items` and `status_history`
/// are filled by `attach_details`.
impl FromRow for Order {
    fn from_row(r: &Row<'_>) -> Result<Self, CapError> {
        let address: String = r.get("address")?;
        Ok(Order {
            id: r.get("id")?,
            user_id: r.get("user_id")?,
            status: r.get("status")?,
            items: Vec::new(),
            subtotal: r.get("subtotal")?,
            delivery_fee: r.get("delivery_fee")?,
            discount: r.get("discount")?,
            coupon_code: r.get("coupon_code")?,
            total: r.get("total")?,
            currency: r.get("currency")?,
            payment_method: r.get("payment_method")?,
            payment_status: r.get("payment_status")?,
            address: kirana_sdk::serde_json::from_str(&address).unwrap_or(Json::Null),
            notes: r.get("notes")?,
            agent_user_id: r.get("agent_user_id")?,
            cancel_reason: r.get("cancel_reason")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
            estimated_delivery_at: r.get("estimated_delivery_at")?,
            delivered_at: r.get("delivered_at")?,
            status_history: Vec::new(),
            hold_id: r.get("hold_id")?,
        })
    }
}

const ORDER_COLUMNS: &str = "id, user_id, status, subtotal, delivery_fee, total, currency, \
    payment_method, payment_status, address, notes, agent_user_id, cancel_reason, created_at, \
    updated_at, estimated_delivery_at, delivered_at, hold_id, coupon_code, discount";

/// Writes a new order with its lines and first history entry, inside `tx`.
pub fn insert(tx: &Tx, o: &Order) -> Result<(), CapError> {
    tx.execute(
        &format!(
            "INSERT INTO orders ({ORDER_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             NULLIF($18, ''), NULLIF($19, ''), $20)"
        ),
        &params![
            o.id,
            o.user_id,
            o.status,
            o.subtotal,
            o.delivery_fee,
            o.total,
            o.currency,
            o.payment_method,
            o.payment_status,
            o.address.to_string(),
            o.notes,
            o.agent_user_id,
            o.cancel_reason,
            o.created_at,
            o.updated_at,
            o.estimated_delivery_at,
            o.delivered_at,
            // Text even when absent: see docs/plugins/catalog.md "Host notes".
            o.hold_id.as_deref().unwrap_or(""),
            o.coupon_code.as_deref().unwrap_or(""),
            o.discount
        ],
    )?;
    for (i, it) in o.items.iter().enumerate() {
        tx.execute(
            "INSERT INTO order_items (order_id, position, product_id, name, unit, unit_price, \
             quantity, line_total) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &params![
                o.id,
                i64::try_from(i).unwrap_or(i64::MAX),
                it.product_id,
                it.name,
                it.unit,
                it.unit_price,
                it.quantity,
                it.line_total
            ],
        )?;
    }
    for h in &o.status_history {
        add_history(tx, &o.id, &h.status, &h.at)?;
    }
    Ok(())
}

/// Appends one `status_history` entry (ids are time-ordered, so they sort by time).
pub fn add_history(tx: &Tx, order_id: &str, status: &str, at: &str) -> Result<(), CapError> {
    tx.execute(
        "INSERT INTO order_status_history (id, order_id, status, at) VALUES ($1, $2, $3, $4)",
        &params![new_id("osh"), order_id, status, at],
    )?;
    Ok(())
}

/// `$start+1, $start+2, ...` placeholders for `ids`, with their values.
fn in_list(ids: &[String]) -> (String, Vec<Value>) {
    let list = (1..=ids.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    (list, ids.iter().map(|id| Value::Text(id.clone())).collect())
}

/// Fills in the lines and history of `orders` with two queries.
fn attach_details(orders: &mut [Order]) -> Result<(), CapError> {
    if orders.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = orders.iter().map(|o| o.id.clone()).collect();
    let (list, params) = in_list(&ids);
    let items = sql::query(
        &format!(
            "SELECT order_id, product_id, name, unit, unit_price, quantity, line_total \
             FROM order_items WHERE order_id IN ({list}) ORDER BY order_id, position"
        ),
        &params,
    )?;
    for r in items.iter() {
        let order_id: String = r.get("order_id")?;
        if let Some(o) = orders.iter_mut().find(|o| o.id == order_id) {
            o.items.push(Item {
                product_id: r.get("product_id")?,
                name: r.get("name")?,
                unit: r.get("unit")?,
                unit_price: r.get("unit_price")?,
                quantity: r.get("quantity")?,
                line_total: r.get("line_total")?,
            });
        }
    }
    let history = sql::query(
        &format!(
            "SELECT order_id, status, at FROM order_status_history \
             WHERE order_id IN ({list}) ORDER BY order_id, id"
        ),
        &params,
    )?;
    for r in history.iter() {
        let order_id: String = r.get("order_id")?;
        if let Some(o) = orders.iter_mut().find(|o| o.id == order_id) {
            o.status_history.push(HistoryEntry {
                status: r.get("status")?,
                at: r.get("at")?,
            });
        }
    }
    Ok(())
}

/// One order with its lines and history, if it exists.
pub fn find(id: &str) -> Result<Option<Order>, CapError> {
    let Some(order) = sql::query_one::<Order>(
        &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"),
        &params![id],
    )?
    else {
        return Ok(None);
    };
    let mut one = [order];
    attach_details(&mut one)?;
    let [order] = one;
    Ok(Some(order))
}

/// The id and status of the order holding catalog hold `hold_id`, if one does.
pub fn find_by_hold(hold_id: &str) -> Result<Option<(String, String)>, CapError> {
    let rows = sql::query(
        "SELECT id, status FROM orders WHERE hold_id = $1",
        &params![hold_id],
    )?;
    rows.first()
        .map(|r| Ok((r.get("id")?, r.get("status")?)))
        .transpose()
}

/// A page of orders, newest first, optionally of one user and/or one status.
pub fn list(
    user_id: Option<&str>,
    status: Option<&str>,
    paging: Paging,
) -> Result<(Vec<Order>, i64), CapError> {
    let mut conds: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    if let Some(u) = user_id {
        params.push(Value::Text(u.to_string()));
        conds.push(format!("user_id = ${}", params.len()));
    }
    if let Some(s) = status {
        params.push(Value::Text(s.to_string()));
        conds.push(format!("status = ${}", params.len()));
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let total: i64 =
        sql::query(&format!("SELECT COUNT(*) FROM orders {filter}"), &params)?.scalar()?;
    let n = params.len();
    params.push(Value::Int(paging.limit()));
    params.push(Value::Int(paging.offset()));
    let mut orders = sql::query_as::<Order>(
        &format!(
            "SELECT {ORDER_COLUMNS} FROM orders {filter} \
             ORDER BY created_at DESC, id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        ),
        &params,
    )?;
    attach_details(&mut orders)?;
    Ok((orders, total))
}

//! The read models: schema, and how each event updates them. Every update sets state
//! (see `rules::OrderState`), so redelivered and out-of-order events converge.

use kirana_sdk::prelude::*;
use kirana_sdk::sql::{self, Tx};
use kirana_sdk::CapError;

use crate::rules::{self, Created, OrderState};

/// Idempotent schema (run at every load). Flags are BIGINT 0/1 on both databases.
pub fn migrate() -> Result<(), CapError> {
    sql::execute_batch(&[
        // One row per order seen in any event; `day` (UTC) is NULL until order.created.
        "CREATE TABLE IF NOT EXISTS orders (
            id TEXT PRIMARY KEY,
            user_id TEXT,
            total BIGINT,
            payment_method TEXT,
            status TEXT,
            created_at TEXT,
            day TEXT,
            paid BIGINT NOT NULL DEFAULT 0,
            refunded_amount BIGINT NOT NULL DEFAULT 0,
            fully_refunded BIGINT NOT NULL DEFAULT 0,
            counted BIGINT NOT NULL DEFAULT 0,
            revenue BIGINT NOT NULL DEFAULT 0
        )",
        "CREATE INDEX IF NOT EXISTS orders_day ON orders (day, counted)",
        "CREATE INDEX IF NOT EXISTS orders_user ON orders (user_id, counted)",
        "CREATE TABLE IF NOT EXISTS order_items (
            order_id TEXT NOT NULL,
            position BIGINT NOT NULL,
            product_id TEXT NOT NULL,
            quantity BIGINT NOT NULL,
            line_total BIGINT NOT NULL,
            PRIMARY KEY (order_id, position)
        )",
        "CREATE INDEX IF NOT EXISTS order_items_product ON order_items (product_id)",
        // The product name of the most recent order that carried the product.
        "CREATE TABLE IF NOT EXISTS products (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            name_at TEXT NOT NULL
        )",
        // role/created_at/day are NULL for a user known only from its orders.
        "CREATE TABLE IF NOT EXISTS users (
            id TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            created_at TEXT,
            day TEXT
        )",
        "CREATE INDEX IF NOT EXISTS users_role_day ON users (role, day)",
        // The latest refund total each payment reported.
        "CREATE TABLE IF NOT EXISTS refunds (
            payment_id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL,
            refunded_amount BIGINT NOT NULL,
            is_full BIGINT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS refunds_order ON refunds (order_id)",
        // status_ts: Unix seconds of the event that set the status.
        "CREATE TABLE IF NOT EXISTS deliveries (
            id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL,
            status TEXT NOT NULL,
            status_rank BIGINT NOT NULL,
            status_ts BIGINT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries (status)",
    ])
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// By hand: `paid` and `fully_refunded` are stored as BIGINT 0/1 and read as i64.
impl FromRow for OrderState {
    fn from_row(r: &Row<'_>) -> Result<Self, CapError> {
        Ok(OrderState {
            user_id: r.get("user_id")?,
            total: r.get("total")?,
            payment_method: r.get("payment_method")?,
            status: r.get("status")?,
            created_at: r.get("created_at")?,
            day: r.get("day")?,
            paid: r.get::<i64>("paid")? != 0,
            refunded_amount: r.get("refunded_amount")?,
            fully_refunded: r.get::<i64>("fully_refunded")? != 0,
        })
    }
}

/// Runs `f` on the order's state inside one transaction and writes the result back,
/// with `counted` and `revenue` recomputed by the revenue rule. The first statement
/// creates the row or locks it (an upsert that touches it), so two events of one
/// order applied at once cannot lose each other's update on PostgreSQL; SQLite
/// transactions hold the write lock from the start.
fn with_order(
    order_id: &str,
    f: impl FnOnce(&Tx, &mut OrderState) -> Result<(), CapError>,
) -> Result<(), CapError> {
    let tx = sql::begin()?;
    tx.execute(
        "INSERT INTO orders (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET id = excluded.id",
        &params![order_id],
    )?;
    let mut state = tx
        .query_one::<OrderState>(
            "SELECT user_id, total, payment_method, status, created_at, day, paid, \
             refunded_amount, fully_refunded FROM orders WHERE id = $1",
            &params![order_id],
        )?
        .unwrap_or_default();
    f(&tx, &mut state)?;
    tx.execute(
        "UPDATE orders SET user_id = $2, total = $3, payment_method = $4, status = $5, \
         created_at = $6, day = $7, paid = $8, refunded_amount = $9, fully_refunded = $10, \
         counted = $11, revenue = $12 WHERE id = $1",
        &params![
            order_id,
            state.user_id,
            state.total,
            state.payment_method,
            state.status,
            state.created_at,
            state.day,
            flag(state.paid),
            state.refunded_amount,
            flag(state.fully_refunded),
            flag(state.counted()),
            state.revenue()
        ],
    )?;
    tx.commit()
}

/// One line of `order.created`.
#[derive(Debug, Clone)]
pub struct Line {
    pub product_id: String,
    pub name: String,
    pub quantity: i64,
    pub line_total: i64,
}

/// `order.created`: the order, its lines, the product names, and its customer.
pub fn order_created(order_id: &str, c: &Created<'_>, lines: &[Line]) -> Result<(), CapError> {
    with_order(order_id, |tx, state| {
        state.apply_created(c);
        for (i, l) in lines.iter().enumerate() {
            tx.execute(
                "INSERT INTO order_items (order_id, position, product_id, quantity, line_total) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id, position) DO NOTHING",
                &params![
                    order_id,
                    i64::try_from(i).unwrap_or(i64::MAX),
                    l.product_id,
                    l.quantity,
                    l.line_total
                ],
            )?;
        }
        // Product rows in id order, so two orders sharing products lock them in the
        // same order on PostgreSQL (no deadlock).
        let mut products: Vec<&Line> = lines.iter().collect();
        products.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        products.dedup_by(|a, b| a.product_id == b.product_id);
        for l in products {
            tx.execute(
                "INSERT INTO products (id, name, name_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_at = excluded.name_at \
                 WHERE excluded.name_at >= products.name_at",
                &params![l.product_id, l.name, c.created_at],
            )?;
        }
        // Whoever orders is a customer; user.created, when it comes, has the last word.
        tx.execute(
            "INSERT INTO users (id, role) VALUES ($1, 'customer') ON CONFLICT (id) DO NOTHING",
            &params![c.user_id],
        )?;
        Ok(())
    })
}

/// `order.status_changed` and `order.cancelled`.
pub fn order_status(order_id: &str, user_id: Option<&str>, status: &str) -> Result<(), CapError> {
    with_order(order_id, |_, state| {
        if state.user_id.is_none() {
            state.user_id = user_id.filter(|u| !u.is_empty()).map(str::to_string);
        }
        state.apply_status(status);
        Ok(())
    })
}

/// `payment.captured`.
pub fn payment_captured(order_id: &str, user_id: Option<&str>) -> Result<(), CapError> {
    with_order(order_id, |_, state| {
        state.apply_paid(user_id);
        Ok(())
    })
}

/// `payment.refunded`: records the payment's refund total so far (the largest
/// reported, as refunds only grow), then sets the order's totals from all its payments.
pub fn payment_refunded(
    order_id: &str,
    payment_id: &str,
    refunded_amount: i64,
    full: bool,
) -> Result<(), CapError> {
    with_order(order_id, |tx, state| {
        tx.execute(
            "INSERT INTO refunds (payment_id, order_id, refunded_amount, is_full) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (payment_id) DO UPDATE SET \
             refunded_amount = CASE WHEN excluded.refunded_amount > refunds.refunded_amount \
                 THEN excluded.refunded_amount ELSE refunds.refunded_amount END, \
             is_full = CASE WHEN excluded.is_full > refunds.is_full \
                 THEN excluded.is_full ELSE refunds.is_full END",
            &params![payment_id, order_id, refunded_amount, flag(full)],
        )?;
        let totals = tx.query(
            "SELECT CAST(COALESCE(SUM(refunded_amount), 0) AS BIGINT) AS amount, \
             CAST(COALESCE(MAX(is_full), 0) AS BIGINT) AS any_full \
             FROM refunds WHERE order_id = $1",
            &params![order_id],
        )?;
        let (amount, any_full) = match totals.first() {
            Some(r) => (r.get::<i64>("amount")?, r.get::<i64>("any_full")? != 0),
            None => (refunded_amount, full),
        };
        state.apply_refunds(amount, any_full);
        Ok(())
    })
}

/// `user.created`: sets the user's role and signup time (an upsert, so repeats and a
/// row first made from an order converge).
pub fn user_created(user_id: &str, role: &str, created_at: &str) -> Result<(), CapError> {
    sql::execute(
        "INSERT INTO users (id, role, created_at, day) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET role = excluded.role, created_at = excluded.created_at, \
         day = excluded.day",
        &params![user_id, role, created_at, rules::utc_day_of(created_at)],
    )?;
    Ok(())
}

/// `delivery.assigned` / `delivery.status_changed`: the status of the latest event
/// wins (by its `at`, then by lifecycle rank for events of the same second), in one
/// conditional upsert.
pub fn delivery_status(
    delivery_id: &str,
    order_id: &str,
    status: &str,
    rank: i64,
    at_unix: i64,
) -> Result<(), CapError> {
    sql::execute(
        "INSERT INTO deliveries (id, order_id, status, status_rank, status_ts) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET \
         order_id = excluded.order_id, status = excluded.status, \
         status_rank = excluded.status_rank, status_ts = excluded.status_ts \
         WHERE excluded.status_ts > deliveries.status_ts \
            OR (excluded.status_ts = deliveries.status_ts \
                AND excluded.status_rank > deliveries.status_rank)",
        &params![delivery_id, order_id, status, rank, at_unix],
    )?;
    Ok(())
}

//! The admin routes: each answer is computed from the read models at request time.

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::{Map, Value as Json};
use kirana_sdk::sql;

use crate::rules::{self, Day};

/// Today's UTC day, from the host clock.
fn today() -> Day {
    Day::of_unix(kirana_sdk::now().unix_timestamp())
}

/// `[analytics] sales_default_days`: days in the sales range when `from` is absent.
fn sales_default_days() -> i64 {
    kirana_sdk::config::get_or("sales_default_days", 7i64).clamp(1, rules::MAX_RANGE_DAYS)
}

fn count(statement: &str, params: &[Value]) -> Result<i64, ApiError> {
    Ok(sql::query(statement, params)?.scalar::<i64>()?)
}

/// `GET /api/v1/analytics/dashboard`.
pub fn dashboard(_req: &Request) -> Result<Response, ApiError> {
    let day = today().to_string();
    // One statement, so the order figures come from one snapshot and always agree
    // (orders_today = Σ orders_by_status, revenue matches the statuses shown).
    let rows = sql::query(
        "SELECT status, counted, COUNT(*) AS n, CAST(COALESCE(SUM(revenue), 0) AS BIGINT) AS revenue \
         FROM orders WHERE day = $1 GROUP BY status, counted",
        &params![day],
    )?;
    let mut by_status = Map::new();
    for s in rules::ORDER_STATUSES {
        by_status.insert(s.to_string(), json!(0));
    }
    let (mut orders_today, mut counted_today, mut revenue_today) = (0i64, 0i64, 0i64);
    for r in rows.iter() {
        let status: Option<String> = r.get("status")?;
        let n: i64 = r.get("n")?;
        orders_today += n;
        if r.get::<i64>("counted")? == 1 {
            counted_today += n;
            revenue_today += r.get::<i64>("revenue")?;
        }
        if let Some(slot) = status.and_then(|s| by_status.get_mut(&s)) {
            *slot = json!(slot.as_i64().unwrap_or(0) + n);
        }
    }

    let active: Vec<String> = rules::ACTIVE_DELIVERY_STATUSES
        .iter()
        .map(|s| format!("'{s}'"))
        .collect();
    let active_deliveries = count(
        &format!(
            "SELECT COUNT(*) FROM deliveries d LEFT JOIN orders o ON o.id = d.order_id \
             WHERE d.status IN ({}) \
             AND (o.status IS NULL OR o.status NOT IN ('delivered', 'cancelled'))",
            active.join(", ")
        ),
        &[],
    )?;
    let new_users_today = count(
        "SELECT COUNT(*) FROM users WHERE role = 'customer' AND day = $1",
        &params![day],
    )?;

    Ok(Response::ok(&json!({
        "orders_today": orders_today,
        "revenue_today": revenue_today,
        "avg_order_value": rules::average(revenue_today, counted_today),
        "active_deliveries": active_deliveries,
        "new_users_today": new_users_today,
        "orders_by_status": Json::Object(by_status),
        "currency": "INR",
    })))
}

/// `GET /api/v1/analytics/sales?from=&to=`: one point per day of the range.
pub fn sales(req: &Request) -> Result<Response, ApiError> {
    let (from, to) = rules::date_range(
        req.query("from"),
        req.query("to"),
        today(),
        sales_default_days(),
    )?;
    let rows = sql::query(
        "SELECT day, COUNT(*) AS orders, CAST(COALESCE(SUM(revenue), 0) AS BIGINT) AS revenue \
         FROM orders WHERE counted = 1 AND day >= $1 AND day <= $2 GROUP BY day",
        &params![from.to_string(), to.to_string()],
    )?;
    let mut found: Vec<(String, i64, i64)> = Vec::with_capacity(rows.len());
    for r in rows.iter() {
        found.push((r.get("day")?, r.get("orders")?, r.get("revenue")?));
    }
    let mut points = Vec::new();
    let (mut total_orders, mut total_revenue) = (0i64, 0i64);
    let mut d = from;
    while d <= to {
        let date = d.to_string();
        let (orders, revenue) = found
            .iter()
            .find(|(day, _, _)| *day == date)
            .map_or((0, 0), |(_, o, r)| (*o, *r));
        total_orders += orders;
        total_revenue += revenue;
        points.push(json!({"date": date, "orders": orders, "revenue": revenue}));
        d = d.plus(1);
    }
    Ok(Response::ok(&json!({
        "from": from.to_string(),
        "to": to.to_string(),
        "points": points,
        "total_orders": total_orders,
        "total_revenue": total_revenue,
        "currency": "INR",
    })))
}

/// `GET /api/v1/analytics/products/top?limit=`: by units, then revenue, then id.
pub fn top_products(req: &Request) -> Result<Response, ApiError> {
    let limit = rules::limit_param(req.query("limit"))?;
    let rows = sql::query(
        "SELECT i.product_id AS product_id, p.name AS name, \
         CAST(SUM(i.quantity) AS BIGINT) AS units, CAST(SUM(i.line_total) AS BIGINT) AS revenue \
         FROM order_items i JOIN orders o ON o.id = i.order_id \
         JOIN products p ON p.id = i.product_id \
         WHERE o.counted = 1 \
         GROUP BY i.product_id, p.name \
         ORDER BY SUM(i.quantity) DESC, SUM(i.line_total) DESC, i.product_id ASC \
         LIMIT $1",
        &params![limit],
    )?;
    let mut items = Vec::with_capacity(rows.len());
    for r in rows.iter() {
        items.push(json!({
            "product_id": r.get::<String>("product_id")?,
            "name": r.get::<String>("name")?,
            "units": r.get::<i64>("units")?,
            "revenue": r.get::<i64>("revenue")?,
        }));
    }
    Ok(Response::ok(&json!({ "items": items })))
}

/// `GET /api/v1/analytics/users?from=&to=`: customers; `new_in_range` defaults to today.
pub fn users(req: &Request) -> Result<Response, ApiError> {
    let (from, to) = rules::date_range(req.query("from"), req.query("to"), today(), 1)?;
    // One statement, one snapshot: total ≥ new_in_range even while signups arrive.
    let rows = sql::query(
        "SELECT COUNT(*) AS total, \
         CAST(COALESCE(SUM(CASE WHEN day >= $1 AND day <= $2 THEN 1 ELSE 0 END), 0) AS BIGINT) \
             AS new_in_range, \
         (SELECT COUNT(*) FROM (SELECT user_id FROM orders \
             WHERE counted = 1 AND user_id IS NOT NULL \
             GROUP BY user_id HAVING COUNT(*) >= 2) AS repeaters) AS repeat_customers \
         FROM users WHERE role = 'customer'",
        &params![from.to_string(), to.to_string()],
    )?;
    let row = rows
        .first()
        .ok_or_else(|| ApiError::internal("the users query returned no row"))?;
    let total: i64 = row.get("total")?;
    let new_in_range: i64 = row.get("new_in_range")?;
    let repeat_customers: i64 = row.get("repeat_customers")?;
    Ok(Response::ok(&json!({
        "from": from.to_string(),
        "to": to.to_string(),
        "total": total,
        "new_in_range": new_in_range,
        "repeat_customers": repeat_customers,
    })))
}

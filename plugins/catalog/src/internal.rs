//! Routes only other plugins reach (through `services::call`); the gateway never
//! exposes them. The cart reads prices through `lookup`; orders reserve and release
//! stock. Their shapes are a contract: see docs/plugins/catalog.md.

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::{Map, Value};
use kirana_sdk::sql;

use crate::db;
use crate::input::{parse_ids, parse_lines, Line};

/// `POST /internal/products/lookup {"ids": [..]}` → `{"items": [Product]}` for the ids
/// that exist, active or not, in the order asked (duplicates once); unknown ids are
/// absent.
pub fn lookup(req: &Request) -> Result<Response, ApiError> {
    let body: Map<String, Value> = req.json()?;
    let ids = parse_ids(&body)?;
    let found = db::products_by_ids(&ids)?;
    let items: Vec<_> = ids
        .iter()
        .filter_map(|id| found.iter().find(|p| &p.id == id))
        .collect();
    Ok(Response::ok(&json!({ "items": items })))
}

/// One reserved line as orders snapshot it.
#[derive(Debug, Serialize)]
struct Reserved {
    product_id: String,
    name: String,
    unit: String,
    unit_price: i64,
    quantity: i64,
}

/// `POST /internal/stock/reserve {"items": [{product_id, quantity}]}`: every line or
/// none. Each line is a conditional decrement inside one transaction; a line that
/// finds too little stock (or an unknown/inactive product) rolls everything back and
/// the answer is `409 insufficient_stock` with `details.items` = the short product ids.
/// Lines are applied in product-id order so concurrent reservations lock rows in the
/// same order (no deadlocks on PostgreSQL).
pub fn reserve(req: &Request) -> Result<Response, ApiError> {
    let body: Map<String, Value> = req.json()?;
    let lines = parse_lines(&body)?;
    let mut order: Vec<&Line> = lines.iter().collect();
    order.sort_by(|a, b| a.product_id.cmp(&b.product_id));

    let now = now_rfc3339();
    let tx = sql::begin()?;
    let mut short: Vec<&str> = Vec::new();
    // What each reserved product is now (name, unit, price), from the updates
    // themselves: no second read.
    let mut snapshot: Vec<(String, String, String, i64)> = Vec::with_capacity(lines.len());
    for line in order {
        let rows = tx.query(
            "UPDATE products SET stock = stock - $1, updated_at = $2 \
             WHERE id = $3 AND is_active AND stock >= $4 \
             RETURNING id, name, unit, price",
            &params![line.quantity, now, line.product_id, line.quantity],
        )?;
        match rows.first() {
            Some(row) => snapshot.push((
                row.get("id")?,
                row.get("name")?,
                row.get("unit")?,
                row.get("price")?,
            )),
            None => {
                if !short.contains(&line.product_id.as_str()) {
                    short.push(&line.product_id);
                }
            }
        }
    }
    if !short.is_empty() {
        tx.rollback()?;
        // In the order the caller sent them.
        let mut items: Vec<&str> = Vec::new();
        for line in &lines {
            if short.contains(&line.product_id.as_str())
                && !items.contains(&line.product_id.as_str())
            {
                items.push(&line.product_id);
            }
        }
        return Err(ApiError::insufficient_stock(format!(
            "not enough stock for {} product(s)",
            items.len()
        ))
        .with_details(json!({ "items": items })));
    }
    tx.commit()?;
    crate::listing::cache().invalidate();

    let mut items = Vec::with_capacity(lines.len());
    for line in lines {
        let (_, name, unit, price) = snapshot
            .iter()
            .find(|(id, ..)| *id == line.product_id)
            .ok_or_else(|| ApiError::internal("a reserved product vanished"))?;
        items.push(Reserved {
            product_id: line.product_id,
            name: name.clone(),
            unit: unit.clone(),
            unit_price: *price,
            quantity: line.quantity,
        });
    }
    Ok(Response::ok(&json!({ "items": items })))
}

/// `POST /internal/stock/release {"items": [{product_id, quantity}]}` → 204: puts
/// reserved stock back (a cancelled or expired order), in one transaction. Unknown ids
/// are skipped; inactive products get their stock back too (it is real stock).
pub fn release(req: &Request) -> Result<Response, ApiError> {
    let body: Map<String, Value> = req.json()?;
    let mut lines = parse_lines(&body)?;
    lines.sort_by(|a, b| a.product_id.cmp(&b.product_id));
    let now = now_rfc3339();
    let tx = sql::begin()?;
    for line in &lines {
        tx.execute(
            "UPDATE products SET stock = stock + $1, updated_at = $2 WHERE id = $3",
            &params![line.quantity, now, line.product_id],
        )?;
    }
    tx.commit()?;
    crate::listing::cache().invalidate();
    Ok(Response::no_content())
}

//! Stock holds: the units a checkout takes, kept by a hold that its order confirms, its
//! cancellation returns, and its expiry releases when no order came. Nothing else puts
//! stock back, so a crash anywhere between taking the units and writing the order
//! leaks nothing: the expiry is scheduled in the same call that takes the units.
//!
//! The steps themselves are [`crate::hold_machine`]; here they meet the database (each
//! step and its unit movement in one transaction) and the routes and events that
//! trigger them. Contract: docs/plugins/catalog.md "Stock holds".

use std::time::Duration;

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::{Map, Value};
use kirana_sdk::sql::{self, Tx};
use kirana_sdk::{config, CapError};
// The answers' shapes: the contract orders reads them with, defined once.
use kirana_shop::catalog::{HeldLine, Hold, HoldState};

use crate::hold_machine::{step, HoldStatus, Trigger, Units};
use crate::input::{parse_lines, Line};

/// The self-event that ends a hold nobody confirmed.
pub const EXPIRED: &str = "catalog.hold_expired";
/// Seconds a hold lives before its expiry asks orders about it.
pub const DEFAULT_TTL_SECS: u64 = 600;
/// A `held` hold this far past its expiry is looked at by the next expiry event too,
/// in case its own event was lost (a host that crashed between committing the hold and
/// its scheduled event, before events committed with the writes).
const OVERDUE_SECS: u64 = 60;
/// Overdue holds one expiry event looks at, at most.
const SWEEP: i64 = 10;

/// `[catalog] hold_ttl_seconds`, at least one second.
pub fn ttl() -> Duration {
    Duration::from_secs(config::get_or("hold_ttl_seconds", DEFAULT_TTL_SECS).max(1))
}

/// `[(product_id, units)]` of `lines`, one entry per product, in product-id order
/// (the order every transaction locks product rows in, so none deadlock).
fn per_product(lines: &[Line]) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = Vec::new();
    for l in lines {
        match out.iter_mut().find(|(p, _)| *p == l.product_id) {
            Some((_, q)) => *q += l.quantity,
            None => out.push((l.product_id.clone(), l.quantity)),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `POST /internal/stock/holds {"items": [{product_id, quantity}]}` → 201 `{hold_id,
/// expires_at, items}`: every line or none. Each line is a conditional decrement in one
/// transaction with the hold's rows and its scheduled expiry; a line that finds too
/// little stock (or an unknown/inactive product) rolls everything back and the answer is
/// `409 insufficient_stock` with `details.items` = the short product ids.
pub fn create(req: &Request) -> Result<Response, ApiError> {
    let body: Map<String, Value> = req.json()?;
    let lines = parse_lines(&body)?;
    let mut order: Vec<&Line> = lines.iter().collect();
    order.sort_by(|a, b| a.product_id.cmp(&b.product_id));

    let now = kirana_sdk::now();
    let ttl = ttl();
    let created_at = kirana_sdk::rfc3339(now);
    let expires_at = kirana_sdk::rfc3339(now + ttl);
    let hold_id = new_id("hld");

    let tx = sql::begin()?;
    let mut short: Vec<&str> = Vec::new();
    // What each held product is now (name, unit, price), from the updates themselves.
    let mut snapshot: Vec<(String, String, String, i64)> = Vec::with_capacity(lines.len());
    for line in order {
        let rows = tx.query(
            "UPDATE products SET stock = stock - $1, updated_at = $2 \
             WHERE id = $3 AND is_active AND stock >= $4 \
             RETURNING id, name, unit, price",
            &params![line.quantity, created_at, line.product_id, line.quantity],
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
        return Err(kirana_shop::errors::insufficient_stock(format!(
            "not enough stock for {} product(s)",
            items.len()
        ))
        .with_details(json!({ "items": items })));
    }
    tx.execute(
        "INSERT INTO stock_holds (id, status, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5)",
        &params![
            hold_id,
            HoldStatus::Held.as_str(),
            expires_at,
            created_at,
            created_at
        ],
    )?;
    insert_items(&tx, &hold_id, &per_product(&lines))?;
    // Scheduled in this call, before the commit: the expiry exists whenever the hold
    // does. A failure drops `tx`, so nothing was taken.
    kirana_sdk::events::schedule(EXPIRED, &json!({ "hold_id": hold_id }), ttl)?;
    tx.commit()?;
    crate::listing::cache().invalidate();

    let mut items = Vec::with_capacity(lines.len());
    for line in lines {
        let (_, name, unit, price) = snapshot
            .iter()
            .find(|(id, ..)| *id == line.product_id)
            .ok_or_else(|| ApiError::internal("a held product vanished"))?;
        items.push(HeldLine {
            product_id: line.product_id,
            name: name.clone(),
            unit: unit.clone(),
            unit_price: *price,
            quantity: line.quantity,
        });
    }
    Ok(Response::created(&Hold {
        hold_id,
        expires_at,
        items,
    }))
}

/// The hold's lines, in one statement (a checkout pays for every round trip).
fn insert_items(tx: &Tx, hold_id: &str, lines: &[(String, i64)]) -> Result<(), CapError> {
    if lines.is_empty() {
        return Ok(());
    }
    let rows: Vec<String> = (0..lines.len())
        .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
        .collect();
    let mut values = Vec::with_capacity(lines.len() * 3);
    for (product_id, quantity) in lines {
        values.extend(params![hold_id, product_id, *quantity]);
    }
    tx.execute(
        &format!(
            "INSERT INTO stock_hold_items (hold_id, product_id, quantity) VALUES {}",
            rows.join(", ")
        ),
        &values,
    )?;
    Ok(())
}

/// `POST /internal/stock/holds/{id}/release` → 200 `{hold_id, status}`: a `held` hold's
/// units go back (it becomes `released`); any other status changes nothing and is
/// answered as it is. Unknown → 404.
pub fn release(req: &Request) -> Result<Response, ApiError> {
    let id: String = req.param("id")?;
    let status = apply(&id, Trigger::Release, None)?.ok_or_else(|| ApiError::not_found("hold"))?;
    Ok(Response::ok(&HoldState {
        hold_id: id,
        status: status.as_str().to_string(),
    }))
}

fn read_status(tx: &Tx, id: &str) -> Result<Option<HoldStatus>, ApiError> {
    let rows = tx.query("SELECT status FROM stock_holds WHERE id = $1", &params![id])?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let status: String = row.get("status")?;
    HoldStatus::parse(&status)
        .map(Some)
        .ok_or_else(|| ApiError::internal(format!("hold {id} has status {status}")))
}

/// Applies `trigger` to hold `id`: the status change and the unit movement commit in one
/// transaction, and only if the hold is still where it was read (a conditional update),
/// so a step happens at most once however many deliveries race. Returns the status
/// afterwards (unchanged when the step does not apply), `None` for an unknown hold.
pub fn apply(
    id: &str,
    trigger: Trigger,
    order_id: Option<&str>,
) -> Result<Option<HoldStatus>, ApiError> {
    // Only PostgreSQL can see the hold move between the read and the conditional update
    // (SQLite transactions take the write lock at BEGIN); then the step is re-planned.
    for _ in 0..3 {
        let tx = sql::begin()?;
        let Some(from) = read_status(&tx, id)? else {
            tx.rollback()?;
            return Ok(None);
        };
        let Some((to, units)) = step(from, trigger) else {
            tx.rollback()?;
            return Ok(Some(from));
        };
        let now = now_rfc3339();
        let changed = match order_id {
            Some(order) => tx.execute(
                "UPDATE stock_holds SET status = $1, updated_at = $2, order_id = $3 \
                 WHERE id = $4 AND status = $5",
                &params![to.as_str(), now, order, id, from.as_str()],
            )?,
            None => tx.execute(
                "UPDATE stock_holds SET status = $1, updated_at = $2 \
                 WHERE id = $3 AND status = $4",
                &params![to.as_str(), now, id, from.as_str()],
            )?,
        };
        if changed != 1 {
            tx.rollback()?;
            continue;
        }
        match units {
            Units::Keep => {}
            Units::PutBack => put_back(&tx, id, &now)?,
            Units::TakeAgain => take_again(&tx, id, order_id, &now)?,
        }
        tx.commit()?;
        if units != Units::Keep {
            crate::listing::cache().invalidate();
        }
        return Ok(Some(to));
    }
    Err(ApiError::internal(format!(
        "hold {id} kept changing while {trigger:?} was applied"
    )))
}

/// The hold's lines, in product-id order.
fn hold_items(tx: &Tx, id: &str) -> Result<Vec<(String, i64)>, CapError> {
    let rows = tx.query(
        "SELECT product_id, quantity FROM stock_hold_items WHERE hold_id = $1 \
         ORDER BY product_id",
        &params![id],
    )?;
    rows.iter()
        .map(|r| Ok((r.get("product_id")?, r.get("quantity")?)))
        .collect()
}

/// Adds `units` of each product back (inactive products too: it is real stock).
fn add_stock(tx: &Tx, lines: &[(String, i64)], now: &str) -> Result<(), CapError> {
    for (product_id, quantity) in lines {
        tx.execute(
            "UPDATE products SET stock = stock + $1, updated_at = $2 WHERE id = $3",
            &params![*quantity, now, product_id],
        )?;
    }
    Ok(())
}

fn put_back(tx: &Tx, id: &str, now: &str) -> Result<(), CapError> {
    add_stock(tx, &hold_items(tx, id)?, now)
}

/// The order of a released hold committed after all (its expiry found no order because
/// the order was still being written). Its units are taken again as far as the stock
/// allows; what could not be taken is logged as an error (the shop oversold) and the
/// hold keeps only what it really took, so a later cancellation returns exactly that.
fn take_again(tx: &Tx, id: &str, order_id: Option<&str>, now: &str) -> Result<(), ApiError> {
    for (product_id, wanted) in hold_items(tx, id)? {
        let taken = take_up_to(tx, &product_id, wanted, now)?;
        if taken < wanted {
            tx.execute(
                "UPDATE stock_hold_items SET quantity = $1 WHERE hold_id = $2 AND product_id = $3",
                &params![taken, id, product_id],
            )?;
        }
        let message = format!(
            "hold {id} was released by its expiry but order {} exists: took {taken} of \
             {wanted} units of {product_id} again{}",
            order_id.unwrap_or("?"),
            if taken < wanted {
                "; the order is short of stock"
            } else {
                ""
            }
        );
        kirana_sdk::log::error(&message, &[("hold_id", id), ("product_id", &product_id)]);
    }
    Ok(())
}

/// Takes `wanted` units of a product, or as many as there are; returns how many.
fn take_up_to(tx: &Tx, product_id: &str, wanted: i64, now: &str) -> Result<i64, CapError> {
    let all = tx.execute(
        "UPDATE products SET stock = stock - $1, updated_at = $2 WHERE id = $3 AND stock >= $4",
        &params![wanted, now, product_id, wanted],
    )?;
    if all == 1 {
        return Ok(wanted);
    }
    // Fewer than wanted: take what is there (retried if it moves meanwhile).
    for _ in 0..3 {
        let stock: Option<i64> = tx
            .query(
                "SELECT stock FROM products WHERE id = $1",
                &params![product_id],
            )?
            .first()
            .map(|r| r.get("stock"))
            .transpose()?;
        let available = stock.unwrap_or(0).clamp(0, wanted);
        if available == 0 {
            return Ok(0);
        }
        let took = tx.execute(
            "UPDATE products SET stock = stock - $1, updated_at = $2 WHERE id = $3 AND stock >= $4",
            &params![available, now, product_id, available],
        )?;
        if took == 1 {
            return Ok(available);
        }
    }
    Ok(0)
}

/// What an event about orders or holds carries that the catalog reads.
#[derive(Debug, Deserialize)]
struct OrderEvent {
    order_id: String,
    #[serde(default)]
    hold_id: Option<String>,
    #[serde(default)]
    items: Vec<EventLine>,
}

#[derive(Debug, Deserialize)]
struct EventLine {
    product_id: String,
    quantity: i64,
}

#[derive(Debug, Deserialize)]
struct Expired {
    hold_id: String,
}

/// The topics the catalog subscribes to and the plugin that owns each.
pub const SUBSCRIPTIONS: [(&str, &str); 3] = [
    ("order.created", "orders"),
    ("order.cancelled", "orders"),
    (EXPIRED, "catalog"),
];

/// The catalog's `on-event`. An `Err` makes the bus retry; events that can never
/// succeed (malformed, from a plugin that does not own the topic) are logged and
/// acknowledged.
pub fn on_event(event: &Event) -> Result<(), String> {
    let Some((_, owner)) = SUBSCRIPTIONS.iter().find(|(t, _)| *t == event.topic) else {
        return Ok(());
    };
    if event.source != *owner {
        kirana_sdk::log::error(
            &format!(
                "ignored {} from {}: only {owner} publishes it",
                event.topic, event.source
            ),
            &[("event_id", &event.id)],
        );
        return Ok(());
    }
    let outcome = match event.topic.as_str() {
        EXPIRED => match kirana_sdk::events::payload::<Expired>(event) {
            Ok(e) => expire(&e.hold_id).map(|()| sweep_overdue(&e.hold_id)),
            Err(e) => return malformed(event, &e),
        },
        topic => match kirana_sdk::events::payload::<OrderEvent>(event) {
            Ok(o) if topic == "order.created" => order_created(&o),
            Ok(o) => order_cancelled(&o),
            Err(e) => return malformed(event, &e),
        },
    };
    outcome.map_err(|e| e.to_string())
}

fn malformed(event: &Event, why: &str) -> Result<(), String> {
    kirana_sdk::log::error(why, &[("event_id", &event.id)]);
    Ok(())
}

/// `order.created`: the order confirms its hold (or takes the units again when the
/// expiry released them first). Orders placed without a hold are not the catalog's.
fn order_created(o: &OrderEvent) -> Result<(), ApiError> {
    let Some(hold_id) = &o.hold_id else {
        return Ok(());
    };
    if apply(hold_id, Trigger::OrderCreated, Some(&o.order_id))?.is_none() {
        kirana_sdk::log::error(
            &format!(
                "order {} names hold {hold_id}, which does not exist",
                o.order_id
            ),
            &[],
        );
    }
    Ok(())
}

/// `order.cancelled`: the hold's units go back. An order placed before holds existed
/// has none; its lines go back, once, under a hold recorded for it as `returned` (the
/// insert that creates it is what makes a second delivery a no-op).
fn order_cancelled(o: &OrderEvent) -> Result<(), ApiError> {
    if let Some(hold_id) = &o.hold_id {
        if apply(hold_id, Trigger::OrderCancelled, Some(&o.order_id))?.is_none() {
            kirana_sdk::log::error(
                &format!(
                    "order {} names hold {hold_id}, which does not exist",
                    o.order_id
                ),
                &[],
            );
        }
        return Ok(());
    }
    let lines: Vec<Line> = o
        .items
        .iter()
        .filter(|l| !l.product_id.is_empty() && l.quantity > 0)
        .map(|l| Line {
            product_id: l.product_id.clone(),
            quantity: l.quantity,
        })
        .collect();
    let lines = per_product(&lines);
    let now = now_rfc3339();
    let tx = sql::begin()?;
    let inserted = tx.execute(
        "INSERT INTO stock_holds (id, status, order_id, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        &params![
            format!("hld_{}", o.order_id),
            HoldStatus::Returned.as_str(),
            o.order_id,
            now,
            now,
            now
        ],
    )?;
    if inserted == 1 {
        insert_items(&tx, &format!("hld_{}", o.order_id), &lines)?;
        add_stock(&tx, &lines, &now)?;
    }
    tx.commit()?;
    if inserted == 1 {
        crate::listing::cache().invalidate();
    }
    Ok(())
}

/// `catalog.hold_expired`: a hold still `held` at its expiry asks orders whether its
/// order exists. Yes → `confirmed` (expiry never releases a committed order's stock);
/// no → `released`, units back; anything else → `Err`, and the bus retries.
fn expire(hold_id: &str) -> Result<(), ApiError> {
    if !kirana_shop::plausible_id(hold_id) {
        kirana_sdk::log::error(&format!("no hold can be called {hold_id:?}"), &[]);
        return Ok(());
    }
    let status = sql::query(
        "SELECT status FROM stock_holds WHERE id = $1",
        &params![hold_id],
    )?
    .first()
    .map(|r| r.get::<String>("status"))
    .transpose()?;
    if status.as_deref() != Some(HoldStatus::Held.as_str()) {
        return Ok(());
    }
    match kirana_shop::orders::by_hold(hold_id) {
        Ok(Some(order)) => {
            apply(hold_id, Trigger::ExpiredWithOrder, Some(&order.id))?;
        }
        Ok(None) => {
            apply(hold_id, Trigger::ExpiredWithoutOrder, None)?;
        }
        Err(e) => {
            return Err(ApiError::unavailable(format!(
                "orders answered {e} for hold {hold_id}; retrying the expiry"
            )))
        }
    }
    Ok(())
}

/// Holds still `held` well past their expiry (their own event was lost) are expired
/// along with this one, a few at a time. A failure is logged, not returned: it must not
/// make this event fail, and the next expiry event tries again.
fn sweep_overdue(handled: &str) {
    if let Err(e) = try_sweep_overdue(handled) {
        kirana_sdk::log::warn(&format!("expiring overdue holds failed: {e}"), &[]);
    }
}

fn try_sweep_overdue(handled: &str) -> Result<(), ApiError> {
    let before = kirana_sdk::rfc3339(kirana_sdk::now() - Duration::from_secs(OVERDUE_SECS));
    let rows = sql::query(
        "SELECT id FROM stock_holds WHERE status = $1 AND expires_at < $2 \
         ORDER BY expires_at LIMIT $3",
        &params![HoldStatus::Held.as_str(), before, SWEEP],
    )?;
    for row in rows.iter() {
        let id: String = row.get("id")?;
        if id != handled {
            kirana_sdk::log::warn(
                &format!("hold {id} is overdue; expiring it now"),
                &[("hold_id", &id)],
            );
            expire(&id)?;
        }
    }
    Ok(())
}

/// One hold as the admin list shows it.
#[derive(Debug, Serialize)]
struct HoldView {
    id: String,
    status: String,
    order_id: Option<String>,
    expires_at: String,
    created_at: String,
    updated_at: String,
    items: Vec<HoldItem>,
}

#[derive(Debug, Serialize)]
struct HoldItem {
    product_id: String,
    quantity: i64,
}

/// The `status` filter; unknown is `400 validation_failed`.
fn status_filter(req: &Request) -> Result<Option<HoldStatus>, ApiError> {
    match req.query("status") {
        None | Some("") => Ok(None),
        Some(s) => HoldStatus::parse(s).map(Some).ok_or_else(|| {
            ApiError::invalid_field(
                "status",
                "must be one of held, confirmed, released, returned",
            )
        }),
    }
}

/// `GET /api/v1/admin/stock-holds?status=&page=&page_size=`: holds, newest first.
pub fn list(req: &Request) -> Result<Response, ApiError> {
    let (paging, status) = match (Paging::from_request(req), status_filter(req)) {
        (Ok(p), Ok(s)) => (p, s),
        (Err(a), Err(b)) => return Err(crate::products::merge_validation(a, b)),
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let mut params: Vec<sql::Value> = Vec::new();
    let filter = match status {
        Some(s) => {
            params.push(sql::Value::Text(s.as_str().to_string()));
            "WHERE status = $1"
        }
        None => "",
    };
    let total: i64 = sql::query(
        &format!("SELECT COUNT(*) AS n FROM stock_holds {filter}"),
        &params,
    )?
    .scalar()?;
    let n = params.len();
    params.push(sql::Value::Int(paging.limit()));
    params.push(sql::Value::Int(paging.offset()));
    let rows = sql::query(
        &format!(
            "SELECT id, status, order_id, expires_at, created_at, updated_at FROM stock_holds \
             {filter} ORDER BY created_at DESC, id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        ),
        &params,
    )?;
    let mut holds = Vec::with_capacity(rows.len());
    for r in rows.iter() {
        holds.push(HoldView {
            id: r.get("id")?,
            status: r.get("status")?,
            order_id: r.get("order_id")?,
            expires_at: r.get("expires_at")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
            items: Vec::new(),
        });
    }
    if !holds.is_empty() {
        let ids: Vec<String> = holds.iter().map(|h| h.id.clone()).collect();
        let (list, params) = crate::db::in_list(&ids, 0);
        let items = sql::query(
            &format!(
                "SELECT hold_id, product_id, quantity FROM stock_hold_items \
                 WHERE hold_id IN ({list}) ORDER BY hold_id, product_id"
            ),
            &params,
        )?;
        for r in items.iter() {
            let hold_id: String = r.get("hold_id")?;
            if let Some(h) = holds.iter_mut().find(|h| h.id == hold_id) {
                h.items.push(HoldItem {
                    product_id: r.get("product_id")?,
                    quantity: r.get("quantity")?,
                });
            }
        }
    }
    Ok(Response::ok(&Paged::new(holds, paging, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(p: &str, q: i64) -> Line {
        Line {
            product_id: p.to_string(),
            quantity: q,
        }
    }

    #[test]
    fn lines_become_one_row_per_product_in_lock_order() {
        let lines = [line("prd_b", 2), line("prd_a", 1), line("prd_b", 3)];
        assert_eq!(
            per_product(&lines),
            vec![("prd_a".to_string(), 1), ("prd_b".to_string(), 5)]
        );
    }

    #[test]
    fn every_subscription_has_its_owner() {
        let topics: Vec<&str> = SUBSCRIPTIONS.iter().map(|(t, _)| *t).collect();
        assert_eq!(topics, ["order.created", "order.cancelled", EXPIRED]);
    }
}

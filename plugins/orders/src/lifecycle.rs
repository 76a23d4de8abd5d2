//! Changing an existing order: status transitions, payment status and the assigned
//! agent. Every change is a conditional `UPDATE ... WHERE status = <expected>` so two
//! concurrent changes cannot both win, and its events are published inside the same
//! transaction: a change and its events exist together or not at all. A cancellation's
//! stock and coupon go back through its `order.cancelled` event (the catalog returns
//! the units of the order's hold, promotions the redemption of that hold id), never by
//! a call made before the change committed.

use kirana_sdk::prelude::*;
use kirana_sdk::sql::{self, Tx};
use kirana_sdk::CapError;

use crate::db::{self, Order};
use crate::rules::Status;

/// Gives a catalog hold back at once (a checkout whose order was not written); the
/// catalog answers 200 whatever the hold's status, and changes only a `held` one.
pub fn release_hold(hold_id: &str) -> Result<(), ApiError> {
    match kirana_shop::catalog::release_hold(hold_id)? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("hold")),
    }
}

/// Gives a coupon redemption back at once (a checkout whose order was not written);
/// promotions gives the use back once, whatever the redemption's state. A hold it
/// never redeemed (`404`) has nothing to give back.
pub fn release_redemption(hold_id: &str) -> Result<(), ApiError> {
    kirana_shop::promotions::release_redemption(hold_id).map(|_| ())
}

/// The order or `404 not_found`.
pub fn load(id: &str) -> Result<Order, ApiError> {
    db::find(id)?.ok_or_else(|| ApiError::not_found("order"))
}

/// Moves `order` to `to` if the state machine allows it and nobody changed it
/// meanwhile. Publishes `order.status_changed` and, for a cancellation,
/// `order.cancelled` (which returns the stock) in the same transaction.
pub fn transition(order: &Order, to: Status, reason: Option<&str>) -> Result<Order, ApiError> {
    let from = Status::parse(&order.status).ok_or_else(|| {
        ApiError::internal(format!("order {} has status {}", order.id, order.status))
    })?;
    from.check(to)?;
    let now = now_rfc3339();
    let tx = sql::begin()?;
    let changed = update_status(&tx, order, from, to, reason, &now)?;
    if changed != 1 {
        tx.rollback()?;
        return Err(kirana_shop::errors::invalid_transition(
            "the order changed meanwhile; read it again",
        ));
    }
    db::add_history(&tx, &order.id, to.as_str(), &now)?;
    announce(order, from, to, reason, &now)?; // an error drops `tx`: nothing changes
    tx.commit()?;
    load(&order.id)
}

fn update_status(
    tx: &Tx,
    order: &Order,
    from: Status,
    to: Status,
    reason: Option<&str>,
    now: &str,
) -> Result<u64, kirana_sdk::CapError> {
    // Separate statements rather than COALESCE($n, col): a NULL parameter has no text
    // type on PostgreSQL.
    let (extra, value) = match to {
        Status::Delivered => (", delivered_at = $5", Some(now)),
        Status::Cancelled => (", cancel_reason = $5", reason),
        _ => ("", None),
    };
    let statement = format!(
        "UPDATE orders SET status = $1, updated_at = $2{extra} WHERE id = $3 AND status = $4"
    );
    let mut params = params![to.as_str(), now, order.id, from.as_str()];
    if !extra.is_empty() {
        params.push(kirana_sdk::sql::Value::Text(
            value.unwrap_or("").to_string(),
        ));
    }
    tx.execute(&statement, &params)
}

/// The events of one transition. `order.cancelled` carries the order's stock hold and
/// lines: the catalog returns the hold's units (or, for an order placed before holds
/// existed, the lines); and its coupon: promotions gives back the redemption of that
/// hold id.
fn announce(
    order: &Order,
    from: Status,
    to: Status,
    reason: Option<&str>,
    at: &str,
) -> Result<(), CapError> {
    kirana_sdk::events::publish(
        "order.status_changed",
        &json!({
            "order_id": order.id, "user_id": order.user_id,
            "from": from.as_str(), "to": to.as_str(), "at": at,
        }),
    )?;
    if to == Status::Cancelled {
        let items: Vec<_> = order
            .items
            .iter()
            .map(|i| json!({"product_id": i.product_id, "quantity": i.quantity}))
            .collect();
        kirana_sdk::events::publish(
            "order.cancelled",
            &json!({
                "order_id": order.id, "user_id": order.user_id,
                "payment_status": order.payment_status, "total": order.total,
                "reason": reason.unwrap_or("cancelled"),
                "hold_id": order.hold_id, "items": items,
                "coupon_code": order.coupon_code, "discount": order.discount,
            }),
        )?;
    }
    Ok(())
}

/// Records a payment outcome. `paid` is accepted from `awaiting` (and is a no-op when
/// already `paid`) and moves a `pending` order to `confirmed`; `refunded` is accepted
/// from `paid` (no-op when already `refunded`). Anything else is `409
/// invalid_transition`: a COD order has no online payment, and a cancelled order that
/// was never paid cannot become paid (the payments plugin refunds such a capture).
pub fn set_payment_status(order: &Order, to: &str) -> Result<Order, ApiError> {
    if order.payment_status == to {
        return Ok(order.clone());
    }
    let expected = match to {
        "paid" => "awaiting",
        "refunded" => "paid",
        _ => {
            return Err(ApiError::invalid_field(
                "payment_status",
                "must be paid or refunded",
            ))
        }
    };
    let cancelled = order.status == Status::Cancelled.as_str();
    if order.payment_status != expected || (to == "paid" && cancelled) {
        return Err(kirana_shop::errors::invalid_transition(format!(
            "payment_status cannot go from {} to {to} (order {})",
            order.payment_status, order.status
        )));
    }
    let now = now_rfc3339();
    let confirm = to == "paid" && order.status == Status::Pending.as_str();
    let tx = sql::begin()?;
    let confirm_sql = if confirm {
        ", status = 'confirmed'"
    } else {
        ""
    };
    let changed = tx.execute(
        &format!(
            "UPDATE orders SET payment_status = $1, updated_at = $2{confirm_sql} \
             WHERE id = $3 AND payment_status = $4 AND status = $5"
        ),
        &params![to, now, order.id, expected, order.status],
    )?;
    if changed != 1 {
        tx.rollback()?;
        return Err(kirana_shop::errors::invalid_transition(
            "the order changed meanwhile; read it again",
        ));
    }
    if confirm {
        db::add_history(&tx, &order.id, Status::Confirmed.as_str(), &now)?;
        announce(order, Status::Pending, Status::Confirmed, None, &now)?;
    }
    tx.commit()?;
    load(&order.id)
}

/// Assigns (or clears) the delivery agent who may read the order.
pub fn set_agent(order_id: &str, agent_user_id: Option<&str>) -> Result<Order, ApiError> {
    let changed = sql::execute(
        "UPDATE orders SET agent_user_id = $1, updated_at = $2 WHERE id = $3",
        &params![agent_user_id, now_rfc3339(), order_id],
    )?;
    if changed != 1 {
        return Err(ApiError::not_found("order"));
    }
    load(order_id)
}

/// The `orders.payment_timeout` event: cancels the order when it is still an unpaid
/// `pending` online order; anything else (paid meanwhile, already cancelled, unknown)
/// is done. Safe to deliver twice.
pub fn payment_timeout(order_id: &str) -> Result<(), ApiError> {
    let Some(order) = db::find(order_id)? else {
        return Ok(());
    };
    if order.status != Status::Pending.as_str() || order.payment_status != "awaiting" {
        return Ok(());
    }
    match transition(&order, Status::Cancelled, Some("payment_timeout")) {
        Ok(_) => Ok(()),
        // Someone else moved it first (payment, admin); nothing left to do.
        Err(e) if e.code == kirana_shop::errors::INVALID_TRANSITION => Ok(()),
        Err(e) => Err(e),
    }
}

//! Every change of a payment: capture, failure, refund, and settling the order's
//! payments against the order. Each state change is one conditional `UPDATE ... WHERE
//! status = <expected>` (refunds also `AND refunded_amount + amount <= amount`), so two
//! concurrent changes cannot both win and refunds never exceed the capture. Events are
//! published after the change committed.

use kirana_sdk::prelude::*;
use kirana_sdk::sql;
use kirana_sdk::CapError;

use crate::db::{self, Payment};
use crate::orders::{self, Answer};
use crate::rules::{self, RefundReason, Refusal, Settle, Status};

/// The self-event that retries settling an order whose settlement failed midway.
pub const SETTLE_TOPIC: &str = "payments.settle";

/// Publishes an event about a change that is committed already (failures are logged).
pub use kirana_sdk::events::publish_or_log as publish;

fn reload(id: &str) -> Result<Payment, ApiError> {
    db::find(id)?.ok_or_else(|| ApiError::not_found("payment"))
}

// ---------------------------------------------------------------------------------
// Capture

/// Records a capture: `created`/`failed` → `captured` with the provider's payment id,
/// and claims the order for this payment unless another capture claimed it first.
/// `Ok(true)` when it changed something, `Ok(false)` when the payment was already
/// captured with this very `provider_payment_id` (a replay). `409 conflict` when it was
/// captured with another id, or when the id belongs to another payment.
fn record_capture(p: &Payment, provider_payment_id: &str) -> Result<bool, ApiError> {
    let now = now_rfc3339();
    let tx = sql::begin()?;
    let changed = tx.execute(
        "UPDATE payments SET status = 'captured', provider_payment_id = $1, captured_at = $2, \
         updated_at = $2 WHERE id = $3 AND status IN ('created', 'failed')",
        &params![provider_payment_id, now, p.id],
    );
    let changed = match changed {
        Ok(n) => n,
        Err(CapError::Conflict(_)) => {
            return Err(ApiError::conflict(
                "this provider_payment_id already belongs to another payment",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if changed == 1 {
        tx.execute(
            "INSERT INTO order_captures (order_id, payment_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (order_id) DO NOTHING",
            &params![p.order_id, p.id, now],
        )?;
        tx.commit()?;
        publish(
            "payment.captured",
            &json!({
                "payment_id": p.id, "order_id": p.order_id, "user_id": p.user_id,
                "amount": p.amount, "currency": p.currency,
                "provider_payment_id": provider_payment_id, "at": now,
            }),
        );
        return Ok(true);
    }
    tx.rollback()?;
    let current = reload(&p.id)?;
    let same = current.provider_payment_id.as_deref() == Some(provider_payment_id);
    match current.state() {
        Status::Captured | Status::Refunded if same => Ok(false),
        Status::Captured | Status::Refunded => Err(ApiError::conflict(
            "the payment was already captured with another provider_payment_id",
        )
        .with_details(json!({"payment_id": current.id}))),
        other => Err(ApiError::conflict(format!(
            "the payment cannot be captured (it is {})",
            other.as_str()
        ))),
    }
}

/// What a capture ended in.
pub enum Captured {
    /// Captured (now or before) and recorded on the order as far as its state allows.
    Done(Payment),
    /// Captured, then refunded in full at once: the order was cancelled or another
    /// payment had paid it already.
    Refunded(Payment, RefundReason),
    /// Captured, but the order could not be told yet; a retry is queued.
    Pending(Payment, ApiError),
}

/// Captures `p` and settles its order (order paid, or the money refunded when the order
/// cannot take it). Safe to repeat with the same `provider_payment_id`.
pub fn capture(p: &Payment, provider_payment_id: &str) -> Result<Captured, ApiError> {
    record_capture(p, provider_payment_id)?;
    match settle_order(&p.order_id) {
        Ok(refunded) => {
            let now = reload(&p.id)?;
            let reason = match refunded.iter().find(|(id, _)| *id == p.id) {
                Some((_, reason)) => Some(*reason),
                // The order's cancellation handler (`order.cancelled`) can refund the
                // capture between its commit and this settlement: the same outcome.
                None => refunded_for_the_order(&now),
            };
            Ok(match reason {
                Some(reason) => Captured::Refunded(now, reason),
                None => Captured::Done(now),
            })
        }
        Err(f) => {
            retry_settle(&p.order_id, &f.error);
            Ok(Captured::Pending(reload(&p.id)?, *f.error))
        }
    }
}

/// Why a fully refunded payment was refunded, when its order (cancelled, or paid by
/// another payment) sent the money back rather than an admin.
fn refunded_for_the_order(p: &Payment) -> Option<RefundReason> {
    if p.state() != Status::Refunded {
        return None;
    }
    p.refunds
        .iter()
        .rev()
        .filter_map(|r| RefundReason::parse(&r.reason))
        .find(|r| matches!(r, RefundReason::OrderCancelled | RefundReason::Duplicate))
}

// ---------------------------------------------------------------------------------
// Failure

/// A failed attempt: `created` → `failed` (never over a capture). `Ok(true)` when it
/// changed the payment.
pub fn fail(p: &Payment, provider_payment_id: &str) -> Result<bool, ApiError> {
    let now = now_rfc3339();
    let changed = sql::execute(
        "UPDATE payments SET status = 'failed', provider_payment_id = $1, updated_at = $2 \
         WHERE id = $3 AND status = 'created'",
        &params![provider_payment_id, now, p.id],
    );
    let changed = match changed {
        Ok(n) => n,
        // The id is another payment's: nothing to record on this one.
        Err(CapError::Conflict(_)) => 0,
        Err(e) => return Err(e.into()),
    };
    if changed == 1 {
        publish(
            "payment.failed",
            &json!({
                "payment_id": p.id, "order_id": p.order_id, "user_id": p.user_id,
                "provider_payment_id": provider_payment_id, "at": now,
            }),
        );
    }
    Ok(changed == 1)
}

// ---------------------------------------------------------------------------------
// Refund

/// What a refund request ended in.
pub enum Refunded {
    Done(Box<Payment>),
    Refused(Refusal),
}

/// Refunds `requested` paise of payment `id`, or all that is left when `None`.
/// The conditional UPDATE re-checks the bound, so concurrent refunds never exceed the
/// captured amount; when another refund won the race the plan is recomputed.
pub fn refund(
    id: &str,
    requested: Option<i64>,
    reason: RefundReason,
) -> Result<Refunded, ApiError> {
    refund_with(id, requested, reason, None)
}

/// Records `amount` paise refunded at the provider (`refund.processed`) on payment
/// `id`, once per `provider_refund_id`: a refund already on record is
/// `Refused(AlreadyRecorded)`, one beyond what is left is `Refused(TooMuch)`.
pub fn provider_refund(
    id: &str,
    provider_refund_id: &str,
    amount: i64,
) -> Result<Refunded, ApiError> {
    refund_with(
        id,
        Some(amount),
        RefundReason::Provider,
        Some(provider_refund_id),
    )
}

fn refund_with(
    id: &str,
    requested: Option<i64>,
    reason: RefundReason,
    provider_refund_id: Option<&str>,
) -> Result<Refunded, ApiError> {
    for _ in 0..5 {
        if let Some(prid) = provider_refund_id {
            if db::provider_refund_known(prid)? {
                return Ok(Refunded::Refused(Refusal::AlreadyRecorded));
            }
        }
        let p = reload(id)?;
        let amount = match rules::refund_plan(p.state(), p.amount, p.refunded_amount, requested) {
            Ok(a) => a,
            Err(refusal) => return Ok(Refunded::Refused(refusal)),
        };
        let now = now_rfc3339();
        let refund_id = new_id("rfd");
        let tx = sql::begin()?;
        if let Some(prid) = provider_refund_id {
            // The claim on the provider's id comes first: of two deliveries of one
            // refund racing here, the second finds it taken and records nothing.
            let claimed = tx.execute(
                "INSERT INTO provider_refunds (provider_refund_id, refund_id, payment_id, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (provider_refund_id) DO NOTHING",
                &params![prid, refund_id, p.id, now],
            );
            match claimed {
                Ok(1) => {}
                Ok(_) | Err(CapError::Conflict(_)) => {
                    tx.rollback()?;
                    return Ok(Refunded::Refused(Refusal::AlreadyRecorded));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let changed = tx.execute(
            "UPDATE payments SET refunded_amount = refunded_amount + $1, \
             status = CASE WHEN refunded_amount + $1 >= amount THEN 'refunded' ELSE 'captured' END, \
             updated_at = $2 \
             WHERE id = $3 AND status = 'captured' AND refunded_amount + $1 <= amount",
            &params![amount, now, p.id],
        )?;
        if changed != 1 {
            tx.rollback()?;
            continue; // someone refunded meanwhile: plan again from the new state
        }
        tx.execute(
            "INSERT INTO payment_refunds (id, payment_id, order_id, amount, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &params![refund_id, p.id, p.order_id, amount, reason.as_str(), now],
        )?;
        tx.commit()?;
        let after = reload(id)?;
        publish(
            "payment.refunded",
            &json!({
                "payment_id": after.id, "order_id": after.order_id, "user_id": after.user_id,
                "amount": amount, "refunded_amount": after.refunded_amount,
                "full": after.state() == Status::Refunded, "at": now,
            }),
        );
        return Ok(Refunded::Done(Box::new(after)));
    }
    Err(ApiError::conflict(
        "the payment is being refunded concurrently; read it again",
    ))
}

// ---------------------------------------------------------------------------------
// Settling an order's payments

/// A settlement that stopped on an error; `changed` says whether it had already
/// changed something (then its events must still be committed).
pub struct SettleFailure {
    pub error: Box<ApiError>,
    pub changed: bool,
}

/// Brings every payment of `order_id` in line with the order's current state
/// ([`rules::settle`]): records the paying capture on the order, refunds captures the
/// order cannot take (cancelled order, duplicate payment), and marks the order refunded
/// when its payment is refunded in full. Idempotent: it acts on state, not on history.
/// Returns the payments it refunded, with why.
pub fn settle_order(order_id: &str) -> Result<Vec<(String, RefundReason)>, SettleFailure> {
    let mut refunded: Vec<(String, RefundReason)> = Vec::new();
    let outcome = settle_into(order_id, &mut refunded);
    match outcome {
        Ok(()) => Ok(refunded),
        Err(error) => Err(SettleFailure {
            error: Box::new(error),
            changed: !refunded.is_empty(),
        }),
    }
}

fn settle_into(order_id: &str, refunded: &mut Vec<(String, RefundReason)>) -> Result<(), ApiError> {
    let payments = db::by_order(order_id)?;
    if payments.is_empty() {
        return Ok(()); // e.g. a COD order: nothing to settle, no need to ask orders
    }
    let Some(order) = orders::get(order_id)? else {
        kirana_sdk::log::warn(
            &format!("settling payments of unknown order {order_id}"),
            &[],
        );
        return Ok(());
    };
    let mut order = orders::state(&order);
    let payer = db::order_payer(order_id)?;
    for p in payments {
        let holds_order = payer.as_deref() == Some(p.id.as_str());
        match rules::settle(&order, p.state(), holds_order) {
            Settle::Nothing => {}
            Settle::Refund(reason) => refund_rest(&p, reason, refunded)?,
            Settle::MarkPaid => match orders::set_payment_status(order_id, "paid")? {
                Answer::Accepted(o) => order = orders::state(&o),
                Answer::Refused(why) => {
                    // Cancelled meanwhile (e.g. the payment timeout won the race).
                    kirana_sdk::log::info(
                        &format!("order {order_id} refused the payment ({why}); refunding"),
                        &[("payment_id", &p.id)],
                    );
                    refund_rest(&p, RefundReason::OrderCancelled, refunded)?;
                }
            },
            Settle::MarkRefunded => match orders::set_payment_status(order_id, "refunded")? {
                Answer::Accepted(o) => order = orders::state(&o),
                Answer::Refused(why) => kirana_sdk::log::warn(
                    &format!("order {order_id} refused payment_status refunded: {why}"),
                    &[("payment_id", &p.id)],
                ),
            },
        }
    }
    // A full refund above may require the order to be marked refunded as well.
    if !refunded.is_empty() {
        if let Some(payer) = payer {
            if let Some(p) = db::find(&payer)? {
                if rules::settle(&order, p.state(), true) == Settle::MarkRefunded {
                    if let Answer::Refused(why) = orders::set_payment_status(order_id, "refunded")?
                    {
                        kirana_sdk::log::warn(
                            &format!("order {order_id} refused payment_status refunded: {why}"),
                            &[],
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// Refunds what is left of `p`; a payment with nothing left is fine (another refund got
/// there first).
fn refund_rest(
    p: &Payment,
    reason: RefundReason,
    refunded: &mut Vec<(String, RefundReason)>,
) -> Result<(), ApiError> {
    match refund(&p.id, None, reason)? {
        Refunded::Done(_) => refunded.push((p.id.clone(), reason)),
        Refunded::Refused(r) => {
            kirana_sdk::log::info(&format!("nothing to refund on {}: {r:?}", p.id), &[])
        }
    }
    Ok(())
}

/// Queues another settlement of `order_id` (delivered to this plugin, retried with
/// backoff) after `error` interrupted one.
pub fn retry_settle(order_id: &str, error: &ApiError) {
    kirana_sdk::log::warn(
        &format!("settling the payments of {order_id} failed ({error}); retrying by event"),
        &[],
    );
    publish(SETTLE_TOPIC, &json!({ "order_id": order_id }));
}

/// Settles after a change made in this call (a refund): a failure is queued for retry
/// and logged, because the change itself stands.
pub fn settle_after_change(order_id: &str) {
    if let Err(f) = settle_order(order_id) {
        retry_settle(order_id, &f.error);
    }
}

/// For `on_event`: settle; an error before any change is returned (the bus retries the
/// event with backoff); after a change, the retry is queued and the event acknowledged
/// so the change's own events are committed.
pub fn settle_for_event(order_id: &str) -> Result<(), String> {
    match settle_order(order_id) {
        Ok(_) => Ok(()),
        Err(f) if f.changed => {
            retry_settle(order_id, &f.error);
            Ok(())
        }
        Err(f) => Err(f.error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Refund;

    fn payment(status: &str, reasons: &[&str]) -> Payment {
        Payment {
            id: "pmt_1".into(),
            order_id: "ord_1".into(),
            user_id: "usr_1".into(),
            amount: 22000,
            currency: "INR".into(),
            provider: "sandbox".into(),
            provider_order_id: "order_1".into(),
            provider_payment_id: Some("pay_1".into()),
            key_id: "rzp_test".into(),
            status: status.into(),
            refunded_amount: if status == "refunded" { 22000 } else { 0 },
            refunds: reasons
                .iter()
                .enumerate()
                .map(|(i, r)| Refund {
                    id: format!("rfd_{i}"),
                    amount: 22000 / reasons.len() as i64,
                    reason: r.to_string(),
                    provider_refund_id: None,
                    created_at: "2026-11-29T22:40:10Z".into(),
                })
                .collect(),
            created_at: "2026-11-29T22:40:10Z".into(),
            updated_at: "2026-11-29T22:40:10Z".into(),
            captured_at: Some("2026-11-29T22:40:10Z".into()),
        }
    }

    #[test]
    fn a_capture_refunded_by_the_orders_cancellation_counts_as_refunded_at_once() {
        let by_order = refunded_for_the_order(&payment("refunded", &["order_cancelled"]));
        assert_eq!(by_order, Some(RefundReason::OrderCancelled));
        let duplicate = refunded_for_the_order(&payment("refunded", &["duplicate"]));
        assert_eq!(duplicate, Some(RefundReason::Duplicate));
        // An admin's refund, or money still captured, is not the order's doing.
        assert_eq!(
            refunded_for_the_order(&payment("refunded", &["admin"])),
            None
        );
        assert_eq!(refunded_for_the_order(&payment("captured", &[])), None);
        assert_eq!(
            refunded_for_the_order(&payment("captured", &["order_cancelled"])),
            None
        );
    }
}

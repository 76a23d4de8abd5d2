//! Creating deliveries, assigning agents, and the changes the system makes on its own
//! (an order cancelled or delivered elsewhere). Every change is a conditional UPDATE in
//! a transaction, and the matching orders call happens inside that transaction: when
//! orders refuses, nothing changes here either.

use std::sync::atomic::{AtomicUsize, Ordering};

use kirana_sdk::prelude::*;
use kirana_sdk::sql;

use crate::db::{self, Agent, Delivery};
use crate::peers;
use crate::rules::{self, AgentStatus, Candidate, Status};

/// Events published by this instance; `on_event` compares it before and after so it
/// never asks for a retry once something was announced (a retry would drop them).
static PUBLISHED: AtomicUsize = AtomicUsize::new(0);

pub fn published() -> usize {
    PUBLISHED.load(Ordering::Relaxed)
}

/// Publishes an event after the change it describes committed. The host holds it until
/// the call succeeds, so a failure to publish is logged, not fatal: the change happened.
pub fn publish(topic: &str, payload: &kirana_sdk::serde_json::Value) {
    match kirana_sdk::events::publish(topic, payload) {
        Ok(_) => {
            PUBLISHED.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => kirana_sdk::log::error(
            &format!(
                "publishing {topic} failed: {}",
                kirana_sdk::cap_error_message(&e)
            ),
            &[],
        ),
    }
}

/// `delivery.assigned`.
pub fn announce_assigned(d: &Delivery, agent: &Agent, at: &str) {
    publish(
        "delivery.assigned",
        &json!({
            "delivery_id": d.id, "order_id": d.order_id, "user_id": d.user_id,
            "agent_id": agent.id, "agent_user_id": agent.user_id, "agent_name": agent.name,
            "at": at,
        }),
    );
}

/// `delivery.status_changed`.
pub fn announce_status(d: &Delivery, from: Status, to: Status, at: &str) {
    publish(
        "delivery.status_changed",
        &json!({
            "delivery_id": d.id, "order_id": d.order_id, "user_id": d.user_id,
            "agent_id": d.agent_id, "from": from.as_str(), "to": to.as_str(), "at": at,
        }),
    );
}

/// The store location from `[delivery]` (`store_lat`, `store_lon`).
pub fn store() -> (f64, f64) {
    use kirana_sdk::config::get_or;
    let (lat, lon) = rules::DEFAULT_STORE;
    rules::store_location(get_or("store_lat", lat), get_or("store_lon", lon))
}

/// Logs a failure that must not fail the caller's own, already committed change.
pub fn log_failure(what: &str, e: &ApiError) {
    kirana_sdk::log::warn(&format!("{what}: {e}"), &[]);
}

/// The outcome of one assignment attempt.
enum Attempt {
    Assigned,
    /// No available agent could be claimed.
    NoAgent,
    /// The delivery is no longer waiting (taken or cancelled meanwhile).
    Gone,
}

/// Gives `d` (unassigned) to the best available agent: nearest to the store first,
/// trying the next one when another assignment claimed an agent first.
fn assign(d: &Delivery, store: (f64, f64)) -> Result<Attempt, ApiError> {
    let agents = db::available_agents()?;
    let candidates: Vec<Candidate> = agents
        .iter()
        .map(|a| Candidate {
            id: a.id.clone(),
            location: a.location(),
            since: a.status_since.clone(),
        })
        .collect();
    for i in rules::rank(&candidates, store) {
        let agent = &agents[i];
        let now = now_rfc3339();
        let tx = sql::begin()?;
        let claimed = db::set_agent_status(
            Some(&tx),
            &agent.id,
            AgentStatus::Available,
            AgentStatus::Busy,
            &now,
        )?;
        if claimed != 1 {
            tx.rollback()?;
            continue; // lost the agent to a concurrent assignment
        }
        if db::assign_delivery(&tx, &d.id, Status::Unassigned, None, &agent.id, &now)? != 1 {
            tx.rollback()?;
            return Ok(Attempt::Gone);
        }
        // An error here drops `tx`: the agent stays available, the delivery waiting.
        peers::set_order_agent(&d.order_id, &agent.user_id)?;
        tx.commit()?;
        announce_assigned(d, agent, &now);
        return Ok(Attempt::Assigned);
    }
    Ok(Attempt::NoAgent)
}

/// What [`dispatch`] did.
#[derive(Debug, Default)]
pub struct Dispatched {
    pub assigned: usize,
    pub error: Option<ApiError>,
}

/// How many waiting deliveries one dispatch looks at.
const DISPATCH_BATCH: i64 = 25;

/// Assigns waiting deliveries, oldest first, while agents are available. Runs whenever
/// work or an agent appears (new delivery, agent available, delivery finished or
/// cancelled, reassignment). A delivery that cannot be assigned because a peer failed
/// stays waiting for the next run; the first such error is reported.
pub fn dispatch() -> Dispatched {
    let mut out = Dispatched::default();
    let store = store();
    let waiting = match db::waiting(DISPATCH_BATCH) {
        Ok(w) => w,
        Err(e) => {
            out.error = Some(e.into());
            return out;
        }
    };
    for d in &waiting {
        match assign(d, store) {
            Ok(Attempt::Assigned) => out.assigned += 1,
            Ok(Attempt::Gone) => {}
            Ok(Attempt::NoAgent) => break,
            Err(e) => {
                log_failure(&format!("assigning delivery {}", d.id), &e);
                out.error.get_or_insert(e);
            }
        }
    }
    out
}

/// [`dispatch`] after a change that is already committed: failures are only logged.
pub fn dispatch_quietly() {
    let _ = dispatch();
}

/// `order.status_changed` to `preparing`: creates the order's delivery (once) with
/// the order's address and items, then assigns waiting work.
pub fn order_preparing(order_id: &str) -> Result<(), ApiError> {
    if db::delivery_for_order(order_id)?.is_none() {
        let Some(order) = peers::order(order_id)? else {
            kirana_sdk::log::warn(
                &format!("order {order_id} is unknown to orders; no delivery"),
                &[],
            );
            return Ok(());
        };
        if order.status != "preparing" {
            // Cancelled (or moved on by hand) before this event arrived.
            kirana_sdk::log::info(
                &format!(
                    "order {order_id} is {} by now; no delivery created",
                    order.status
                ),
                &[],
            );
            return Ok(());
        }
        db::insert_delivery(order_id, &order.user_id, &order.address, &order.items)?;
        // order.cancelled may have been handled between the read above and the insert.
        if db::is_cancelled(order_id)? {
            return cancel_for_order(order_id);
        }
    }
    let run = dispatch();
    match run.error {
        Some(e) if run.assigned == 0 => Err(e),
        _ => Ok(()),
    }
}

/// Finishes `d` as `to` (delivered or cancelled) on the system's behalf and frees its
/// agent; retried a few times when it changes concurrently. `Ok(false)` when it is
/// already final.
fn finish(order_id: &str, to: Status) -> Result<bool, ApiError> {
    for _ in 0..3 {
        let Some(d) = db::delivery_for_order(order_id)? else {
            return Ok(false);
        };
        let from = d.state()?;
        if from.is_final() {
            return Ok(false);
        }
        let now = now_rfc3339();
        let tx = sql::begin()?;
        if db::move_delivery(&tx, &d.id, from, to, None, &now)? != 1 {
            tx.rollback()?;
            continue;
        }
        if let Some(agent) = &d.agent_id {
            db::free_agent(&tx, agent, &now)?;
        }
        tx.commit()?;
        announce_status(&d, from, to, &now);
        return Ok(true);
    }
    Err(ApiError::conflict(format!(
        "the delivery of order {order_id} kept changing"
    )))
}

/// Cancels the order's delivery (if any and not final) and frees its agent, who then
/// takes waiting work.
pub fn cancel_for_order(order_id: &str) -> Result<(), ApiError> {
    if finish(order_id, Status::Cancelled)? {
        dispatch_quietly();
    }
    Ok(())
}

/// `order.cancelled`: remembered (so a late `preparing` event creates nothing), then
/// the delivery is cancelled.
pub fn order_cancelled(order_id: &str) -> Result<(), ApiError> {
    db::mark_cancelled(order_id)?;
    cancel_for_order(order_id)
}

/// `order.status_changed` to `delivered` (an admin finished the order by hand, or the
/// delivery's own step): the delivery is completed too, so the two never disagree and
/// the agent is not left busy.
pub fn order_delivered(order_id: &str) -> Result<(), ApiError> {
    if finish(order_id, Status::Delivered)? {
        dispatch_quietly();
    }
    Ok(())
}

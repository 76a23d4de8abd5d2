//! Deliveries over HTTP: the agent's assignments and steps, tracking, and the admin's
//! list and reassignment.

use kirana_sdk::prelude::*;
use kirana_sdk::sql;

use crate::agents::{caller_profile, refresh_contact};
use crate::db::{self, Delivery};
use crate::dispatch::{self, announce_assigned, announce_status};
use crate::peers;
use crate::rules::{self, AgentStatus, Status};

/// `GET /api/v1/delivery/assignments`: the caller's active deliveries.
pub fn assignments(req: &Request) -> Result<Response, ApiError> {
    let agent = caller_profile(req)?;
    let items = db::active_for_agent(&agent.id)?;
    Ok(Response::ok(&json!({ "items": items })))
}

fn load(id: &str) -> Result<Delivery, ApiError> {
    if !rules::plausible_id(id) {
        return Err(ApiError::not_found("delivery"));
    }
    db::delivery(id)?.ok_or_else(|| ApiError::not_found("delivery"))
}

#[derive(Debug, Deserialize)]
struct StepBody {
    status: String,
}

/// `PUT /api/v1/delivery/{id}/status {status}` by the assigned agent (anyone else:
/// 404): assigned → picked_up → in_transit → delivered. `picked_up` and `delivered`
/// move the order too, inside the same transaction: if orders refuses, nothing
/// changes. `delivered` frees the agent, who then takes the oldest waiting delivery.
pub fn step(req: &Request) -> Result<Response, ApiError> {
    let id: String = req.param("id")?;
    let body: StepBody = req.json()?;
    let to = Status::parse_step(body.status.trim())?;
    let agent = caller_profile(req)?;
    let d = load(&id)?;
    if d.agent_id.as_deref() != Some(agent.id.as_str()) {
        return Err(ApiError::not_found("delivery"));
    }
    let from = d.state()?;
    from.check_step(to)?;
    let now = now_rfc3339();
    let tx = sql::begin()?;
    if db::move_delivery(&tx, &d.id, from, to, Some(&agent.id), &now)? != 1 {
        tx.rollback()?;
        return Err(kirana_shop::errors::invalid_transition(
            "the delivery changed meanwhile; read it again",
        )
        .with_details(json!({"from": from.as_str(), "to": to.as_str()})));
    }
    if to == Status::Delivered {
        db::free_agent(&tx, &agent.id, &now)?;
    }
    if let Some(order_status) = to.order_status() {
        // An error drops `tx`: the delivery stays where it was.
        peers::set_order_status(&d.order_id, order_status)?;
    }
    tx.commit()?;
    announce_status(&d, from, to, &now);
    if to == Status::Delivered {
        dispatch::dispatch_quietly();
    }
    Ok(Response::ok(&load(&d.id)?))
}

/// `GET /api/v1/delivery/track/{order_id}` for the order's customer or an admin
/// (anyone else, and unknown orders: 404).
pub fn track(req: &Request) -> Result<Response, ApiError> {
    let order_id: String = req.param("order_id")?;
    let caller = req.user()?;
    if !rules::plausible_id(&order_id) {
        return Err(ApiError::not_found("order"));
    }
    let order = peers::order(&order_id)?.ok_or_else(|| ApiError::not_found("order"))?;
    if caller.role != "admin" && order.user_id != caller.user_id {
        return Err(ApiError::not_found("order"));
    }
    let Some(d) = db::delivery_for_order(&order_id)? else {
        // No delivery before the order is being prepared.
        let status = if order.status == "cancelled" {
            Status::Cancelled.as_str()
        } else {
            Status::Unassigned.as_str()
        };
        return Ok(Response::ok(&json!({
            "order_id": order_id, "delivery_id": null, "status": status,
            "order_status": order.status, "agent": null, "last_location": null,
            "path": [], "estimated_delivery_at": order.estimated_delivery_at,
        })));
    };
    let state = d.state()?;
    let path = db::path(&d.id)?;
    let mut agent = match &d.agent_id {
        Some(a) => db::agent(a)?,
        None => None,
    };
    if let Some(a) = agent.as_mut() {
        refresh_contact(a);
    }
    // While the delivery is under way the agent's latest position; afterwards where
    // its path ended.
    let last_location = match (&agent, state.is_active()) {
        (Some(a), true) => a.last_location.clone(),
        _ => None,
    }
    .or_else(|| path.last().cloned());
    Ok(Response::ok(&json!({
        "order_id": order_id, "delivery_id": d.id, "status": d.status,
        "order_status": order.status,
        "agent": agent.map(|a| json!({"name": a.name, "phone": a.phone})),
        "last_location": last_location, "path": path,
        "estimated_delivery_at": order.estimated_delivery_at,
    })))
}

/// `GET /api/v1/admin/deliveries?status=&page=&page_size=`: newest first.
pub fn list(req: &Request) -> Result<Response, ApiError> {
    let paging = Paging::from_request(req)?;
    let status = match req.query("status") {
        None | Some("") => None,
        Some(s) => Some(Status::parse_filter(s)?),
    };
    let (items, total) = db::list_deliveries(status, paging)?;
    Ok(Response::ok(&Paged::new(items, paging, total)))
}

#[derive(Debug, Deserialize)]
struct ReassignBody {
    agent_id: String,
}

/// `PUT /api/v1/admin/deliveries/{id}/reassign {agent_id}` (an agent profile id):
/// only before pickup (`unassigned` or `assigned`, else 409 invalid_transition); the
/// target must exist (404) and be available (409 conflict). The previous agent is
/// freed and takes waiting work. The current agent again is a no-op.
pub fn reassign(req: &Request) -> Result<Response, ApiError> {
    let id: String = req.param("id")?;
    let body: ReassignBody = req.json()?;
    let target_id = body.agent_id.trim().to_string();
    if target_id.is_empty() {
        return Err(ApiError::invalid_field("agent_id", "is required"));
    }
    let d = load(&id)?;
    let from = d.state()?;
    if !matches!(from, Status::Unassigned | Status::Assigned) {
        return Err(kirana_shop::errors::invalid_transition(format!(
            "a delivery that is {} cannot be reassigned",
            from.as_str()
        ))
        .with_details(json!({"from": from.as_str(), "to": Status::Assigned.as_str()})));
    }
    let target = if rules::plausible_id(&target_id) {
        db::agent(&target_id)?
    } else {
        None
    }
    .ok_or_else(|| ApiError::not_found("agent"))?;
    if d.agent_id.as_deref() == Some(target.id.as_str()) {
        return Ok(Response::ok(&d));
    }
    let unavailable = || ApiError::conflict(format!("agent {} is not available", target.id));
    if target.status() != Some(AgentStatus::Available) {
        return Err(unavailable());
    }
    let now = now_rfc3339();
    let tx = sql::begin()?;
    let claimed = db::set_agent_status(
        Some(&tx),
        &target.id,
        AgentStatus::Available,
        AgentStatus::Busy,
        &now,
    )?;
    if claimed != 1 {
        tx.rollback()?;
        return Err(unavailable());
    }
    let previous = d.agent_id.as_deref();
    if db::assign_delivery(&tx, &d.id, from, previous, &target.id, &now)? != 1 {
        tx.rollback()?;
        return Err(kirana_shop::errors::invalid_transition(
            "the delivery changed meanwhile; read it again",
        ));
    }
    if let Some(old) = previous {
        db::free_agent(&tx, old, &now)?;
    }
    // An error drops `tx`: nothing changes.
    peers::set_order_agent(&d.order_id, &target.user_id)?;
    tx.commit()?;
    announce_assigned(&d, &target, &now);
    if previous.is_some() {
        dispatch::dispatch_quietly();
    }
    Ok(Response::ok(&load(&d.id)?))
}

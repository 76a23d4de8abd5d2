//! Routes only other plugins reach (payments, delivery, catalog) through
//! `services::call`. Their shapes are a contract: see docs/plugins/orders.md.

use kirana_sdk::prelude::*;
// The bodies and answers are the contract peers call with, defined once.
use kirana_shop::orders::{AgentRequest, OrderRef, PaymentStatusRequest};

use crate::handlers::target_status;
use crate::lifecycle::{load, set_agent, set_payment_status, transition};
use crate::rules::{Status, PAYMENT_STATUSES};

/// `GET /internal/orders/{id}` → the order.
pub fn get(req: &Request) -> Result<Response, ApiError> {
    let id: String = req.param("id")?;
    Ok(Response::ok(&load(&id)?))
}

/// `POST /internal/orders/{id}/status {status}`: the same state machine as the admin
/// PATCH (delivery moves orders to `out_for_delivery` and `delivered`).
pub fn status(req: &Request) -> Result<Response, ApiError> {
    let id: String = req.param("id")?;
    let to = target_status(req)?;
    let order = load(&id)?;
    let reason = (to == Status::Cancelled).then_some("cancelled by the system");
    Ok(Response::ok(&transition(&order, to, reason)?))
}

/// `GET /internal/orders/by-hold/{hold_id}` → `{id, status}` of the order holding that
/// catalog stock hold, or 404. The catalog asks it when a hold expires: an order that
/// exists (in any status) keeps its stock.
pub fn by_hold(req: &Request) -> Result<Response, ApiError> {
    let hold_id: String = req.param("hold_id")?;
    let (id, status) =
        crate::db::find_by_hold(&hold_id)?.ok_or_else(|| ApiError::not_found("order"))?;
    Ok(Response::ok(&OrderRef { id, status }))
}

/// `POST /internal/orders/{id}/payment-status {payment_status: "paid"|"refunded"}`.
pub fn payment_status(req: &Request) -> Result<Response, ApiError> {
    let id: String = req.param("id")?;
    let body: PaymentStatusRequest = req.json()?;
    let to = body.payment_status.trim();
    if !PAYMENT_STATUSES.contains(&to) || !matches!(to, "paid" | "refunded") {
        return Err(ApiError::invalid_field(
            "payment_status",
            "must be paid or refunded",
        ));
    }
    let order = load(&id)?;
    Ok(Response::ok(&set_payment_status(&order, to)?))
}

/// `PUT /internal/orders/{id}/agent {agent_user_id: string|null}`: who may read it.
pub fn agent(req: &Request) -> Result<Response, ApiError> {
    let id: String = req.param("id")?;
    let body: AgentRequest = req.json()?;
    let agent = body
        .agent_user_id
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty());
    Ok(Response::ok(&set_agent(&id, agent.as_deref())?))
}

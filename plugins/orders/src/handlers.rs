//! The public routes: listing, reading, cancelling and the admin status change.

use kirana_sdk::prelude::*;

use crate::db::{self, Order};
use crate::lifecycle::{load, transition};
use crate::rules::Status;

/// Longest cancellation `reason` accepted.
const MAX_REASON: usize = 500;

/// The `status` filter of a listing; unknown is `400 validation_failed`.
fn status_filter(req: &Request) -> Result<Option<Status>, ApiError> {
    match req.query("status") {
        None | Some("") => Ok(None),
        Some(s) => Status::parse_field("status", s).map(Some),
    }
}

fn page(req: &Request, user_id: Option<&str>) -> Result<Response, ApiError> {
    let paging = Paging::from_request(req)?;
    let status = status_filter(req)?;
    let (items, total) = db::list(user_id, status.map(Status::as_str), paging)?;
    Ok(Response::ok(&Paged::new(items, paging, total)))
}

/// `GET /api/v1/orders`: the caller's own orders, newest first.
pub fn list_own(req: &Request) -> Result<Response, ApiError> {
    let user_id = req.user()?.user_id.clone();
    page(req, Some(&user_id))
}

/// `GET /api/v1/admin/orders`: every order, newest first.
pub fn list_all(req: &Request) -> Result<Response, ApiError> {
    page(req, None)
}

/// The order if the caller may see it: its customer, an admin, or the delivery agent
/// assigned to it. Anyone else gets the same 404 as for an unknown id.
fn visible(req: &Request) -> Result<Order, ApiError> {
    let id: String = req.param("id")?;
    let caller = req.user()?;
    let order = load(&id)?;
    let allowed = match caller.role.as_str() {
        "admin" => true,
        "customer" => order.user_id == caller.user_id,
        "delivery_agent" => order.agent_user_id.as_deref() == Some(caller.user_id.as_str()),
        _ => false,
    };
    if allowed {
        Ok(order)
    } else {
        Err(ApiError::not_found("order"))
    }
}

/// `GET /api/v1/orders/{id}`.
pub fn get(req: &Request) -> Result<Response, ApiError> {
    Ok(Response::ok(&visible(req)?))
}

#[derive(Debug, Default, Deserialize)]
struct CancelBody {
    #[serde(default)]
    reason: Option<String>,
}

/// The optional `{reason?}` body: empty is fine, otherwise it must be JSON.
fn cancel_body(req: &Request) -> Result<CancelBody, ApiError> {
    if req.body().iter().all(u8::is_ascii_whitespace) {
        return Ok(CancelBody::default());
    }
    let mut body: CancelBody = req.json()?;
    body.reason = body
        .reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if let Some(r) = &body.reason {
        Validator::new()
            .length("reason", r, 1, MAX_REASON)
            .finish()?;
    }
    Ok(body)
}

/// `POST /api/v1/orders/{id}/cancel`: the customer (own orders) or an admin. The stock
/// goes back; a paid order's `order.cancelled` event carries `payment_status: "paid"`
/// so the payments plugin refunds it in full.
pub fn cancel(req: &Request) -> Result<Response, ApiError> {
    let order = visible(req)?;
    let body = cancel_body(req)?;
    let default_reason = if req.has_role("admin") {
        "cancelled by admin"
    } else {
        "cancelled by customer"
    };
    let reason = body.reason.as_deref().unwrap_or(default_reason);
    Ok(Response::ok(&transition(
        &order,
        Status::Cancelled,
        Some(reason),
    )?))
}

#[derive(Debug, Deserialize)]
pub struct StatusBody {
    pub status: String,
}

/// A `{status}` body's target status (unknown → 400).
pub fn target_status(req: &Request) -> Result<Status, ApiError> {
    let body: StatusBody = req.json()?;
    Status::parse_field("status", body.status.trim())
}

/// `PATCH /api/v1/orders/{id}/status` (admin): one step of the state machine.
pub fn set_status(req: &Request) -> Result<Response, ApiError> {
    let id: String = req.param("id")?;
    let to = target_status(req)?;
    let order = load(&id)?;
    let reason = (to == Status::Cancelled).then_some("cancelled by admin");
    Ok(Response::ok(&transition(&order, to, reason)?))
}

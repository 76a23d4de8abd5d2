//! Calls to the orders plugin's internal routes (docs/plugins/orders.md).

use kirana_sdk::prelude::*;
use kirana_sdk::services;
use kirana_sdk::Method;

use crate::rules::{plausible_id, OrderState};

/// The fields of an order payments uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: String,
    pub user_id: String,
    pub status: String,
    pub payment_method: String,
    pub payment_status: String,
    pub total: i64,
}

impl Order {
    pub fn state(&self) -> OrderState {
        OrderState {
            user_id: self.user_id.clone(),
            status: self.status.clone(),
            payment_method: self.payment_method.clone(),
            payment_status: self.payment_status.clone(),
        }
    }
}

/// `GET /internal/orders/{id}`: `None` when there is no such order.
pub fn get(order_id: &str) -> Result<Option<Order>, ApiError> {
    if !plausible_id(order_id) {
        return Ok(None);
    }
    let reply = services::get("orders", &format!("/internal/orders/{order_id}"), "")?;
    match reply.status {
        200 => reply.json().map(Some),
        404 => Ok(None),
        _ => Err(reply.into_error()),
    }
}

/// The order, visible to `caller`: its customer or an admin; anyone else gets the
/// same 404 as for an unknown order.
pub fn visible(order_id: &str, req: &Request) -> Result<Order, ApiError> {
    let caller = req.user()?;
    let order = get(order_id)?.ok_or_else(|| ApiError::not_found("order"))?;
    if caller.role == "admin" || order.user_id == caller.user_id {
        Ok(order)
    } else {
        Err(ApiError::not_found("order"))
    }
}

/// How orders answered a payment-status change.
pub enum Answer {
    Accepted(Order),
    /// The order refused (`409`: cancelled, COD, or not in the right payment state; or
    /// `404`): the message says why.
    Refused(String),
}

/// `POST /internal/orders/{id}/payment-status {payment_status}`.
pub fn set_payment_status(order_id: &str, to: &str) -> Result<Answer, ApiError> {
    let reply = services::call(
        "orders",
        Method::Post,
        &format!("/internal/orders/{order_id}/payment-status"),
        "",
        Some(&json!({ "payment_status": to })),
    )?;
    match reply.status {
        200 => reply.json().map(Answer::Accepted),
        404 | 409 => Ok(Answer::Refused(reply.into_error().message)),
        _ => Err(reply.into_error()),
    }
}

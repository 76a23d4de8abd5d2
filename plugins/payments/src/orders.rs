//! The orders plugin's internal routes, through `kirana_shop::orders` (the contract in
//! docs/plugins/orders.md).

use kirana_sdk::prelude::*;
use kirana_shop::roles;

use crate::rules::OrderState;

/// The fields of an order payments uses, as orders answers them.
pub use kirana_shop::orders::Order;

/// The order's payment state, for the rules.
pub fn state(order: &Order) -> OrderState {
    OrderState {
        user_id: order.user_id.clone(),
        status: order.status.clone(),
        payment_method: order.payment_method.clone(),
        payment_status: order.payment_status.clone(),
    }
}

/// `GET /internal/orders/{id}`: `None` when there is no such order.
pub fn get(order_id: &str) -> Result<Option<Order>, ApiError> {
    kirana_shop::orders::get(order_id)
}

/// The order, visible to `caller`: its customer or an admin; anyone else gets the
/// same 404 as for an unknown order.
pub fn visible(order_id: &str, req: &Request) -> Result<Order, ApiError> {
    let caller = req.user()?;
    let order = get(order_id)?.ok_or_else(|| ApiError::not_found("order"))?;
    if caller.role == roles::ADMIN || order.user_id == caller.user_id {
        Ok(order)
    } else {
        Err(ApiError::not_found("order"))
    }
}

/// How orders answered a payment-status change.
pub enum Answer {
    Accepted(Box<Order>),
    /// The order refused (`409`: cancelled, COD, or not in the right payment state; or
    /// `404`): the message says why.
    Refused(String),
}

/// `POST /internal/orders/{id}/payment-status {payment_status}`.
pub fn set_payment_status(order_id: &str, to: &str) -> Result<Answer, ApiError> {
    match kirana_shop::orders::set_payment_status(order_id, to) {
        Ok(order) => Ok(Answer::Accepted(Box::new(order))),
        Err(e) if matches!(e.status, 404 | 409) => Ok(Answer::Refused(e.message)),
        Err(e) => Err(e),
    }
}

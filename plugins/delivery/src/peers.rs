//! Calls to auth and orders through their internal routes, with the typed clients of
//! `kirana_shop` (contracts in docs/plugins/auth.md and docs/plugins/orders.md).

use kirana_sdk::prelude::*;

/// A user as auth answers it; delivery reads `name`, `phone` and `role`.
pub use kirana_shop::auth::User;
/// An order as orders answers it; delivery reads its customer, status, address, lines
/// and estimated time.
pub use kirana_shop::orders::Order;

/// `GET /internal/users/{id}`; `None` when auth does not know the user.
pub fn user(id: &str) -> Result<Option<User>, ApiError> {
    kirana_shop::auth::user(id)
}

/// `GET /internal/orders/{id}`; `None` when orders does not know it.
pub fn order(id: &str) -> Result<Option<Order>, ApiError> {
    kirana_shop::orders::get(id)
}

/// Moves the order to `status`. Safe to repeat: when orders refuses the transition
/// because the order already has that status (an earlier attempt succeeded there but
/// not here), it counts as done.
pub fn set_order_status(order_id: &str, status: &str) -> Result<(), ApiError> {
    match kirana_shop::orders::set_status(order_id, status) {
        Ok(_) => Ok(()),
        Err(e) if e.status == 409 => match order(order_id)? {
            Some(o) if o.status == status => Ok(()),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Lets `agent_user_id` read the order (`PUT /internal/orders/{id}/agent`).
pub fn set_order_agent(order_id: &str, agent_user_id: &str) -> Result<(), ApiError> {
    kirana_shop::orders::set_agent(order_id, Some(agent_user_id)).map(|_| ())
}

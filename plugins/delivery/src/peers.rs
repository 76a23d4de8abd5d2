//! Calls to auth and orders through their internal routes (contracts in
//! docs/plugins/auth.md and docs/plugins/orders.md).

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::Value as Json;
use kirana_sdk::services;
use kirana_sdk::Method;

/// What delivery needs of a user.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
    pub role: String,
}

/// `GET /internal/users/{id}`; `None` when auth does not know the user.
pub fn user(id: &str) -> Result<Option<User>, ApiError> {
    let reply = services::get("auth", &format!("/internal/users/{id}"), "")?;
    match reply.status {
        404 => Ok(None),
        _ if reply.is_success() => reply.json().map(Some),
        _ => Err(reply.into_error()),
    }
}

/// What delivery needs of an order.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub user_id: String,
    pub status: String,
    #[serde(default)]
    pub address: Json,
    #[serde(default)]
    pub items: Json,
    #[serde(default)]
    pub estimated_delivery_at: Option<String>,
}

/// `GET /internal/orders/{id}`; `None` when orders does not know it.
pub fn order(id: &str) -> Result<Option<Order>, ApiError> {
    let reply = services::get("orders", &format!("/internal/orders/{id}"), "")?;
    match reply.status {
        404 => Ok(None),
        _ if reply.is_success() => reply.json().map(Some),
        _ => Err(reply.into_error()),
    }
}

/// Moves the order to `status`. Safe to repeat: when orders refuses the transition
/// because the order already has that status (an earlier attempt succeeded there but
/// not here), it counts as done.
pub fn set_order_status(order_id: &str, status: &str) -> Result<(), ApiError> {
    let reply = services::call(
        "orders",
        Method::Post,
        &format!("/internal/orders/{order_id}/status"),
        "",
        Some(&json!({ "status": status })),
    )?;
    if reply.is_success() {
        return Ok(());
    }
    if reply.status == 409 {
        if let Some(o) = order(order_id)? {
            if o.status == status {
                return Ok(());
            }
        }
    }
    Err(reply.into_error())
}

/// Lets `agent_user_id` read the order (`PUT /internal/orders/{id}/agent`).
pub fn set_order_agent(order_id: &str, agent_user_id: &str) -> Result<(), ApiError> {
    let reply = services::call(
        "orders",
        Method::Put,
        &format!("/internal/orders/{order_id}/agent"),
        "",
        Some(&json!({ "agent_user_id": agent_user_id })),
    )?;
    if reply.is_success() {
        Ok(())
    } else {
        Err(reply.into_error())
    }
}

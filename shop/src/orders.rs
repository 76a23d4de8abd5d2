//! The `orders` plugin's internal routes (docs/plugins/orders.md, "Internal routes"):
//! reads for payments, delivery and the catalog, and the changes payments and delivery
//! make.

use kirana_sdk::serde_json::Value as Json;
use kirana_sdk::{ApiError, Method};
use serde::{Deserialize, Serialize};

use crate::call::{expect, expect_found, send};

/// The plugin these routes belong to.
pub const PLUGIN: &str = "orders";

/// An order as its peers read it: the fields payments and delivery use (orders sends
/// the whole order; the rest is ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub user_id: String,
    pub status: String,
    pub payment_method: String,
    pub payment_status: String,
    /// What the customer pays, in paise.
    pub total: i64,
    /// The address snapshot taken at checkout.
    #[serde(default)]
    pub address: Json,
    /// The lines as ordered (`product_id`, `name`, `unit`, `unit_price`, `quantity`,
    /// `line_total`).
    #[serde(default)]
    pub items: Json,
    #[serde(default)]
    pub estimated_delivery_at: Option<String>,
}

/// The order placed with a catalog stock hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRef {
    pub id: String,
    pub status: String,
}

/// `POST /internal/orders/{id}/status` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRequest {
    pub status: String,
}

/// `POST /internal/orders/{id}/payment-status` body: `paid` or `refunded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentStatusRequest {
    pub payment_status: String,
}

/// `PUT /internal/orders/{id}/agent` body: the agent who may read the order, or
/// `null` for none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRequest {
    #[serde(default)]
    pub agent_user_id: Option<String>,
}

/// `GET /internal/orders/{id}`: `None` for an unknown order.
pub fn get(order_id: &str) -> Result<Option<Order>, ApiError> {
    if !crate::plausible_id(order_id) {
        return Ok(None);
    }
    let reply = send::<()>(
        PLUGIN,
        Method::Get,
        &format!("/internal/orders/{order_id}"),
        None,
    )?;
    expect_found(reply, 200)
}

/// `GET /internal/orders/by-hold/{hold_id}`: the order placed with that stock hold (in
/// any status), `None` when there is none.
pub fn by_hold(hold_id: &str) -> Result<Option<OrderRef>, ApiError> {
    if !crate::plausible_id(hold_id) {
        return Ok(None);
    }
    let path = format!("/internal/orders/by-hold/{hold_id}");
    let reply = send::<()>(PLUGIN, Method::Get, &path, None)?;
    expect_found(reply, 200)
}

/// Moves the order to `status` through the same state machine as an admin's change:
/// `409 invalid_transition` when it may not, `404` for an unknown order.
pub fn set_status(order_id: &str, status: &str) -> Result<Order, ApiError> {
    let body = StatusRequest {
        status: status.to_string(),
    };
    change(Method::Post, order_id, "status", &body)
}

/// Marks the order `paid` or `refunded`; `409` when it is cancelled, COD or not in the
/// right payment state, `404` for an unknown order.
pub fn set_payment_status(order_id: &str, payment_status: &str) -> Result<Order, ApiError> {
    let body = PaymentStatusRequest {
        payment_status: payment_status.to_string(),
    };
    change(Method::Post, order_id, "payment-status", &body)
}

/// Lets `agent_user_id` read the order (`None` lets no agent).
pub fn set_agent(order_id: &str, agent_user_id: Option<&str>) -> Result<Order, ApiError> {
    let body = AgentRequest {
        agent_user_id: agent_user_id.map(str::to_string),
    };
    change(Method::Put, order_id, "agent", &body)
}

fn change<B: Serialize>(
    method: Method,
    order_id: &str,
    what: &str,
    body: &B,
) -> Result<Order, ApiError> {
    if !crate::plausible_id(order_id) {
        return Err(ApiError::not_found("order"));
    }
    let path = format!("/internal/orders/{order_id}/{what}");
    expect(send(PLUGIN, method, &path, Some(body))?, 200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{round_trip, subset};

    /// An order as docs/api.md shows it.
    const ORDER: &str = r#"{"id": "ord_1", "user_id": "usr_1", "status": "confirmed",
        "items": [{"product_id": "prd_1", "name": "Atta", "unit": "5 kg", "unit_price": 28900,
                   "quantity": 2, "line_total": 57800}],
        "subtotal": 57800, "delivery_fee": 0, "discount": 0, "coupon_code": null,
        "total": 57800, "currency": "INR", "payment_method": "online",
        "payment_status": "paid",
        "address": {"id": "adr_1", "label": "Home", "line1": "12 MG Road", "line2": null,
                    "city": "Bengaluru", "pincode": "560001", "lat": 12.97, "lon": 77.59},
        "notes": null, "agent_user_id": null, "cancel_reason": null,
        "status_history": [{"status": "confirmed", "at": "2026-12-06T10:00:00Z"}],
        "estimated_delivery_at": "2026-12-06T10:20:00Z", "delivered_at": null,
        "created_at": "2026-12-06T10:00:00Z", "updated_at": "2026-12-06T10:00:00Z"}"#;

    #[test]
    fn order_shapes() {
        let o: Order = subset(ORDER);
        assert_eq!((o.total, o.payment_status.as_str()), (57800, "paid"));
        assert_eq!(o.address["city"], "Bengaluru");
        round_trip::<OrderRef>(r#"{"id": "ord_1", "status": "delivered"}"#);
        round_trip::<StatusRequest>(r#"{"status": "out_for_delivery"}"#);
        round_trip::<PaymentStatusRequest>(r#"{"payment_status": "refunded"}"#);
        round_trip::<AgentRequest>(r#"{"agent_user_id": "usr_9"}"#);
        round_trip::<AgentRequest>(r#"{"agent_user_id": null}"#);
    }

    #[test]
    fn implausible_ids_make_no_call() {
        assert_eq!(get("../x").ok(), Some(None));
        assert_eq!(by_hold("").ok(), Some(None));
        let e = set_status("a?b", "delivered").unwrap_err();
        assert_eq!((e.status, e.code), (404, "not_found"));
    }
}

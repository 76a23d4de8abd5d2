//! Event payloads and their dispatch to the read models. A payload that cannot be used
//! is logged and acknowledged (it would never succeed); a database failure is returned
//! so the host retries the delivery.

use kirana_sdk::prelude::*;
use kirana_sdk::{cap_error_message, log};

use crate::rules::{self, Created};
use crate::store::{self, Line};

/// The topics analytics subscribes to.
pub const TOPICS: [&str; 8] = [
    "user.created",
    "order.created",
    "order.status_changed",
    "order.cancelled",
    "payment.captured",
    "payment.refunded",
    "delivery.assigned",
    "delivery.status_changed",
];

#[derive(Deserialize)]
struct UserCreated {
    user_id: String,
    role: String,
    created_at: String,
}

#[derive(Deserialize)]
struct OrderLine {
    product_id: String,
    #[serde(default)]
    name: String,
    quantity: i64,
    #[serde(default)]
    unit_price: Option<i64>,
    #[serde(default)]
    line_total: Option<i64>,
}

#[derive(Deserialize)]
struct OrderCreated {
    order_id: String,
    user_id: String,
    status: String,
    payment_method: String,
    #[serde(default)]
    payment_status: String,
    total: i64,
    #[serde(default)]
    items: Vec<OrderLine>,
    created_at: String,
}

#[derive(Deserialize)]
struct OrderStatusChanged {
    order_id: String,
    #[serde(default)]
    user_id: Option<String>,
    to: String,
}

#[derive(Deserialize)]
struct OrderRef {
    order_id: String,
    #[serde(default)]
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct PaymentRefunded {
    payment_id: String,
    order_id: String,
    refunded_amount: i64,
    #[serde(default)]
    full: bool,
}

#[derive(Deserialize)]
struct DeliveryAssigned {
    delivery_id: String,
    order_id: String,
    #[serde(default)]
    at: Option<String>,
}

#[derive(Deserialize)]
struct DeliveryStatusChanged {
    delivery_id: String,
    order_id: String,
    to: String,
    #[serde(default)]
    at: Option<String>,
}

/// Why an event was not applied.
enum Skip {
    /// Unusable payload: acknowledge.
    Malformed(String),
    /// A database failure: retry.
    Transient(String),
}

impl From<kirana_sdk::CapError> for Skip {
    fn from(e: kirana_sdk::CapError) -> Self {
        Skip::Transient(cap_error_message(&e))
    }
}

fn parse<T: serde::de::DeserializeOwned>(event: &Event) -> Result<T, Skip> {
    kirana_sdk::events::payload::<T>(event).map_err(Skip::Malformed)
}

fn malformed<T>(why: impl Into<String>) -> Result<T, Skip> {
    Err(Skip::Malformed(why.into()))
}

/// Applies one event; `Err` only for failures worth retrying.
pub fn handle(event: &Event) -> Result<(), String> {
    match apply(event) {
        Ok(()) => Ok(()),
        Err(Skip::Malformed(why)) => {
            log::warn(
                "analytics ignored an unusable event",
                &[
                    ("topic", &event.topic),
                    ("event_id", &event.id),
                    ("why", &why),
                ],
            );
            Ok(())
        }
        Err(Skip::Transient(why)) => Err(why),
    }
}

fn apply(event: &Event) -> Result<(), Skip> {
    // Every payload names its subject; an empty id is as unusable as a missing one.
    let payload: kirana_sdk::serde_json::Value = parse(event)?;
    // (`user_id` matters only where it names the subject.)
    let user_keyed = matches!(event.topic.as_str(), "user.created" | "order.created");
    for key in ["order_id", "delivery_id", "payment_id", "user_id"] {
        let empty = payload.get(key).and_then(|v| v.as_str()) == Some("");
        if empty && (key != "user_id" || user_keyed) {
            return malformed(format!("empty {key}"));
        }
    }
    match event.topic.as_str() {
        "user.created" => {
            let p: UserCreated = parse(event)?;
            store::user_created(&p.user_id, &p.role, &p.created_at)?;
        }
        "order.created" => {
            let p: OrderCreated = parse(event)?;
            if p.total < 0 {
                return malformed("negative total");
            }
            if rules::utc_day_of(&p.created_at).is_none() {
                return malformed("created_at is not RFC 3339");
            }
            let lines: Vec<Line> = p
                .items
                .iter()
                .filter(|l| !l.product_id.is_empty() && l.quantity > 0)
                .map(|l| Line {
                    product_id: l.product_id.clone(),
                    name: l.name.clone(),
                    quantity: l.quantity,
                    line_total: l
                        .line_total
                        .or_else(|| l.unit_price.map(|u| u.saturating_mul(l.quantity)))
                        .unwrap_or(0),
                })
                .collect();
            let c = Created {
                user_id: &p.user_id,
                status: &p.status,
                payment_method: &p.payment_method,
                payment_status: &p.payment_status,
                total: p.total,
                created_at: &p.created_at,
            };
            store::order_created(&p.order_id, &c, &lines)?;
        }
        "order.status_changed" => {
            let p: OrderStatusChanged = parse(event)?;
            if rules::order_status_rank(&p.to).is_none() {
                return malformed(format!("unknown order status {}", p.to));
            }
            store::order_status(&p.order_id, p.user_id.as_deref(), &p.to)?;
        }
        "order.cancelled" => {
            let p: OrderRef = parse(event)?;
            store::order_status(&p.order_id, p.user_id.as_deref(), "cancelled")?;
        }
        "payment.captured" => {
            let p: OrderRef = parse(event)?;
            store::payment_captured(&p.order_id, p.user_id.as_deref())?;
        }
        "payment.refunded" => {
            let p: PaymentRefunded = parse(event)?;
            if p.refunded_amount < 0 {
                return malformed("negative refunded_amount");
            }
            store::payment_refunded(&p.order_id, &p.payment_id, p.refunded_amount, p.full)?;
        }
        "delivery.assigned" => {
            let p: DeliveryAssigned = parse(event)?;
            delivery(&p.delivery_id, &p.order_id, "assigned", p.at.as_deref())?;
        }
        "delivery.status_changed" => {
            let p: DeliveryStatusChanged = parse(event)?;
            delivery(&p.delivery_id, &p.order_id, &p.to, p.at.as_deref())?;
        }
        // Not subscribed to anything else; acknowledge rather than retry forever.
        _ => {}
    }
    Ok(())
}

fn delivery(id: &str, order_id: &str, status: &str, at: Option<&str>) -> Result<(), Skip> {
    let Some(rank) = rules::delivery_status_rank(status) else {
        return malformed(format!("unknown delivery status {status}"));
    };
    // Without a usable `at` the event ranks by status alone.
    let ts = at.and_then(rules::unix_of_rfc3339).unwrap_or(0);
    store::delivery_status(id, order_id, status, rank, ts)?;
    Ok(())
}

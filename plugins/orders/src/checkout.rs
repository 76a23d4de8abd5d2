//! `POST /api/v1/orders`: an order from the caller's cart, with `Idempotency-Key`.
//!
//! Steps: validate → read the cart → read the address snapshot → take the stock under a
//! catalog hold (all or nothing; the hold expires unless its order confirms it) →
//! redeem the cart's coupon, if any, in promotions under the same hold id (held too,
//! and expiring the same way; a refusal gives the stock hold back) → write the order
//! with its hold id, its `order.created` event and (online) its payment timeout in one
//! transaction (giving the hold and the redemption back if that fails) → empty the
//! cart. Nothing changes anywhere when a step before the hold fails, and a crash after
//! it leaks nothing: each hold's expiry asks orders whether the order exists.

use std::time::Duration;

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::Value as Json;
use kirana_sdk::sql;
use kirana_shop::cart::Cart;
use kirana_shop::catalog::HoldLine;
// Promotions' answer to a redemption: the code as it spells it and the discount.
use kirana_shop::promotions::Redemption as Redeemed;

use crate::db::{self, HistoryEntry, Item, Order};
use crate::lifecycle::{release_hold, release_redemption};
use crate::rules::{initial_state, totals, OrdersConfig, PAYMENT_METHODS};

/// Longest `notes` accepted.
const MAX_NOTES: usize = 500;

#[derive(Debug, Deserialize)]
struct CheckoutBody {
    address_id: String,
    payment_method: String,
    #[serde(default)]
    notes: Option<String>,
}

/// The handler: with an `Idempotency-Key`, the first answer is stored and replayed.
pub fn create(req: &Request) -> Result<Response, ApiError> {
    let window = Duration::from_secs(OrdersConfig::load().idempotency_secs);
    kirana_sdk::idempotency::with_key(req, window, |req| {
        let user_id = req.user()?.user_id.clone();
        checkout(req, &user_id)
    })
}

/// Validates the body: every invalid field at once.
fn parse_body(req: &Request) -> Result<CheckoutBody, ApiError> {
    let mut body: CheckoutBody = req.json()?;
    body.address_id = body.address_id.trim().to_string();
    body.notes = body
        .notes
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let mut v = Validator::new();
    v.check(!body.address_id.is_empty(), "address_id", "is required");
    v.check(
        PAYMENT_METHODS.contains(&body.payment_method.as_str()),
        "payment_method",
        "must be cod or online",
    );
    if let Some(n) = &body.notes {
        v.length("notes", n, 0, MAX_NOTES);
    }
    v.finish()?;
    Ok(body)
}

fn read_cart(user_id: &str) -> Result<Cart, ApiError> {
    let cart = kirana_shop::cart::get(user_id)?;
    if cart.items.is_empty() {
        return Err(kirana_shop::errors::cart_empty());
    }
    Ok(cart)
}

/// The address snapshot stored with the order; another user's address is a 404.
fn read_address(user_id: &str, address_id: &str) -> Result<Json, ApiError> {
    let plausible = address_id.len() <= 128
        && address_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !plausible {
        return Err(ApiError::not_found("address"));
    }
    let a = kirana_shop::auth::address(user_id, address_id)?
        .ok_or_else(|| ApiError::not_found("address"))?;
    Ok(json!({
        "id": a.id, "label": a.label, "line1": a.line1, "line2": a.line2,
        "city": a.city, "pincode": a.pincode, "lat": a.lat, "lon": a.lon,
    }))
}

/// Takes the cart's stock under a catalog hold: its id and the priced lines.
fn hold(cart: &Cart) -> Result<(String, Vec<Item>), ApiError> {
    let lines = cart
        .items
        .iter()
        .map(|l| HoldLine {
            product_id: l.product_id.clone(),
            quantity: l.quantity,
        })
        .collect();
    let hold = kirana_shop::catalog::hold(lines)?;
    let items = hold
        .items
        .into_iter()
        .map(|l| Item {
            line_total: l.unit_price * l.quantity,
            product_id: l.product_id,
            name: l.name,
            unit: l.unit,
            unit_price: l.unit_price,
            quantity: l.quantity,
        })
        .collect();
    Ok((hold.hold_id, items))
}

/// Gives back what a checkout took when it stops before its order exists: the stock
/// hold and, when one may exist, the coupon redemption. Best effort: each expires on its
/// own and finds no order, so a failure here is logged, not returned.
fn give_back(hold_id: &str, redemption: bool) {
    if let Err(e) = release_hold(hold_id) {
        kirana_sdk::log::warn(
            &format!("giving stock hold {hold_id} back failed ({e}); its expiry will"),
            &[],
        );
    }
    if redemption {
        if let Err(e) = release_redemption(hold_id) {
            kirana_sdk::log::warn(
                &format!(
                    "giving the coupon redemption {hold_id} back failed ({e}); its expiry will"
                ),
                &[],
            );
        }
    }
}

/// Redeems `code` for this order in promotions, under the stock hold's id (one id ties
/// the order, its stock and its coupon together; promotions' expiry asks orders about
/// it like the catalog's). On any refusal the stock hold goes back at once and nothing
/// is left: a coupon used up meanwhile (in total or for this customer) is promotions'
/// `409 conflict`; one that no longer applies (expired, not started, deactivated, the
/// subtotal now below its minimum) is `400 validation_failed` on `code`; promotions
/// unreachable is its 503/504.
fn redeem(code: &str, user_id: &str, subtotal: i64, hold_id: &str) -> Result<Redeemed, ApiError> {
    match kirana_shop::promotions::redeem(code, user_id, subtotal, hold_id) {
        Ok(r) => Ok(r),
        // Promotions refused: it took nothing.
        Err(mut e) if e.status == 409 => {
            give_back(hold_id, false);
            if let Some(details) = e.details.as_object_mut() {
                details.insert("code".to_string(), json!(code));
            }
            Err(e)
        }
        Err(e) if e.status == 404 => {
            give_back(hold_id, false);
            Err(ApiError::invalid_field(
                "code",
                format!("coupon {code} no longer exists or is inactive; remove it from the cart"),
            ))
        }
        Err(e) if e.status == 400 => {
            give_back(hold_id, false);
            Err(e)
        }
        // Unreachable, slow, failing or an unexpected answer: a timeout may have
        // redeemed it all the same, so that goes back too.
        Err(e) => {
            give_back(hold_id, true);
            Err(e)
        }
    }
}

/// Builds the order value (not yet stored).
fn build(
    user_id: &str,
    body: CheckoutBody,
    address: Json,
    (hold_id, items): (String, Vec<Item>),
    coupon: Option<Redeemed>,
    config: &OrdersConfig,
) -> Order {
    let now = kirana_sdk::now();
    let created_at = kirana_sdk::rfc3339(now);
    let eta = now + Duration::from_secs(u64::try_from(config.eta_minutes).unwrap_or(20) * 60);
    let subtotal: i64 = items.iter().map(|i| i.line_total).sum();
    let delivery_fee = config.fee_for(subtotal);
    let (discount, total) = totals(
        subtotal,
        delivery_fee,
        coupon.as_ref().map_or(0, |c| c.discount),
    );
    let (status, payment_status) = initial_state(&body.payment_method);
    Order {
        id: new_id("ord"),
        user_id: user_id.to_string(),
        status: status.as_str().to_string(),
        items,
        subtotal,
        delivery_fee,
        discount,
        coupon_code: coupon.map(|c| c.code),
        total,
        currency: "INR".to_string(),
        payment_method: body.payment_method,
        payment_status: payment_status.to_string(),
        address,
        notes: body.notes,
        agent_user_id: None,
        cancel_reason: None,
        updated_at: created_at.clone(),
        estimated_delivery_at: kirana_sdk::rfc3339(eta),
        delivered_at: None,
        status_history: vec![HistoryEntry {
            status: status.as_str().to_string(),
            at: created_at.clone(),
        }],
        created_at,
        hold_id: Some(hold_id),
    }
}

/// Writes the order, its `order.created` event and (online) its payment timeout in one
/// transaction: the events exist exactly when the order does. On failure the hold goes
/// back to the catalog, and the redemption to promotions, at once (best effort: their
/// expiries find no order and release them anyway).
fn store(order: &Order, config: &OrdersConfig) -> Result<(), ApiError> {
    let written = sql::begin().and_then(|tx| {
        db::insert(&tx, order)?;
        kirana_sdk::events::publish("order.created", &created_event(order))?;
        if order.payment_status == "awaiting" {
            kirana_sdk::events::schedule(
                crate::PAYMENT_TIMEOUT,
                &json!({"order_id": order.id}),
                Duration::from_secs(config.payment_timeout_secs),
            )?;
        }
        tx.commit()
    });
    if let Err(e) = written {
        if let Some(hold_id) = &order.hold_id {
            give_back(hold_id, order.coupon_code.is_some());
        }
        return Err(e.into());
    }
    Ok(())
}

/// The `order.created` payload; `hold_id` lets the catalog confirm the stock hold and
/// promotions the coupon's redemption.
fn created_event(order: &Order) -> Json {
    let items: Vec<_> = order
        .items
        .iter()
        .map(|i| {
            json!({"product_id": i.product_id, "name": i.name, "quantity": i.quantity,
                   "unit_price": i.unit_price, "line_total": i.line_total})
        })
        .collect();
    json!({
        "order_id": order.id, "user_id": order.user_id, "status": order.status,
        "payment_method": order.payment_method, "payment_status": order.payment_status,
        "subtotal": order.subtotal, "delivery_fee": order.delivery_fee,
        "discount": order.discount, "coupon_code": order.coupon_code,
        "total": order.total, "items": items, "created_at": order.created_at,
        "hold_id": order.hold_id,
    })
}

/// Empties the cart once its lines are held, before the order is written: the order
/// and its events commit at the end of this call, so emptying the cart first keeps
/// the orders database's write lock (SQLite) out of the cart's call. A failure is
/// logged, not returned: the lines are held and the order is about to exist.
fn empty_cart(user_id: &str) {
    if let Err(e) = kirana_shop::cart::clear(user_id) {
        kirana_sdk::log::warn(&format!("emptying the cart of {user_id} failed: {e}"), &[]);
    }
}

fn checkout(req: &Request, user_id: &str) -> Result<Response, ApiError> {
    let body = parse_body(req)?;
    let config = OrdersConfig::load();
    let cart = read_cart(user_id)?;
    let address = read_address(user_id, &body.address_id)?;
    let held = hold(&cart)?;
    let coupon = match &cart.coupon {
        Some(c) => {
            let subtotal = held.1.iter().map(|i| i.line_total).sum();
            Some(redeem(&c.code, user_id, subtotal, &held.0)?)
        }
        None => None,
    };
    let order = build(user_id, body, address, held, coupon, &config);
    if order.payment_method == "online" && order.total < 1 {
        // Nothing could ever be paid, so the order would wait out its payment timeout.
        if let Some(hold_id) = &order.hold_id {
            give_back(hold_id, order.coupon_code.is_some());
        }
        return Err(ApiError::invalid_field(
            "payment_method",
            "the coupon leaves nothing to pay online; choose cod",
        ));
    }
    // Before `store`: see `empty_cart`. Both commit before the answer; a crash between
    // them (or a failed commit) leaves the cart empty and no order, whose hold the
    // catalog releases at its expiry.
    empty_cart(user_id);
    store(&order, &config)?;
    Ok(Response::created(&order))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An order of `quantity` × a 1000-paise product under hold `hld_1`.
    fn order_of(payment_method: &str, quantity: i64, coupon: Option<Redeemed>) -> Order {
        let body = CheckoutBody {
            address_id: "adr_1".into(),
            payment_method: payment_method.into(),
            notes: None,
        };
        let items = vec![Item {
            product_id: "prd_1".into(),
            name: "Dal".into(),
            unit: "1 kg".into(),
            unit_price: 1000,
            quantity,
            line_total: 1000 * quantity,
        }];
        build(
            "usr_1",
            body,
            json!({}),
            ("hld_1".into(), items),
            coupon,
            &OrdersConfig::default(),
        )
    }

    #[test]
    fn the_created_event_names_the_stock_hold() {
        let order = order_of("cod", 2, None);
        assert_eq!(order.hold_id.as_deref(), Some("hld_1"));
        let event = created_event(&order);
        assert_eq!(event["hold_id"], "hld_1");
        assert_eq!(event["order_id"], order.id.as_str());
        assert_eq!(event["items"][0]["quantity"], 2);
        // The hold is not part of the order's public shape.
        let shown = kirana_sdk::serde_json::to_value(&order).unwrap_or_default();
        assert!(shown.get("hold_id").is_none(), "{shown}");
        assert_eq!(shown["status"], "confirmed");
        // Without a coupon the order still says so.
        assert_eq!(
            (shown["discount"].clone(), shown["coupon_code"].clone()),
            (json!(0), Json::Null)
        );
        assert_eq!(shown["total"], 4500);
    }

    #[test]
    fn an_order_answers_the_shape_its_peers_read() {
        // `kirana_shop::orders::Order` is how payments and delivery parse
        // `GET /internal/orders/{id}`: a field renamed here fails this test.
        let order = order_of("online", 2, None);
        let json = kirana_sdk::serde_json::to_value(&order).unwrap();
        let seen: kirana_shop::orders::Order = kirana_sdk::serde_json::from_value(json).unwrap();
        assert_eq!(
            (seen.id.as_str(), seen.user_id.as_str(), seen.total),
            (order.id.as_str(), order.user_id.as_str(), order.total)
        );
        assert_eq!(
            (seen.status, seen.payment_method, seen.payment_status),
            (order.status, order.payment_method, order.payment_status)
        );
        assert_eq!(seen.items[0]["product_id"], order.items[0].product_id);
        assert_eq!(
            seen.estimated_delivery_at,
            Some(order.estimated_delivery_at)
        );
    }

    #[test]
    fn a_redeemed_coupon_is_on_the_order_and_its_events() {
        let coupon = Redeemed {
            hold_id: "hld_1".into(),
            coupon_id: "cpn_1".into(),
            code: "SAVE10".into(),
            discount: 300,
            status: "held".into(),
        };
        let order = order_of("online", 3, Some(coupon));
        assert_eq!(order.coupon_code.as_deref(), Some("SAVE10"));
        assert_eq!(
            (order.subtotal, order.delivery_fee, order.discount),
            (3000, 2500, 300)
        );
        assert_eq!(order.total, 5200);
        let event = created_event(&order);
        assert_eq!(event["coupon_code"], "SAVE10");
        assert_eq!(event["discount"], 300);
        assert_eq!(event["total"], 5200);
        assert_eq!(event["hold_id"], "hld_1");
    }
}

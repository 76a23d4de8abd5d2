//! The route handlers: the customer's cart under `/api/v1/cart` (its coupon included)
//! and the two internal routes the `orders` plugin uses at checkout.

use std::collections::HashMap;

use kirana_sdk::prelude::*;

use crate::catalog::{self, PricesRef};
use crate::promotions::{self, NoQuote};
use crate::rules::{
    check_stock, is_buyable, merge_quantity, price_cart, validate_add, validate_coupon_code,
    validate_set_quantity, CartConfig, CartView, CouponState, Line, Product, MAX_LINES,
    MAX_LINE_QUANTITY,
};
use crate::store::{self, StoredCart};

/// How often an add starts over when the cart changed under it (a line deleted between
/// two statements, or dead lines dropped from a full cart).
const ADD_ATTEMPTS: usize = 3;

#[derive(Deserialize)]
struct AddItem {
    product_id: String,
    quantity: i64,
}

#[derive(Deserialize)]
struct SetQuantity {
    quantity: i64,
}

#[derive(Deserialize)]
struct ApplyCoupon {
    code: String,
}

/// A cart as read right now: the stored lines whose products can still be bought, and
/// those products (plus any extra id asked for) as the catalog has them now.
struct Snapshot {
    stored: StoredCart,
    products: HashMap<String, Product>,
    /// False when the extra id was left out because the cart was full.
    extra_looked_up: bool,
    /// Lines of products that can no longer be bought were dropped (a change).
    dropped: bool,
    /// The catalog's stamp on `products`, when they may be kept.
    stamp: Option<String>,
}

impl Snapshot {
    /// The products of the cart's lines, to keep with the cached cart: the next read or
    /// change then asks the catalog only for what they do not cover.
    fn prices(&self) -> Option<PricesRef<'_>> {
        let stamp = self.stamp.as_deref()?;
        let products = self
            .stored
            .lines
            .iter()
            .map(|l| self.products.get(&l.product_id))
            .collect::<Option<Vec<_>>>()?;
        Some(PricesRef { stamp, products })
    }

    fn product(&self, product_id: &str) -> Option<&Product> {
        self.products.get(product_id).filter(|p| p.is_active)
    }

    /// The cart priced with the live products, without its coupon.
    fn view(&self, config: &CartConfig) -> CartView {
        price_cart(
            &self.stored.lines,
            &self.products,
            config,
            self.stored.updated_at.clone(),
        )
        .view
    }

    /// The cart as a customer sees it: priced, and with its coupon quoted by promotions
    /// (only a cart with a coupon asks promotions anything).
    fn render(&self, user_id: &str, config: &CartConfig) -> Response {
        let view = self.view(config);
        let view = match &self.stored.coupon_code {
            Some(code) => {
                let state = coupon_state(code, user_id, view.subtotal);
                view.with_coupon(state)
            }
            None => view,
        };
        Response::ok(&view)
    }
}

/// How the cart's coupon stands now. A refusal or an unreachable promotions plugin
/// never fails the cart: the coupon is shown with no discount and the reason.
fn coupon_state(code: &str, user_id: &str, subtotal: i64) -> CouponState {
    if subtotal <= 0 {
        return CouponState::Invalid {
            code: code.to_string(),
            reason: "the cart is empty".to_string(),
        };
    }
    match promotions::quote(code, user_id, subtotal) {
        Ok(q) => CouponState::Applied {
            code: code.to_string(),
            discount: q.discount,
        },
        Err(NoQuote::Refused(e)) => CouponState::Invalid {
            code: code.to_string(),
            reason: e.message,
        },
        Err(NoQuote::Unavailable(e)) => CouponState::Unavailable {
            code: code.to_string(),
            reason: e.message,
        },
    }
}

/// The cart's owner: always the caller, so nobody can reach another user's cart.
fn owner(req: &Request) -> Result<String, ApiError> {
    Ok(req.user()?.user_id.clone())
}

/// Prices a cart already read with ONE catalog lookup covering its lines and `extra`,
/// and deletes lines whose product is gone or inactive: a cart must not offer what
/// cannot be bought. `extra` is left out of a full cart, so one lookup never carries
/// more than `MAX_LINES` ids (the catalog's batch limit). A cached cart that kept its
/// lines' products asks only for `extra`, and for its lines again only when the
/// catalog changed since ([`catalog::lookup`]).
fn priced(
    user_id: &str,
    mut stored: StoredCart,
    extra: Option<&str>,
    config: &CartConfig,
) -> Result<Snapshot, ApiError> {
    let mut extra_looked_up = false;
    let kept = stored.prices.take().and_then(|mut kept| {
        // Kept in line order (see `Snapshot::prices`): the usual case needs no search.
        let in_step = kept.products.len() == stored.lines.len()
            && kept
                .products
                .iter()
                .zip(&stored.lines)
                .all(|(p, l)| p.id == l.product_id);
        if !in_step {
            kept.products
                .retain(|p| stored.quantity_of(&p.id).is_some());
        }
        // Kept only when they cover every line: a line without its product would read
        // as a product gone, and be dropped.
        (kept.products.len() == stored.lines.len()).then_some(kept)
    });
    let looked = {
        let mut ids: Vec<&str> = match kept {
            Some(_) => Vec::new(),
            None => stored.lines.iter().map(|l| l.product_id.as_str()).collect(),
        };
        if let Some(id) = extra {
            if stored.quantity_of(id).is_some() {
                extra_looked_up = true;
            } else if stored.lines.len() < MAX_LINES {
                ids.push(id);
                extra_looked_up = true;
            }
        }
        catalog::lookup(&ids, kept)?
    };
    let products = looked.products;
    let dead: Vec<String> = stored
        .lines
        .iter()
        .filter(|l| !is_buyable(products.get(&l.product_id)))
        .map(|l| l.product_id.clone())
        .collect();
    if !dead.is_empty() {
        let rev = store::drop_lines(user_id, &dead, config)?;
        stored.advance(rev);
        stored.lines.retain(|l| !dead.contains(&l.product_id));
    }
    Ok(Snapshot {
        stored,
        products,
        extra_looked_up,
        dropped: !dead.is_empty(),
        stamp: looked.stamp,
    })
}

/// The cart as this call's changes left it, published for the next reader: the copy
/// changed in step, when nobody else changed the cart in between; else the cart read
/// again (this call's change holds it until the call commits).
fn settle(user_id: &str, snap: Snapshot, config: &CartConfig) -> Result<Snapshot, ApiError> {
    let snap = if snap.stored.inexact {
        priced(user_id, store::load_stored(user_id, config)?, None, config)?
    } else {
        snap
    };
    store::publish(user_id, &snap.stored, snap.prices(), config);
    Ok(snap)
}

/// The cart a change starts from (the cached one when current), priced.
fn about_to_change(user_id: &str, config: &CartConfig) -> Result<Snapshot, ApiError> {
    priced(
        user_id,
        store::load_for_change(user_id, config)?,
        None,
        config,
    )
}

/// `GET /api/v1/cart`.
pub fn get_cart(req: &Request) -> Result<Response, ApiError> {
    let user_id = owner(req)?;
    let config = CartConfig::load();
    let stored = store::load(&user_id, &config)?;
    let snap = priced(&user_id, stored, None, &config)?;
    let snap = if snap.dropped {
        settle(&user_id, snap, &config)?
    } else {
        snap
    };
    Ok(snap.render(&user_id, &config))
}

/// `POST /api/v1/cart/coupon {code}`: asks promotions for a quote on the cart as it is
/// now and, when promotions accepts the code, keeps it on the cart (replacing any
/// other). Checks, in order: body (400/415), an empty cart (`400 cart_empty`), then
/// promotions' answer passed on: `404 not_found`, `400 validation_failed` (field
/// `code`), or `503 plugin_unavailable` when promotions is disabled or not installed.
/// A refused code changes nothing.
pub fn apply_coupon(req: &Request) -> Result<Response, ApiError> {
    let user_id = owner(req)?;
    let body: ApplyCoupon = req.json()?;
    let code = validate_coupon_code(&body.code)?;
    let config = CartConfig::load();
    let mut snap = about_to_change(&user_id, &config)?;
    if snap.stored.lines.is_empty() {
        return Err(ApiError::new(
            400,
            kirana_shop::errors::CART_EMPTY,
            "add something to the cart before applying a coupon",
        ));
    }
    let subtotal = snap.view(&config).subtotal;
    let quoted = promotions::quote(&code, &user_id, subtotal).map_err(NoQuote::into_error)?;
    snap.stored
        .apply(&store::set_coupon(&user_id, Some(&quoted.code), &config)?);
    snap.stored.coupon_code = Some(quoted.code.clone());
    let snap = settle(&user_id, snap, &config)?;
    let view = snap.view(&config).with_coupon(CouponState::Applied {
        code: quoted.code.clone(),
        discount: quoted.discount,
    });
    Ok(Response::ok(&view))
}

/// `DELETE /api/v1/cart/coupon`: the cart without its coupon. Removing a coupon the
/// cart does not have changes nothing and answers the cart.
pub fn remove_coupon(req: &Request) -> Result<Response, ApiError> {
    let user_id = owner(req)?;
    let config = CartConfig::load();
    let mut stored = store::load_for_change(&user_id, &config)?;
    if stored.coupon_code.take().is_none() {
        return Ok(priced(&user_id, stored, None, &config)?.render(&user_id, &config));
    }
    stored.apply(&store::set_coupon(&user_id, None, &config)?);
    let snap = settle(&user_id, priced(&user_id, stored, None, &config)?, &config)?;
    Ok(snap.render(&user_id, &config))
}

/// `POST /api/v1/cart/items`: adds to the line (creating it when needed). Checks run
/// in this order: body (400/415), cart full (400), product buyable (404), merge ≤ 20
/// (400), stock (409).
pub fn add_item(req: &Request) -> Result<Response, ApiError> {
    let user_id = owner(req)?;
    let body: AddItem = req.json()?;
    validate_add(&body.product_id, body.quantity)?;
    let config = CartConfig::load();
    for attempt in 0..ADD_ATTEMPTS {
        // A retry reads the database: this call's own writes (dead lines dropped) are
        // not in the cached read until the call commits.
        let stored = if attempt == 0 {
            store::load_for_change(&user_id, &config)?
        } else {
            store::load_stored(&user_id, &config)?
        };
        let mut snap = priced(&user_id, stored, Some(&body.product_id), &config)?;
        let existing = snap.stored.quantity_of(&body.product_id);
        if existing.is_none() && snap.stored.lines.len() >= MAX_LINES {
            return Err(ApiError::invalid_field(
                "product_id",
                format!("a cart holds at most {MAX_LINES} different products"),
            ));
        }
        if !snap.extra_looked_up {
            continue; // the full cart lost dead lines: there is room now, look again
        }
        let product = snap
            .product(&body.product_id)
            .ok_or_else(|| ApiError::not_found("product"))?
            .clone();
        check_add(&product, existing.unwrap_or(0), body.quantity)?;
        let (change, quantity) = write_add(&user_id, &product, body.quantity, &config)?;
        snap.stored.apply(&change);
        let Some(quantity) = quantity else {
            continue; // the line lost its room and got it back meanwhile: start over
        };
        match snap
            .stored
            .lines
            .iter_mut()
            .find(|l| l.product_id == body.product_id)
        {
            Some(line) => line.quantity = quantity,
            None => snap.stored.lines.push(Line {
                product_id: body.product_id.clone(),
                quantity,
            }),
        }
        return Ok(settle(&user_id, snap, &config)?.render(&user_id, &config));
    }
    Err(ApiError::conflict(
        "the cart changed while this item was being added; try again",
    ))
}

/// The merge and stock rules for adding `added` to a line holding `existing`.
fn check_add(product: &Product, existing: i64, added: i64) -> Result<(), ApiError> {
    let merged = merge_quantity(existing, added)?;
    check_stock(product, merged)
}

/// Writes an add atomically with the cart's change, bounded by 20 and the product's
/// stock: adds to the line, or creates it. Returns the change and the line's new
/// quantity. A concurrent add that took the room first gets the same errors as a
/// sequential one would; `None` when the line changed meanwhile so that it has room
/// again (retry).
fn write_add(
    user_id: &str,
    product: &Product,
    added: i64,
    config: &CartConfig,
) -> Result<(store::Touched, Option<i64>), ApiError> {
    let bound = MAX_LINE_QUANTITY.min(product.stock);
    let (change, quantity) = store::add_to_line(user_id, &product.id, added, bound, config)?;
    if quantity.is_none() {
        // The line exists but has no room for `added` any more.
        if let Some(now) = store::line_quantity(user_id, &product.id)? {
            check_add(product, now, added)?;
        }
    }
    Ok((change, quantity))
}

/// `PUT /api/v1/cart/items/{product_id}`: sets the quantity; 0 removes the line.
pub fn set_item(req: &Request) -> Result<Response, ApiError> {
    let user_id = owner(req)?;
    let product_id: String = req.param("product_id")?;
    let body: SetQuantity = req.json()?;
    validate_set_quantity(body.quantity)?;
    let config = CartConfig::load();
    if body.quantity == 0 {
        return remove(&user_id, &product_id, &config);
    }
    let mut snap = about_to_change(&user_id, &config)?;
    if snap.stored.quantity_of(&product_id).is_none() {
        return Err(ApiError::not_found("cart item"));
    }
    let product = snap
        .product(&product_id)
        .ok_or_else(|| ApiError::not_found("cart item"))?;
    check_stock(product, body.quantity)?;
    let change = store::touch(&user_id, &config)?;
    if !store::set_quantity(&user_id, &product_id, body.quantity)? {
        return Err(ApiError::not_found("cart item")); // removed meanwhile
    }
    snap.stored.apply(&change);
    for line in snap.stored.lines.iter_mut() {
        if line.product_id == product_id {
            line.quantity = body.quantity;
        }
    }
    Ok(settle(&user_id, snap, &config)?.render(&user_id, &config))
}

/// `DELETE /api/v1/cart/items/{product_id}`.
pub fn delete_item(req: &Request) -> Result<Response, ApiError> {
    let user_id = owner(req)?;
    let product_id: String = req.param("product_id")?;
    remove(&user_id, &product_id, &CartConfig::load())
}

/// Removes one line (404 when it is not in the cart) and answers the cart, priced
/// without the removed product.
fn remove(user_id: &str, product_id: &str, config: &CartConfig) -> Result<Response, ApiError> {
    let mut stored = store::load_for_change(user_id, config)?;
    if stored.quantity_of(product_id).is_none() {
        return Err(ApiError::not_found("cart item"));
    }
    // The cart row before the line, as every change does: PostgreSQL locks rows in the
    // order they are written, and one order for all keeps two changes of one cart from
    // deadlocking.
    let change = store::touch(user_id, config)?;
    if !store::remove_line(user_id, product_id)? {
        return Err(ApiError::not_found("cart item")); // removed meanwhile
    }
    stored.apply(&change);
    stored.lines.retain(|l| l.product_id != product_id);
    Ok(settle(user_id, priced(user_id, stored, None, config)?, config)?.render(user_id, config))
}

/// `DELETE /api/v1/cart`.
pub fn clear_cart(req: &Request) -> Result<Response, ApiError> {
    let user_id = owner(req)?;
    empty(&user_id, &CartConfig::load())
}

/// Empties a cart and drops its coupon (after checkout it has been redeemed); it counts
/// as a change, so `updated_at` moves to now. The cart row is written before the lines,
/// as every change does.
fn empty(user_id: &str, config: &CartConfig) -> Result<Response, ApiError> {
    let change = store::set_coupon(user_id, None, config)?;
    store::clear(user_id)?;
    // Whatever the cart held, it is now known exactly: empty since this change.
    let mut emptied = StoredCart {
        rev: change.rev.saturating_sub(1),
        ..StoredCart::default()
    };
    emptied.apply(&change);
    store::publish(user_id, &emptied, None, config);
    Ok(Response::no_content())
}

/// `GET /internal/carts/{user_id}`: the same cart JSON, for `orders` at checkout,
/// except that a coupon is not quoted: `coupon` is `{code}` and the totals are before
/// any discount. Checkout redeems the code itself, which prices it; a quote here would
/// ask promotions twice.
pub fn internal_get(req: &Request) -> Result<Response, ApiError> {
    let user_id: String = req.param("user_id")?;
    let config = CartConfig::load();
    let snap = priced(
        &user_id,
        store::load_stored(&user_id, &config)?,
        None,
        &config,
    )?;
    if snap.dropped {
        store::publish(&user_id, &snap.stored, None, &config);
    }
    let view = snap.view(&config);
    let view = match snap.stored.coupon_code {
        Some(code) => view.with_coupon(CouponState::Unquoted { code }),
        None => view,
    };
    Ok(Response::ok(&view))
}

/// `DELETE /internal/carts/{user_id}`: empties it, for `orders` after checkout.
pub fn internal_clear(req: &Request) -> Result<Response, ApiError> {
    let user_id: String = req.param("user_id")?;
    empty(&user_id, &CartConfig::load())
}

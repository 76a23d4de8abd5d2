//! The `cart` plugin: one cart per customer, always priced with the catalog's live
//! prices and stock (only product ids and quantities are stored).
//!
//! Customer routes live under `/api/v1/cart`; `orders` reads and empties a cart
//! through the internal routes `GET`/`DELETE /internal/carts/{user_id}`. A cart may
//! carry one coupon code, quoted by the `promotions` plugin whenever the cart is
//! answered. The behaviour and the choices where API.md is silent are in
//! docs/plugins/cart.md.

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json;
use kirana_shop::access;

mod catalog;
mod handlers;
mod promotions;
mod rules;
mod store;

pub struct Cart;

fn item_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "product_id": {"type": "string"}, "name": {"type": "string"},
            "unit": {"type": "string"}, "image_url": {"type": ["string", "null"]},
            "unit_price": {"type": "integer"}, "mrp": {"type": "integer"},
            "quantity": {"type": "integer"}, "line_total": {"type": "integer"},
            "in_stock": {"type": "boolean"}
        }
    })
}

/// JSON Schema of the cart, for the OpenAPI document.
fn cart_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": item_schema()},
            "item_count": {"type": "integer"}, "subtotal": {"type": "integer"},
            "delivery_fee": {"type": "integer"}, "total": {"type": "integer"},
            "currency": {"type": "string", "const": "INR"},
            "free_delivery_threshold": {"type": "integer"},
            "updated_at": {"type": ["string", "null"], "format": "date-time"},
            "coupon": {
                "description": "Present only on a cart with a coupon",
                "type": "object",
                "properties": {
                    "code": {"type": "string"}, "discount": {"type": "integer"},
                    "status": {"type": "string", "enum": ["applied", "invalid", "unavailable"]},
                    "reason": {"type": "string"}
                }
            },
            "discount": {
                "description": "Present only on a cart with a coupon; 0 unless it is applied",
                "type": "integer"
            }
        }
    })
}

fn coupon_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "required": ["code"],
        "properties": {"code": {"type": "string", "pattern": "^[A-Za-z0-9]{3,20}$"}}
    })
}

fn add_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "required": ["product_id", "quantity"],
        "properties": {
            "product_id": {"type": "string"},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 20}
        }
    })
}

fn set_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "required": ["quantity"],
        "properties": {"quantity": {"type": "integer", "minimum": 0, "maximum": 20}}
    })
}

impl Plugin for Cart {
    const NAME: &'static str = "cart";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn router() -> Router {
        Router::new()
            .get("/api/v1/cart", access::CUSTOMER, handlers::get_cart)
            .summary("The caller's cart, priced with current catalog prices")
            .response_schema(cart_schema())
            .delete("/api/v1/cart", access::CUSTOMER, handlers::clear_cart)
            .summary("Empties the caller's cart")
            .post("/api/v1/cart/items", access::CUSTOMER, handlers::add_item)
            .summary("Adds a product (adds to its quantity when already in the cart)")
            .request_schema(add_schema())
            .response_schema(cart_schema())
            .put(
                "/api/v1/cart/items/{product_id}",
                access::CUSTOMER,
                handlers::set_item,
            )
            .summary("Sets a line's quantity; 0 removes the line")
            .request_schema(set_schema())
            .response_schema(cart_schema())
            .delete(
                "/api/v1/cart/items/{product_id}",
                access::CUSTOMER,
                handlers::delete_item,
            )
            .summary("Removes a line from the cart")
            .response_schema(cart_schema())
            .post(
                "/api/v1/cart/coupon",
                access::CUSTOMER,
                handlers::apply_coupon,
            )
            .summary("Applies a coupon to the cart (replacing any other), quoted by promotions")
            .request_schema(coupon_schema())
            .response_schema(cart_schema())
            .delete(
                "/api/v1/cart/coupon",
                access::CUSTOMER,
                handlers::remove_coupon,
            )
            .summary("Removes the cart's coupon")
            .response_schema(cart_schema())
            .get(
                "/internal/carts/{user_id}",
                Access::Internal,
                handlers::internal_get,
            )
            .summary("A user's cart, for orders at checkout")
            .response_schema(cart_schema())
            .delete(
                "/internal/carts/{user_id}",
                Access::Internal,
                handlers::internal_clear,
            )
            .summary("Empties a user's cart, for orders after checkout")
    }

    fn capabilities() -> Capabilities {
        Capabilities::new()
            .sql()
            .kv()
            .call(&["catalog", "promotions"])
    }

    fn migrate(_from: Option<&str>) -> Result<(), String> {
        store::migrate().map_err(|e| kirana_sdk::cap_error_message(&e))
    }
}

kirana_sdk::export_plugin!(Cart);

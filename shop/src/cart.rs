//! The `cart` plugin's internal routes (docs/plugins/cart.md, "Internal routes"): what
//! checkout reads and then empties.

use kirana_sdk::{ApiError, Method};
use serde::{Deserialize, Serialize};

use crate::call::{expect, expect_success, send};

/// The plugin these routes belong to.
pub const PLUGIN: &str = "cart";

/// One line as checkout takes it (the cart sends it priced; prices come from the
/// catalog's hold instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub product_id: String,
    pub quantity: i64,
}

/// The cart's coupon, unquoted: checkout's redemption prices it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartCoupon {
    pub code: String,
}

/// A cart as `GET /internal/carts/{user_id}` answers it: the fields checkout uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    pub items: Vec<CartLine>,
    #[serde(default)]
    pub coupon: Option<CartCoupon>,
}

/// The user's cart (expiry applied, vanished products dropped); an unknown user has an
/// empty one.
pub fn get(user_id: &str) -> Result<Cart, ApiError> {
    if !crate::plausible_id(user_id) {
        return Err(ApiError::not_found("cart"));
    }
    let reply = send::<()>(
        PLUGIN,
        Method::Get,
        &format!("/internal/carts/{user_id}"),
        None,
    )?;
    expect(reply, 200)
}

/// Empties the user's cart and removes its coupon.
pub fn clear(user_id: &str) -> Result<(), ApiError> {
    if !crate::plausible_id(user_id) {
        return Err(ApiError::not_found("cart"));
    }
    let path = format!("/internal/carts/{user_id}");
    expect_success(send::<()>(PLUGIN, Method::Delete, &path, None)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::round_trip;

    #[test]
    fn cart_shapes() {
        // The cart's answer (docs/api.md) carries more; checkout keeps lines and coupon.
        let c: Cart = kirana_sdk::serde_json::from_str(
            r#"{"user_id": "usr_1", "items": [{"product_id": "prd_1", "name": "Atta",
                "unit": "5 kg", "image_url": null, "unit_price": 28900, "mrp": 31500,
                "quantity": 2, "line_total": 57800, "in_stock": true}],
                "coupon": {"code": "WELCOME50"}, "subtotal": 57800, "delivery_fee": 0,
                "total": 57800, "currency": "INR", "updated_at": "2026-12-06T10:00:00Z"}"#,
        )
        .expect("parses");
        assert_eq!(c.items[0].quantity, 2);
        assert_eq!(c.coupon.map(|c| c.code).as_deref(), Some("WELCOME50"));
        let empty: Cart = round_trip(r#"{"items": [], "coupon": null}"#);
        assert!(empty.items.is_empty());
    }
}

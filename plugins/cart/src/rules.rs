//! The cart's pure rules: quantities, merging, the delivery fee, expiry and pricing a
//! cart from the catalog's live products. Nothing here touches a host capability, so
//! all of it is unit-tested natively.

use std::collections::HashMap;

use kirana_sdk::prelude::*;

/// Most units of one product a cart line may hold (API.md: "quantity 1..20 per line").
pub const MAX_LINE_QUANTITY: i64 = 20;

/// Most distinct products one cart may hold. API.md is silent; a bound keeps one cart
/// read to one catalog lookup of bounded size.
pub const MAX_LINES: usize = 100;

/// Longest product id accepted in a body (catalog ids are about 36 characters).
pub const MAX_PRODUCT_ID_LEN: usize = 128;

const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

/// The `[cart]` settings that shape a cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartConfig {
    /// Fee in paise charged when `0 < subtotal < free_delivery_threshold`.
    pub delivery_fee: i64,
    /// Subtotal in paise from which delivery is free.
    pub free_delivery_threshold: i64,
    /// Days without change after which a cart is emptied; `<= 0` never expires.
    pub cart_ttl_days: i64,
    /// Seconds a cart read is kept in KV; 0 turns the cache off. The cache is exact
    /// (every change records its revision once it commits); the TTL only bounds how
    /// long an entry can outlive a change the KV store missed.
    pub cache_seconds: u64,
}

impl Default for CartConfig {
    fn default() -> Self {
        Self {
            delivery_fee: 2500,
            free_delivery_threshold: 19900,
            cart_ttl_days: 7,
            cache_seconds: 60,
        }
    }
}

impl CartConfig {
    /// Reads the plugin's `[cart]` section, once per request; a negative money setting
    /// falls back to its default (a negative fee or threshold would make no sense).
    pub fn load() -> Self {
        let d = Self::default();
        let non_negative = |v: i64, default: i64| if v < 0 { default } else { v };
        Self {
            delivery_fee: non_negative(
                kirana_sdk::config::get_or("delivery_fee", d.delivery_fee),
                d.delivery_fee,
            ),
            free_delivery_threshold: non_negative(
                kirana_sdk::config::get_or("free_delivery_threshold", d.free_delivery_threshold),
                d.free_delivery_threshold,
            ),
            cart_ttl_days: kirana_sdk::config::get_or("cart_ttl_days", d.cart_ttl_days),
            cache_seconds: kirana_sdk::config::get_or("cache_seconds", d.cache_seconds),
        }
    }

    /// The fee rule: nothing for an empty cart, the fee below the threshold, free from it.
    pub fn delivery_fee_for(&self, subtotal: i64) -> i64 {
        if subtotal > 0 && subtotal < self.free_delivery_threshold {
            self.delivery_fee
        } else {
            0
        }
    }

    /// Carts last changed before this instant (microseconds since the Unix epoch, like
    /// `now_us`) have expired; `None` when expiry is off.
    pub fn expiry_cutoff_us(&self, now_us: i64) -> Option<i64> {
        if self.cart_ttl_days <= 0 {
            return None;
        }
        Some(now_us.saturating_sub(self.cart_ttl_days.saturating_mul(MICROS_PER_DAY)))
    }
}

/// A whole `POST /cart/items` body (quantity 1..=20), every bad field reported at once.
pub fn validate_add(product_id: &str, quantity: i64) -> Result<(), ApiError> {
    Validator::new()
        .check(is_product_id(product_id), "product_id", PRODUCT_ID_MESSAGE)
        .range("quantity", quantity, 1, MAX_LINE_QUANTITY)
        .finish()
}

/// A quantity in a `PUT /cart/items/{id}` body: 0 (remove) ..=20.
pub fn validate_set_quantity(quantity: i64) -> Result<(), ApiError> {
    Validator::new()
        .range("quantity", quantity, 0, MAX_LINE_QUANTITY)
        .finish()
}

const PRODUCT_ID_MESSAGE: &str = "must be a non-empty product id of at most 128 characters";

/// A product id in a body: present and of a plausible length.
pub fn is_product_id(product_id: &str) -> bool {
    !product_id.trim().is_empty() && product_id.len() <= MAX_PRODUCT_ID_LEN
}

/// The merge rule: adding to a line adds to its quantity; passing 20 is refused, never
/// clamped, so the client learns its request did not happen as asked.
pub fn merge_quantity(existing: i64, added: i64) -> Result<i64, ApiError> {
    let merged = existing.saturating_add(added);
    if merged > MAX_LINE_QUANTITY {
        return Err(ApiError::invalid_field(
            "quantity",
            format!(
                "the cart already holds {existing} of this product; a line holds at most {MAX_LINE_QUANTITY}"
            ),
        ));
    }
    Ok(merged)
}

/// `409 insufficient_stock` naming the short product, when `quantity` exceeds `stock`.
pub fn check_stock(product: &Product, quantity: i64) -> Result<(), ApiError> {
    if quantity > product.stock {
        return Err(kirana_shop::errors::insufficient_stock(format!(
            "only {} of {} in stock",
            product.stock.max(0),
            product.name
        ))
        .with_details(json!({ "items": [product.id] })));
    }
    Ok(())
}

/// The catalog's product as the lookup returns it; only the fields a cart needs. The
/// type is the catalog's contract, defined once in `kirana_shop`.
pub use kirana_shop::catalog::ProductSummary as Product;

/// One stored line: what the customer asked for, never a price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub product_id: String,
    pub quantity: i64,
}

/// One line as clients see it, priced from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CartItem {
    pub product_id: String,
    pub name: String,
    pub unit: String,
    pub image_url: Option<String>,
    pub unit_price: i64,
    pub mrp: i64,
    pub quantity: i64,
    pub line_total: i64,
    pub in_stock: bool,
}

/// The cart JSON of API.md. `coupon` and `discount` are present only on a cart with a
/// coupon, so a cart without one keeps the shape it had before coupons existed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CartView {
    pub items: Vec<CartItem>,
    pub item_count: i64,
    pub subtotal: i64,
    pub delivery_fee: i64,
    pub total: i64,
    pub currency: &'static str,
    pub free_delivery_threshold: i64,
    pub updated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coupon: Option<CouponView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discount: Option<i64>,
}

/// Longest and shortest coupon code (API.md: 3..20 letters or digits).
pub const COUPON_CODE_LEN: (usize, usize) = (3, 20);

/// A coupon code from a body, trimmed: 3..20 ASCII letters or digits, else
/// `400 validation_failed` on `code`. Case is left to promotions (codes are
/// case-insensitive there).
pub fn validate_coupon_code(code: &str) -> Result<String, ApiError> {
    let code = code.trim();
    let (min, max) = COUPON_CODE_LEN;
    let ok = (min..=max).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric());
    if !ok {
        return Err(ApiError::invalid_field(
            "code",
            format!("must be {min} to {max} letters or digits"),
        ));
    }
    Ok(code.to_string())
}

/// How a cart's coupon stands as the cart is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CouponState {
    /// Promotions quoted it: `discount` paise off this subtotal.
    Applied { code: String, discount: i64 },
    /// Promotions refuses it now (expired, not started, below its minimum, used up,
    /// deactivated; or the cart is empty): no discount, `reason` says why. It stays on
    /// the cart: a cart that grows past the minimum gets the discount back.
    Invalid { code: String, reason: String },
    /// Promotions could not be asked (disabled, not installed, failing): no discount.
    Unavailable { code: String, reason: String },
    /// Not quoted: the internal read for checkout, which redeems the code itself.
    Unquoted { code: String },
}

/// The `coupon` object of a cart. `discount` and `status` are absent only in the
/// internal read for checkout; `reason` only when the coupon is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CouponView {
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discount: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a quoted discount takes off: never below 0 nor above the subtotal, so
/// `total = subtotal + delivery_fee - discount` never falls below the delivery fee.
pub fn capped_discount(quoted: i64, subtotal: i64) -> i64 {
    quoted.clamp(0, subtotal.max(0))
}

impl CartView {
    /// The cart with its coupon: `coupon`, `discount` and the total after the discount.
    pub fn with_coupon(mut self, state: CouponState) -> Self {
        let (code, discount, status, reason) = match state {
            CouponState::Applied { code, discount } => (
                code,
                Some(capped_discount(discount, self.subtotal)),
                Some("applied"),
                None,
            ),
            CouponState::Invalid { code, reason } => (code, Some(0), Some("invalid"), Some(reason)),
            CouponState::Unavailable { code, reason } => {
                (code, Some(0), Some("unavailable"), Some(reason))
            }
            CouponState::Unquoted { code } => (code, None, None, None),
        };
        if let Some(d) = discount {
            self.total = self.subtotal.saturating_add(self.delivery_fee) - d;
            self.discount = Some(d);
        }
        self.coupon = Some(CouponView {
            code,
            discount,
            status,
            reason,
        });
        self
    }
}

/// A cart priced from live products, and the lines that must go because their product
/// no longer exists or is inactive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    pub view: CartView,
    pub dead: Vec<String>,
}

/// True when a looked-up product can still be bought.
pub fn is_buyable(product: Option<&Product>) -> bool {
    product.is_some_and(|p| p.is_active)
}

/// Prices `lines` (in their stored order) with `products` (keyed by id). Lines whose
/// product is missing or inactive are left out and reported in `dead`; lines above the
/// current stock stay, flagged `in_stock: false`, and count in the totals.
pub fn price_cart(
    lines: &[Line],
    products: &HashMap<String, Product>,
    config: &CartConfig,
    updated_at: Option<String>,
) -> Priced {
    let mut items = Vec::with_capacity(lines.len());
    let mut dead = Vec::new();
    for line in lines {
        match products.get(&line.product_id) {
            Some(p) if p.is_active => items.push(CartItem {
                product_id: line.product_id.clone(),
                name: p.name.clone(),
                unit: p.unit.clone(),
                image_url: p.image_url.clone(),
                unit_price: p.price,
                mrp: p.mrp,
                quantity: line.quantity,
                line_total: p.price.saturating_mul(line.quantity),
                in_stock: line.quantity <= p.stock,
            }),
            _ => dead.push(line.product_id.clone()),
        }
    }
    let item_count = items.iter().map(|i| i.quantity).sum();
    let subtotal = items
        .iter()
        .fold(0i64, |acc, i| acc.saturating_add(i.line_total));
    let delivery_fee = config.delivery_fee_for(subtotal);
    Priced {
        view: CartView {
            items,
            item_count,
            subtotal,
            delivery_fee,
            total: subtotal.saturating_add(delivery_fee),
            currency: "INR",
            free_delivery_threshold: config.free_delivery_threshold,
            updated_at,
            coupon: None,
            discount: None,
        },
        dead,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: &str, price: i64, stock: i64, active: bool) -> Product {
        Product {
            id: id.into(),
            name: format!("Product {id}"),
            unit: "1 kg".into(),
            image_url: None,
            price,
            mrp: price + 500,
            stock,
            is_active: active,
        }
    }

    fn line(id: &str, quantity: i64) -> Line {
        Line {
            product_id: id.into(),
            quantity,
        }
    }

    fn catalog(products: &[Product]) -> HashMap<String, Product> {
        products.iter().map(|p| (p.id.clone(), p.clone())).collect()
    }

    #[test]
    fn fee_applies_only_between_zero_and_the_threshold() {
        let c = CartConfig::default();
        assert_eq!(c.delivery_fee_for(0), 0);
        assert_eq!(c.delivery_fee_for(1), 2500);
        assert_eq!(c.delivery_fee_for(19899), 2500);
        assert_eq!(c.delivery_fee_for(19900), 0);
        assert_eq!(c.delivery_fee_for(50000), 0);
        let custom = CartConfig {
            delivery_fee: 1000,
            free_delivery_threshold: 500,
            cart_ttl_days: 7,
            cache_seconds: 60,
        };
        assert_eq!(custom.delivery_fee_for(499), 1000);
        assert_eq!(custom.delivery_fee_for(500), 0);
    }

    #[test]
    fn quantities_are_bounded() {
        assert!(validate_add("p", 1).is_ok());
        assert!(validate_add("p", 20).is_ok());
        for bad in [0, -1, 21, i64::MAX, i64::MIN] {
            let e = validate_add("p", bad).unwrap_err();
            assert_eq!(e.code, "validation_failed");
            assert_eq!(e.details["fields"][0]["field"], "quantity");
        }
        assert!(validate_set_quantity(0).is_ok());
        assert!(validate_set_quantity(20).is_ok());
        assert!(validate_set_quantity(-1).is_err());
        assert!(validate_set_quantity(21).is_err());
    }

    #[test]
    fn product_ids_must_be_present() {
        assert!(is_product_id("prd_1"));
        assert!(!is_product_id(""));
        assert!(!is_product_id("   "));
        assert!(!is_product_id(&"x".repeat(129)));
        assert!(validate_add("prd_1", 1).is_ok());
        let e = validate_add("", 0).unwrap_err();
        assert_eq!(e.details["fields"].as_array().map(|a| a.len()), Some(2));
    }

    #[test]
    fn merging_adds_and_refuses_past_twenty() {
        assert_eq!(merge_quantity(0, 3).unwrap(), 3);
        assert_eq!(merge_quantity(15, 5).unwrap(), 20);
        let e = merge_quantity(15, 6).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.code, "validation_failed");
        assert_eq!(e.details["fields"][0]["field"], "quantity");
        assert!(merge_quantity(i64::MAX, 1).is_err());
    }

    #[test]
    fn stock_check_names_the_product() {
        let p = product("p1", 100, 2, true);
        assert!(check_stock(&p, 2).is_ok());
        let e = check_stock(&p, 3).unwrap_err();
        assert_eq!(e.status, 409);
        assert_eq!(e.code, "insufficient_stock");
        assert_eq!(e.details, json!({ "items": ["p1"] }));
    }

    #[test]
    fn empty_cart_is_all_zero() {
        let priced = price_cart(&[], &HashMap::new(), &CartConfig::default(), None);
        let v = kirana_sdk::serde_json::to_value(&priced.view).unwrap();
        assert_eq!(
            v,
            json!({
                "items": [], "item_count": 0, "subtotal": 0, "delivery_fee": 0, "total": 0,
                "currency": "INR", "free_delivery_threshold": 19900, "updated_at": null
            })
        );
        assert!(priced.dead.is_empty());
    }

    #[test]
    fn totals_use_live_prices_and_the_fee_rule() {
        let products = catalog(&[product("a", 4500, 10, true), product("b", 1200, 10, true)]);
        let lines = [line("a", 2), line("b", 3)];
        let priced = price_cart(&lines, &products, &CartConfig::default(), None);
        let v = &priced.view;
        assert_eq!(v.items.len(), 2);
        assert_eq!(v.items[0].product_id, "a");
        assert_eq!(v.items[0].line_total, 9000);
        assert_eq!(v.items[1].unit_price, 1200);
        assert_eq!(v.item_count, 5);
        assert_eq!(v.subtotal, 12600);
        assert_eq!(v.delivery_fee, 2500);
        assert_eq!(v.total, 15100);

        let big = price_cart(&[line("a", 5)], &products, &CartConfig::default(), None);
        assert_eq!(big.view.subtotal, 22500);
        assert_eq!(big.view.delivery_fee, 0);
        assert_eq!(big.view.total, 22500);
    }

    #[test]
    fn dead_lines_are_dropped_and_short_lines_flagged() {
        let products = catalog(&[
            product("ok", 100, 10, true),
            product("gone", 100, 10, false),
            product("short", 300, 1, true),
        ]);
        let lines = [
            line("ok", 1),
            line("gone", 1),
            line("missing", 1),
            line("short", 2),
        ];
        let priced = price_cart(&lines, &products, &CartConfig::default(), None);
        assert_eq!(priced.dead, vec!["gone".to_string(), "missing".to_string()]);
        let ids: Vec<_> = priced
            .view
            .items
            .iter()
            .map(|i| i.product_id.as_str())
            .collect();
        assert_eq!(ids, ["ok", "short"]);
        assert!(priced.view.items[0].in_stock);
        assert!(!priced.view.items[1].in_stock);
        assert_eq!(priced.view.subtotal, 700);
        assert_eq!(priced.view.item_count, 3);
    }

    #[test]
    fn expiry_uses_the_ttl_in_days() {
        let c = CartConfig::default();
        let day = MICROS_PER_DAY;
        let now = 100 * day;
        // A cart changed at `t` has expired when `t < cutoff`.
        let cutoff = c.expiry_cutoff_us(now).unwrap();
        assert_eq!(cutoff, now - 7 * day);
        assert!(now - 7 * day >= cutoff, "exactly 7 days old is still alive");
        assert!(now - 7 * day - 1 < cutoff);
        let never = CartConfig {
            cart_ttl_days: 0,
            ..c
        };
        assert_eq!(never.expiry_cutoff_us(now), None);
        let huge = CartConfig {
            cart_ttl_days: i64::MAX,
            ..c
        };
        assert!(
            huge.expiry_cutoff_us(now).is_some_and(|c| c < 0),
            "no overflow"
        );
    }

    #[test]
    fn buyable_means_present_and_active() {
        assert!(is_buyable(Some(&product("a", 1, 1, true))));
        assert!(!is_buyable(Some(&product("a", 1, 1, false))));
        assert!(!is_buyable(None));
    }

    fn priced_at(subtotal_units: i64) -> CartView {
        let products = catalog(&[product("a", 1000, 100, true)]);
        price_cart(
            &[line("a", subtotal_units)],
            &products,
            &CartConfig::default(),
            None,
        )
        .view
    }

    #[test]
    fn coupon_codes_are_three_to_twenty_letters_or_digits() {
        assert_eq!(validate_coupon_code(" save10 ").unwrap(), "save10");
        assert_eq!(validate_coupon_code("ABC").unwrap(), "ABC");
        assert!(validate_coupon_code(&"A".repeat(20)).is_ok());
        for bad in [
            "",
            "  ",
            "AB",
            "SAVE-10",
            "SAVE 10",
            "ŚAVE10",
            &"A".repeat(21),
        ] {
            let e = validate_coupon_code(bad).unwrap_err();
            assert_eq!((e.status, e.code), (400, "validation_failed"), "{bad}");
            assert_eq!(e.details["fields"][0]["field"], "code");
        }
    }

    #[test]
    fn an_applied_coupon_takes_its_discount_off_the_total() {
        // 3 × 1000 = 3000 subtotal, below the threshold: fee 2500.
        let v = priced_at(3).with_coupon(CouponState::Applied {
            code: "SAVE10".into(),
            discount: 300,
        });
        assert_eq!(
            (v.subtotal, v.delivery_fee, v.discount),
            (3000, 2500, Some(300))
        );
        assert_eq!(v.total, 5200);
        let shown = kirana_sdk::serde_json::to_value(&v).unwrap();
        assert_eq!(
            shown["coupon"],
            json!({"code": "SAVE10", "discount": 300, "status": "applied"})
        );
        assert_eq!(shown["discount"], 300);
    }

    #[test]
    fn a_discount_never_takes_the_total_below_the_delivery_fee() {
        let v = priced_at(3).with_coupon(CouponState::Applied {
            code: "BIG".into(),
            discount: 10_000,
        });
        assert_eq!(v.discount, Some(3000));
        assert_eq!(v.total, v.delivery_fee);
        // Free delivery: the total can reach 0, never below.
        let free = priced_at(20).with_coupon(CouponState::Applied {
            code: "BIG".into(),
            discount: 50_000,
        });
        assert_eq!(
            (free.delivery_fee, free.discount, free.total),
            (0, Some(20_000), 0)
        );
        assert_eq!(capped_discount(-5, 100), 0);
        assert_eq!(capped_discount(5, 0), 0);
    }

    #[test]
    fn an_invalid_or_unavailable_coupon_shows_why_and_takes_nothing() {
        for (state, status) in [
            (
                CouponState::Invalid {
                    code: "OLD".into(),
                    reason: "the coupon has expired".into(),
                },
                "invalid",
            ),
            (
                CouponState::Unavailable {
                    code: "OLD".into(),
                    reason: "promotions is not available".into(),
                },
                "unavailable",
            ),
        ] {
            let v = priced_at(3).with_coupon(state);
            assert_eq!((v.discount, v.total), (Some(0), 5500));
            let shown = kirana_sdk::serde_json::to_value(&v).unwrap();
            assert_eq!(shown["coupon"]["status"], status);
            assert_eq!(shown["coupon"]["discount"], 0);
            assert!(shown["coupon"]["reason"].is_string(), "{shown}");
        }
    }

    #[test]
    fn a_cart_without_a_coupon_keeps_its_shape_and_the_unquoted_one_names_only_the_code() {
        let plain = kirana_sdk::serde_json::to_value(priced_at(3)).unwrap();
        assert!(plain.get("coupon").is_none() && plain.get("discount").is_none());
        let v = priced_at(3).with_coupon(CouponState::Unquoted {
            code: "SAVE10".into(),
        });
        assert_eq!(v.total, 5500);
        let shown = kirana_sdk::serde_json::to_value(&v).unwrap();
        assert_eq!(shown["coupon"], json!({"code": "SAVE10"}));
        assert!(shown.get("discount").is_none());
    }
}

//! The `catalog` plugin's internal routes (docs/plugins/catalog.md, "Internal routes"):
//! product lookups for the cart, stock holds for checkout.

use kirana_sdk::{ApiError, Method};
use serde::{Deserialize, Serialize};

use crate::call::{expect, expect_found, send};

/// The plugin these routes belong to.
pub const PLUGIN: &str = "catalog";

/// `POST /internal/products/lookup` body: at most 100 ids, `known`'s included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupRequest {
    pub ids: Vec<String>,
    /// Products the caller kept from an earlier answer: answered again only when they
    /// may have changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known: Option<Known>,
}

/// Products a caller kept from an earlier lookup, with that answer's `stamp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    pub stamp: String,
    pub ids: Vec<String>,
}

/// The lookup's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupReply {
    pub items: Vec<ProductSummary>,
    /// Present when the caller may keep these products and send them back as `known`
    /// with this stamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<String>,
    /// True when the `known` products are unchanged since their stamp: `items` then
    /// holds only the `ids`, and `stamp` is the known one. False when `items` holds
    /// the known products too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unchanged: bool,
}

/// A product as the lookup answers it: the fields of the public Product a peer prices
/// and shows a line with (no description or image set, which a cart never shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductSummary {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub image_url: Option<String>,
    /// Selling price in paise.
    pub price: i64,
    pub mrp: i64,
    pub stock: i64,
    pub is_active: bool,
}

/// The products with these ids that exist, active or not, in the order asked
/// (duplicates once); unknown ids are absent. No call at all for an empty list.
pub fn lookup(ids: &[&str]) -> Result<Vec<ProductSummary>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    lookup_since(ids, None).map(|r| r.items)
}

/// [`lookup`] for a caller that kept products from an earlier answer (`known`: its
/// stamp and their ids): they come back only when they may have changed. A call even
/// for empty `ids` when there are known products.
pub fn lookup_since(ids: &[&str], known: Option<(&str, &[&str])>) -> Result<LookupReply, ApiError> {
    let owned = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect();
    let known = known.filter(|(_, ids)| !ids.is_empty());
    if ids.is_empty() && known.is_none() {
        return Ok(LookupReply {
            items: Vec::new(),
            stamp: None,
            unchanged: false,
        });
    }
    let body = LookupRequest {
        ids: owned(ids),
        known: known.map(|(stamp, ids)| Known {
            stamp: stamp.to_string(),
            ids: owned(ids),
        }),
    };
    let reply = send(
        PLUGIN,
        Method::Post,
        "/internal/products/lookup",
        Some(&body),
    )?;
    expect::<LookupReply>(reply, 200)
}

/// One line of a hold request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldLine {
    pub product_id: String,
    pub quantity: i64,
}

/// `POST /internal/stock/holds` body: 1..100 lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRequest {
    pub items: Vec<HoldLine>,
}

/// One held line: the product as it was when its units were taken (an order's
/// snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldLine {
    pub product_id: String,
    pub name: String,
    pub unit: String,
    /// The product's price (paise) when held.
    pub unit_price: i64,
    pub quantity: i64,
}

/// A hold's answer (`201`): the lines in request order, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub hold_id: String,
    pub expires_at: String,
    pub items: Vec<HeldLine>,
}

/// A hold's status after a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldState {
    pub hold_id: String,
    /// `held`, `released`, `confirmed` or `expired`.
    pub status: String,
}

/// Takes every line's units or none: a short line (or an unknown or inactive product)
/// is the catalog's `409 insufficient_stock` with `details.items` the short ids.
pub fn hold(items: Vec<HoldLine>) -> Result<Hold, ApiError> {
    let body = HoldRequest { items };
    let reply = send(PLUGIN, Method::Post, "/internal/stock/holds", Some(&body))?;
    expect(reply, 201)
}

/// Gives a `held` hold's units back (any other status is left as it is); `None` for
/// an unknown hold.
pub fn release_hold(hold_id: &str) -> Result<Option<HoldState>, ApiError> {
    if !crate::plausible_id(hold_id) {
        return Ok(None);
    }
    let path = format!("/internal/stock/holds/{hold_id}/release");
    let reply = send::<()>(PLUGIN, Method::Post, &path, None)?;
    expect_found(reply, 200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{round_trip, subset};

    #[test]
    fn lookup_shapes() {
        round_trip::<LookupRequest>(r#"{"ids": ["prd_1", "prd_2"]}"#);
        round_trip::<LookupRequest>(
            r#"{"ids": ["prd_1"], "known": {"stamp": "4.0.17", "ids": ["prd_2"]}}"#,
        );
        let r: LookupReply = round_trip(r#"{"items": [], "stamp": "4.0.17", "unchanged": true}"#);
        assert!(r.unchanged);
        // A full Product as docs/api.md shows it; the summary keeps its own fields.
        let p: ProductSummary = subset(
            r#"{"id": "prd_1", "sku": "SKU-1", "name": "Atta", "description": null,
                "category_id": "cat_1", "brand": "Aashirvaad", "unit": "5 kg",
                "price": 28900, "mrp": 31500, "discount_percent": 8, "stock": 3,
                "is_active": true, "image_url": null, "images": [],
                "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z"}"#,
        );
        assert_eq!((p.price, p.stock, p.is_active), (28900, 3, true));
        let r: LookupReply = round_trip(
            r#"{"items": [{"id": "prd_1", "name": "Atta", "unit": "5 kg", "image_url": "/x.png",
                "price": 28900, "mrp": 31500, "stock": 0, "is_active": false}]}"#,
        );
        assert_eq!(r.items[0].image_url.as_deref(), Some("/x.png"));
    }

    #[test]
    fn hold_shapes() {
        round_trip::<HoldRequest>(r#"{"items": [{"product_id": "prd_1", "quantity": 2}]}"#);
        let h: Hold = round_trip(
            r#"{"hold_id": "hld_1", "expires_at": "2026-12-06T10:10:00Z",
                "items": [{"product_id": "prd_1", "name": "Atta", "unit": "5 kg",
                           "unit_price": 28900, "quantity": 2}]}"#,
        );
        assert_eq!(h.items[0].unit_price * h.items[0].quantity, 57800);
        round_trip::<HoldState>(r#"{"hold_id": "hld_1", "status": "released"}"#);
    }

    #[test]
    fn implausible_hold_ids_are_unknown_without_a_call() {
        // No host here: a call would fail, so `Ok(None)` proves none was made.
        assert_eq!(release_hold("a/b").ok(), Some(None));
        assert_eq!(release_hold("").ok(), Some(None));
        assert_eq!(lookup(&[]).ok(), Some(Vec::new()));
    }
}

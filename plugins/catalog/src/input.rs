//! Request bodies of the catalog, parsed and validated in full (every bad field listed
//! at once). Pure: the one fact that needs the database (does `category_id` exist?) is
//! looked up by the handler and passed in.

use kirana_sdk::serde_json::{Map, Value};
use kirana_sdk::ApiError;

use crate::fields::{as_integer, Fields};
use crate::model::{derive_slug, is_valid_slug, MAX_MONEY, MAX_STOCK};

/// Most ids one lookup or lines one reservation may carry.
pub const MAX_BATCH: usize = 100;

/// `POST /api/v1/categories`.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryInput {
    pub name: String,
    pub slug: String,
}

pub fn parse_category(obj: &Map<String, Value>) -> Result<CategoryInput, ApiError> {
    let mut f = Fields::new(obj);
    let name = f.string("name", 1, 100);
    let slug = match f.raw("slug") {
        Some(Value::String(s)) if is_valid_slug(s) => Some(s.clone()),
        Some(_) => {
            f.error(
                "slug",
                "must be lower-case letters and digits in dash-separated words \
                 (^[a-z0-9]+(-[a-z0-9]+)*$), at most 100 characters",
            );
            None
        }
        None => match name.as_deref().map(derive_slug) {
            Some(s) if s.is_empty() => {
                f.error("slug", "cannot be derived from this name; send a slug");
                None
            }
            other => other,
        },
    };
    f.finish()?;
    match (name, slug) {
        (Some(name), Some(slug)) => Ok(CategoryInput { name, slug }),
        _ => Err(ApiError::internal(
            "category input passed validation incomplete",
        )),
    }
}

/// The body of `POST /api/v1/products` and `PUT /api/v1/products/{id}` (a full product).
#[derive(Debug, Clone, PartialEq)]
pub struct ProductInput {
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub category_id: String,
    pub brand: Option<String>,
    pub unit: String,
    pub price: i64,
    pub mrp: i64,
    pub stock: i64,
    pub image_url: Option<String>,
    /// `None` when the body did not say (create: active; replace: stays active).
    pub is_active: Option<bool>,
}

/// The `category_id` the body names, when it is a non-blank string, so the handler can
/// check that it exists before [`parse_product`].
pub fn category_id_of(obj: &Map<String, Value>) -> Option<&str> {
    obj.get("category_id")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Validates a product body; `category_exists` is the handler's answer for
/// [`category_id_of`] (`None` when there was nothing to look up).
pub fn parse_product(
    obj: &Map<String, Value>,
    category_exists: Option<bool>,
) -> Result<ProductInput, ApiError> {
    let mut f = Fields::new(obj);
    let sku = f.string("sku", 1, 64);
    let name = f.string("name", 1, 200);
    let description = f.opt_string("description", 5000);
    let category_id = f.string("category_id", 1, 100);
    if category_id.is_some() && category_exists == Some(false) {
        f.error("category_id", "no such category");
    }
    let brand = f.opt_string("brand", 100);
    let unit = f.string("unit", 1, 32);
    let price = f.int("price", 1, MAX_MONEY);
    let mrp = f.int("mrp", 1, MAX_MONEY);
    if let (Some(p), Some(m)) = (price, mrp) {
        if m < p {
            f.error("mrp", "must be ≥ price");
        }
    }
    let stock = f.int("stock", 0, MAX_STOCK);
    let mut image_url = f.opt_string("image_url", 500);
    if let Some(Some(url)) = &image_url {
        if url.starts_with("/api/v1/products/") {
            // One of the catalog's own image URLs, as GET shows it: the images
            // themselves are uploads, so sending it back changes nothing.
            image_url = Some(None);
        } else if !is_http_url(url) {
            f.error(
                "image_url",
                "must be an http(s) URL or one of the product's image URLs",
            );
        }
    }
    let is_active = f.opt_bool("is_active");
    f.finish()?;
    let complete = || -> Option<ProductInput> {
        Some(ProductInput {
            sku: sku?,
            name: name?,
            description: description?,
            category_id: category_id?,
            brand: brand?,
            unit: unit?,
            price: price?,
            mrp: mrp?,
            stock: stock?,
            image_url: image_url?,
            is_active: is_active?,
        })
    };
    complete().ok_or_else(|| ApiError::internal("product input passed validation incomplete"))
}

fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.chars().any(char::is_whitespace))
}

/// `PATCH /api/v1/products/{id}/stock`: exactly one of `delta` or `set`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockChange {
    Delta(i64),
    Set(i64),
}

pub fn parse_stock_change(obj: &Map<String, Value>) -> Result<StockChange, ApiError> {
    let mut f = Fields::new(obj);
    match (f.raw("delta").is_some(), f.raw("set").is_some()) {
        (true, true) | (false, false) => {
            let msg = "send exactly one of delta or set";
            f.error("delta", msg);
            f.error("set", msg);
            f.finish()?;
        }
        _ => {}
    }
    let delta = f.opt_int("delta", -MAX_STOCK, MAX_STOCK);
    let set = f.opt_int("set", 0, MAX_STOCK);
    f.finish()?;
    match (delta.flatten(), set.flatten()) {
        (Some(d), None) => Ok(StockChange::Delta(d)),
        (None, Some(s)) => Ok(StockChange::Set(s)),
        _ => Err(ApiError::internal(
            "stock change passed validation incomplete",
        )),
    }
}

/// One line of a reservation or release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub product_id: String,
    pub quantity: i64,
}

/// `{"items": [{"product_id", "quantity"}]}`: 1 to [`MAX_BATCH`] lines, quantity ≥ 1.
pub fn parse_lines(obj: &Map<String, Value>) -> Result<Vec<Line>, ApiError> {
    let mut f = Fields::new(obj);
    let Some(items) = f.raw("items") else {
        f.error("items", "is required");
        return Err(ApiError::validation(f.take_errors()));
    };
    let Some(items) = items.as_array() else {
        f.error("items", "must be an array");
        return Err(ApiError::validation(f.take_errors()));
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        f.error("items", format!("must hold 1 to {MAX_BATCH} lines"));
        return Err(ApiError::validation(f.take_errors()));
    }
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(line) = item.as_object() else {
            f.error(&format!("items[{i}]"), "must be an object");
            continue;
        };
        let product_id = match line.get("product_id") {
            Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 100 => {
                Some(s.trim().to_string())
            }
            None | Some(Value::Null) => {
                f.error(&format!("items[{i}].product_id"), "is required");
                None
            }
            Some(_) => {
                f.error(
                    &format!("items[{i}].product_id"),
                    "must be a non-empty string",
                );
                None
            }
        };
        let quantity = match line.get("quantity").filter(|v| !v.is_null()) {
            None => {
                f.error(&format!("items[{i}].quantity"), "is required");
                None
            }
            Some(v) => match as_integer(v) {
                Some(q) if (1..=MAX_STOCK).contains(&q) => Some(q),
                _ => {
                    f.error(
                        &format!("items[{i}].quantity"),
                        format!("must be an integer from 1 to {MAX_STOCK}"),
                    );
                    None
                }
            },
        };
        if let (Some(product_id), Some(quantity)) = (product_id, quantity) {
            lines.push(Line {
                product_id,
                quantity,
            });
        }
    }
    f.finish()?;
    Ok(lines)
}

/// `POST /internal/products/lookup`: the ids to answer, and the products the caller
/// kept from an earlier answer (`known`: that answer's stamp and their ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub ids: Vec<String>,
    pub known: Option<(String, Vec<String>)>,
}

/// `{"ids": [..], "known"?: {"stamp": "..", "ids": [..]}}`: at most [`MAX_BATCH`] ids
/// in all; a known id also asked for in `ids` is answered there.
pub fn parse_lookup(obj: &Map<String, Value>) -> Result<Lookup, ApiError> {
    let mut f = Fields::new(obj);
    let ids = id_list(&mut f, "ids", obj.get("ids"), MAX_BATCH).unwrap_or_default();
    let known = match obj.get("known") {
        None | Some(Value::Null) => None,
        Some(Value::Object(k)) => {
            let stamp = match k.get("stamp") {
                Some(Value::String(s)) if s.len() <= 64 => Some(s.clone()),
                _ => {
                    f.error("known.stamp", "must be the stamp of an earlier answer");
                    None
                }
            };
            let room = MAX_BATCH.saturating_sub(ids.len());
            let known_ids = id_list(&mut f, "known.ids", k.get("ids"), room)
                .map(|k| k.into_iter().filter(|id| !ids.contains(id)).collect());
            stamp.zip(known_ids)
        }
        Some(_) => {
            f.error("known", "must be an object {stamp, ids}");
            None
        }
    };
    f.finish()?;
    Ok(Lookup { ids, known })
}

/// The strings of the array `raw` (field `name`), at most `max`; duplicates collapse,
/// order kept. `None` (with the error recorded) when it is not such an array.
fn id_list(f: &mut Fields, name: &str, raw: Option<&Value>, max: usize) -> Option<Vec<String>> {
    let Some(raw) = raw else {
        f.error(name, "is required");
        return None;
    };
    let Some(raw) = raw.as_array() else {
        f.error(name, "must be an array of strings");
        return None;
    };
    if raw.len() > max {
        f.error(
            name,
            format!("must hold at most {max} ids ({MAX_BATCH} in one lookup)"),
        );
        return None;
    }
    let mut ids: Vec<String> = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (i, v) in raw.iter().enumerate() {
        match v.as_str() {
            Some(s) => {
                if !ids.iter().any(|seen| seen == s) {
                    ids.push(s.to_string());
                }
            }
            None => {
                f.error(&format!("{name}[{i}]"), "must be a string");
                ok = false;
            }
        }
    }
    ok.then_some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kirana_sdk::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn fields(e: &ApiError) -> Vec<String> {
        e.details["fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn good_product() -> Value {
        json!({"sku": "TEA-1", "name": " Tata Tea ", "category_id": "cat_1", "unit": "250 g",
               "price": 15000, "mrp": 16500, "stock": 40})
    }

    #[test]
    fn category_slug_is_derived_or_checked() {
        let c = parse_category(&obj(json!({"name": "Fruits & Vegetables"}))).unwrap();
        assert_eq!(c.slug, "fruits-vegetables");
        let c = parse_category(&obj(json!({"name": "Baby", "slug": "baby-care"}))).unwrap();
        assert_eq!(c.slug, "baby-care");
        let c = parse_category(&obj(json!({"name": "Baby", "slug": null}))).unwrap();
        assert_eq!(c.slug, "baby");
        for bad in [json!("Baby Care"), json!(""), json!(5), json!("a--b")] {
            let e = parse_category(&obj(json!({"name": "Baby", "slug": bad}))).unwrap_err();
            assert_eq!(fields(&e), ["slug"]);
        }
        let e = parse_category(&obj(json!({"name": "दही"}))).unwrap_err();
        assert_eq!(fields(&e), ["slug"]);
        let e = parse_category(&obj(json!({"slug": "x"}))).unwrap_err();
        assert_eq!(fields(&e), ["name"]);
        let e = parse_category(&obj(json!({"name": "  "}))).unwrap_err();
        assert_eq!(fields(&e), ["name"]);
    }

    #[test]
    fn product_defaults_and_trimming() {
        let p = parse_product(&obj(good_product()), Some(true)).unwrap();
        assert_eq!(p.name, "Tata Tea");
        assert_eq!(
            (p.brand, p.description, p.image_url, p.is_active),
            (None, None, None, None)
        );
        assert_eq!((p.price, p.mrp, p.stock), (15000, 16500, 40));
    }

    #[test]
    fn product_lists_every_bad_field() {
        let body = json!({"sku": "", "name": "", "category_id": "cat_x", "unit": "",
                          "price": 0, "mrp": 0, "stock": -1, "image_url": "ftp://x",
                          "is_active": "yes"});
        let e = parse_product(&obj(body), Some(false)).unwrap_err();
        assert_eq!(e.code, "validation_failed");
        assert_eq!(
            fields(&e),
            [
                "sku",
                "name",
                "category_id",
                "unit",
                "price",
                "mrp",
                "stock",
                "image_url",
                "is_active"
            ]
        );
        let e = parse_product(&obj(json!({})), None).unwrap_err();
        assert_eq!(
            fields(&e),
            [
                "sku",
                "name",
                "category_id",
                "unit",
                "price",
                "mrp",
                "stock"
            ]
        );
    }

    #[test]
    fn product_money_rules() {
        let mut b = good_product();
        b["mrp"] = json!(14999);
        let e = parse_product(&obj(b), Some(true)).unwrap_err();
        assert_eq!(fields(&e), ["mrp"]);
        for bad in [
            json!(10.5),
            json!("100"),
            json!(100.0),
            json!(MAX_MONEY + 1),
        ] {
            let mut b = good_product();
            b["price"] = bad.clone();
            let e = parse_product(&obj(b), Some(true)).unwrap_err();
            assert_eq!(fields(&e), ["price"], "{bad}");
        }
        let mut b = good_product();
        b["price"] = json!(16500);
        assert!(parse_product(&obj(b), Some(true)).is_ok());
        let mut b = good_product();
        b["name"] = json!("x".repeat(201));
        assert_eq!(
            fields(&parse_product(&obj(b), Some(true)).unwrap_err()),
            ["name"]
        );
        let mut b = good_product();
        b["name"] = json!("x".repeat(200));
        assert!(parse_product(&obj(b), Some(true)).is_ok());
    }

    #[test]
    fn stock_change_needs_exactly_one() {
        assert_eq!(
            parse_stock_change(&obj(json!({"delta": -2}))).unwrap(),
            StockChange::Delta(-2)
        );
        assert_eq!(
            parse_stock_change(&obj(json!({"set": 0, "delta": null}))).unwrap(),
            StockChange::Set(0)
        );
        for bad in [
            json!({}),
            json!({"delta": 1, "set": 1}),
            json!({"set": -1}),
            json!({"delta": 1.5}),
            json!({"delta": "1"}),
            json!({"set": MAX_STOCK + 1}),
        ] {
            let e = parse_stock_change(&obj(bad.clone())).unwrap_err();
            assert_eq!(e.code, "validation_failed", "{bad}");
        }
    }

    #[test]
    fn lines_and_ids() {
        let l = parse_lines(&obj(
            json!({"items": [{"product_id": "p1", "quantity": 2}]}),
        ))
        .unwrap();
        assert_eq!(
            l,
            [Line {
                product_id: "p1".into(),
                quantity: 2
            }]
        );
        let e = parse_lines(&obj(
            json!({"items": [{"product_id": "", "quantity": 0}, 5]}),
        ))
        .unwrap_err();
        assert_eq!(
            fields(&e),
            ["items[0].product_id", "items[0].quantity", "items[1]"]
        );
        assert!(parse_lines(&obj(json!({"items": []}))).is_err());
        assert!(parse_lines(&obj(json!({}))).is_err());
        let many: Vec<_> = (0..101)
            .map(|i| json!({"product_id": format!("p{i}"), "quantity": 1}))
            .collect();
        assert!(parse_lines(&obj(json!({ "items": many }))).is_err());

        let parse_ids = |o: &Map<String, Value>| parse_lookup(o).map(|l| l.ids);
        let ids = parse_ids(&obj(json!({"ids": ["a", "b", "a"]}))).unwrap();
        assert_eq!(ids, ["a", "b"]);
        assert!(parse_ids(&obj(json!({"ids": []}))).unwrap().is_empty());
        assert!(parse_ids(&obj(json!({"ids": [1]}))).is_err());
        let many: Vec<_> = (0..101).map(|i| format!("p{i}")).collect();
        assert!(parse_ids(&obj(json!({ "ids": many }))).is_err());
        assert!(parse_ids(&obj(json!({"ids": "a"}))).is_err());
        assert!(parse_ids(&obj(json!({}))).is_err());
    }

    #[test]
    fn lookups_carry_known_products_within_one_batch() {
        let l = parse_lookup(&obj(json!({"ids": ["a"]}))).unwrap();
        assert_eq!((l.ids, l.known), (vec!["a".to_string()], None));
        let l = parse_lookup(&obj(
            json!({"ids": ["a"], "known": {"stamp": "1.0.2", "ids": ["b", "a", "c", "b"]}}),
        ))
        .unwrap();
        assert_eq!(
            l.known,
            Some(("1.0.2".to_string(), vec!["b".to_string(), "c".to_string()])),
            "a known id also asked for is answered as asked; duplicates once"
        );
        let l = parse_lookup(&obj(json!({"ids": [], "known": null}))).unwrap();
        assert_eq!(l.known, None);
        // 100 ids in all, and every bad field at once.
        let ids: Vec<_> = (0..60).map(|i| format!("p{i}")).collect();
        let known: Vec<_> = (60..101).map(|i| format!("p{i}")).collect();
        let e = parse_lookup(&obj(
            json!({"ids": ids, "known": {"stamp": "1.0.2", "ids": known}}),
        ))
        .unwrap_err();
        assert_eq!(fields(&e), ["known.ids"]);
        let e =
            parse_lookup(&obj(json!({"ids": [1], "known": {"stamp": 5, "ids": "b"}}))).unwrap_err();
        assert_eq!(fields(&e), ["ids[0]", "known.stamp", "known.ids"]);
        let e = parse_lookup(&obj(json!({"ids": [], "known": []}))).unwrap_err();
        assert_eq!(fields(&e), ["known"]);
        let long = "9".repeat(65);
        let e = parse_lookup(&obj(
            json!({"ids": [], "known": {"stamp": long, "ids": []}}),
        ))
        .unwrap_err();
        assert_eq!(fields(&e), ["known.stamp"]);
    }
}

//! The public product routes and the admin ones that change products.

use kirana_sdk::cache::Computed;
use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::{Map, Value};
use kirana_sdk::sql;
use kirana_sdk::CapError;

use crate::db;
use crate::input::{category_id_of, parse_product, parse_stock_change, ProductInput, StockChange};
use crate::listing::{self, count_statement, page_statement, ListQuery};
use crate::model::{Product, MAX_STOCK};

/// `GET /api/v1/products`: active products, filtered, ranked and paged.
pub fn list(req: &Request) -> Result<Response, ApiError> {
    // Both are read before answering so every bad parameter is reported together.
    let paging = Paging::from_request(req);
    let query = ListQuery::parse(|name| req.query(name));
    let (paging, query) = match (paging, query) {
        (Ok(p), Ok(q)) => (p, q),
        (Err(a), Err(b)) => return Err(merge_validation(a, b)),
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    if query.q.is_some() {
        return crate::search_index::search(&query, paging);
    }
    let page = page_statement(&query, sql::dialect(), paging.limit(), paging.offset());
    let compute = || -> Result<Computed, ApiError> {
        let count = count_statement(&query);
        let total: i64 = sql::query(&count.sql, &count.params)?.scalar()?;
        let items: Vec<Product> = sql::query_as(&page.sql, &page.params)?;
        let found = !items.is_empty();
        let body = kirana_sdk::serde_json::to_vec(&Paged::new(items, paging, total))
            .map_err(|e| ApiError::internal(format!("serialising the listing: {e}")))?;
        // An empty page (an unknown category, a page past the end) is not kept.
        Ok(if found {
            Computed::Keep(body)
        } else {
            Computed::Pass(body)
        })
    };
    let body = if listing::cacheable(&query, &paging) {
        // The page statement (with its parameters) determines the whole answer: the
        // count uses the same filter.
        let key = format!("{}|{:?}", page.sql, page.params);
        listing::cache().get_or_compute(&key, compute)?
    } else {
        compute()?.into_bytes()
    };
    Ok(Response::json_bytes(200, body))
}

pub(crate) fn merge_validation(a: ApiError, b: ApiError) -> ApiError {
    let mut fields = a.details["fields"].as_array().cloned().unwrap_or_default();
    fields.extend(b.details["fields"].as_array().cloned().unwrap_or_default());
    let message = format!("{} fields are invalid", fields.len());
    ApiError::new(400, "validation_failed", message).with_details(json!({ "fields": fields }))
}

/// `GET /api/v1/products/{id}`: 404 for unknown and inactive alike, whoever asks;
/// served from the product cache ([`crate::batch`]).
pub fn get(req: &Request) -> Result<Response, ApiError> {
    crate::batch::page(req.param("id")?)
}

/// Reads and validates a full product body, including that its category exists.
fn product_body(req: &Request) -> Result<ProductInput, ApiError> {
    let body: Map<String, Value> = req.json()?;
    let category_known = match category_id_of(&body) {
        Some(id) => Some(db::category_exists(id)?),
        None => None,
    };
    parse_product(&body, category_known)
}

fn sku_taken(sku: &str) -> ApiError {
    ApiError::already_exists(format!("a product with sku {sku} exists"))
        .with_details(json!({ "field": "sku", "sku": sku }))
}

/// Maps a UNIQUE violation (the only constraint a validated write can hit) to 409.
fn write(result: Result<u64, CapError>, sku: &str) -> Result<u64, ApiError> {
    match result {
        Err(CapError::Conflict(_)) => Err(sku_taken(sku)),
        other => Ok(other?),
    }
}

/// `POST /api/v1/products` (admin): 201 with the product.
pub fn create(req: &Request) -> Result<Response, ApiError> {
    let p = product_body(req)?;
    if db::sku_taken(&p.sku, None)? {
        return Err(sku_taken(&p.sku));
    }
    let id = new_id("prd");
    let now = now_rfc3339();
    write(
        sql::execute(
            "INSERT INTO products (id, sku, name, description, category_id, brand, unit, \
             price, mrp, stock, is_active, image_url, created_at, updated_at, created_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15)",
            &params![
                id,
                p.sku,
                p.name,
                p.description,
                p.category_id,
                p.brand,
                p.unit,
                p.price,
                p.mrp,
                p.stock,
                p.is_active.unwrap_or(true),
                p.image_url,
                now,
                now,
                crate::model::now_micros()
            ],
        ),
        &p.sku,
    )?;
    crate::search_index::reindex(&id)?;
    listing::cache().invalidate();
    let product = db::any_product(&id)?
        .ok_or_else(|| ApiError::internal("a product vanished right after its insert"))?;
    Ok(Response::created(&product))
}

/// `PUT /api/v1/products/{id}` (admin): replaces every field; 404 when unknown or
/// inactive. `is_active` absent keeps the product active; `false` deactivates it.
pub fn update(req: &Request) -> Result<Response, ApiError> {
    let id: String = req.param("id")?;
    if db::active_product(&id)?.is_none() {
        return Err(ApiError::not_found("product"));
    }
    let p = product_body(req)?;
    if db::sku_taken(&p.sku, Some(&id))? {
        return Err(sku_taken(&p.sku));
    }
    let changed = write(
        sql::execute(
            "UPDATE products SET sku = $1, name = $2, description = $3, \
             category_id = $4, brand = $5, unit = $6, price = $7, mrp = $8, \
             stock = $9, is_active = $10, image_url = $11, updated_at = $12 \
             WHERE id = $13 AND is_active",
            &params![
                p.sku,
                p.name,
                p.description,
                p.category_id,
                p.brand,
                p.unit,
                p.price,
                p.mrp,
                p.stock,
                p.is_active.unwrap_or(true),
                p.image_url,
                now_rfc3339(),
                id
            ],
        ),
        &p.sku,
    )?;
    if changed == 0 {
        // Deleted between the check and the update.
        return Err(ApiError::not_found("product"));
    }
    crate::search_index::reindex(&id)?;
    listing::cache().invalidate();
    let product = db::any_product(&id)?.ok_or_else(|| ApiError::not_found("product"))?;
    Ok(Response::ok(&product))
}

/// `DELETE /api/v1/products/{id}` (admin): soft delete; the row stays for orders'
/// history and the SKU stays taken.
pub fn delete(req: &Request) -> Result<Response, ApiError> {
    let id: String = req.param("id")?;
    let images = db::active_product(&id)?
        .map(|p| crate::images::parse(p.images_column.as_deref()))
        .unwrap_or_default();
    let changed = sql::execute(
        "UPDATE products SET is_active = $1, updated_at = $2 WHERE id = $3 AND is_active",
        &params![false, now_rfc3339(), id],
    )?;
    if changed == 0 {
        return Err(ApiError::not_found("product"));
    }
    crate::search_index::reindex(&id)?;
    // A deleted product's images go with it (the row first, then the files).
    crate::images::delete_all(&id, &images)?;
    listing::cache().invalidate();
    Ok(Response::no_content())
}

/// Attempts at a delta before giving up when concurrent writers keep moving the stock
/// between the failed conditional update and the re-read that explains it.
const DELTA_ATTEMPTS: usize = 5;

/// `PATCH /api/v1/products/{id}/stock` (admin): `{delta}` or `{set}`. A delta is one
/// conditional UPDATE, so concurrent changes never lose each other and never go
/// below zero.
pub fn patch_stock(req: &Request) -> Result<Response, ApiError> {
    let id: String = req.param("id")?;
    let body: Map<String, Value> = req.json()?;
    let change = parse_stock_change(&body)?;
    match change {
        StockChange::Set(n) => {
            let changed = sql::execute(
                "UPDATE products SET stock = $1, updated_at = $2 WHERE id = $3 AND is_active",
                &params![n, now_rfc3339(), id],
            )?;
            if changed == 0 {
                return Err(ApiError::not_found("product"));
            }
        }
        StockChange::Delta(d) => apply_delta(&id, d)?,
    }
    listing::cache().invalidate();
    let product = db::active_product(&id)?.ok_or_else(|| ApiError::not_found("product"))?;
    Ok(Response::ok(&product))
}

fn apply_delta(id: &str, delta: i64) -> Result<(), ApiError> {
    for _ in 0..DELTA_ATTEMPTS {
        let changed = sql::execute(
            "UPDATE products SET stock = stock + $1, updated_at = $2 \
             WHERE id = $3 AND is_active AND stock + $4 >= 0 AND stock + $5 <= $6",
            &params![delta, now_rfc3339(), id, delta, delta, MAX_STOCK],
        )?;
        if changed == 1 {
            return Ok(());
        }
        let current = db::active_product(id)?.ok_or_else(|| ApiError::not_found("product"))?;
        let result = current.stock + delta;
        if result < 0 {
            return Err(kirana_shop::errors::insufficient_stock(format!(
                "only {} in stock; cannot change by {delta}",
                current.stock
            ))
            .with_details(json!({
                "product_id": id,
                "stock": current.stock,
                "delta": delta,
                "items": [id],
            })));
        }
        if result > MAX_STOCK {
            return Err(ApiError::invalid_field(
                "delta",
                format!("would take the stock above {MAX_STOCK}"),
            ));
        }
        // The stock moved between the update and the read; try again.
    }
    Err(ApiError::conflict(
        "the stock is changing too fast; retry the request",
    ))
}

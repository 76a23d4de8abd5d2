//! Live prices and stock from the `catalog` plugin, one batched lookup per cart read.

use std::collections::HashMap;

use kirana_sdk::prelude::*;
use kirana_sdk::services;
use kirana_sdk::Method;

use crate::rules::Product;

#[derive(Deserialize)]
struct LookupReply {
    items: Vec<Product>,
}

/// The products with these ids, keyed by id; unknown ids are simply absent and inactive
/// ones come back with `is_active: false`. No call at all for an empty list. A failed
/// call passes the catalog's own error on (503/504 when it is down or slow).
pub fn lookup(ids: &[&str]) -> Result<HashMap<String, Product>, ApiError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let reply = services::call(
        "catalog",
        Method::Post,
        "/internal/products/lookup",
        "",
        Some(&json!({ "ids": ids })),
    )?;
    if !reply.is_success() {
        return Err(reply.into_error());
    }
    let body: LookupReply = reply.json()?;
    Ok(body.items.into_iter().map(|p| (p.id.clone(), p)).collect())
}

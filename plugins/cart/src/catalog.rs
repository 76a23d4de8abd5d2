//! Live prices and stock from the `catalog` plugin, one batched lookup per cart read.

use std::collections::HashMap;

use kirana_sdk::prelude::*;

use crate::rules::Product;

/// The products with these ids, keyed by id; unknown ids are simply absent and inactive
/// ones come back with `is_active: false`. No call at all for an empty list. A failed
/// call passes the catalog's own error on (503/504 when it is down or slow).
pub fn lookup(ids: &[&str]) -> Result<HashMap<String, Product>, ApiError> {
    let items = kirana_shop::catalog::lookup(ids)?;
    Ok(items.into_iter().map(|p| (p.id.clone(), p)).collect())
}

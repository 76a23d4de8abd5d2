//! Small queries several handlers share.

use kirana_sdk::prelude::*;
use kirana_sdk::sql::{self, Value};
use kirana_sdk::CapError;

use crate::model::{Product, PRODUCT_COLUMNS};

/// The product if it exists and is active (inactive ones are gone for every client).
pub fn active_product(id: &str) -> Result<Option<Product>, CapError> {
    sql::query_one(
        &format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = $1 AND p.is_active"),
        &params![id],
    )
}

/// The product whatever its state (after an update that may have deactivated it).
pub fn any_product(id: &str) -> Result<Option<Product>, CapError> {
    sql::query_one(
        &format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = $1"),
        &params![id],
    )
}

/// Products with these ids (any state), in no particular order.
pub fn products_by_ids(ids: &[String]) -> Result<Vec<Product>, CapError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let (list, params) = in_list(ids, 0);
    sql::query_as(
        &format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id IN ({list})"),
        &params,
    )
}

/// `$k+1, $k+2, ...` for the ids, and the ids as parameters.
pub fn in_list(ids: &[String], already_bound: usize) -> (String, Vec<Value>) {
    let list = (1..=ids.len())
        .map(|i| format!("${}", already_bound + i))
        .collect::<Vec<_>>()
        .join(", ");
    let params = ids.iter().map(|id| Value::Text(id.clone())).collect();
    (list, params)
}

pub fn category_exists(id: &str) -> Result<bool, CapError> {
    let n: i64 = sql::query(
        "SELECT COUNT(*) AS n FROM categories WHERE id = $1",
        &params![id],
    )?
    .scalar()?;
    Ok(n > 0)
}

/// True when another product (active or not: SKUs are never reused) has this SKU.
pub fn sku_taken(sku: &str, except_id: Option<&str>) -> Result<bool, CapError> {
    let n: i64 = sql::query(
        "SELECT COUNT(*) AS n FROM products WHERE sku = $1 AND id <> $2",
        &params![sku, except_id.unwrap_or("")],
    )?
    .scalar()?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_lists_number_from_the_offset() {
        let (list, params) = in_list(&["a".into(), "b".into()], 2);
        assert_eq!(list, "$3, $4");
        assert_eq!(params.len(), 2);
    }
}

//! Live prices and stock from the `catalog` plugin, one batched lookup per cart read.
//! A cart that kept the products of an earlier lookup (with the catalog's stamp) asks
//! only for the products it does not hold; the catalog sends the kept ones again only
//! when a catalog write may have changed them since.

use std::collections::HashMap;

use kirana_sdk::prelude::*;

use crate::rules::Product;

/// Products a cart kept from a lookup whose answer carried the catalog's `stamp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prices {
    pub stamp: String,
    pub products: Vec<Product>,
}

/// [`Prices`] borrowed from a priced cart, to store without a copy (the same encoding).
#[derive(Debug, Clone, Serialize)]
pub struct PricesRef<'a> {
    pub stamp: &'a str,
    pub products: Vec<&'a Product>,
}

/// What a lookup gave: the products by id (unknown ids absent, inactive ones with
/// `is_active: false`), and the stamp under which they may be kept, if any.
pub struct Looked {
    pub products: HashMap<String, Product>,
    pub stamp: Option<String>,
}

/// The products with these ids and those `kept`, as the catalog has them now. The kept
/// ones cost nothing when the catalog says they are unchanged. No call at all when
/// there is nothing to ask. A failed call passes the catalog's own error on (503/504
/// when it is down or slow).
pub fn lookup(ids: &[&str], kept: Option<Prices>) -> Result<Looked, ApiError> {
    let known_ids: Vec<&str> = kept
        .iter()
        .flat_map(|k| k.products.iter().map(|p| p.id.as_str()))
        .filter(|id| !ids.contains(id))
        .collect();
    let reply = kirana_shop::catalog::lookup_since(
        ids,
        kept.as_ref()
            .map(|k| (k.stamp.as_str(), known_ids.as_slice())),
    )?;
    let mut products = HashMap::with_capacity(ids.len() + known_ids.len());
    if reply.unchanged {
        if let Some(kept) = kept {
            products.extend(kept.products.into_iter().map(|p| (p.id.clone(), p)));
        }
    }
    products.extend(reply.items.into_iter().map(|p| (p.id.clone(), p)));
    Ok(Looked {
        products,
        stamp: reply.stamp,
    })
}

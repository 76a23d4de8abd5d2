//! Products by id through a read-through cache in the catalog's KV space: the product
//! page and the internal batch lookup the cart prices with read the database only for
//! the products not cached since the last catalog write, all of them in one query.
//!
//! The cache shares the listing cache's generation ([`listing::cache`]), so every write
//! that already invalidates the listing (product and stock changes, holds, categories,
//! migrations) forgets the cached products too: there is one invalidation per write,
//! not one per kind of answer. Its settle time keeps an answer computed while a write
//! had not committed yet out of the cache, so a cached product is never older than the
//! last committed write (a price the catalog no longer has is never served).

use std::time::Duration;

use kirana_sdk::cache::{Cache, Computed, Stamp};
use kirana_sdk::config;
use kirana_sdk::prelude::*;

use crate::db;
use crate::input::Lookup;
use crate::listing;
use crate::model::Product;
use kirana_shop::catalog::ProductSummary;

/// Seconds a cached product may live when no write invalidates it first
/// (`[catalog] product_cache_secs`; 0 turns the cache off). It bounds staleness only
/// where invalidation cannot reach: replicas that do not share a KV store, a change
/// made behind the plugin's back.
const DEFAULT_CACHE_SECS: u64 = 10;

/// Milliseconds after a catalog write during which products read are not cached
/// (`[catalog] product_cache_settle_ms`): the write commits at the end of its call, up
/// to the call's timeout (5 s by default) plus the commit's own second later.
const DEFAULT_SETTLE_MS: u64 = 7_000;

/// Entry prefix of an active product; an inactive one starts with [`INACTIVE`].
const ACTIVE: u8 = b'1';
const INACTIVE: u8 = b'0';

/// The product cache: the listing cache's name and generation, its own TTL and a
/// settle time.
pub fn cache() -> Cache {
    let ttl = config::get_or("product_cache_secs", DEFAULT_CACHE_SECS);
    let settle = config::get_or("product_cache_settle_ms", DEFAULT_SETTLE_MS);
    listing::cache()
        .with_ttl(Duration::from_secs(ttl))
        .with_settle(Duration::from_millis(settle))
}

/// What is cached of a product: its public JSON (the product page), or the summary
/// the batch lookup answers with (what a cart line needs: no description, no image
/// set, which made every cart read parse and skip kilobytes). Each has its own entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Full,
    Summary,
}

fn key(form: Form, id: &str) -> String {
    match form {
        Form::Full => format!("product:{id}"),
        Form::Summary => format!("summary:{id}"),
    }
}

/// What the lookup's callers read of a product (`kirana_shop`'s one definition).
fn summary(p: &Product) -> ProductSummary {
    ProductSummary {
        id: p.id.clone(),
        name: p.name.clone(),
        unit: p.unit.clone(),
        image_url: p.image_url.clone(),
        price: p.price,
        mrp: p.mrp,
        stock: p.stock,
        is_active: p.is_active,
    }
}

/// A product as it is cached: whether it is active, then its JSON in `form`.
fn encode(form: Form, p: &Product) -> Result<Vec<u8>, ApiError> {
    let mut out = vec![if p.is_active { ACTIVE } else { INACTIVE }];
    let written = match form {
        Form::Full => kirana_sdk::serde_json::to_writer(&mut out, p),
        Form::Summary => kirana_sdk::serde_json::to_writer(&mut out, &summary(p)),
    };
    written.map_err(|e| ApiError::internal(format!("serialising a product: {e}")))?;
    Ok(out)
}

/// A product as the cache gives it back: whether it is active, and its JSON.
pub type Found = (bool, Vec<u8>);

/// A cached product; `None` for an unknown id (never cached) or an entry this version
/// cannot read.
fn decode(mut entry: Vec<u8>) -> Option<Found> {
    let active = match *entry.first()? {
        ACTIVE => true,
        INACTIVE => false,
        _ => return None,
    };
    entry.remove(0);
    Some((active, entry))
}

/// For each id (in order): the product in `form`, or `None` when there is no such
/// product. Products not cached are read in one query.
fn by_ids(cache: &Cache, form: Form, ids: &[String]) -> Result<Vec<Option<Found>>, ApiError> {
    by_ids_stamped(cache, form, ids).map(|(found, _)| found)
}

/// [`by_ids`], with the stamp a caller may keep the products under (see [`lookup`]).
fn by_ids_stamped(
    cache: &Cache,
    form: Form,
    ids: &[String],
) -> Result<(Vec<Option<Found>>, Option<Stamp>), ApiError> {
    let keys: Vec<String> = ids.iter().map(|id| key(form, id)).collect();
    let many = cache.get_many_stamped(
        &keys,
        |missing| {
            let wanted: Vec<String> = missing.iter().map(|&i| ids[i].clone()).collect();
            let found = db::products_by_ids(&wanted)?;
            wanted
                .iter()
                .map(|id| match found.iter().find(|p| &p.id == id) {
                    Some(p) => encode(form, p).map(Computed::Keep),
                    // An unknown id is not kept: any client could fill the store.
                    None => Ok(Computed::Pass(Vec::new())),
                })
                .collect()
        },
        || ApiError::internal("the product cache got fewer products than it asked for"),
    )?;
    let found = many.answers.into_iter().map(decode).collect();
    Ok((found, many.stamp))
}

/// `{"items": [..], "stamp"?: "..", "unchanged"?: true}` from products' JSON, without
/// parsing it again.
fn items_body<'a>(
    products: impl Iterator<Item = &'a [u8]>,
    stamp: Option<Stamp>,
    unchanged: bool,
) -> Vec<u8> {
    let mut body = b"{\"items\":[".to_vec();
    for (i, p) in products.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(p);
    }
    body.push(b']');
    if let Some(stamp) = stamp {
        // Digits, dots and a sign only: nothing to escape.
        body.extend_from_slice(format!(",\"stamp\":\"{stamp}\"").as_bytes());
    }
    if unchanged {
        body.extend_from_slice(b",\"unchanged\":true");
    }
    body.push(b'}');
    body
}

/// The answer of `POST /internal/products/lookup` (validated, distinct ids):
/// `{"items": [ProductSummary]}` for those that exist, active or not, in the order asked.
///
/// A caller may keep the products of an answer that carries a `stamp` (the state of
/// the product cache they were read under, given only when the cache would keep them:
/// see [`Cache::get_many_stamped`]) and send them back as `known`. While no catalog
/// write invalidated the cache since and the stamp is younger than the product
/// cache's TTL, the known products are not read again: the answer holds only `ids`,
/// says `unchanged`, and carries the known stamp. Otherwise it holds the known
/// products too, under the new stamp. Reading `ids` tells which, in the same KV call.
/// An add to a cart then reads one product, not the whole cart's.
pub fn lookup(asked: Lookup) -> Result<Response, ApiError> {
    let cache = cache();
    let (mut found, now) = by_ids_stamped(&cache, Form::Summary, &asked.ids)?;
    let (stamp, unchanged) = match asked.known {
        None => (now, false),
        Some((kept, known)) => match kept.parse::<Stamp>() {
            Ok(kept) if cache.still(&kept, now.as_ref()) => (Some(kept), true),
            // Changed since, too old, or not a stamp the catalog gives: read them too
            // (after the stamp's state, so they are at least as new as it says).
            _ => {
                found.extend(by_ids(&cache, Form::Summary, &known)?);
                (now, false)
            }
        },
    };
    let body = items_body(
        found.iter().flatten().map(|(_, json)| json.as_slice()),
        stamp,
        unchanged,
    );
    Ok(Response::json_bytes(200, body))
}

/// `GET /api/v1/products/{id}`: 404 for unknown and inactive alike, whoever asks.
pub fn page(id: String) -> Result<Response, ApiError> {
    match by_ids(&cache(), Form::Full, &[id])?.pop().flatten() {
        Some((true, json)) => Ok(Response::json_bytes(200, json)),
        _ => Err(ApiError::not_found("product")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kirana_sdk::serde_json::Value;

    fn product(active: bool) -> Product {
        Product {
            id: "prd_1".into(),
            sku: "SKU-1".into(),
            name: "Atta \"chakki\"".into(),
            description: None,
            category_id: "cat_1".into(),
            brand: Some("Aashirvaad".into()),
            unit: "5 kg".into(),
            price: 28900,
            mrp: 31500,
            discount_percent: 8,
            stock: 3,
            is_active: active,
            image_url: None,
            images: crate::images::views("prd_1", &[]),
            created_at: "2026-11-22T10:00:00Z".into(),
            updated_at: "2026-11-22T10:00:00Z".into(),
            images_column: None,
        }
    }

    #[test]
    fn entries_keep_the_state_and_the_exact_json() {
        for active in [true, false] {
            let p = product(active);
            let (state, json) = decode(encode(Form::Full, &p).unwrap()).unwrap();
            assert_eq!(state, active);
            assert_eq!(json, kirana_sdk::serde_json::to_vec(&p).unwrap());
            let (state, json) = decode(encode(Form::Summary, &p).unwrap()).unwrap();
            assert_eq!(state, active);
            assert_eq!(json, kirana_sdk::serde_json::to_vec(&summary(&p)).unwrap());
        }
        assert_eq!(decode(Vec::new()), None, "an unknown id");
        assert_eq!(decode(b"{}".to_vec()), None, "not an entry of this version");
    }

    #[test]
    fn the_lookup_answers_the_shape_its_callers_read() {
        // `kirana_shop::catalog::ProductSummary` is what the cart parses each item as.
        for active in [true, false] {
            let (_, entry) = decode(encode(Form::Summary, &product(active)).unwrap()).unwrap();
            let json: Value = kirana_sdk::serde_json::from_slice(&entry).unwrap();
            assert!(json.get("description").is_none() && json.get("images").is_none());
            let summary: kirana_shop::catalog::ProductSummary =
                kirana_sdk::serde_json::from_value(json).unwrap();
            assert_eq!(
                (summary.id.as_str(), summary.price, summary.stock),
                ("prd_1", 28900, 3)
            );
            assert_eq!(summary.is_active, active);
            assert_eq!(summary.unit, "5 kg");
        }
    }

    #[test]
    fn the_lookup_body_lists_the_products_in_order() {
        let a = kirana_sdk::serde_json::to_vec(&product(true)).unwrap();
        let b = b"{\"id\":\"prd_2\"}".to_vec();
        let body = items_body([a.as_slice(), b.as_slice()].into_iter(), None, false);
        let v: Value = kirana_sdk::serde_json::from_slice(&body).unwrap();
        assert_eq!(v["items"][0]["name"], "Atta \"chakki\"");
        assert_eq!(v["items"][1]["id"], "prd_2");
        assert_eq!(
            items_body(std::iter::empty(), None, false),
            b"{\"items\":[]}"
        );
        // With a stamp, as the callers' `LookupReply` reads it.
        let stamp: Stamp = "-3.17.1700000000000000".parse().unwrap();
        let (_, c) = decode(encode(Form::Summary, &product(true)).unwrap()).unwrap();
        let body = items_body([c.as_slice()].into_iter(), Some(stamp), true);
        let reply: kirana_shop::catalog::LookupReply =
            kirana_sdk::serde_json::from_slice(&body).unwrap();
        assert_eq!(reply.stamp.as_deref(), Some("-3.17.1700000000000000"));
        assert!(reply.unchanged);
        assert_eq!(reply.items[0].id, "prd_1");
        let body = items_body(std::iter::empty(), Some(stamp), false);
        let reply: kirana_shop::catalog::LookupReply =
            kirana_sdk::serde_json::from_slice(&body).unwrap();
        assert!(!reply.unchanged && reply.stamp.is_some());
    }
}

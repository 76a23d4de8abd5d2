//! `GET /api/v1/products`: the query string parsed into filters, and the SQL that lists
//! and counts browsing pages. Pure, so it is unit-tested without a database. A listing
//! with `q` is a search: [`crate::search`] builds its SQL from the same filters.

use std::sync::OnceLock;
use std::time::Duration;

use kirana_sdk::cache::Cache;
use kirana_sdk::sql::{Dialect, Value};
use kirana_sdk::{config, ApiError, FieldError, Paging};

pub use crate::search::Binds;

/// Seconds a cached listing page may live when no write invalidates it first
/// (`[catalog] listing_cache_secs`; 0 turns the cache off). It bounds what invalidation
/// cannot reach: other replicas (each has its own KV store) and hand-made changes.
const DEFAULT_CACHE_SECS: u64 = 10;

/// Pages past this one are not cached.
const CACHED_PAGES: u32 = 10;
/// Page sizes whose pages are cached.
const CACHED_SIZES: [u32; 4] = [10, Paging::DEFAULT_PAGE_SIZE, 50, Paging::MAX_PAGE_SIZE];

/// Whether a listing's pages are cached: the browsing pages a storefront asks for
/// (a category or none, any sort, the first pages at the usual sizes). Searches and
/// price ranges are not, so clients cannot fill the store with made-up keys; with
/// empty pages not kept either (an unknown category), and one entry per key, the
/// entries are bounded by (categories + 1) × sorts × `in_stock` × sizes × pages.
pub fn cacheable(q: &ListQuery, paging: &Paging) -> bool {
    q.q.is_none()
        && q.min_price.is_none()
        && q.max_price.is_none()
        && paging.page <= CACHED_PAGES
        && CACHED_SIZES.contains(&paging.page_size)
}

/// Listing pages (the JSON answer), cached in the catalog's KV space. Every write to
/// products or categories calls `cache().invalidate()` within its call (so a read
/// between that and the commit may keep the old page until the TTL; see catalog.md).
pub fn cache() -> Cache {
    static TTL: OnceLock<Duration> = OnceLock::new();
    let ttl = *TTL.get_or_init(|| {
        Duration::from_secs(config::get_or("listing_cache_secs", DEFAULT_CACHE_SECS))
    });
    Cache::new("listing", env!("CARGO_PKG_VERSION"), ttl)
}

/// Longest `q` accepted, in characters.
pub const MAX_Q: usize = 200;
/// Most words of `q` searched for.
pub const MAX_TERMS: usize = 10;

/// `sort=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Relevance,
    PriceAsc,
    PriceDesc,
    Name,
    Newest,
}

impl Sort {
    pub fn parse(raw: &str) -> Option<Sort> {
        Some(match raw {
            "relevance" => Sort::Relevance,
            "price_asc" => Sort::PriceAsc,
            "price_desc" => Sort::PriceDesc,
            "name" => Sort::Name,
            "newest" => Sort::Newest,
            _ => return None,
        })
    }
}

/// The filters and order of one product listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// A category id or slug.
    pub category: Option<String>,
    /// `q` as given (a space at its end says the last word is finished), when it has
    /// any character other than spaces.
    pub q: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock: bool,
    pub sort: Sort,
}

impl ListQuery {
    /// Reads the query string through `get` (a query parameter by name); every bad
    /// parameter is listed in one `400 validation_failed`. Empty values count as absent.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, message: &str| {
            errors.push(FieldError {
                field: field.to_string(),
                message: message.to_string(),
            })
        };
        let present = |name: &str| get(name).filter(|v| !v.trim().is_empty());

        let category = present("category").map(|c| c.trim().to_string());

        let mut q_text = None;
        if let Some(q) = present("q") {
            let words: std::collections::BTreeSet<String> =
                crate::search::tokens(q).into_iter().collect();
            if q.chars().count() > MAX_Q {
                bad("q", &format!("must be at most {MAX_Q} characters"));
            } else if words.len() > MAX_TERMS {
                bad("q", &format!("must have at most {MAX_TERMS} words"));
            } else {
                q_text = Some(q.to_string());
            }
        }

        let mut price = |name: &str| -> Option<i64> {
            let raw = present(name)?;
            match raw.trim().parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => {
                    bad(name, "must be a non-negative integer (paise)");
                    None
                }
            }
        };
        let min_price = price("min_price");
        let max_price = price("max_price");

        let in_stock = match present("in_stock").map(str::trim) {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => true,
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => false,
            Some(_) => {
                bad("in_stock", "must be true or false");
                false
            }
        };

        let default_sort = if q_text.is_none() {
            Sort::Name
        } else {
            Sort::Relevance
        };
        let sort = match present("sort").map(str::trim) {
            None => default_sort,
            Some(raw) => Sort::parse(raw).unwrap_or_else(|| {
                bad(
                    "sort",
                    "must be one of relevance, price_asc, price_desc, name, newest",
                );
                default_sort
            }),
        };

        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(ListQuery {
            category,
            q: q_text,
            min_price,
            max_price,
            in_stock,
            sort,
        })
    }
}

/// A statement with its parameters.
#[derive(Debug, Clone)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Value>,
}

const FROM: &str = "FROM products p JOIN categories c ON c.id = p.category_id";
/// The name as the listing orders by it (the name-order index's expression).
const NAME: &str = "LOWER(p.name)";

/// The filters other than `q` (`p` is the product, `c` its category), ANDed.
pub fn filters(q: &ListQuery, b: &mut Binds) -> String {
    let mut parts = vec!["p.is_active".to_string()];
    if let Some(cat) = &q.category {
        parts.push(format!(
            "(c.id = {} OR c.slug = {})",
            b.text(cat),
            b.text(cat)
        ));
    }
    if let Some(min) = q.min_price {
        parts.push(format!("p.price >= {}", b.int(min)));
    }
    if let Some(max) = q.max_price {
        parts.push(format!("p.price <= {}", b.int(max)));
    }
    if q.in_stock {
        parts.push("p.stock > 0".to_string());
    }
    parts.join(" AND ")
}

/// Byte-wise ordering on PostgreSQL too (its default collation may ignore case and
/// punctuation), so both backends list in the same order.
pub fn collate(expr: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => format!("{expr} COLLATE \"C\""),
        Dialect::Sqlite => expr.to_string(),
    }
}

/// The name order: case-insensitive name, then name, then id.
pub fn name_order(dialect: Dialect) -> String {
    format!(
        "{}, {}, {}",
        collate(NAME, dialect),
        collate("p.name", dialect),
        collate("p.id", dialect)
    )
}

/// `ORDER BY` of a listing; `relevance` is the order of a search (for a plain listing,
/// relevance is the name order).
pub fn order_by(q: &ListQuery, dialect: Dialect, relevance: &str) -> String {
    let by_name = name_order(dialect);
    match q.sort {
        Sort::Relevance if q.q.is_some() => relevance.to_string(),
        Sort::Relevance | Sort::Name => by_name,
        Sort::PriceAsc => format!("p.price ASC, {by_name}"),
        Sort::PriceDesc => format!("p.price DESC, {by_name}"),
        Sort::Newest => format!("p.created_us DESC, {} DESC", collate("p.id", dialect)),
    }
}

/// One page of a listing without `q`.
pub fn page_statement(q: &ListQuery, dialect: Dialect, limit: i64, offset: i64) -> Statement {
    let mut b = Binds::default();
    let cols = crate::model::PRODUCT_COLUMNS;
    let filter = filters(q, &mut b);
    let order = order_by(q, dialect, "");
    let sql = format!(
        "SELECT {cols} {FROM} WHERE {filter} ORDER BY {order} LIMIT {} OFFSET {}",
        b.int(limit),
        b.int(offset)
    );
    Statement { sql, params: b.0 }
}

/// How many products a listing without `q` holds in all.
///
/// The categories are joined only when a filter reads them. Without one the join
/// cannot change the count: a product is written only with a category that exists,
/// and categories are never deleted. Counting `products` alone reads just
/// `products_active_idx`.
pub fn count_statement(q: &ListQuery) -> Statement {
    let mut b = Binds::default();
    let filter = filters(q, &mut b);
    let from = if q.category.is_some() {
        FROM
    } else {
        "FROM products p"
    };
    Statement {
        sql: format!("SELECT COUNT(*) AS n {from} WHERE {filter}"),
        params: b.0,
    }
}

/// How many `$n` a statement uses (for tests).
#[cfg(test)]
pub fn count_params(sql: &str) -> usize {
    sql.matches('$').count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(query: &[(&str, &str)]) -> Result<ListQuery, ApiError> {
        let map: HashMap<&str, &str> = query.iter().copied().collect();
        ListQuery::parse(|k| map.get(k).copied())
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

    #[test]
    fn only_browsing_pages_at_the_usual_sizes_are_cached() {
        let paging = |page, page_size| Paging { page, page_size };
        let browse = parse(&[("category", "dairy-bread"), ("sort", "price_asc")]).unwrap();
        assert!(cacheable(&browse, &paging(1, 20)));
        assert!(cacheable(&browse, &paging(10, 100)));
        assert!(!cacheable(&browse, &paging(11, 20)));
        assert!(!cacheable(&browse, &paging(1, 21)));
        for q in [
            [("q", "milk")],
            [("min_price", "100")],
            [("max_price", "900")],
        ] {
            assert!(!cacheable(&parse(&q).unwrap(), &paging(1, 20)), "{q:?}");
        }
    }

    #[test]
    fn defaults() {
        let q = parse(&[]).unwrap();
        assert_eq!(q.sort, Sort::Name);
        assert!(q.q.is_none() && !q.in_stock && q.category.is_none());
        let q = parse(&[("q", "  Aloo   BHUJIA aloo ")]).unwrap();
        assert_eq!(q.sort, Sort::Relevance);
        assert_eq!(q.q.as_deref(), Some("  Aloo   BHUJIA aloo "));
        let q = parse(&[("q", "   "), ("sort", ""), ("min_price", "")]).unwrap();
        assert_eq!((q.sort, q.min_price), (Sort::Name, None));
    }

    #[test]
    fn filters_parse() {
        let q = parse(&[
            ("category", "snacks"),
            ("min_price", "100"),
            ("max_price", "0"),
            ("in_stock", "true"),
            ("sort", "price_desc"),
        ])
        .unwrap();
        assert_eq!(q.category.as_deref(), Some("snacks"));
        assert_eq!((q.min_price, q.max_price), (Some(100), Some(0)));
        assert!(q.in_stock);
        assert_eq!(q.sort, Sort::PriceDesc);
        assert!(!parse(&[("in_stock", "false")]).unwrap().in_stock);
        for s in ["relevance", "price_asc", "price_desc", "name", "newest"] {
            assert!(parse(&[("sort", s)]).is_ok(), "{s}");
        }
    }

    #[test]
    fn bad_parameters_are_all_named() {
        let e = parse(&[
            ("min_price", "abc"),
            ("max_price", "-1"),
            ("sort", "cheapest"),
            ("in_stock", "maybe"),
        ])
        .unwrap_err();
        assert_eq!(e.code, "validation_failed");
        assert_eq!(fields(&e), ["min_price", "max_price", "in_stock", "sort"]);
        for bad in ["10.5", "1e3", "ten", "99999999999999999999"] {
            assert_eq!(
                fields(&parse(&[("max_price", bad)]).unwrap_err()),
                ["max_price"]
            );
        }
        assert_eq!(
            fields(&parse(&[("sort", "PRICE_ASC")]).unwrap_err()),
            ["sort"]
        );
        let long = "a".repeat(MAX_Q + 1);
        assert_eq!(fields(&parse(&[("q", &long)]).unwrap_err()), ["q"]);
        let many = (0..=MAX_TERMS)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(fields(&parse(&[("q", &many)]).unwrap_err()), ["q"]);
        // Words are counted as search reads them, not by spaces.
        assert_eq!(
            fields(&parse(&[("q", &many.replace(' ', "-"))]).unwrap_err()),
            ["q"]
        );
        // Punctuation alone is a query that finds nothing, not an error.
        assert!(parse(&[("q", "*** \" NEAR")]).is_ok());
    }

    #[test]
    fn orders_are_deterministic_on_both_backends() {
        let cases = [
            ("name", "ORDER BY LOWER(p.name), p.name, p.id LIMIT"),
            (
                "price_asc",
                "ORDER BY p.price ASC, LOWER(p.name), p.name, p.id LIMIT",
            ),
            (
                "price_desc",
                "ORDER BY p.price DESC, LOWER(p.name), p.name, p.id LIMIT",
            ),
            ("newest", "ORDER BY p.created_us DESC, p.id DESC LIMIT"),
            ("relevance", "ORDER BY LOWER(p.name), p.name, p.id LIMIT"),
        ];
        for (sort, expected) in cases {
            let q = parse(&[("sort", sort)]).unwrap();
            let st = page_statement(&q, Dialect::Sqlite, 20, 0);
            assert!(st.sql.contains(expected), "{sort}: {}", st.sql);
            assert!(!st.sql.contains("score"));
        }
        let q = parse(&[("sort", "name")]).unwrap();
        let st = page_statement(&q, Dialect::Postgres, 20, 0);
        assert!(st.sql.contains(
            "ORDER BY LOWER(p.name) COLLATE \"C\", p.name COLLATE \"C\", p.id COLLATE \"C\""
        ));
        // With q, relevance is the search's order; other sorts keep theirs.
        let q = parse(&[("q", "tea")]).unwrap();
        assert_eq!(order_by(&q, Dialect::Sqlite, "score DESC"), "score DESC");
        let q = parse(&[("q", "tea"), ("sort", "price_asc")]).unwrap();
        assert!(order_by(&q, Dialect::Sqlite, "score DESC").starts_with("p.price ASC"));
    }

    #[test]
    fn page_sql_binds_every_parameter_once() {
        let q = parse(&[
            ("category", "snacks"),
            ("min_price", "1"),
            ("max_price", "9000"),
            ("in_stock", "true"),
        ])
        .unwrap();
        let st = page_statement(&q, Dialect::Sqlite, 20, 40);
        assert_eq!(count_params(&st.sql), st.params.len());
        assert!(matches!(st.params[st.params.len() - 2], Value::Int(20)));
        assert!(matches!(st.params[st.params.len() - 1], Value::Int(40)));
        assert!(st.sql.contains("p.stock > 0"));
        assert!(st.sql.contains("(c.id = $1 OR c.slug = $2)"));
        let count = count_statement(&q);
        assert!(count.sql.contains(FROM), "a category filter needs the join");
        assert_eq!(count_params(&count.sql), count.params.len());
    }

    #[test]
    fn the_plain_count_reads_products_alone() {
        let plain = count_statement(&parse(&[("min_price", "100"), ("in_stock", "true")]).unwrap());
        assert!(!plain.sql.contains("JOIN"), "{}", plain.sql);
        assert!(plain.sql.contains("p.price >= $1") && plain.sql.contains("p.stock > 0"));
    }
}

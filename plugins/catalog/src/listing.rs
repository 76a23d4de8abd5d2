//! `GET /api/v1/products`: the query string parsed into filters, and the SQL that lists,
//! counts and ranks. Pure, so the ranking is unit-tested without a database.
//!
//! Search: `q` is split into words (at most [`MAX_TERMS`]); a product matches when every
//! word occurs, case-insensitively, in its name, brand or category name, or starts a
//! word of its description.
//! Each word scores 100 when it starts a word of the name, 60 when it sits inside the
//! name, 10 in the brand or category name, 1 in the description only; the whole phrase
//! inside the name adds 500. So any name match ranks above brand/category matches,
//! which rank above description-only matches. `%` and `_` in `q` match themselves.

use std::sync::OnceLock;
use std::time::Duration;

use kirana_sdk::cache::Cache;
use kirana_sdk::sql::{Dialect, Value};
use kirana_sdk::{config, ApiError, FieldError, Paging};

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
    q.terms.is_empty()
        && q.min_price.is_none()
        && q.max_price.is_none()
        && paging.page <= CACHED_PAGES
        && CACHED_SIZES.contains(&paging.page_size)
}

/// Listing pages (the JSON answer), cached in the catalog's KV space. Every write to
/// products or categories calls `cache().invalidate()` after it commits.
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
    /// Lower-cased words of `q`, without duplicates.
    pub terms: Vec<String>,
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

        let mut terms: Vec<String> = Vec::new();
        if let Some(q) = present("q") {
            if q.chars().count() > MAX_Q {
                bad("q", &format!("must be at most {MAX_Q} characters"));
            } else {
                for word in q.split_whitespace().map(str::to_lowercase) {
                    if !terms.contains(&word) {
                        terms.push(word);
                    }
                }
                if terms.len() > MAX_TERMS {
                    bad("q", &format!("must have at most {MAX_TERMS} words"));
                }
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

        let default_sort = if terms.is_empty() {
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
            terms,
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

/// Numbered parameters, each used once (so the SQL binds the same way on SQLite and
/// PostgreSQL whatever the driver does with repeated `$n`).
#[derive(Default)]
struct Binds(Vec<Value>);

impl Binds {
    fn text(&mut self, s: impl Into<String>) -> String {
        self.0.push(Value::Text(s.into()));
        format!("${}", self.0.len())
    }
    fn int(&mut self, n: i64) -> String {
        self.0.push(Value::Int(n));
        format!("${}", self.0.len())
    }
}

/// `s` with the LIKE wildcards and the escape character escaped (escape is `\`).
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

const FROM: &str = "FROM products p JOIN categories c ON c.id = p.category_id";
/// The name as the listing orders by it (the name-order index's expression).
const NAME: &str = "LOWER(p.name)";

/// The texts search words are matched against (words are lower-cased). PostgreSQL's
/// `LIKE` is case-sensitive, so it matches `LOWER(text)`; SQLite's `LIKE` already
/// ignores ASCII case and its `LOWER` folds only ASCII, so there the texts are matched
/// as they are — the same matches, without a lower-cased copy of every text per row.
struct Texts {
    name: &'static str,
    brand: &'static str,
    category: &'static str,
    description: &'static str,
}

fn texts(dialect: Dialect) -> Texts {
    match dialect {
        Dialect::Postgres => Texts {
            name: NAME,
            brand: "LOWER(COALESCE(p.brand, ''))",
            category: "LOWER(c.name)",
            description: "LOWER(COALESCE(p.description, ''))",
        },
        Dialect::Sqlite => Texts {
            name: "p.name",
            brand: "COALESCE(p.brand, '')",
            category: "c.name",
            description: "COALESCE(p.description, '')",
        },
    }
}

fn like(column: &str, param: &str) -> String {
    format!("{column} LIKE {param} ESCAPE '\\'")
}

fn where_clause(q: &ListQuery, b: &mut Binds, dialect: Dialect) -> String {
    let x = texts(dialect);
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
    for term in &q.terms {
        let t = like_escape(term);
        let inside = format!("%{t}%");
        let mut any: Vec<String> = [x.name, x.brand, x.category]
            .iter()
            .map(|col| like(col, &b.text(inside.clone())))
            .collect();
        // Descriptions are long prose: only a word that starts with the term counts
        // ("tea" finds "tea leaves", not "steamed").
        any.push(like(x.description, &b.text(format!("{t}%"))));
        any.push(like(x.description, &b.text(format!("% {t}%"))));
        parts.push(format!("({})", any.join(" OR ")));
    }
    parts.join(" AND ")
}

/// The relevance score expression (see the module docs).
fn score(q: &ListQuery, b: &mut Binds, dialect: Dialect) -> String {
    let x = texts(dialect);
    let mut parts: Vec<String> = Vec::new();
    for term in &q.terms {
        let t = like_escape(term);
        let starts = like(x.name, &b.text(format!("{t}%")));
        let word = like(x.name, &b.text(format!("% {t}%")));
        let inside = like(x.name, &b.text(format!("%{t}%")));
        let brand = like(x.brand, &b.text(format!("%{t}%")));
        let category = like(x.category, &b.text(format!("%{t}%")));
        parts.push(format!(
            "(CASE WHEN {starts} OR {word} THEN 100 WHEN {inside} THEN 60 \
             WHEN {brand} OR {category} THEN 10 ELSE 1 END)"
        ));
    }
    if q.terms.len() > 1 {
        let phrase = q
            .terms
            .iter()
            .map(|t| like_escape(t))
            .collect::<Vec<_>>()
            .join(" ");
        let inside = like(x.name, &b.text(format!("%{phrase}%")));
        parts.push(format!("(CASE WHEN {inside} THEN 500 ELSE 0 END)"));
    }
    if parts.is_empty() {
        "0".to_string()
    } else {
        parts.join(" + ")
    }
}

/// Byte-wise ordering on PostgreSQL too (its default collation may ignore case and
/// punctuation), so both backends list in the same order.
pub fn collate(expr: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => format!("{expr} COLLATE \"C\""),
        Dialect::Sqlite => expr.to_string(),
    }
}

fn order_by(q: &ListQuery, dialect: Dialect) -> String {
    let by_name = format!(
        "{}, {}, {}",
        collate(NAME, dialect),
        collate("p.name", dialect),
        collate("p.id", dialect)
    );
    match q.sort {
        Sort::Relevance if !q.terms.is_empty() => format!("score DESC, {by_name}"),
        Sort::Relevance | Sort::Name => by_name,
        Sort::PriceAsc => format!("p.price ASC, {by_name}"),
        Sort::PriceDesc => format!("p.price DESC, {by_name}"),
        Sort::Newest => format!("p.created_us DESC, {} DESC", collate("p.id", dialect)),
    }
}

/// One page of the listing.
pub fn page_statement(q: &ListQuery, dialect: Dialect, limit: i64, offset: i64) -> Statement {
    let mut b = Binds::default();
    let ranked = q.sort == Sort::Relevance && !q.terms.is_empty();
    let score = if ranked {
        format!(", {} AS score", score(q, &mut b, dialect))
    } else {
        String::new()
    };
    let cols = crate::model::PRODUCT_COLUMNS;
    let filter = where_clause(q, &mut b, dialect);
    let order = order_by(q, dialect);
    let sql = format!(
        "SELECT {cols}{score} {FROM} WHERE {filter} ORDER BY {order} LIMIT {} OFFSET {}",
        b.int(limit),
        b.int(offset)
    );
    Statement { sql, params: b.0 }
}

/// How many products the listing holds in all.
///
/// The categories are joined only when a filter reads them (a category, or search
/// words, which also match category names). Without one the join cannot change the
/// count: a product is written only with a category that exists, and categories are
/// never deleted. Counting `products` alone reads just `products_active_idx`.
pub fn count_statement(q: &ListQuery, dialect: Dialect) -> Statement {
    let mut b = Binds::default();
    let filter = where_clause(q, &mut b, dialect);
    let from = if q.category.is_some() || !q.terms.is_empty() {
        FROM
    } else {
        "FROM products p"
    };
    Statement {
        sql: format!("SELECT COUNT(*) AS n {from} WHERE {filter}"),
        params: b.0,
    }
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

    fn count_params(sql: &str) -> usize {
        sql.matches('$').count()
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
        assert!(q.terms.is_empty() && !q.in_stock && q.category.is_none());
        let q = parse(&[("q", "  Aloo   BHUJIA aloo ")]).unwrap();
        assert_eq!(q.sort, Sort::Relevance);
        assert_eq!(q.terms, ["aloo", "bhujia"]);
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
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(like_escape("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(like_escape("atta"), "atta");
    }

    #[test]
    fn page_sql_binds_every_parameter_once() {
        let q = parse(&[
            ("q", "Aloo bhujia"),
            ("category", "snacks"),
            ("min_price", "1"),
            ("max_price", "9000"),
            ("in_stock", "true"),
        ])
        .unwrap();
        let st = page_statement(&q, Dialect::Sqlite, 20, 40);
        assert_eq!(count_params(&st.sql), st.params.len());
        let mut used: Vec<usize> = st
            .sql
            .split('$')
            .skip(1)
            .map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().unwrap()
            })
            .collect();
        used.sort();
        assert_eq!(used, (1..=st.params.len()).collect::<Vec<_>>());
        assert!(st.sql.contains("AS score"));
        assert!(st
            .sql
            .contains("ORDER BY score DESC, LOWER(p.name), p.name, p.id LIMIT"));
        assert!(matches!(st.params[st.params.len() - 2], Value::Int(20)));
        assert!(matches!(st.params[st.params.len() - 1], Value::Int(40)));
        assert!(st.sql.contains("p.stock > 0"));
        assert!(st.sql.contains("p.price >= ") && st.sql.contains("p.price <= "));
        assert!(st.sql.contains("(c.id = $") && st.sql.contains(" OR c.slug = $"));

        let count = count_statement(&q, Dialect::Sqlite);
        assert!(count.sql.contains(FROM), "a category filter needs the join");
        assert!(count.sql.contains("(c.id = $1 OR c.slug = $2)"));
        assert_eq!(count_params(&count.sql), count.params.len());
        assert!(!count.sql.contains("ORDER BY") && !count.sql.contains("score"));
    }

    #[test]
    fn search_matches_lower_cased_texts_on_postgres_and_the_texts_on_sqlite() {
        let q = parse(&[("q", "milk")]).unwrap();
        let pg = page_statement(&q, Dialect::Postgres, 20, 0).sql;
        assert!(
            pg.contains("LOWER(COALESCE(p.description, '')) LIKE"),
            "{pg}"
        );
        let lite = page_statement(&q, Dialect::Sqlite, 20, 0).sql;
        assert!(lite.contains("COALESCE(p.description, '') LIKE"), "{lite}");
        assert!(!lite.contains("LOWER(COALESCE") && !lite.contains("LOWER(c.name)"));
        // The order keeps the name-order index's expression.
        assert!(
            lite.contains("ORDER BY score DESC, LOWER(p.name)"),
            "{lite}"
        );
        let count = count_statement(&q, Dialect::Sqlite).sql;
        assert!(!count.contains("LOWER("), "{count}");
    }

    #[test]
    fn score_ranks_name_over_brand_over_description() {
        let q = parse(&[("q", "milk")]).unwrap();
        let st = page_statement(&q, Dialect::Sqlite, 20, 0);
        let texts: Vec<&str> = st
            .params
            .iter()
            .filter_map(|v| match v {
                Value::Text(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        // score: name starts, name word, name inside, brand, category; then the filter:
        // name, brand, category inside, description word start (2).
        assert_eq!(
            texts,
            [
                "milk%", "% milk%", "%milk%", "%milk%", "%milk%", "%milk%", "%milk%", "%milk%",
                "milk%", "% milk%"
            ]
        );
        let s = st.sql.as_str();
        let (name, inside, other, desc) = (
            s.find("THEN 100").unwrap(),
            s.find("THEN 60").unwrap(),
            s.find("THEN 10 ").unwrap(),
            s.find("ELSE 1 END").unwrap(),
        );
        assert!(name < inside && inside < other && other < desc);
        // Several words: each word must match somewhere, and the phrase earns a bonus.
        let q = parse(&[("q", "aloo bhujia")]).unwrap();
        let st = page_statement(&q, Dialect::Sqlite, 20, 0);
        assert!(st.sql.contains("THEN 500"));
        assert!(st
            .params
            .iter()
            .any(|v| matches!(v, Value::Text(t) if t == "%aloo bhujia%")));
        assert_eq!(st.sql.matches(") AND (").count(), 1);
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
        // A sort other than relevance ignores the score even with q.
        let q = parse(&[("q", "tea"), ("sort", "price_asc")]).unwrap();
        let st = page_statement(&q, Dialect::Sqlite, 20, 0);
        assert!(!st.sql.contains("score") && st.sql.contains("LIKE"));
    }

    #[test]
    fn the_plain_count_reads_products_alone() {
        let plain = count_statement(
            &parse(&[("min_price", "100"), ("in_stock", "true")]).unwrap(),
            Dialect::Sqlite,
        );
        assert!(!plain.sql.contains("JOIN"), "{}", plain.sql);
        assert!(plain.sql.contains("p.price >= $1") && plain.sql.contains("p.stock > 0"));
        let searched = count_statement(&parse(&[("q", "dairy")]).unwrap(), Dialect::Sqlite);
        assert!(
            searched.sql.contains(FROM),
            "words also match category names"
        );
    }
}

//! Product search, the database half: the search tables, keeping them in step with
//! product writes (in the same call, so in the same transaction), rebuilding them in
//! the migration, and answering `GET /products?q=` and `GET /products/suggest`.
//!
//! Tables (see docs/plugins/catalog.md, "Search"):
//! - `product_search`: one row per active product, its texts as [`search::Doc`] makes
//!   them. SQLite indexes it with the FTS5 table `product_fts` (external content, kept
//!   by triggers on `product_search`); PostgreSQL with the generated `tsvector` column
//!   `document` (name, brand, category, description weighted A–D) and a GIN index.
//! - `search_words`: the vocabulary, each word with how many indexed products hold it.
//! - `search_variants`: one-deletion variants of the vocabulary's words (SymSpell), to
//!   find a typo's word without scanning the vocabulary.
//! - `search_meta`: the [`search::FORMAT`] the index was built with.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::Duration;

use kirana_sdk::cache::Computed;
use kirana_sdk::prelude::*;
use kirana_sdk::sql::{self, Dialect, Value};
use kirana_sdk::{config, kv, CapError};

use crate::listing::{self, ListQuery, MAX_Q, MAX_TERMS};
use crate::model::{Product, PRODUCT_COLUMNS};
use crate::search::{self, Binds, Doc, SearchQuery, Synonyms};

/// Rows per INSERT while (re)building the index.
const BATCH: usize = 200;

/// Search and suggest answers kept per cache window (the listing cache's TTL): queries
/// are the client's to choose, so the cache may not grow with them. Past the budget,
/// answers are computed and not kept until the next window.
const CACHED_ANSWERS: i64 = 500;

/// Largest page a search answer is cached for.
const CACHED_PAGE_SIZE: u32 = 20;

fn tables(dialect: Dialect) -> Vec<&'static str> {
    let mut t = match dialect {
        Dialect::Sqlite => vec![
            "CREATE TABLE IF NOT EXISTS product_search (
                rid INTEGER PRIMARY KEY,
                product_id TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                brand TEXT NOT NULL,
                category TEXT NOT NULL,
                description TEXT NOT NULL
            )",
            // Words arrive already split and normalised (`search::index_text`), so
            // the tokenizer only splits on the spaces; prefix indexes serve the word
            // being typed.
            "CREATE VIRTUAL TABLE IF NOT EXISTS product_fts USING fts5(
                name, brand, category, description,
                content = 'product_search', content_rowid = 'rid',
                tokenize = 'unicode61 remove_diacritics 0', prefix = '2 3'
            )",
            "CREATE TRIGGER IF NOT EXISTS product_search_ai AFTER INSERT ON product_search BEGIN
                INSERT INTO product_fts (rowid, name, brand, category, description)
                VALUES (new.rid, new.name, new.brand, new.category, new.description);
            END",
            "CREATE TRIGGER IF NOT EXISTS product_search_ad AFTER DELETE ON product_search BEGIN
                INSERT INTO product_fts (product_fts, rowid, name, brand, category, description)
                VALUES ('delete', old.rid, old.name, old.brand, old.category, old.description);
            END",
            "CREATE TRIGGER IF NOT EXISTS product_search_au AFTER UPDATE ON product_search BEGIN
                INSERT INTO product_fts (product_fts, rowid, name, brand, category, description)
                VALUES ('delete', old.rid, old.name, old.brand, old.category, old.description);
                INSERT INTO product_fts (rowid, name, brand, category, description)
                VALUES (new.rid, new.name, new.brand, new.category, new.description);
            END",
        ],
        Dialect::Postgres => vec![
            "CREATE TABLE IF NOT EXISTS product_search (
                product_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                brand TEXT NOT NULL,
                category TEXT NOT NULL,
                description TEXT NOT NULL,
                document tsvector GENERATED ALWAYS AS (
                    setweight(to_tsvector('simple', name), 'A') ||
                    setweight(to_tsvector('simple', brand), 'B') ||
                    setweight(to_tsvector('simple', category), 'C') ||
                    setweight(to_tsvector('simple', description), 'D')
                ) STORED
            )",
            "CREATE INDEX IF NOT EXISTS product_search_document_idx
                ON product_search USING GIN (document)",
        ],
    };
    t.extend([
        "CREATE TABLE IF NOT EXISTS search_words (
            word TEXT PRIMARY KEY,
            docs BIGINT NOT NULL
        )",
        "CREATE TABLE IF NOT EXISTS search_variants (
            variant TEXT NOT NULL,
            word TEXT NOT NULL,
            PRIMARY KEY (variant, word)
        )",
        "CREATE TABLE IF NOT EXISTS search_meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )",
    ]);
    t
}

/// Run by `migrate` (after the products' tables and the seed): creates the search
/// tables and indexes what is not indexed yet. The whole index is rebuilt when it was
/// built by other text rules ([`search::FORMAT`]) or when another version of the
/// catalog was live before this one (`from`), since that version may have written
/// products without indexing them; otherwise only active products without an index
/// row are added (a fresh install's seed, say).
pub fn migrate(from: Option<&str>) -> Result<(), CapError> {
    sql::execute_batch(&tables(sql::dialect()))?;
    let format: Option<String> = sql::query(
        "SELECT value FROM search_meta WHERE key = $1",
        &params!["format"],
    )?
    .first()
    .map(|r| r.get("value"))
    .transpose()?;
    let other_version = from.is_some_and(|v| v != env!("CARGO_PKG_VERSION"));
    if format.as_deref() != Some(search::FORMAT) || other_version {
        for table in ["product_search", "search_words", "search_variants"] {
            sql::execute(&format!("DELETE FROM {table}"), &[])?;
        }
        sql::execute(
            "INSERT INTO search_meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &params!["format", search::FORMAT],
        )?;
    }
    index_missing()
}

/// A product's texts as the index needs them.
struct Source {
    id: String,
    doc: Doc,
}

fn source_rows(filter: &str, params: &[Value]) -> Result<Vec<Source>, CapError> {
    let rows = sql::query(
        &format!(
            "SELECT p.id, p.name, COALESCE(p.brand, '') AS brand, \
             COALESCE(p.description, '') AS description, c.name AS category \
             FROM products p JOIN categories c ON c.id = p.category_id WHERE {filter}"
        ),
        params,
    )?;
    rows.iter()
        .map(|r| {
            let (name, brand, description, category): (String, String, String, String) = (
                r.get("name")?,
                r.get("brand")?,
                r.get("description")?,
                r.get("category")?,
            );
            Ok(Source {
                id: r.get("id")?,
                doc: Doc::new(&name, &brand, &category, &description),
            })
        })
        .collect()
}

/// Indexes every active product that has no index row.
fn index_missing() -> Result<(), CapError> {
    let sources = source_rows(
        "p.is_active AND NOT EXISTS \
         (SELECT 1 FROM product_search s WHERE s.product_id = p.id)",
        &[],
    )?;
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for chunk in sources.chunks(BATCH) {
        let mut b = Binds::default();
        let rows: Vec<String> = chunk
            .iter()
            .map(|s| {
                format!(
                    "({}, {}, {}, {}, {})",
                    b.text(&s.id),
                    b.text(&s.doc.name),
                    b.text(&s.doc.brand),
                    b.text(&s.doc.category),
                    b.text(&s.doc.description)
                )
            })
            .collect();
        sql::execute(
            &format!(
                "INSERT INTO product_search (product_id, name, brand, category, description) \
                 VALUES {}",
                rows.join(", ")
            ),
            &b.0,
        )?;
        for s in chunk {
            for w in s.doc.words() {
                *counts.entry(w).or_default() += 1;
            }
        }
    }
    add_words(&counts)
}

/// Adds `counts` to the vocabulary (and the new words' variants).
fn add_words(counts: &BTreeMap<String, i64>) -> Result<(), CapError> {
    let words: Vec<(&String, &i64)> = counts.iter().collect();
    for chunk in words.chunks(BATCH) {
        let mut b = Binds::default();
        let rows: Vec<String> = chunk
            .iter()
            .map(|(w, n)| format!("({}, {})", b.text(w.as_str()), b.int(**n)))
            .collect();
        sql::execute(
            &format!(
                "INSERT INTO search_words (word, docs) VALUES {} \
                 ON CONFLICT (word) DO UPDATE SET docs = search_words.docs + excluded.docs",
                rows.join(", ")
            ),
            &b.0,
        )?;
    }
    let variants: Vec<(String, &String)> = counts
        .keys()
        .flat_map(|w| {
            search::vocabulary_variants(w)
                .into_iter()
                .map(move |v| (v, w))
        })
        .collect();
    for chunk in variants.chunks(BATCH * 4) {
        let mut b = Binds::default();
        let rows: Vec<String> = chunk
            .iter()
            .map(|(v, w)| format!("({}, {})", b.text(v.as_str()), b.text(w.as_str())))
            .collect();
        sql::execute(
            &format!(
                "INSERT INTO search_variants (variant, word) VALUES {} \
                 ON CONFLICT (variant, word) DO NOTHING",
                rows.join(", ")
            ),
            &b.0,
        )?;
    }
    Ok(())
}

/// Brings product `id`'s index row and the vocabulary in line with the product as it
/// is now (indexed while active, gone otherwise). Every product write calls it after
/// its own statement, in the same call: both commit together or not at all. Any
/// failure is a 500, which rolls the product write back with it (a 409 would commit
/// the write without its index row).
pub fn reindex(id: &str) -> Result<(), ApiError> {
    index_product(id).map_err(|e| {
        ApiError::internal(format!(
            "indexing product {id} for search failed: {}",
            kirana_sdk::cap_error_message(&e)
        ))
    })
}

fn index_product(id: &str) -> Result<(), CapError> {
    let new = source_rows("p.id = $1 AND p.is_active", &params![id])?
        .pop()
        .map(|s| s.doc);
    let old: Option<Doc> = sql::query(
        "SELECT name, brand, category, description FROM product_search WHERE product_id = $1",
        &params![id],
    )?
    .first()
    .map(|r| -> Result<Doc, CapError> {
        Ok(Doc {
            name: r.get("name")?,
            brand: r.get("brand")?,
            category: r.get("category")?,
            description: r.get("description")?,
        })
    })
    .transpose()?;
    if old == new {
        return Ok(());
    }
    match &new {
        Some(d) => {
            sql::execute(
                "INSERT INTO product_search (product_id, name, brand, category, description) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (product_id) DO UPDATE SET \
                 name = excluded.name, brand = excluded.brand, \
                 category = excluded.category, description = excluded.description",
                &params![id, d.name, d.brand, d.category, d.description],
            )?;
        }
        None => {
            sql::execute(
                "DELETE FROM product_search WHERE product_id = $1",
                &params![id],
            )?;
        }
    }
    let before = old.map(|d| d.words()).unwrap_or_default();
    let after = new.map(|d| d.words()).unwrap_or_default();
    let gone: Vec<String> = before.difference(&after).cloned().collect();
    if !gone.is_empty() {
        let mut b = Binds::default();
        let list: Vec<String> = gone.iter().map(|w| b.text(w.as_str())).collect();
        sql::execute(
            &format!(
                "UPDATE search_words SET docs = docs - 1 WHERE word IN ({})",
                list.join(", ")
            ),
            &b.0,
        )?;
    }
    let added: BTreeMap<String, i64> = after.difference(&before).map(|w| (w.clone(), 1)).collect();
    add_words(&added)
}

/// The synonyms in force: `[catalog] synonyms` when set (an empty value turns them
/// off), else [`search::DEFAULT_SYNONYMS`].
pub fn synonyms() -> &'static Synonyms {
    static SYNONYMS: OnceLock<Synonyms> = OnceLock::new();
    SYNONYMS.get_or_init(|| {
        let spec = config::get("synonyms");
        Synonyms::parse(spec.as_deref().unwrap_or(search::DEFAULT_SYNONYMS))
    })
}

/// Keeps a computed answer in the listing cache while this window's budget lasts.
fn cached(
    key: &str,
    compute: impl FnOnce() -> Result<(Vec<u8>, bool), ApiError>,
) -> Result<Vec<u8>, ApiError> {
    listing::cache().get_or_compute(key, || {
        let (body, found) = compute()?;
        Ok::<_, ApiError>(if found && within_budget() {
            Computed::Keep(body)
        } else {
            Computed::Pass(body)
        })
    })
}

fn within_budget() -> bool {
    let secs = config::get_or("listing_cache_secs", 10u64).max(1);
    let window = kirana_sdk::now().unix_timestamp().max(0) as u64 / secs;
    kv::incr(
        &format!("search:budget:{window}"),
        1,
        Some(Duration::from_secs(secs * 2)),
    )
    .is_ok_and(|n| n <= CACHED_ANSWERS)
}

/// Corrects the words of `q` that the vocabulary does not know (one typo, words of
/// [`search::MIN_TYPO_LEN`]+ letters); `None` when there is nothing to correct.
fn correct(q: &SearchQuery) -> Result<Option<SearchQuery>, CapError> {
    let eligible: Vec<usize> = (0..q.words.len())
        .filter(|i| q.words[*i].correctable())
        .collect();
    if eligible.is_empty() {
        return Ok(None);
    }
    let variants: BTreeSet<String> = eligible
        .iter()
        .flat_map(|i| search::query_variants(&q.words[*i].typed))
        .collect();
    let mut b = Binds::default();
    let list: Vec<String> = variants.iter().map(|v| b.text(v.as_str())).collect();
    let rows = sql::query(
        &format!(
            "SELECT DISTINCT w.word, w.docs FROM search_variants v \
             JOIN search_words w ON w.word = v.word \
             WHERE w.docs > 0 AND v.variant IN ({})",
            list.join(", ")
        ),
        &b.0,
    )?;
    let candidates: Vec<(String, i64)> = rows
        .iter()
        .map(|r| Ok((r.get("word")?, r.get("docs")?)))
        .collect::<Result<_, CapError>>()?;
    let mut out = q.clone();
    let mut changed = false;
    for i in eligible {
        let w = &q.words[i];
        let known = candidates.iter().any(|(c, _)| {
            w.exact.contains(c) || (w.prefix && w.exact.iter().any(|e| c.starts_with(e)))
        });
        if known {
            continue;
        }
        if let Some(fix) = search::best_correction(&w.typed, w.prefix, &candidates) {
            out = out.corrected(i, &fix, synonyms());
            changed = true;
        }
    }
    Ok(changed.then_some(out))
}

/// One (category, brand) group of a search's matches.
struct Group {
    slug: String,
    category: String,
    brand: String,
    count: i64,
}

fn groups(q: &SearchQuery, list: &ListQuery, dialect: Dialect) -> Result<Vec<Group>, CapError> {
    let mut b = Binds::default();
    let from = search::matched_from(q, &mut b, dialect, false);
    let filter = listing::filters(list, &mut b);
    let rows = sql::query(
        &format!(
            "SELECT c.slug AS slug, c.name AS category, COALESCE(p.brand, '') AS brand, \
             COUNT(*) AS n {from} AND {filter} \
             GROUP BY c.slug, c.name, COALESCE(p.brand, '')"
        ),
        &b.0,
    )?;
    rows.iter()
        .map(|r| {
            Ok(Group {
                slug: r.get("slug")?,
                category: r.get("category")?,
                brand: r.get("brand")?,
                count: r.get("n")?,
            })
        })
        .collect()
}

/// `facets` of a search answer: per category and per brand, how many matches, most
/// first (then by name).
fn facets(groups: &[Group]) -> kirana_sdk::serde_json::Value {
    let mut categories: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let mut brands: BTreeMap<&str, i64> = BTreeMap::new();
    for g in groups {
        *categories.entry((&g.category, &g.slug)).or_default() += g.count;
        if !g.brand.is_empty() {
            *brands.entry(&g.brand).or_default() += g.count;
        }
    }
    let mut categories: Vec<_> = categories.into_iter().collect();
    categories.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut brands: Vec<_> = brands.into_iter().collect();
    brands.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    json!({
        "category": categories
            .iter()
            .map(|((name, slug), n)| json!({"slug": slug, "name": name, "count": n}))
            .collect::<Vec<_>>(),
        "brand": brands
            .iter()
            .map(|(name, n)| json!({"name": name, "count": n}))
            .collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/products` with `q`: matches ranked and paged, with their total and
/// facets. A query that finds nothing is tried once more with its typos corrected.
pub fn search(list: &ListQuery, paging: Paging) -> Result<Response, ApiError> {
    let text = list.q.as_deref().unwrap_or_default();
    let first = SearchQuery::parse(text, synonyms());
    let dialect = sql::dialect();
    let compute = || -> Result<(Vec<u8>, bool), ApiError> {
        let mut q = first.clone();
        let mut found = if q.is_empty() {
            Vec::new()
        } else {
            groups(&q, list, dialect)?
        };
        if found.is_empty() {
            if let Some(fixed) = correct(&q)? {
                q = fixed;
                found = groups(&q, list, dialect)?;
            }
        }
        let total: i64 = found.iter().map(|g| g.count).sum();
        let items: Vec<Product> = if total > paging.offset() {
            let mut b = Binds::default();
            let score = search::score(&q, &mut b, &search::COLUMNS);
            let from = search::matched_from(&q, &mut b, dialect, false);
            let filter = listing::filters(list, &mut b);
            let order = listing::order_by(list, dialect, &search::relevance_order(dialect));
            let statement = format!(
                "SELECT {PRODUCT_COLUMNS}, {score} AS score {from} AND {filter} \
                 ORDER BY {order} LIMIT {} OFFSET {}",
                b.int(paging.limit()),
                b.int(paging.offset())
            );
            sql::query_as(&statement, &b.0)?
        } else {
            Vec::new()
        };
        let mut body = kirana_sdk::serde_json::to_value(Paged::new(items, paging, total))
            .map_err(|e| ApiError::internal(format!("serialising the search: {e}")))?;
        body["facets"] = facets(&found);
        let bytes = kirana_sdk::serde_json::to_vec(&body)
            .map_err(|e| ApiError::internal(format!("serialising the search: {e}")))?;
        Ok((bytes, total > 0))
    };
    let body = if paging.page <= 10 && paging.page_size <= CACHED_PAGE_SIZE && !first.is_empty() {
        let key = format!("search|{}|{list:?}|{paging:?}", first.key());
        cached(&key, compute)?
    } else {
        compute()?.0
    };
    Ok(Response::json_bytes(200, body))
}

/// One completion of `GET /api/v1/products/suggest`.
#[derive(Debug, Serialize, FromRow)]
struct Suggestion {
    id: String,
    name: String,
    brand: Option<String>,
    unit: String,
    price: i64,
}

fn suggestions(q: &SearchQuery, dialect: Dialect) -> Result<Vec<Suggestion>, CapError> {
    let mut b = Binds::default();
    let score = search::score(q, &mut b, &search::COLUMNS[..1]);
    let from = search::matched_from(q, &mut b, dialect, true);
    let statement = format!(
        "SELECT p.id, p.name, p.brand, p.unit, p.price, {score} AS score {from} \
         AND p.is_active ORDER BY {} LIMIT {}",
        search::relevance_order(dialect),
        b.int(search::SUGGESTIONS)
    );
    sql::query_as(&statement, &b.0)
}

/// `GET /api/v1/products/suggest?q=`: up to 8 active products whose name completes
/// what the shopper is typing (every word, the last one as a prefix; one typo in a
/// word of 5+ letters corrected when nothing matches as typed), best first.
pub fn suggest(req: &Request) -> Result<Response, ApiError> {
    let text = req.query("q").unwrap_or_default();
    if text.chars().count() > MAX_Q {
        return Err(ApiError::invalid_field(
            "q",
            format!("must be at most {MAX_Q} characters"),
        ));
    }
    let q = SearchQuery::parse(text, synonyms());
    if q.words.len() > MAX_TERMS {
        return Err(ApiError::invalid_field(
            "q",
            format!("must have at most {MAX_TERMS} words"),
        ));
    }
    if q.is_empty() {
        return Ok(Response::ok(&json!({"items": []})));
    }
    let dialect = sql::dialect();
    let key = format!("suggest|{}", q.key());
    let body = cached(&key, || {
        let mut items = suggestions(&q, dialect)?;
        if items.is_empty() {
            if let Some(fixed) = correct(&q)? {
                items = suggestions(&fixed, dialect)?;
            }
        }
        let found = !items.is_empty();
        let bytes = kirana_sdk::serde_json::to_vec(&json!({ "items": items }))
            .map_err(|e| ApiError::internal(format!("serialising suggestions: {e}")))?;
        Ok((bytes, found))
    })?;
    Ok(Response::json_bytes(200, body))
}

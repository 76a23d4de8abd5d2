//! Search rows (issue 15): search and suggest throughput on the seeded catalog, and
//! search QUALITY: a fixed list of shopper queries, each with the product a shopper
//! expects first, scored as the share whose product is in the top 3 — for the catalog's
//! search and for the `LIKE` search it replaced on the same list.
//!
//! The old search is kept here as [`like_search`], a line-for-line port of the SQL the
//! catalog ran before (`LIKE '%word%'` over name, brand and category, a word start in
//! the description, and its hand-made score), run over the catalog as the API lists it.
//! Porting it keeps the comparison independent of the catalog's current code and of the
//! backend; its matching is SQLite's `LIKE` (ASCII case-insensitive), which is what the
//! seeded catalog (all ASCII) saw.

use std::sync::Arc;

use anyhow::{Context, Result};
use hyper::Method;

use crate::api::Api;
use crate::host::{on_host, Host};
use crate::load::{self, Gen, Req, Stats};
use crate::shop::detail;
use crate::table::{ms, thousands, Row, Target};
use crate::Ctx;

/// Queries the search figures send, as shoppers type them: whole words, prefixes, a
/// typo, a Hindi name, a brand.
const SEARCH_QUERIES: [&str; 12] = [
    "milk",
    "rice",
    "tea",
    "dal",
    "oil",
    "onion",
    "atta",
    "soap",
    "tom",
    "bannana",
    "jeera",
    "amul butter",
];

/// What the suggest figure sends: the starts of words as they are typed.
const SUGGEST_QUERIES: [&str; 12] = [
    "to", "tom", "ami", "amul", "amul b", "mag", "par", "parle", "dett", "sur", "hald", "coca",
];

/// Shopper queries over the seeded catalog and the product (by name) a shopper expects
/// first: typos, prefixes, Hindi-English names, brands, plurals, descriptions.
pub const QUALITY: &[(&str, &str)] = &[
    // Typos.
    ("tomatos", "Tomato"),
    ("bannana", "Banana Robusta"),
    ("potatos", "Potato"),
    ("onoin", "Onion"),
    ("cucmber", "Cucumber"),
    ("pomegranite", "Pomegranate"),
    ("cauliflwer", "Cauliflower"),
    ("parle biscuts", "Parle-G Original Gluco Biscuits"),
    ("maggie", "Maggi 2-Minute Masala Noodles"),
    ("corriander", "Coriander Leaves"),
    ("garlc", "Garlic"),
    ("ketchap", "Kissan Fresh Tomato Ketchup"),
    ("dove shampo", "Dove Intense Repair Shampoo"),
    // Prefixes, as typed.
    ("tom", "Tomato"),
    ("aashir", "Aashirvaad Shudh Chakki Atta"),
    ("amul but", "Amul Butter Pasteurised"),
    ("haldiram bhuj", "Haldiram's Aloo Bhujia"),
    ("surf ex", "Surf Excel Easy Wash Detergent Powder"),
    ("coca", "Coca-Cola"),
    ("corn flak", "Kellogg's Corn Flakes Original"),
    ("dett", "Dettol Antiseptic Liquid"),
    // Hindi-English names.
    ("aata", "Aashirvaad Shudh Chakki Atta"),
    ("dahi", "Amul Masti Dahi"),
    ("jeera", "Catch Cumin Seeds (Jeera)"),
    ("haldi powder", "Everest Turmeric Powder"),
    ("amul doodh", "Amul Taaza Toned Milk"),
    ("chawal", "India Gate Basmati Rice Classic"),
    ("pyaz", "Onion"),
    ("tamatar", "Tomato"),
    ("kela", "Banana Robusta"),
    ("namak", "Tata Salt"),
    ("chini", "Madhur Pure Sugar"),
    ("palak", "Spinach (Palak)"),
    ("bhindi", "Lady Finger (Bhindi)"),
    ("besan", "Fortune Besan"),
    ("nimbu", "Lemon"),
    ("adrak", "Ginger"),
    ("lehsun", "Garlic"),
    ("makhan", "Amul Butter Pasteurised"),
    ("mirchi", "Green Chilli"),
    // Brands.
    ("tata salt", "Tata Salt"),
    ("maggi", "Maggi 2-Minute Masala Noodles"),
    ("parle g", "Parle-G Original Gluco Biscuits"),
    ("nescafe", "Nescafe Classic Instant Coffee"),
    ("fortune oil", "Fortune Sunflower Oil"),
    ("red label", "Brooke Bond Red Label Tea"),
    ("thums up", "Thums Up"),
    ("lays", "Lay's Classic Salted Chips"),
    ("kurkure", "Kurkure Masala Munch"),
    ("mccain fries", "McCain French Fries"),
    // Plurals and what things are.
    ("eggs", "Eggoz Farm Fresh Brown Eggs"),
    (
        "chocolate cookies",
        "Parle Hide & Seek Chocolate Chip Cookies",
    ),
    ("noodles", "Maggi 2-Minute Masala Noodles"),
    ("green peas", "Safal Frozen Green Peas"),
    ("potatoes", "Potato"),
    ("apples", "Apple Shimla"),
    ("mosquito", "All Out Ultra Refill"),
    (
        "toilet cleaner",
        "Harpic Power Plus Toilet Cleaner Original",
    ),
    ("floor cleaner", "Lizol Disinfectant Surface Cleaner Citrus"),
    ("sunflower oil", "Fortune Sunflower Oil"),
    ("coffee", "Bru Instant Coffee"),
    ("green tea", "Lipton Green Tea Honey Lemon"),
    ("mango drink", "Maaza Mango Drink"),
    ("paneer", "Amul Fresh Paneer"),
    ("butter", "Amul Butter Pasteurised"),
];

/// Percent-encodes everything but ASCII letters and digits.
pub fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A product as the old search saw it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: String,
    pub name: String,
    pub brand: String,
    pub category: String,
    pub description: String,
}

/// Every active product with its category's name, through the public API.
async fn catalog(api: &Api) -> Result<Vec<Listed>> {
    let cats = api
        .expect(Method::GET, "/api/v1/categories", None, None, 200)
        .await?;
    let cat_name = |id: &str| -> String {
        cats["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["id"] == id)
            .and_then(|c| c["name"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let mut out = Vec::new();
    for page in 1.. {
        let body = api
            .expect(
                Method::GET,
                &format!("/api/v1/products?page_size=100&page={page}"),
                None,
                None,
                200,
            )
            .await?;
        let items = body["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        for p in items {
            let text = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            out.push(Listed {
                id: text("id"),
                name: text("name"),
                brand: text("brand"),
                category: cat_name(p["category_id"].as_str().unwrap_or_default()),
                description: text("description"),
            });
        }
    }
    Ok(out)
}

/// The search the catalog ran before issue 15 (its SQL, ported): every word must be
/// inside the name, brand or category, or start a word of the description; each word
/// scores 100 starting a word of the name, 60 inside the name, 10 in brand or category,
/// 1 in the description; the whole phrase inside the name adds 500; then by name, id.
pub fn like_search<'a>(products: &'a [Listed], q: &str) -> Vec<&'a Listed> {
    let mut terms: Vec<String> = Vec::new();
    for w in q.split_whitespace().map(str::to_lowercase) {
        if !terms.contains(&w) {
            terms.push(w);
        }
    }
    let lower = |s: &str| s.to_ascii_lowercase();
    let mut hits: Vec<(i64, String, &Listed)> = products
        .iter()
        .filter_map(|p| {
            let (name, brand, cat, desc) = (
                lower(&p.name),
                lower(&p.brand),
                lower(&p.category),
                lower(&p.description),
            );
            let mut score = 0;
            for t in &terms {
                let word_start =
                    |text: &str| text.starts_with(t.as_str()) || text.contains(&format!(" {t}"));
                let matched = name.contains(t.as_str())
                    || brand.contains(t.as_str())
                    || cat.contains(t.as_str())
                    || word_start(&desc);
                if !matched {
                    return None;
                }
                score += if word_start(&name) {
                    100
                } else if name.contains(t.as_str()) {
                    60
                } else if brand.contains(t.as_str()) || cat.contains(t.as_str()) {
                    10
                } else {
                    1
                };
            }
            if terms.len() > 1 && name.contains(&terms.join(" ")) {
                score += 500;
            }
            Some((score, name, p))
        })
        .collect();
    hits.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.1.cmp(&b.1))
            .then_with(|| a.2.name.cmp(&b.2.name))
            .then_with(|| a.2.id.cmp(&b.2.id))
    });
    hits.into_iter().map(|(_, _, p)| p).collect()
}

/// The names of the catalog's first three answers to `q`.
async fn top3(api: &Api, q: &str) -> Result<Vec<String>> {
    let body = api
        .expect(
            Method::GET,
            &format!("/api/v1/products?page_size=3&q={}", encode(q)),
            None,
            None,
            200,
        )
        .await?;
    Ok(body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect())
}

/// The search rows on one host: throughput (cached answers and the engine alone),
/// suggest, and the quality list next to the old LIKE search.
pub async fn measure(ctx: &Ctx, host: &Host, db: &str, base_rps: f64) -> Result<Vec<Row>> {
    let addr = host.addr;
    let mut rows = Vec::new();
    let row = |name: String, s: &Stats, target: f64| {
        Row::new(3, name, format!("{} req/s", thousands(s.rps())))
            .baseline(thousands(base_rps))
            .ratio(s.rps(), base_rps)
            .number(s.rps())
            .target(Target::AtLeast(target, "req/s"))
            .detail(detail(s))
    };
    let timed = |g: Gen| on_host(host, load::run_for(addr, ctx.conns, ctx.duration(), g, 200));

    // Search as storefronts send it (page_size 20: answers are cached per query until
    // a catalog write).
    let search: Gen = Arc::new(|conn, i| {
        let q = SEARCH_QUERIES[(conn + i as usize) % SEARCH_QUERIES.len()];
        Req::get(format!("/api/v1/products?page_size=20&q={}", encode(q)))
    });
    load::run_for(addr, ctx.conns, ctx.warmup(), search.clone(), 200).await?;
    let s = timed(search).await?;
    rows.push(row(
        format!("{db}: GET /products?q=word (search)"),
        &s,
        10_000.0,
    ));
    rows.push(
        Row::new(3, format!("{db}: search p99"), ms(s.p99_ms()))
            .number(s.p99_ms())
            .target(Target::AtMost(10.0, "ms")),
    );

    // The engine alone: page_size 21 is never cached, so every request runs the
    // full-text query, the facet counts and the ranked page.
    let engine: Gen = Arc::new(|conn, i| {
        let q = SEARCH_QUERIES[(conn + i as usize) % SEARCH_QUERIES.len()];
        Req::get(format!("/api/v1/products?page_size=21&q={}", encode(q)))
    });
    let s = timed(engine).await?;
    rows.push(
        Row::new(
            3,
            format!("{db}: search, uncached (engine)"),
            format!("{} req/s", thousands(s.rps())),
        )
        .baseline(thousands(base_rps))
        .ratio(s.rps(), base_rps)
        .detail(detail(&s)),
    );

    let suggest: Gen = Arc::new(|conn, i| {
        let q = SUGGEST_QUERIES[(conn + i as usize) % SUGGEST_QUERIES.len()];
        Req::get(format!("/api/v1/products/suggest?q={}", encode(q)))
    });
    load::run_for(addr, ctx.conns, ctx.warmup(), suggest.clone(), 200).await?;
    let s = timed(suggest).await?;
    rows.push(row(format!("{db}: GET /products/suggest?q="), &s, 15_000.0));

    rows.push(quality(host, db).await?);
    Ok(rows)
}

/// The quality row: the share of [`QUALITY`] whose expected product is in the top 3.
async fn quality(host: &Host, db: &str) -> Result<Row> {
    let api = Api::new(host.url(""))?;
    let products = catalog(&api).await.context("listing the catalog")?;
    let (mut new_hits, mut like_hits) = (0usize, 0usize);
    let mut missed = Vec::new();
    for (q, expected) in QUALITY {
        let names = top3(&api, q).await?;
        if names.iter().any(|n| n == expected) {
            new_hits += 1;
        } else {
            missed.push(*q);
        }
        if like_search(&products, q)
            .iter()
            .take(3)
            .any(|p| p.name == *expected)
        {
            like_hits += 1;
        }
    }
    let n = QUALITY.len() as f64;
    let share = 100.0 * new_hits as f64 / n;
    let like = 100.0 * like_hits as f64 / n;
    let mut detail = format!(
        "{new_hits}/{} queries (typos, prefixes, Hindi-English names, brands); LIKE search {like_hits}/{}",
        QUALITY.len(),
        QUALITY.len()
    );
    if !missed.is_empty() {
        detail.push_str(&format!("; missed: {}", missed.join(", ")));
    }
    Ok(Row::new(
        3,
        format!("{db}: search quality (top 3)"),
        format!("{share:.0} %"),
    )
    .baseline(format!("{like:.0} % LIKE"))
    .ratio(share, like)
    .number(share)
    .target(Target::AtLeast(90.0, "%"))
    .detail(detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, brand: &str, desc: &str) -> Listed {
        Listed {
            id: name.to_lowercase(),
            name: name.into(),
            brand: brand.into(),
            category: "Staples".into(),
            description: desc.into(),
        }
    }

    #[test]
    fn the_like_search_ranks_as_the_old_sql_did() {
        let all = [
            p("Steamed Rice", "", "plain"),
            p("Tata Tea Gold", "Tata Tea", "strong"),
            p("Green Tea", "Lipton", "tea leaves"),
            p("Kettle", "", "makes tea fast"),
            p("Teapot", "", "x"),
        ];
        let names = |q: &str| {
            like_search(&all, q)
                .iter()
                .map(|p| p.name.clone())
                .collect::<Vec<_>>()
        };
        // Name word starts (100) by name, inside a name (60), description word (1).
        assert_eq!(
            names("tea"),
            [
                "Green Tea",
                "Tata Tea Gold",
                "Teapot",
                "Steamed Rice",
                "Kettle"
            ]
        );
        assert_eq!(names("TEA gold"), ["Tata Tea Gold"]);
        assert!(names("tomatos").is_empty());
        assert!(QUALITY.len() >= 40);
        assert_eq!(encode("amul b"), "amul%20b");
    }
}

//! Items 3 and 4: the shop's routes with real data (the seeded catalog, signed-up
//! customers with addresses and carts), and checkout throughput.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use hyper::Method;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::api::{Api, Shopper};
use crate::host::{on_host, Host};
use crate::load::{self, Gen, Req, Stats};
use crate::overhead::failures;
use crate::table::{ms, thousands, Row, Target};
use crate::Ctx;

/// Stock every product gets, so checkouts never run out.
const STOCK: i64 = 1_000_000;

/// Lines of a cart in the `POST /cart/items` measurement.
const CART_LINES: u64 = 10;

/// Listing pages the browsing figure pages through (in two orders).
const BROWSED_PAGES: usize = 5;

/// Words the search figure looks for (all in the seeded catalog).
const SEARCH_WORDS: [&str; 8] = ["milk", "rice", "tea", "dal", "oil", "onion", "atta", "soap"];

/// The data the shop benchmarks run on.
pub struct Shop {
    pub products: Arc<Vec<String>>,
    pub shoppers: Arc<Vec<Shopper>>,
}

/// Runs `jobs` with at most `limit` at a time; the results keep the jobs' order.
pub async fn all<T, F>(jobs: Vec<F>, limit: usize) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit.max(1)));
    let mut set = JoinSet::new();
    let n = jobs.len();
    for (i, job) in jobs.into_iter().enumerate() {
        let permits = permits.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, job.await)
        });
    }
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, r) = joined.map_err(|e| anyhow!("setup task failed: {e}"))?;
        out[i] = Some(r?);
    }
    out.into_iter()
        .map(|o| o.ok_or_else(|| anyhow!("a setup task gave no result")))
        .collect()
}

/// Sets every product's stock high and signs up `ctx.users` customers with addresses.
pub async fn setup(api: &Api, ctx: &Ctx, tag: &str) -> Result<Shop> {
    let admin = api.admin_token().await?;
    let products = api.product_ids().await?;
    let jobs = products
        .iter()
        .map(|id| {
            let api = api.clone();
            let admin = admin.clone();
            let path = format!("/api/v1/products/{id}/stock");
            async move {
                api.expect(
                    Method::PATCH,
                    &path,
                    Some(&admin),
                    Some(&json!({"set": STOCK})),
                    200,
                )
                .await
                .map(|_| ())
            }
        })
        .collect();
    all(jobs, 8).await.context("setting stock")?;
    let jobs = (0..ctx.users)
        .map(|i| {
            let api = api.clone();
            let email = format!("bench-{tag}-{i}@example.in");
            async move { api.shopper(&email).await }
        })
        .collect();
    let shoppers = all(jobs, 8).await.context("signing up customers")?;
    Ok(Shop {
        products: Arc::new(products),
        shoppers: Arc::new(shoppers),
    })
}

/// `DELETE /api/v1/cart` for every shopper.
async fn clear_carts(ctx: &Ctx, addr: SocketAddr, shop: &Shop) -> Result<()> {
    let reqs = shop
        .shoppers
        .iter()
        .map(|s| {
            Req {
                method: Method::DELETE,
                ..Req::get("/api/v1/cart")
            }
            .token(&s.token)
        })
        .collect();
    let s = load::run_list(addr, ctx.conns, reqs, 204).await?;
    ensure_clean(&s, "emptying the carts")
}

/// Puts 3 distinct products in every shopper's cart; `round` varies which.
async fn fill_carts(ctx: &Ctx, addr: SocketAddr, shop: &Shop, round: usize) -> Result<()> {
    let n = shop.products.len();
    let users = shop.shoppers.len();
    let mut reqs = Vec::with_capacity(users * 3);
    for (u, s) in shop.shoppers.iter().enumerate() {
        for j in 0..3 {
            let product = &shop.products[(u * 3 + j + round * 3 * users) % n];
            reqs.push(
                Req::json(
                    Method::POST,
                    "/api/v1/cart/items",
                    &json!({"product_id": product, "quantity": 1}),
                )
                .token(&s.token),
            );
        }
    }
    let s = load::run_list(addr, ctx.conns, reqs, 200).await?;
    ensure_clean(&s, "filling the carts")
}

fn ensure_clean(s: &Stats, what: &str) -> Result<()> {
    if s.bad() > 0 {
        bail!(
            "{what}: {} requests failed; first: {}",
            s.bad(),
            s.first_failure.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// Latencies, the host's CPU per request, and the whole machine's with its parts and the
/// ceiling it puts on the route (see [`crate::load::Usage`]).
pub fn detail(s: &Stats) -> String {
    let mut d = format!(
        "{} / {}; host CPU {:.0} us/req",
        ms(s.p50_ms()),
        ms(s.p99_ms()),
        s.host_us_per_req()
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(ceiling) = s.ceiling(cpus) {
        d.push_str(&format!(
            "; machine {:.0} us/req (load generator {:.0}",
            s.per_req(s.cpu.machine),
            s.per_req(s.cpu.client)
        ));
        if !s.cpu.postgres.is_zero() {
            d.push_str(&format!(", PostgreSQL {:.0}", s.per_req(s.cpu.postgres)));
        }
        d.push_str(&format!(
            ") = at most {} req/s on {cpus} CPUs",
            thousands(ceiling)
        ));
    }
    let f = failures(&[s]);
    if !f.is_empty() {
        d.push_str("; ");
        d.push_str(&f);
    }
    d
}

/// The native route of the same host, the shop rows' baseline (req/s and its row).
pub async fn baseline(ctx: &Ctx, host: &Host, db: &str) -> Result<(f64, Row)> {
    let addr = host.addr;
    let native: Gen = Arc::new(|_, _| Req::get("/health"));
    load::run_for(addr, ctx.conns, ctx.warmup(), native.clone(), 200).await?;
    let base = on_host(
        host,
        load::run_for(addr, ctx.conns, ctx.duration(), native, 200),
    )
    .await?;
    let row = Row::new(
        3,
        format!("{db}: native /health (baseline)"),
        format!("{} req/s", thousands(base.rps())),
    )
    .detail(detail(&base));
    Ok((base.rps(), row))
}

/// Item 3: four shop routes against the native route of the same host (`base_rps`).
pub async fn routes(
    ctx: &Ctx,
    host: &Host,
    shop: &Shop,
    db: &str,
    base_rps: f64,
) -> Result<Vec<Row>> {
    let addr = host.addr;
    let timed = |g: Gen| on_host(host, load::run_for(addr, ctx.conns, ctx.duration(), g, 200));
    let mut rows = Vec::new();
    // The target in req/s, where the route has one (issue 15's for the product page on
    // PostgreSQL and the cart routes).
    let row = |name: String, s: &Stats, target: Option<f64>| {
        let mut r = Row::new(3, name, format!("{} req/s", thousands(s.rps())))
            .baseline(thousands(base_rps))
            .ratio(s.rps(), base_rps)
            .number(s.rps())
            .detail(detail(s));
        if let Some(t) = target {
            r = r.target(Target::AtLeast(t, "req/s"));
        }
        r
    };

    // Browsing: the first pages of the listing in two orders, as storefronts page
    // through it (the catalog caches these pages until a catalog write).
    let list: Gen = Arc::new(|conn, i| {
        let n = conn + i as usize;
        let sort = ["name", "price_asc"][n % 2];
        Req::get(format!(
            "/api/v1/products?page_size=20&page={}&sort={sort}",
            1 + (n / 2) % BROWSED_PAGES
        ))
    });
    load::run_for(addr, ctx.conns, ctx.warmup(), list.clone(), 200).await?;
    eprintln!("==> {db}: pages");
    let s = timed(list).await?;
    rows.push(row(
        format!("{db}: GET /products?page_size=20 (pages 1-{BROWSED_PAGES})"),
        &s,
        Some(10_000.0),
    ));

    // Searching: never cached, so every request counts and reads a page from the
    // database (the listing's uncached path).
    let search: Gen = Arc::new(|conn, i| {
        let word = SEARCH_WORDS[(conn + i as usize) % SEARCH_WORDS.len()];
        Req::get(format!("/api/v1/products?page_size=20&q={word}"))
    });
    eprintln!("==> {db}: search");
    let s = timed(search).await?;
    rows.push(row(
        format!("{db}: GET /products?q=word (search)"),
        &s,
        None,
    ));

    let products = shop.products.clone();
    let one: Gen = Arc::new(move |conn, i| {
        let id = &products[(conn * 7919 + i as usize) % products.len()];
        Req::get(format!("/api/v1/products/{id}"))
    });
    eprintln!("==> {db}: product");
    let s = timed(one).await?;
    let page_target = if db == "PostgreSQL" {
        20_000.0
    } else {
        10_000.0
    };
    rows.push(row(
        format!("{db}: GET /products/{{id}}"),
        &s,
        Some(page_target),
    ));

    // Carts of 10 lines, as a shopper fills them: a connection adds one unit of each of
    // a shopper's 10 products, then moves on to the next shopper (`conns` apart, so no
    // two connections share one); back at a shopper it adds one more unit per line.
    // Segments of at most 1 s with the carts emptied in between keep every line below
    // the 20-unit limit whatever `--seconds` is (20 units of each of the 1,280 lines of
    // 128 users is 25,600 adds, more than a second holds on this machine).
    let products = shop.products.clone();
    let shoppers = shop.shoppers.clone();
    let conns = ctx.conns;
    let add: Gen = Arc::new(move |conn, i| {
        let user = (conn + conns * (i / CART_LINES) as usize) % shoppers.len();
        let line = user * CART_LINES as usize + (i % CART_LINES) as usize;
        Req::json(
            Method::POST,
            "/api/v1/cart/items",
            &json!({"product_id": products[line % products.len()], "quantity": 1}),
        )
        .token(&shoppers[user].token)
    });
    eprintln!("==> {db}: add");
    let mut s = Stats::default();
    let mut left = ctx.duration();
    while !left.is_zero() {
        let segment = left.min(Duration::from_secs(1));
        clear_carts(ctx, addr, shop).await?;
        s.merge(
            on_host(
                host,
                load::run_for(addr, ctx.conns, segment, add.clone(), 200),
            )
            .await?,
        );
        left -= segment;
    }
    rows.push(row(
        format!("{db}: POST /cart/items (10-line carts)"),
        &s,
        Some(10_000.0),
    ));

    // Carts as a shopper has them: 3 lines.
    clear_carts(ctx, addr, shop).await?;
    fill_carts(ctx, addr, shop, 0).await?;
    let shoppers = shop.shoppers.clone();
    let cart: Gen = Arc::new(move |conn, i| {
        let user = (conn + conns * i as usize) % shoppers.len();
        Req::get("/api/v1/cart").token(&shoppers[user].token)
    });
    eprintln!("==> {db}: cart");
    let s = timed(cart).await?;
    rows.push(row(
        format!("{db}: GET /cart (3 lines)"),
        &s,
        Some(15_000.0),
    ));
    clear_carts(ctx, addr, shop).await?;
    Ok(rows)
}

/// Item 4: every shopper fills a cart of 3 products (untimed), then all of them check
/// out at once over `ctx.conns` connections (timed); rounds repeat until the timed
/// part has lasted `ctx.duration()`. With `keyed`, every order carries a fresh
/// `Idempotency-Key`, as a careful client sends it.
pub async fn checkout(
    ctx: &Ctx,
    host: &Host,
    shop: &Shop,
    db: &str,
    base_rps: f64,
    keyed: bool,
) -> Result<Row> {
    let addr = host.addr;
    clear_carts(ctx, addr, shop).await?;
    let mut total = Stats::default();
    let mut rounds = 0;
    while total.elapsed < ctx.duration() && rounds < 1000 {
        fill_carts(ctx, addr, shop, rounds).await?;
        let orders = shop
            .shoppers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let req = Req::json(
                    Method::POST,
                    "/api/v1/orders",
                    &json!({"address_id": s.address_id, "payment_method": "cod"}),
                )
                .token(&s.token);
                if keyed {
                    req.key(format!("bench-{}-{rounds}-{i}", std::process::id()))
                } else {
                    req
                }
            })
            .collect();
        let s = on_host(host, load::run_list(addr, ctx.conns, orders, 201)).await?;
        let clean = s.bad() == 0;
        total.merge(s);
        rounds += 1;
        if !clean {
            // Leftover carts would make the next round's numbers meaningless.
            clear_carts(ctx, addr, shop).await?;
        }
    }
    let label = if keyed {
        format!("{db}: POST /orders with Idempotency-Key")
    } else {
        format!("{db}: POST /orders (3-item carts)")
    };
    Ok(
        Row::new(4, label, format!("{} orders/s", thousands(total.rps())))
            .baseline(format!("{} native", thousands(base_rps)))
            .ratio(total.rps(), base_rps)
            .number(total.rps())
            .target(Target::AtLeast(1_000.0, "orders/s"))
            .detail(format!(
                "{}; {} orders, {} users x {rounds} rounds, {} connections",
                detail(&total),
                total.ok,
                shop.shoppers.len(),
                ctx.conns.min(shop.shoppers.len())
            )),
    )
}

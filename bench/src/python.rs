//! Item 7: the Python plugin (promotions, built by componentize-py) next to a Rust
//! plugin on the same host: an admin list route of each — `GET /api/v1/admin/promotions`
//! (Python) and `GET /api/v1/admin/users` (Rust), both one page of one SQL table behind
//! the admin role — in `reuse` and `fresh` mode, and the host's resident
//! memory while both are under load with the Python plugin's instance cap
//! (`[plugins.promotions] max_instances = 4` in the shipped configuration).

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use reqwest::Method;
use serde_json::json;

use crate::api::Api;
use crate::host::{Host, HostSpec};
use crate::load::{self, Gen, Req};
use crate::overhead::{failures, side_by_side};
use crate::table::{ms, thousands, Row, Target};
use crate::{mib, Ctx, RssSampler};

const ITEM: u8 = 7;
const PYTHON_ROUTE: &str = "/api/v1/admin/promotions";
const RUST_ROUTE: &str = "/api/v1/admin/users";
/// The bound for the host with the Python plugin under 32 connections.
const RSS_TARGET_MIB: f64 = 200.0;

pub async fn measure(ctx: &Ctx, work: &Path, base: &HostSpec) -> Result<Vec<Row>> {
    // A host that has just compiled every component keeps the compiler's heap for a
    // while (500+ MiB): start once on an empty cache first, so both hosts measured
    // below start from the compile cache, as a restarted shop does.
    let cold = std::fs::read_dir(&base.cache_dir).map_or(true, |mut d| d.next().is_none());
    if cold {
        let prime = HostSpec {
            label: "python-prime".into(),
            data_dir: work.join("python-prime-data"),
            ..base.clone()
        };
        Host::start(&ctx.root, &prime, work).await?.stop().await?;
    }
    let mut rows = Vec::new();
    // The shipped caps, then the runtime's defaults (32 warm, no cap) for the
    // before/after of the cap, then a new instance per call.
    let variants = [
        ("reuse", "instances = \"reuse\""),
        (
            "reuse, uncapped",
            "instances = \"reuse\"\nwarm_instances = 32\nmax_instances = 1000",
        ),
        ("fresh", "instances = \"fresh\""),
    ];
    for (i, (mode, toml)) in variants.into_iter().enumerate() {
        let spec = HostSpec {
            label: format!("python-{i}"),
            data_dir: work.join(format!("python-{i}-data")),
            extra: format!("[plugins.promotions]\n{toml}\n"),
            ..base.clone()
        };
        let host = Host::start(&ctx.root, &spec, work).await?;
        let result = one_host(ctx, &host, mode).await;
        host.stop().await?;
        rows.extend(result?);
    }
    Ok(rows)
}

async fn one_host(ctx: &Ctx, host: &Host, mode: &str) -> Result<Vec<Row>> {
    let api = Api::new(format!("http://{}", host.addr))?;
    let admin: Arc<str> = api.admin_token().await?.into();
    // A page of each to list: five coupons, and five users (the admin and four).
    for i in 0..5 {
        let coupon = json!({"code": format!("BENCH{i}"), "kind": "percent", "value": 10});
        api.expect(Method::POST, PYTHON_ROUTE, Some(&admin), Some(&coupon), 201)
            .await?;
        if i > 0 {
            api.shopper(&format!("python-bench-{i}@example.com"))
                .await?;
        }
    }
    let get = |path: &'static str| -> Gen {
        let token = admin.clone();
        Arc::new(move |_, _| Req::get(path).token(&token))
    };
    let (rust, python) = (get(RUST_ROUTE), get(PYTHON_ROUTE));
    let warm = ctx.warmup();
    load::run_for(host.addr, ctx.conns, warm, rust.clone(), 200).await?;
    load::run_for(host.addr, ctx.conns, warm, python.clone(), 200).await?;
    let idle = host.rss_kib()?;
    let sampler = RssSampler::start(host.pid);
    let (r, p) = side_by_side(ctx, host, rust, python).await?;
    let peak = sampler.finish().await;

    let mut note = format!(
        "host CPU {:.0} vs {:.0} us/req",
        p.host_us_per_req(),
        r.host_us_per_req()
    );
    let failed = failures(&[&r, &p]);
    if !failed.is_empty() {
        note.push_str("; ");
        note.push_str(&failed);
    }
    let mut rows = vec![
        Row::new(
            ITEM,
            format!("{mode}: Python admin list req/s"),
            thousands(p.rps()),
        )
        .baseline(format!("{} Rust", thousands(r.rps())))
        .ratio(p.rps(), r.rps())
        .detail(note),
        Row::new(ITEM, format!("{mode}: Python p50 latency"), ms(p.p50_ms()))
            .baseline(ms(r.p50_ms()))
            .ratio(p.p50_ms(), r.p50_ms()),
        Row::new(ITEM, format!("{mode}: Python p99 latency"), ms(p.p99_ms()))
            .baseline(ms(r.p99_ms()))
            .ratio(p.p99_ms(), r.p99_ms()),
    ];
    let peak_mib = peak as f64 / 1024.0;
    rows.push(
        Row::new(
            ITEM,
            format!("{mode}: host RSS under load (peak)"),
            mib(peak),
        )
        .baseline(format!("{} idle", mib(idle)))
        .ratio(peak as f64, idle as f64)
        .number(peak_mib)
        .target(if mode == "reuse" {
            Target::AtMost(RSS_TARGET_MIB, "MiB")
        } else {
            Target::None
        })
        .detail(format!(
            "VmRSS sampled every 50 ms, {} connections on both routes",
            ctx.conns
        )),
    );
    Ok(rows)
}

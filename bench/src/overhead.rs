//! Item 1: the no-op plugin route (`GET /api/v1/hello/ping`) against the host's native
//! route (`GET /health`) — both answer `{"status":"ok"}` — on the same host, measured
//! alternately (native, plugin, plugin, native) so drift of a shared machine hits both.

use std::sync::Arc;

use anyhow::Result;

use crate::host::{on_host, Host};
use crate::load::{self, Gen, Req, Stats};
use crate::table::{ms, thousands, Row, Target};
use crate::Ctx;

/// Runs `a` and `b` for `ctx.seconds` each, in the order a, b, b, a.
pub async fn side_by_side(ctx: &Ctx, host: &Host, a: Gen, b: Gen) -> Result<(Stats, Stats)> {
    let half = ctx.duration() / 2;
    let run = |g: &Gen| {
        on_host(
            host,
            load::run_for(host.addr, ctx.conns, half, g.clone(), 200),
        )
    };
    let mut sa = Stats::default();
    let mut sb = Stats::default();
    sa.merge(run(&a).await?);
    sb.merge(run(&b).await?);
    sb.merge(run(&b).await?);
    sa.merge(run(&a).await?);
    Ok((sa, sb))
}

/// The three rows (req/s, p50, p99) of one instance mode.
pub async fn measure(ctx: &Ctx, host: &Host, mode: &str) -> Result<Vec<Row>> {
    let addr = host.addr;
    let native: Gen = Arc::new(|_, _| Req::get("/health"));
    let plugin: Gen = Arc::new(|_, _| Req::get("/api/v1/hello/ping"));
    // A short untimed warm-up: connections, caches and (in reuse mode) warm instances.
    let warm = ctx.warmup();
    load::run_for(addr, ctx.conns, warm, native.clone(), 200).await?;
    load::run_for(addr, ctx.conns, warm, plugin.clone(), 200).await?;
    let (n, p) = side_by_side(ctx, host, native, plugin).await?;
    let target = if mode == "fresh" { 0.35 } else { 0.6 };
    let mut note = format!(
        "host CPU {:.1} vs {:.1} us/req native = {:.2}x",
        p.host_us_per_req(),
        n.host_us_per_req(),
        n.host_us_per_req() / p.host_us_per_req().max(f64::MIN_POSITIVE)
    );
    let failures = failures(&[&n, &p]);
    if !failures.is_empty() {
        note.push_str("; ");
        note.push_str(&failures);
    }
    Ok(vec![
        Row::new(
            1,
            format!("{mode}: plugin /hello/ping req/s"),
            thousands(p.rps()),
        )
        .baseline(format!("{} native", thousands(n.rps())))
        .ratio(p.rps(), n.rps())
        .target(Target::RatioAtLeast(target))
        .detail(note),
        Row::new(1, format!("{mode}: p50 latency"), ms(p.p50_ms()))
            .baseline(ms(n.p50_ms()))
            .ratio(p.p50_ms(), n.p50_ms()),
        Row::new(1, format!("{mode}: p99 latency"), ms(p.p99_ms()))
            .baseline(ms(n.p99_ms()))
            .ratio(p.p99_ms(), n.p99_ms()),
    ])
}

/// "" when every request got its expected answer, else the count and the first failure.
pub fn failures(stats: &[&Stats]) -> String {
    let bad: u64 = stats.iter().map(|s| s.bad()).sum();
    if bad == 0 {
        return String::new();
    }
    let first = stats
        .iter()
        .find_map(|s| s.first_failure.clone())
        .unwrap_or_default();
    format!("{bad} failed requests; first: {first}")
}

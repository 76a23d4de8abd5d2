//! Item 6: time from spawning `kirana serve` to the first 200 of `/ready` with every
//! plugin loaded — with an empty compile cache (every component compiled by Cranelift)
//! and with the cache the previous start wrote — and the host's idle memory.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::host::{Host, HostSpec};
use crate::table::{ms, Row, Target};
use crate::{mib, Ctx};

const ITEM: u8 = 6;
pub const RSS_IDLE: &str = "RSS idle (all plugins loaded)";

/// Starts the host three times on the same data: a fresh install (empty database and
/// cache), a restart with a new empty cache (cold compile), and a restart with that
/// cache warm. Returns the last, still running, and the rows.
pub async fn measure(ctx: &Ctx, work: &Path, spec: &HostSpec) -> Result<(Host, Vec<Row>)> {
    let first_spec = HostSpec {
        label: format!("{}-first", spec.label),
        cache_dir: work.join("cache-first-start"),
        ..spec.clone()
    };
    let first = Host::start(&ctx.root, &first_spec, work).await?;
    let t_first = first.ready_after;
    first.stop().await?;

    let cold_spec = HostSpec {
        label: format!("{}-cold", spec.label),
        ..spec.clone()
    };
    if spec.cache_dir.exists() {
        std::fs::remove_dir_all(&spec.cache_dir)?;
    }
    let cold = Host::start(&ctx.root, &cold_spec, work).await?;
    let t_cold = cold.ready_after;
    cold.stop().await?;

    let warm = Host::start(&ctx.root, spec, work).await?;
    let t_warm = warm.ready_after;
    // Let start-up work (event dispatch of the first start's leftovers, caches) settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = warm.rss_kib()?;

    let (warm_ms, cold_ms) = (t_warm.as_secs_f64() * 1000.0, t_cold.as_secs_f64() * 1000.0);
    let rows = vec![
        Row::new(ITEM, "restart to ready, compile cache warm", ms(warm_ms))
            .baseline(format!("{} cold", ms(cold_ms)))
            .ratio(warm_ms, cold_ms)
            .number(warm_ms)
            .target(Target::AtMost(1000.0, "ms"))
            .detail("DESIGN.md: well under a second from the precompiled cache"),
        Row::new(ITEM, "restart to ready, cold compile", ms(cold_ms)).detail(format!(
            "empty cache_dir, existing data; a fresh install's first start took {}",
            ms(t_first.as_secs_f64() * 1000.0)
        )),
        Row::new(ITEM, RSS_IDLE, mib(idle))
            .number(idle as f64)
            .detail("VmRSS 1 s after ready"),
    ];
    Ok((warm, rows))
}

//! Item 2, in-process through the `kirana` library: the time to create a store,
//! instantiate hello from its `InstancePre` and make the first call
//! (`GET /api/v1/hello/ping` through the `handle` export), then drop the store —
//! exactly what a `fresh` request costs the host — with the pooling allocator and with
//! on-demand allocation. A call on a warm `reuse` instance is the reference.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use kirana::app::App;
use kirana::bindings::wit;
use kirana::config::{Config, DEFAULTS};
use kirana::core::{CallCtx, Op, OpResult};
use kirana::registry::Platform;
use kirana::runtime::LoadedPlugin;

use crate::load::percentile;
use crate::table::{Row, Target};
use crate::Ctx;

const ITEM: u8 = 2;

/// A host with only hello (in `mode`) and `pool_instances` pool slots.
async fn start(
    data_dir: &Path,
    cache_dir: &Path,
    wasm: &Path,
    pool_instances: i64,
    mode: &str,
) -> Result<App> {
    let mut doc: toml::Table = DEFAULTS.parse().context("parsing the embedded defaults")?;
    let path = |p: &Path| toml::Value::String(p.display().to_string());
    doc.insert("listen".into(), "127.0.0.1:0".into());
    doc.insert("data_dir".into(), path(data_dir));
    doc.insert("cache_dir".into(), path(cache_dir));
    doc.insert("database_url".into(), "".into());
    let mut hello = toml::Table::new();
    hello.insert("file".into(), path(wasm));
    hello.insert("instances".into(), mode.into());
    // What hello's manifest asks for; without the grants the host refuses to load it.
    let grants = ["kv", "realtime", "mail"].map(toml::Value::from);
    hello.insert("grants".into(), toml::Value::Array(grants.to_vec()));
    let mut plugins = toml::Table::new();
    plugins.insert("hello".into(), hello.into());
    doc.insert("plugins".into(), plugins.into());
    match doc.get_mut("runtime") {
        Some(toml::Value::Table(rt)) => {
            rt.insert("pool_instances".into(), pool_instances.into());
        }
        _ => bail!("the embedded defaults have no [runtime] table"),
    }
    let config = Config::from_document(doc)?;
    App::start(config)
        .await
        .context("starting an in-process host with hello")
}

fn ping() -> wit::Request {
    wit::Request {
        method: "GET".into(),
        path: "/api/v1/hello/ping".into(),
        route: "/api/v1/hello/ping".into(),
        params: Vec::new(),
        query: String::new(),
        headers: Vec::new(),
        body: Vec::new(),
        caller: None,
        request_id: "bench".into(),
    }
}

/// Calls ping `n` times in a row, appending each call's microseconds to `out`.
async fn calls(
    platform: &Arc<Platform>,
    plugin: &LoadedPlugin,
    n: usize,
    out: &mut Vec<u32>,
) -> Result<()> {
    for i in 0..n {
        let request = ping();
        let call = CallCtx::new(format!("bench-{i}"), None, 0, Duration::from_secs(5));
        let started = Instant::now();
        let (result, _) = platform
            .run(plugin, call, Op::Handle(request))
            .await
            .map_err(|e| anyhow!("calling hello: {e}"))?;
        let us = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
        match result {
            OpResult::Response(r) if r.status == 200 => out.push(us),
            OpResult::Response(r) => bail!("hello /ping answered {}", r.status),
            _ => bail!("hello /ping returned something other than a response"),
        }
    }
    Ok(())
}

fn us(x: u32) -> String {
    format!("{x} us")
}

pub async fn measure(ctx: &Ctx, work: &Path, cache_dir: &Path) -> Result<Vec<Row>> {
    let wasm = crate::host::plugin_dir(&ctx.root).join("hello.wasm");
    let mut apps = Vec::new();
    for (dir, pool, mode) in [
        ("inproc-pooled", 256, "fresh"),
        ("inproc-on-demand", 0, "fresh"),
        ("inproc-reuse", 256, "reuse"),
    ] {
        match start(&work.join(dir), cache_dir, &wasm, pool, mode).await {
            Ok(app) => apps.push(app),
            Err(e) => {
                for app in apps {
                    let _ = app.stop().await;
                }
                return Err(e);
            }
        }
    }
    let result = match &apps[..] {
        [pooled, on_demand, reuse] => run(ctx, pooled, on_demand, reuse).await,
        _ => Err(anyhow!("expected three in-process hosts")),
    };
    let pooling = apps.first().is_some_and(|a| a.platform.runtime.pooled);
    for app in apps {
        let _ = app.stop().await;
    }
    let (mut p, mut o, mut w) = result?;
    p.sort_unstable();
    o.sort_unstable();
    w.sort_unstable();
    let (p50, p99) = (percentile(&p, 50.0), percentile(&p, 99.0));
    let (o50, o99) = (percentile(&o, 50.0), percentile(&o, 99.0));
    let (w50, w99) = (percentile(&w, 50.0), percentile(&w, 99.0));
    let note = if pooling {
        format!("{} calls each", p.len())
    } else {
        "the pooling allocator was unavailable: both rows are on-demand".to_string()
    };
    Ok(vec![
        Row::new(ITEM, "pooled: median", us(p50))
            .baseline(format!("{} on-demand", us(o50)))
            .ratio(p50 as f64, o50 as f64)
            .detail(note),
        Row::new(ITEM, "pooled: p99", us(p99))
            .baseline(format!("{} on-demand", us(o99)))
            .ratio(p99 as f64, o99 as f64),
        Row::new(ITEM, "warm reuse call (no instantiate): median", us(w50))
            .baseline(format!("{} pooled fresh", us(p50)))
            .ratio(w50 as f64, p50 as f64)
            .target(Target::None)
            .detail(format!("p99 {}", us(w99))),
    ])
}

type Samples = (Vec<u32>, Vec<u32>, Vec<u32>);

async fn run(ctx: &Ctx, pooled: &App, on_demand: &App, reuse: &App) -> Result<Samples> {
    let hello = |app: &App| {
        app.platform
            .registry
            .get("hello")
            .context("hello is not loaded in the in-process host")
    };
    let (pp, op, rp) = (hello(pooled)?, hello(on_demand)?, hello(reuse)?);
    let (pplat, oplat, rplat) = (&pooled.platform, &on_demand.platform, &reuse.platform);
    let n = ctx.instantiations / 2;
    let mut scratch = Vec::new();
    calls(pplat, &pp, 20, &mut scratch).await?;
    calls(oplat, &op, 20, &mut scratch).await?;
    calls(rplat, &rp, 20, &mut scratch).await?;
    // Alternated (pooled, on-demand, on-demand, pooled) so drift hits both alike.
    let (mut p, mut o, mut w) = (Vec::new(), Vec::new(), Vec::new());
    calls(pplat, &pp, n, &mut p).await?;
    calls(oplat, &op, n, &mut o).await?;
    calls(oplat, &op, n, &mut o).await?;
    calls(pplat, &pp, n, &mut p).await?;
    calls(rplat, &rp, 2 * n, &mut w).await?;
    Ok((p, o, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The section's three in-process hosts load hello and answer its ping: nothing
    /// else runs item 2, and a host that refuses hello (a grant it lacks, say) would
    /// only show as a failed row in a bench run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_in_process_hosts_serve_hello() {
        let plugins = std::env::var("KIRANA_TEST_PLUGIN_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| {
                crate::host::plugin_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            });
        let wasm = plugins.join("hello.wasm");
        assert!(
            wasm.exists(),
            "{} is missing: build the plugins first (scripts/test does)",
            wasm.display()
        );
        let work = tempfile::tempdir().expect("a temporary directory");
        let cache = work.path().join("cache");
        for (dir, pool, mode) in [
            ("pooled", 256, "fresh"),
            ("on-demand", 0, "fresh"),
            ("reuse", 256, "reuse"),
        ] {
            let app = start(&work.path().join(dir), &cache, &wasm, pool, mode)
                .await
                .expect("an in-process host with hello");
            let hello = app.platform.registry.get("hello");
            let served = match &hello {
                Some(hello) => calls(&app.platform, hello, 3, &mut Vec::new()).await,
                None => Err(anyhow!("hello is not loaded")),
            };
            app.stop().await.expect("stopping the host");
            served.unwrap_or_else(|e| panic!("{dir} host: {e:#}"));
        }
    }
}

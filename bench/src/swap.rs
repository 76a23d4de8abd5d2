//! Item 5: hot swap under load through the operator API. A second version of hello is
//! uploaded (`POST /admin/plugins`, `application/wasm`), then enabled and rolled back
//! over and over (`POST /admin/plugins/hello/enable {version}`, `.../rollback`) while
//! `/api/v1/hello/ping` is under load; compared with the same load before any swap.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use reqwest::Method;
use serde_json::json;

use crate::api::Api;
use crate::host::Host;
use crate::load::{self, Gen, Req};
use crate::overhead::failures;
use crate::table::{ms, Row, Target};
use crate::Ctx;

const ITEM: u8 = 5;

/// A copy of a component whose embedded version string `version` (the one occurrence
/// that is not part of a WIT package name such as `kirana:platform/kv@0.1.0`) is
/// replaced by another of the same length, and that other version. The bytes are a
/// valid component still: only the contents of a data segment change.
pub fn other_version(bytes: &[u8], version: &str) -> Result<(Vec<u8>, String)> {
    let v = version.as_bytes();
    if v.is_empty() || v.len() > bytes.len() {
        bail!("cannot look for version {version:?}");
    }
    let continues = |b: u8| b.is_ascii_digit() || b == b'.';
    let hits: Vec<usize> = (0..=bytes.len() - v.len())
        .filter(|&i| &bytes[i..i + v.len()] == v)
        .filter(|&i| i == 0 || (bytes[i - 1] != b'@' && !continues(bytes[i - 1])))
        .filter(|&i| bytes.get(i + v.len()).is_none_or(|&b| !continues(b)))
        .collect();
    let [at] = hits[..] else {
        bail!(
            "expected the version string {version:?} once in the component, found it {} times",
            hits.len()
        );
    };
    let mut other = v.to_vec();
    let last = other.len() - 1;
    other[last] = match other[last] {
        b'9' => b'8',
        d if d.is_ascii_digit() => d + 1,
        _ => bail!("version {version:?} does not end in a digit"),
    };
    let other = String::from_utf8(other).context("version is not UTF-8")?;
    let mut out = bytes.to_vec();
    out[at..at + v.len()].copy_from_slice(other.as_bytes());
    Ok((out, other))
}

/// The live version of `plugin` according to `/ready`.
async fn live_version(api: &Api, plugin: &str) -> Result<Option<String>> {
    let ready = api.call(Method::GET, "/ready", None, None).await?;
    Ok(ready.body["plugins"].as_array().and_then(|ps| {
        ps.iter()
            .find(|p| p["name"] == plugin)
            .and_then(|p| p["version"].as_str().map(str::to_string))
    }))
}

/// Polls `/ready` until `plugin` is live at `version`.
async fn wait_live(api: &Api, plugin: &str, version: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if live_version(api, plugin).await?.as_deref() == Some(version) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{plugin} {version} was not live 30 s after it was enabled");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub async fn measure(ctx: &Ctx, host: &Host) -> Result<Vec<Row>> {
    let api = Api::new(host.url(""))?;
    // The operator API takes the operator token, never an admin's.
    let admin = crate::api::OPERATOR_TOKEN.to_string();
    let original = live_version(&api, "hello")
        .await?
        .context("/ready does not list hello")?;
    let path = crate::host::plugin_dir(&ctx.root).join("hello.wasm");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let (patched, version) = other_version(&bytes, &original)?;

    let up = api
        .upload("/admin/plugins", &admin, "application/wasm", patched)
        .await?;
    if up.status == 404 || up.status == 405 {
        return Ok(vec![Row::unavailable(
            ITEM,
            "swap under load",
            format!(
                "not available: operator API missing (POST /admin/plugins answered {})",
                up.status
            ),
        )]);
    }
    if up.status != 201 && up.status != 200 {
        bail!(
            "uploading hello {version}: expected 201, got {}: {}",
            up.status,
            up.text
        );
    }

    let ping: Gen = Arc::new(|_, _| Req::get("/api/v1/hello/ping"));
    load::run_for(host.addr, ctx.conns, ctx.warmup(), ping.clone(), 200).await?;
    let before = load::run_for(host.addr, ctx.conns, ctx.duration(), ping.clone(), 200).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let api = api.clone();
        let admin = admin.clone();
        let original = original.clone();
        let version = version.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for (target, action) in [(&version, "enable"), (&original, "rollback")] {
                    let started = Instant::now();
                    let body = (action == "enable").then(|| json!({"version": target}));
                    api.expect(
                        Method::POST,
                        &format!("/admin/plugins/hello/{action}"),
                        Some(&admin),
                        body.as_ref(),
                        200,
                    )
                    .await?;
                    wait_live(&api, "hello", target).await?;
                    latencies.push(started.elapsed());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            anyhow::Ok(latencies)
        })
    };
    let during = load::run_for(host.addr, ctx.conns, ctx.duration(), ping, 200).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = swapper
        .await
        .context("the swapping task failed")?
        .context("swapping hello")?;
    let during = during?;
    latencies.sort();
    if latencies.is_empty() {
        bail!("no swap completed during the load");
    }
    let median = latencies[latencies.len() / 2].as_secs_f64() * 1000.0;
    let max = latencies[latencies.len() - 1].as_secs_f64() * 1000.0;
    let bad = during.bad() as f64;
    Ok(vec![
        Row::new(ITEM, "p99 of /hello/ping during swaps", ms(during.p99_ms()))
            .baseline(format!("{} before", ms(before.p99_ms())))
            .ratio(during.p99_ms(), before.p99_ms())
            .detail(format!(
                "p50 {} (before {}); {} swaps",
                ms(during.p50_ms()),
                ms(before.p50_ms()),
                latencies.len()
            )),
        Row::new(ITEM, "failed requests during swaps", format!("{bad}"))
            .baseline(format!("{} ok", during.ok))
            .number(bad)
            .target(Target::AtMost(0.0, "failed"))
            .detail(failures(&[&during])),
        Row::new(ITEM, "enable/rollback to new version live", ms(median))
            .number(median)
            .detail(format!("median; max {}", ms(max))),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_the_one_free_standing_version() {
        let bytes = b"x kirana:platform/kv@0.1.0 y hello0.1.0} z 10.1.05".to_vec();
        let (out, v) = other_version(&bytes, "0.1.0").expect("patched");
        assert_eq!(v, "0.1.1");
        assert_eq!(
            out,
            b"x kirana:platform/kv@0.1.0 y hello0.1.1} z 10.1.05".to_vec()
        );
    }

    #[test]
    fn refuses_ambiguous_or_missing_versions() {
        assert!(other_version(b"a0.1.0b a0.1.0b", "0.1.0").is_err());
        assert!(other_version(b"@0.1.0", "0.1.0").is_err());
        assert!(other_version(b"nothing", "0.1.0").is_err());
    }

    #[test]
    fn a_nine_goes_down() {
        let (_, v) = other_version(b"v1.2.9;", "1.2.9").expect("patched");
        assert_eq!(v, "1.2.8");
    }
}

//! The wasmtime side of the host: one engine, one linker, compiled components cached on
//! disk, and the store a single call runs in. Nothing here knows what a plugin does.

pub mod caps;
pub mod instance;
pub mod state;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config as WasmConfig, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::Config;
use crate::metrics::Metrics;
pub use caps::Caps;
pub use instance::LoadedPlugin;
pub use state::HostState;

/// The engine and linker every plugin shares.
pub struct Runtime {
    pub engine: Engine,
    pub linker: Linker<HostState>,
    /// The capabilities' shared states every store gets.
    pub caps: Arc<Caps>,
    pub metrics: Arc<Metrics>,
    /// True when the pooling allocator could reserve its slots.
    pub pooled: bool,
    /// True when the engine meters fuel (some plugin has a fuel budget).
    pub fuel: bool,
    cache_dir: PathBuf,
    ticker_stop: Arc<AtomicBool>,
    /// Frees every plugin's warm instances (the registry knows them all).
    free_warm: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Runtime {
    /// Builds the engine (pooling when the machine allows, on-demand otherwise), links
    /// WASI p2 and every capability, and starts the epoch ticker.
    pub fn new(config: &Config, caps: Arc<Caps>, metrics: Arc<Metrics>) -> Result<Self> {
        let (engine, pooled) = build_engine(config)?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI p2")?;
        caps::link(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking the kirana:platform capabilities")?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(
            engine.clone(),
            Duration::from_millis(config.runtime.epoch_tick_ms),
            ticker_stop.clone(),
        );
        Ok(Self {
            engine,
            linker,
            caps,
            metrics,
            pooled,
            fuel: config.uses_fuel(),
            cache_dir: config.cache_dir(),
            ticker_stop,
            free_warm: std::sync::OnceLock::new(),
        })
    }

    /// Sets what frees warm instances when the pool is full (once).
    pub fn on_pool_full(&self, free: Box<dyn Fn() + Send + Sync>) {
        let _ = self.free_warm.set(free);
    }

    /// Frees warm instances so a new one fits in the pool.
    pub fn free_warm_instances(&self) {
        if let Some(f) = self.free_warm.get() {
            f();
        }
    }

    /// Compiles `bytes`, or loads the artifact compiled earlier for the same bytes and
    /// engine. Returns the component and the bytes' sha256.
    ///
    /// One compile per artifact at a time: hosts (or replicas sharing a cache directory)
    /// loading the same new component together wait for the first compile behind a lock
    /// file and load its artifact, instead of each compiling it (a large component, a
    /// Python one of 18 MB, takes long enough that this matters at start).
    pub fn compile(&self, bytes: &[u8]) -> Result<(Component, String)> {
        let sha = hex::encode(Sha256::digest(bytes));
        let path = self.artifact_path(&sha);
        // Held until this compile is written; without it (read-only cache) compiling
        // twice is only slower.
        let _lock = compile_lock(&path);
        if path.exists() {
            // SAFETY: the artifact was written by `Engine::precompile_component` of an
            // engine with the same compatibility hash (it is in the file name), into a
            // cache directory only this host writes.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(c) => return Ok((c, sha)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "stale compile cache entry; recompiling")
                }
            }
        }
        let artifact = self
            .engine
            .precompile_component(bytes)
            .map_err(anyhow::Error::from)
            .context("compiling the component (is it a wasm32-wasip2 component?)")?;
        if let Err(e) = write_atomically(&path, &artifact) {
            tracing::warn!(path = %path.display(), error = %e, "could not write the compile cache");
        }
        // SAFETY: `artifact` was just produced by this engine.
        let component = unsafe { Component::deserialize(&self.engine, &artifact) }
            .map_err(anyhow::Error::from)
            .context("loading the compiled component")?;
        Ok((component, sha))
    }

    fn artifact_path(&self, sha: &str) -> PathBuf {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        self.cache_dir
            .join(format!("{sha}-{:016x}.cwasm", h.finish()))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

fn build_engine(config: &Config) -> Result<(Engine, bool)> {
    let mut wc = WasmConfig::new();
    wc.wasm_component_model(true);
    wc.epoch_interruption(true);
    wc.consume_fuel(config.uses_fuel());
    wc.cranelift_opt_level(wasmtime::OptLevel::Speed);
    if config.runtime.profiler == crate::config::Profiler::Perfmap {
        wc.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let slots = config.runtime.pool_instances;
    if slots > 0 {
        let max_memory = usize::try_from(config.runtime.max_memory_mb)
            .unwrap_or(usize::MAX)
            .saturating_mul(1 << 20);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(4))
            .total_memories(slots.saturating_mul(2))
            .total_tables(slots.saturating_mul(4))
            .total_stacks(slots)
            .max_memory_size(max_memory)
            // Keep the first pages of each slot resident: reusing a slot then costs a
            // memset instead of page faults.
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10)
            .async_stack_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut pooled = wc.clone();
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&pooled) {
            Ok(engine) => return Ok((engine, true)),
            Err(e) => {
                tracing::warn!(error = %e, "pooling allocator unavailable; falling back to on-demand allocation")
            }
        }
    }
    wc.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    let engine = Engine::new(&wc)
        .map_err(anyhow::Error::from)
        .context("creating the wasmtime engine")?;
    Ok((engine, false))
}

/// Advances the engine's epoch every `tick`; a store's deadline callback runs on each
/// tick, which is how time limits and cooperative yields work.
fn spawn_epoch_ticker(engine: Engine, tick: Duration, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("kirana-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the epoch ticker; time limits will not fire");
    }
}

/// An exclusive lock on `<artifact>.lock` (an advisory `flock`, released when the file
/// closes, so a crashed holder never leaves it taken). `None` when the lock file cannot
/// be made: compiling then goes on unlocked.
fn compile_lock(artifact: &Path) -> Option<std::fs::File> {
    if let Some(dir) = artifact.parent() {
        std::fs::create_dir_all(dir).ok()?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(artifact.with_extension("lock"))
        .ok()?;
    match file.lock() {
        Ok(()) => Some(file),
        Err(e) => {
            tracing::warn!(path = %artifact.display(), error = %e, "could not lock the compile cache entry; compiling unlocked");
            None
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compile_lock_excludes_others_until_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let artifact = dir.path().join("cache").join("abc-0.cwasm");
        let held = compile_lock(&artifact).expect("the first lock");
        let other = std::fs::OpenOptions::new()
            .write(true)
            .open(artifact.with_extension("lock"))
            .expect("the lock file exists");
        assert!(
            matches!(other.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
            "a second compile of the same artifact must wait"
        );
        drop(held);
        other
            .try_lock()
            .expect("free once the first compile is done");
    }
}

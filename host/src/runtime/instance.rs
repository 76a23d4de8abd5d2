//! A loaded plugin version and how one call runs in it: take an instance (fresh from
//! the `InstancePre`, or warm from the plugin's pool), set the deadline, call the export,
//! and either hand the instance back or throw it away.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wasmtime::component::Component;
use wasmtime::{Store, UpdateDeadline};

use super::state::HostState;
use super::Runtime;
use crate::bindings::{wit, Plugin, PluginPre};
use crate::config::InstanceMode;
use crate::core::{CallCtx, InvokeError, Limit, Op, OpResult, PluginCtx};

/// Raised by the epoch callback when a call's deadline has passed.
#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

struct Warm {
    store: Store<HostState>,
    bindings: Plugin,
}

/// One compiled, validated plugin version.
pub struct LoadedPlugin {
    pub ctx: Arc<PluginCtx>,
    pub sha256: String,
    pub size: usize,
    pub manifest: wit::Manifest,
    pre: PluginPre<HostState>,
    /// Every route of the plugin (internal ones too), for `services.call`.
    routes: matchit::Router<Vec<usize>>,
    warm: Mutex<Vec<Warm>>,
    warm_cap: usize,
    /// One permit per instance that may be alive at once (`max_instances`): a call
    /// holds one from before it takes an instance until it has given it back.
    slots: Option<Arc<tokio::sync::Semaphore>>,
    /// This plugin's instance counters, resolved by the first call.
    counters: OnceLock<crate::metrics::PluginCounters>,
    /// Set when this version stops serving: instances still out are dropped on
    /// return instead of pooled, so a retired version holds no memory.
    retired: std::sync::atomic::AtomicBool,
}

impl LoadedPlugin {
    /// Pre-instantiates `component` against the shared linker.
    pub fn prepare(runtime: &Runtime, component: &Component) -> Result<PluginPre<HostState>> {
        let pre = runtime
            .linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .context("the component does not fit the kirana:platform/plugin world")?;
        PluginPre::new(pre)
            .map_err(anyhow::Error::from)
            .context("the component does not export the kirana:platform/plugin world")
    }

    pub fn new(
        ctx: Arc<PluginCtx>,
        pre: PluginPre<HostState>,
        manifest: wit::Manifest,
        sha256: String,
        size: usize,
        warm_cap: usize,
        max_instances: Option<usize>,
    ) -> Result<Self> {
        let mut routes: matchit::Router<Vec<usize>> = matchit::Router::new();
        let mut by_path: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
        for (i, r) in manifest.routes.iter().enumerate() {
            by_path.entry(r.path.as_str()).or_default().push(i);
        }
        for (path, idx) in by_path {
            routes
                .insert(path, idx)
                .with_context(|| format!("route path {path:?} of {} is not valid", ctx.name))?;
        }
        Ok(Self {
            ctx,
            sha256,
            size,
            manifest,
            pre,
            routes,
            warm: Mutex::new(Vec::new()),
            warm_cap: max_instances.map_or(warm_cap, |m| warm_cap.min(m)),
            slots: max_instances.map(|m| Arc::new(tokio::sync::Semaphore::new(m))),
            counters: OnceLock::new(),
            retired: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn name(&self) -> &str {
        &self.ctx.name
    }

    pub fn version(&self) -> &str {
        &self.ctx.version
    }

    /// Matches a path against all of this plugin's routes (for `services.call`):
    /// the route's index in the manifest and the path parameters.
    pub fn match_route(&self, method: &str, path: &str) -> Option<(usize, Vec<(String, String)>)> {
        let m = self.routes.at(path).ok()?;
        let idx = m
            .value
            .iter()
            .copied()
            .find(|&i| self.manifest.routes[i].method.eq_ignore_ascii_case(method))?;
        let params = m
            .params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some((idx, params))
    }

    /// Runs `op` in an instance of this plugin with the call state `call`, and returns
    /// the result together with the call state (holding the events it published).
    pub async fn run(
        &self,
        runtime: &Runtime,
        call: CallCtx,
        op: Op,
    ) -> Result<(OpResult, CallCtx), InvokeError> {
        let started = Instant::now();
        let counters = self
            .counters
            .get_or_init(|| runtime.metrics.plugin_counters(&self.ctx.name));
        // Instances are only created or taken under a permit, so at most
        // `max_instances` are ever alive (a fresh one is made only when none is warm).
        let _slot = match &self.slots {
            None => None,
            Some(slots) => {
                let deadline = tokio::time::Instant::from_std(call.deadline);
                match tokio::time::timeout_at(deadline, slots.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => Some(permit),
                    // Timed out, or closed (never: the semaphore is not closed).
                    Ok(Err(_)) | Err(_) => {
                        counters.timeouts.inc();
                        return Err(InvokeError::Timeout(Limit::Instances));
                    }
                }
            }
        };
        let mut warm = match self.take_warm() {
            Some(w) => {
                counters.reuses.inc();
                w
            }
            None => {
                counters.instantiations.inc();
                // Boxed, as is the call below: wasmtime's instantiation and call futures
                // are large, and held inline they made every future above this one
                // (the gateway's whole request) as large, copied at each await.
                match Box::pin(self.instantiate(runtime, call.deadline)).await {
                    Err(InvokeError::Instantiate(reason)) => {
                        // Most likely the pool is full of idle warm instances: free them
                        // and try once more.
                        tracing::warn!(plugin = %self.ctx.name, %reason, "instantiation failed; evicting warm instances and retrying");
                        runtime.free_warm_instances();
                        Box::pin(self.instantiate(runtime, call.deadline)).await?
                    }
                    other => other?,
                }
            }
        };
        let backstop = call.remaining() + Duration::from_secs(1);
        warm.store.data_mut().call = call;
        warm.store.set_epoch_deadline(1);
        if runtime.fuel {
            // Each call starts with the plugin's full budget (unlimited without one).
            let fuel = self.ctx.fuel.unwrap_or(u64::MAX);
            if let Err(e) = warm.store.set_fuel(fuel) {
                return Err(InvokeError::Instantiate(format!("setting fuel: {e}")));
            }
        }

        let outcome = tokio::time::timeout(backstop, Box::pin(call_export(&mut warm, op))).await;
        let result = match outcome {
            Err(_) => Err(InvokeError::Timeout(Limit::Time)),
            Ok(Err(e)) => Err(classify(e, warm.store.data().stderr_text())),
            Ok(Ok(r)) => Ok(r),
        };
        match result {
            Ok(r) => {
                let call = std::mem::take(&mut warm.store.data_mut().call);
                self.give_back(warm);
                Ok((r, call))
            }
            Err(e) => {
                match &e {
                    InvokeError::Timeout(_) => counters.timeouts.inc(),
                    InvokeError::MemoryLimit(_) => counters.memory_limits.inc(),
                    InvokeError::Trap(_) | InvokeError::Instantiate(_) => counters.traps.inc(),
                };
                tracing::warn!(
                    plugin = %self.ctx.name,
                    version = %self.ctx.version,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    error = %e,
                    "plugin call failed; instance discarded"
                );
                Err(e)
            }
        }
    }

    async fn instantiate(&self, runtime: &Runtime, deadline: Instant) -> Result<Warm, InvokeError> {
        let mut state = HostState::new(self.ctx.clone(), runtime.caps.clone());
        // Start functions run during instantiation and count against the call's time.
        state.call.deadline = deadline;
        let mut store = Store::new(&runtime.engine, state);
        store.set_epoch_deadline(1);
        if runtime.fuel {
            // Start functions run on the call's budget too.
            let fuel = self.ctx.fuel.unwrap_or(u64::MAX);
            store
                .set_fuel(fuel)
                .map_err(|e| InvokeError::Instantiate(format!("setting fuel: {e}")))?;
        }
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().call.deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                // Yield to the executor on every tick so a busy plugin cannot starve
                // other requests on the same worker thread.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        let bindings = self.pre.instantiate_async(&mut store).await.map_err(|e| {
            if e.downcast_ref::<DeadlineExceeded>().is_some() {
                InvokeError::Timeout(Limit::Time)
            } else {
                InvokeError::Instantiate(format!("{e:#}"))
            }
        })?;
        Ok(Warm { store, bindings })
    }

    fn take_warm(&self) -> Option<Warm> {
        if self.ctx.mode != InstanceMode::Reuse {
            return None;
        }
        self.warm.lock().ok()?.pop()
    }

    fn give_back(&self, warm: Warm) {
        if self.ctx.mode != InstanceMode::Reuse
            || !warm.store.data().reusable()
            || self.retired.load(std::sync::atomic::Ordering::Acquire)
        {
            return;
        }
        if let Ok(mut pool) = self.warm.lock() {
            if pool.len() < self.warm_cap {
                pool.push(warm);
            }
        }
    }

    /// Drops every warm instance (frees pool slots; the version keeps serving).
    pub fn drain(&self) {
        if let Ok(mut pool) = self.warm.lock() {
            pool.clear();
        }
    }

    /// This version stopped serving: drop its warm instances and pool no more.
    pub fn retire(&self) {
        self.retired
            .store(true, std::sync::atomic::Ordering::Release);
        self.drain();
    }

    /// This version serves (again): its instances may be pooled.
    pub fn revive(&self) {
        self.retired
            .store(false, std::sync::atomic::Ordering::Release);
    }
}

async fn call_export(warm: &mut Warm, op: Op) -> wasmtime::Result<OpResult> {
    let Warm { store, bindings } = warm;
    Ok(match op {
        Op::Describe => OpResult::Manifest(bindings.call_describe(&mut *store).await?),
        Op::Migrate(from) => {
            OpResult::Migrated(bindings.call_migrate(&mut *store, from.as_deref()).await?)
        }
        Op::Handle(req) => OpResult::Response(bindings.call_handle(&mut *store, &req).await?),
        Op::OnEvent(ev) => OpResult::Event(bindings.call_on_event(&mut *store, &ev).await?),
    })
}

fn classify(e: wasmtime::Error, stderr: String) -> InvokeError {
    if e.downcast_ref::<DeadlineExceeded>().is_some() {
        return InvokeError::Timeout(Limit::Time);
    }
    // A spent fuel budget is a compute limit: answered like the time limit.
    if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::OutOfFuel) {
        return InvokeError::Timeout(Limit::Fuel);
    }
    let e = anyhow::Error::from(e);
    let cause = first_line(&e.root_cause().to_string());
    let text = format!("{e:?}");
    if text.contains("memory") && (text.contains("grow") || text.contains("limit")) {
        return InvokeError::MemoryLimit(cause);
    }
    let mut message = cause;
    if !stderr.is_empty() {
        message.push_str(" | stderr: ");
        message.push_str(&stderr);
    }
    InvokeError::Trap(message)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

//! What a store carries: the plugin it runs, the platform's shared services, and the
//! state of the one call in progress.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::wit;
use crate::capabilities::grants::Grants;
use crate::capabilities::sql::{Tx, Unit};
use crate::config::InstanceMode;
use crate::platform::Platform;
use crate::storage::PluginDb;

/// Everything about a loaded plugin version that its capability calls need.
pub struct PluginCtx {
    pub name: String,
    pub version: String,
    pub grants: Grants,
    pub db: PluginDb,
    /// The plugin's own `[name]` section of the configuration.
    pub settings: Vec<(String, String)>,
    pub memory_bytes: usize,
    pub timeout: Duration,
    pub mode: InstanceMode,
    /// Largest request body the gateway hands this plugin.
    pub body_bytes: usize,
    /// Nesting limit for service calls this plugin makes.
    pub max_call_depth: u32,
    /// Fuel per call when the engine meters fuel (none = unlimited).
    pub fuel: Option<u64>,
}

/// An event published during a call, held until the call succeeds.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub id: String,
    pub topic: String,
    pub payload: String,
    pub source: String,
    pub delay: Duration,
    /// The plugin's innermost open `transaction` when it published: rolling that
    /// back drops the event.
    pub savepoint: Option<u32>,
}

/// The state of one call (a request, an event delivery, a migration).
pub struct CallCtx {
    pub request_id: String,
    pub caller: Option<wit::Identity>,
    /// How many `services.call` hops led here (0 at the gateway).
    pub depth: u32,
    pub deadline: Instant,
    /// Events published so far; committed only if the call succeeds.
    pub pending: Vec<PendingEvent>,
    /// During `migrate`, every SQL statement runs in this transaction.
    pub migration_tx: Option<Tx>,
    /// The call's own transaction (see [`Unit`]), from its first write on.
    pub unit: Option<Unit>,
    /// The unit failed after holding work: the call must not succeed.
    pub unit_lost: bool,
}

impl CallCtx {
    pub fn new(
        request_id: String,
        caller: Option<wit::Identity>,
        depth: u32,
        timeout: Duration,
    ) -> Self {
        Self {
            request_id,
            caller,
            depth,
            deadline: Instant::now() + timeout,
            pending: Vec::new(),
            migration_tx: None,
            unit: None,
            unit_lost: false,
        }
    }

    /// Drops the events published since savepoint `sp` began (it was rolled back).
    pub fn drop_events_from(&mut self, sp: u32) {
        self.pending
            .retain(|e| e.savepoint.is_none_or(|published_in| published_in < sp));
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

impl Default for CallCtx {
    fn default() -> Self {
        Self::new(String::new(), None, 0, Duration::ZERO)
    }
}

/// The data of a wasmtime store.
pub struct HostState {
    /// Built on the first WASI call: many calls make none, and a context seeds its
    /// random generators when built.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    pub limits: StoreLimits,
    pub plugin: Arc<PluginCtx>,
    pub platform: Arc<Platform>,
    pub call: CallCtx,
    /// SQL transactions the plugin holds open; an instance holding one is not reused.
    pub open_txs: usize,
    stderr: MemoryOutputPipe,
}

/// Bytes of a plugin's stderr kept for the log when it traps (panic messages).
const STDERR_CAPACITY: usize = 16 * 1024;

impl HostState {
    pub fn new(plugin: Arc<PluginCtx>, platform: Arc<Platform>) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let limits = StoreLimitsBuilder::new()
            .memory_size(plugin.memory_bytes)
            .table_elements(100_000)
            .instances(64)
            .tables(64)
            .memories(16)
            .trap_on_grow_failure(true)
            .build();
        Self {
            wasi: None,
            table: ResourceTable::new(),
            limits,
            plugin,
            platform,
            call: CallCtx::default(),
            open_txs: 0,
            stderr,
        }
    }

    /// What the plugin wrote to stderr (e.g. a panic message), lossily decoded.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string()
    }

    /// Whether this instance may serve another call: no transaction left open and
    /// stderr far from full (a full pipe would make the next `eprintln!` trap).
    pub fn reusable(&self) -> bool {
        self.open_txs == 0 && self.stderr.contents().len() < STDERR_CAPACITY / 2
    }

    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let stderr = &self.stderr;
        // No environment, no filesystem, no sockets: only clocks, random and stdio.
        let ctx = self
            .wasi
            .get_or_insert_with(|| WasiCtx::builder().stderr(stderr.clone()).build());
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

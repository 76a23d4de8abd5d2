//! What a store carries: the plugin it runs, the capabilities' shared states, and the
//! state of the one call in progress; and the view each capability gets of it.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::Caps;
use crate::core::{CallCtx, PluginCtx, View};

/// The data of a wasmtime store.
pub struct HostState {
    /// Built on the first WASI call: many calls make none, and a context seeds its
    /// random generators when built.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    pub limits: StoreLimits,
    pub plugin: Arc<PluginCtx>,
    pub caps: Arc<Caps>,
    pub call: CallCtx,
    /// SQL transactions the plugin holds open; an instance holding one is not reused.
    pub open_txs: usize,
    stderr: MemoryOutputPipe,
}

/// Bytes of a plugin's stderr kept for the log when it traps (panic messages).
const STDERR_CAPACITY: usize = 16 * 1024;

impl HostState {
    pub fn new(plugin: Arc<PluginCtx>, caps: Arc<Caps>) -> Self {
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
            caps,
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

    /// One capability's view of this store: `pick` chooses its state.
    pub fn view<S: ?Sized>(&mut self, pick: fn(&Caps) -> &S) -> View<'_, S> {
        View {
            plugin: &self.plugin,
            call: &mut self.call,
            table: &mut self.table,
            open_txs: &mut self.open_txs,
            state: pick(&self.caps),
        }
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

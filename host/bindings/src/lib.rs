//! Host-side bindings of the `kirana:platform/plugin` world: the leaf every other
//! module stands on. Besides the generated types it holds the host side of the one
//! resource the world declares, so the bindings depend on nothing of the host.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../../wit",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "kirana:platform/sql.transaction": TxHandle,
    },
});

pub use self::kirana::platform::types as wit;

/// The host side of a `transaction` resource: a savepoint of the call's unit of work
/// (`None` once committed or rolled back).
pub struct TxHandle {
    pub sp: Option<u32>,
}

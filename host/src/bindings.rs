//! Host-side bindings of the `kirana:platform/plugin` world.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "kirana:platform/sql.transaction": crate::capabilities::sql::TxHandle,
    },
});

pub use self::kirana::platform::types as wit;

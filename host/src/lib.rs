//! Kirana's host: one process that is the API gateway, the service mesh and the event
//! bus for business services running as sandboxed WebAssembly components.
//!
//! - [`runtime`]: wasmtime engine, pooling, per-plugin `InstancePre`, limits, the store of
//!   one call. Knows nothing of groceries.
//! - [`capabilities`]: one module per WIT interface the host provides.
//! - [`registry`]: which plugin versions are loaded and live.
//! - [`gateway`]: the axum front door: routing, auth, limits, errors.
//! - [`app`]: wires configuration → telemetry → storage → runtime → gateway.

pub mod app;
pub mod capabilities;
pub mod config;
pub mod gateway;
pub mod metrics;
pub mod platform;
pub mod registry;
pub mod runtime;
pub mod storage;
pub mod telemetry;

//! Kirana's host: one process that is the API gateway, the service mesh and the event
//! bus for business services running as sandboxed WebAssembly components.
//!
//! - [`runtime`]: wasmtime engine, pooling, per-plugin `InstancePre`, limits, the store of
//!   one call. Knows nothing of groceries.
//! - [`cluster`]: what replicas share besides the database (change feed, Redis).
//! - [`capabilities`]: one module per WIT interface the host provides.
//! - [`registry`]: installed plugin versions, which one is live, hot swap and canaries.
//! - [`gateway`]: the axum front door: routing, auth, limits, errors.
//! - [`admin`]: the operator API under `/admin` (what `kirana plugins ...` talks to).
//! - [`console`]: the operator console at `/console` (a page the host serves itself).
//! - [`app`]: wires configuration → telemetry → storage → runtime → gateway.

pub mod admin;
pub mod app;
pub mod bindings;
pub mod capabilities;
pub mod cluster;
pub mod config;
pub mod console;
pub mod core;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod registry;
pub mod runtime;
pub mod stats;
pub mod storage;
pub mod telemetry;

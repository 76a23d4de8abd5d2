//! The WIT world's host-side bindings, from the `kirana-bindings` crate (a crate of
//! its own, so nothing of the host can creep into them).

pub use kirana_bindings::*;

//! The `swap` test plugin, version 9.9.9 (build `greedy`): see ../../swap/common.rs.
//! It asks for more than the operator granted `swap` (kv, identity, a topic of its own,
//! 128 MiB) and makes `GET /api/v1/swap` admin-only, for the grant and canary-access
//! tests.

const VERSION: &str = "9.9.9";
const BUILD: &str = "greedy";

include!("../../swap/common.rs");

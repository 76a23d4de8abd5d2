//! The `swap` test plugin, version 1.0.0 (build `v1`): see ../../swap/common.rs.

const VERSION: &str = "1.0.0";
const BUILD: &str = "v1";

include!("../../swap/common.rs");

//! The `swap` test plugin, version 2.0.0 (build `v2`): see ../../swap/common.rs.

const VERSION: &str = "2.0.0";
const BUILD: &str = "v2";

include!("../../swap/common.rs");

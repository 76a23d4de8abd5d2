//! The `swap` test plugin, version 5.0.0 (build `clash`): see ../../swap/common.rs.

const VERSION: &str = "5.0.0";
const BUILD: &str = "clash";

include!("../../swap/common.rs");

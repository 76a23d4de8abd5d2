//! The `swap` test plugin, version 3.0.0 (build `bad`): see ../../swap/common.rs.

const VERSION: &str = "3.0.0";
const BUILD: &str = "bad";

include!("../../swap/common.rs");

//! The `swap` test plugin, version 4.0.0 (build `flaky`): see ../../swap/common.rs.

const VERSION: &str = "4.0.0";
const BUILD: &str = "flaky";

include!("../../swap/common.rs");

//! The `swap` test plugin, version 9.9.6 (build `wildcard`): see ../../swap/common.rs.
//! Its manifest lists `*` among the topics it publishes, which the host refuses at
//! install: a plugin names each topic it owns.

const VERSION: &str = "9.9.6";
const BUILD: &str = "wildcard";

include!("../../swap/common.rs");

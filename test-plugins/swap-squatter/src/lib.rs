//! The `swap` test plugin, version 9.9.8 (build `squatter`): see ../../swap/common.rs.
//! It declares `user.created`, which auth owns, as a topic of its own: the registry
//! refuses to enable it while auth is enabled (a forged `user.created` could make
//! anyone a delivery agent).

const VERSION: &str = "9.9.8";
const BUILD: &str = "squatter";

include!("../../swap/common.rs");

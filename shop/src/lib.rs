//! `kirana-shop`: what the grocery shop's own plugins share, and nothing the runtime or
//! a plugin of another kind needs.
//!
//! [`kirana_sdk`] is generic: a plugin for any kind of shop (or no shop at all) builds
//! on it, and it names no product, cart, order or role. What is particular to this shop
//! lives here, once:
//!
//! - [`errors`]: the shop's own error codes (`insufficient_stock`, `invalid_transition`,
//!   `cart_empty`), built on [`kirana_sdk::ApiError::new`] like any plugin-defined code.
//! - [`roles`] and [`access`]: the shop's roles and the [`kirana_sdk::Access`] values
//!   routes use. `customer`, `admin` and `delivery_agent` are all shop roles: the auth
//!   plugin issues them, routes name them, and the host only compares the token's role
//!   with a route's list. None of them means anything to the runtime (its own operator
//!   is a credential, not a role), so none of them is in the SDK.
//! - Typed clients for every internal route one shop plugin calls on another
//!   ([`auth`], [`cart`], [`catalog`], [`notifications`], [`orders`], [`promotions`]):
//!   the request and answer types are defined here once, the callee builds or parses
//!   with them where it can and tests its answer against them where it serves a richer
//!   shape, and the caller calls a function instead of restating paths and JSON.
//!
//! Every client returns [`kirana_sdk::ApiError`] on failure: the callee's own error as
//! it answered it (status, code, message, details), or `503 plugin_unavailable` /
//! `504 plugin_timeout` when it could not be reached. A caller that treats some answer
//! specially (a `404`, a `409`) matches on `status`; answers that are part of the
//! contract (an unknown order) are in the return type instead (`Option`).
//!
//! The caller must still ask for the callee in its [`kirana_sdk::Capabilities::call`].

pub mod access;
pub mod auth;
pub mod cart;
pub mod catalog;
pub mod errors;
pub mod notifications;
pub mod orders;
pub mod promotions;
pub mod roles;

mod call;

/// An id that can be put in a path: 1..=128 of letters, digits, `_` and `-`. Anything
/// else (a `/`, a `?`, an empty string) could reach another route, so a client treats
/// it as an id that does not exist.
pub fn plausible_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_id_like_text_reaches_a_path() {
        assert!(plausible_id("hld_0190aa"));
        assert!(plausible_id(&"h".repeat(128)));
        for bad in [
            "",
            "../x",
            "hld/1",
            "a b",
            "hld?x=1",
            "ord#1",
            &"h".repeat(129),
        ] {
            assert!(!plausible_id(bad), "{bad}");
        }
    }
}

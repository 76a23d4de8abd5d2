//! `kirana-sdk`: what a Kirana plugin author depends on.
//!
//! A plugin is a `wasm32-wasip2` component that implements the `kirana:platform/plugin`
//! world. This crate hides the generated bindings behind plain Rust: a [`Router`] whose
//! routes double as the manifest, JSON in and out with serde, an [`ApiError`] that renders
//! the API error shape, validation and paging helpers, and thin typed wrappers over the
//! host capabilities ([`sql`], [`kv`], [`events`], [`services`], [`identity`], [`files`],
//! [`realtime`], [`mail`], [`config`], [`log`]).
//!
//! ```ignore
//! use kirana_sdk::prelude::*;
//!
//! struct Hello;
//! impl Plugin for Hello {
//!     const NAME: &'static str = "hello";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     fn router() -> Router {
//!         Router::new().get("/api/v1/hello", Access::Public, |_req| Ok(Response::ok(&"hi")))
//!     }
//! }
//! kirana_sdk::export_plugin!(Hello);
//! ```

// The derives name the SDK by its absolute path (`::kirana_sdk::sql::FromRow`), so that
// their users need no import; this makes that path resolve inside the SDK too.
extern crate self as kirana_sdk;

#[allow(clippy::too_many_arguments)]
pub mod bindings {
    //! The raw wit-bindgen bindings of `kirana:platform/plugin`. Prefer the wrappers.
    wit_bindgen::generate!({
        world: "plugin",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_wit",
        default_bindings_module: "kirana_sdk::bindings",
    });
}

mod error;
mod http;
mod manifest;
mod paging;
mod util;
mod validate;

pub mod cache;
pub mod config;
pub mod events;
pub mod files;
pub mod idempotency;
pub mod identity;
pub mod kv;
pub mod log;
pub mod mail;
pub mod realtime;
pub mod services;
pub mod sql;

pub use error::{cap_error_message, ApiError, CapError, FieldError};
pub use http::{Method, Request, Response};
pub use manifest::{Access, Capabilities, Limits, Router};
pub use paging::{Paged, Paging};
/// The trait and its derive (`#[derive(FromRow)]`), as `serde::Serialize` is both.
pub use sql::FromRow;
pub use util::{new_id, now, now_rfc3339, random_code, random_token, rfc3339};
pub use validate::Validator;

/// Re-exported so plugins need not depend on serde_json themselves.
pub use serde_json::{self, json};

/// Everything a handler usually needs.
pub mod prelude {
    pub use crate::sql::{FromRow, Row, Value};
    pub use crate::{
        json, new_id, now_rfc3339, params, Access, ApiError, Capabilities, Event, Limits, Paged,
        Paging, Plugin, Request, Response, Router, Validator,
    };
    pub use serde::{Deserialize, Serialize};
}

/// An event delivered to [`Plugin::on_event`].
pub type Event = bindings::kirana::platform::types::Event;

/// What a plugin implements. [`export_plugin!`] turns it into the component's exports.
pub trait Plugin {
    /// The plugin's name; the host routes service calls and events by it.
    const NAME: &'static str;
    /// Semantic version; usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;

    /// The routes; they are both the manifest's route list and the dispatch table.
    fn router() -> Router;

    /// Capabilities to ask the operator for.
    fn capabilities() -> Capabilities {
        Capabilities::new()
    }

    /// Topics delivered to [`Plugin::on_event`].
    fn subscriptions() -> Vec<String> {
        Vec::new()
    }

    /// Limits to ask for; the host caps them.
    fn limits() -> Limits {
        Limits::default()
    }

    /// Brings the schema forward from `from` (see the WIT for when it is called).
    fn migrate(_from: Option<&str>) -> Result<(), String> {
        Ok(())
    }

    /// Handles one event; an error is retried with backoff.
    fn on_event(event: &Event) -> Result<(), String> {
        Err(format!("{} does not handle {}", Self::NAME, event.topic))
    }
}

#[doc(hidden)]
pub mod __private {
    //! Glue called by [`export_plugin!`]; not part of the public API.
    use super::*;
    use bindings::kirana::platform::types as wit;

    pub fn describe<P: Plugin>() -> wit::Manifest {
        manifest::describe::<P>()
    }

    /// Dispatches to the route's handler; `router` is built once per instance.
    pub fn handle(router: &Router, req: wit::Request) -> wit::Response {
        let request = Request::from_wit(req);
        let response = match router.find(request.method(), request.route()) {
            Some(handler) => handler(&request).unwrap_or_else(|e| e.into_response(request.id())),
            None => ApiError::not_found("route").into_response(request.id()),
        };
        response.into_wit()
    }

    pub fn migrate<P: Plugin>(from: Option<String>) -> Result<(), String> {
        P::migrate(from.as_deref())
    }

    pub fn on_event<P: Plugin>(event: wit::Event) -> Result<(), String> {
        P::on_event(&event)
    }
}

/// Exports a [`Plugin`] implementation as the component's `describe`, `migrate`,
/// `handle` and `on-event`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __KiranaExports;

        /// Built on the first request and kept while the instance lives (reuse mode).
        static __KIRANA_ROUTER: ::std::sync::OnceLock<$crate::Router> = ::std::sync::OnceLock::new();

        impl $crate::bindings::Guest for __KiranaExports {
            fn describe() -> $crate::bindings::kirana::platform::types::Manifest {
                $crate::__private::describe::<$plugin>()
            }
            fn migrate(from: Option<String>) -> Result<(), String> {
                $crate::__private::migrate::<$plugin>(from)
            }
            fn handle(
                request: $crate::bindings::kirana::platform::types::Request,
            ) -> $crate::bindings::kirana::platform::types::Response {
                let router = __KIRANA_ROUTER.get_or_init(<$plugin as $crate::Plugin>::router);
                $crate::__private::handle(router, request)
            }
            fn on_event(
                event: $crate::bindings::kirana::platform::types::Event,
            ) -> Result<(), String> {
                $crate::__private::on_event::<$plugin>(event)
            }
        }

        $crate::bindings::__export_wit!(__KiranaExports with_types_in $crate::bindings);
    };
}

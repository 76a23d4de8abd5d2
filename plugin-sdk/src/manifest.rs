//! Routes, capabilities and limits: what `describe` tells the host.

use crate::bindings::kirana::platform::types as wit;
use crate::error::ApiError;
use crate::http::{Method, Request, Response};
use crate::Plugin;

/// A handler: a plain function from a request to a response or an API error.
pub type Handler = fn(&Request) -> Result<Response, ApiError>;

/// Who may call a route; enforced by the host before the plugin runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// Any valid token.
    Authenticated,
    /// A valid token with one of these roles. Role names are the application's (its
    /// auth plugin issues them); the SDK and the host know none by name.
    Roles(&'static [&'static str]),
    /// Only other plugins, through `services.call`.
    Internal,
}

impl Access {
    fn to_wit(&self) -> wit::Access {
        match self {
            Access::Public => wit::Access::Public,
            Access::Authenticated => wit::Access::Authenticated,
            Access::Roles(roles) => {
                wit::Access::Roles(roles.iter().map(|r| r.to_string()).collect())
            }
            Access::Internal => wit::Access::Internal,
        }
    }
}

struct RouteDef {
    method: Method,
    path: &'static str,
    access: Access,
    summary: Option<String>,
    request_schema: Option<serde_json::Value>,
    response_schema: Option<serde_json::Value>,
    handler: Handler,
}

/// The plugin's routes: the manifest's route list and the dispatch table in one.
#[derive(Default)]
pub struct Router {
    routes: Vec<RouteDef>,
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route; `path` uses `{name}` parameters.
    pub fn route(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        handler: Handler,
    ) -> Self {
        self.routes.push(RouteDef {
            method,
            path,
            access,
            summary: None,
            request_schema: None,
            response_schema: None,
            handler,
        });
        self
    }

    pub fn get(self, path: &'static str, access: Access, handler: Handler) -> Self {
        self.route(Method::Get, path, access, handler)
    }

    pub fn post(self, path: &'static str, access: Access, handler: Handler) -> Self {
        self.route(Method::Post, path, access, handler)
    }

    pub fn put(self, path: &'static str, access: Access, handler: Handler) -> Self {
        self.route(Method::Put, path, access, handler)
    }

    pub fn patch(self, path: &'static str, access: Access, handler: Handler) -> Self {
        self.route(Method::Patch, path, access, handler)
    }

    pub fn delete(self, path: &'static str, access: Access, handler: Handler) -> Self {
        self.route(Method::Delete, path, access, handler)
    }

    fn last(&mut self) -> &mut RouteDef {
        self.routes
            .last_mut()
            .expect("summary/schema must follow a route")
    }

    /// A one-line summary of the route just added (for OpenAPI).
    pub fn summary(mut self, text: &str) -> Self {
        self.last().summary = Some(text.to_string());
        self
    }

    /// JSON Schema of the request body of the route just added.
    pub fn request_schema(mut self, schema: serde_json::Value) -> Self {
        self.last().request_schema = Some(schema);
        self
    }

    /// The route just added takes raw bytes (an upload), not JSON: the gateway lets
    /// through a body declared as one of `media_types` (any type when empty), and the
    /// OpenAPI document shows a binary body. Read it with [`crate::Request::body`].
    pub fn raw_body(self, media_types: &[&str]) -> Self {
        let mut schema = serde_json::json!({"type": "string", "format": "binary"});
        if !media_types.is_empty() {
            schema["contentMediaType"] = media_types.join(",").into();
        }
        self.request_schema(schema)
    }

    /// The route just added answers a file (an image, a page, a script), not JSON: the
    /// OpenAPI document shows a binary answer of `media_types`, and the gateway counts
    /// its `GET`s against the larger per-minute budget for files (a page pulls dozens).
    pub fn file_response(self, media_types: &[&str]) -> Self {
        let mut schema = serde_json::json!({"type": "string", "format": "binary"});
        if !media_types.is_empty() {
            schema["contentMediaType"] = media_types.join(",").into();
        }
        self.response_schema(schema)
    }

    /// JSON Schema of the success response of the route just added.
    pub fn response_schema(mut self, schema: serde_json::Value) -> Self {
        self.last().response_schema = Some(schema);
        self
    }

    /// The handler for a method and route pattern (the host already matched the path).
    pub fn find(&self, method: &str, route: &str) -> Option<Handler> {
        self.routes
            .iter()
            .find(|r| r.method.as_str() == method && r.path == route)
            .map(|r| r.handler)
    }

    fn to_wit(&self) -> Vec<wit::Route> {
        self.routes
            .iter()
            .map(|r| wit::Route {
                method: r.method.as_str().to_string(),
                path: r.path.to_string(),
                access: r.access.to_wit(),
                summary: r.summary.clone(),
                request_schema: r.request_schema.as_ref().map(|s| s.to_string()),
                response_schema: r.response_schema.as_ref().map(|s| s.to_string()),
            })
            .collect()
    }
}

/// The capabilities a plugin asks for, as a builder.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    sql: bool,
    kv: bool,
    publish: Vec<String>,
    call: Vec<String>,
    identity: bool,
    realtime: bool,
    mail: bool,
}

impl Capabilities {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn sql(mut self) -> Self {
        self.sql = true;
        self
    }
    pub fn kv(mut self) -> Self {
        self.kv = true;
        self
    }
    /// Topics this plugin publishes or schedules.
    pub fn publish(mut self, topics: &[&str]) -> Self {
        self.publish.extend(topics.iter().map(|t| t.to_string()));
        self
    }
    /// Plugins this plugin calls.
    pub fn call(mut self, plugins: &[&str]) -> Self {
        self.call.extend(plugins.iter().map(|p| p.to_string()));
        self
    }
    pub fn identity(mut self) -> Self {
        self.identity = true;
        self
    }
    pub fn realtime(mut self) -> Self {
        self.realtime = true;
        self
    }
    pub fn mail(mut self) -> Self {
        self.mail = true;
        self
    }

    fn to_wit(&self) -> wit::Capabilities {
        wit::Capabilities {
            sql: self.sql,
            kv: self.kv,
            publish: self.publish.clone(),
            call: self.call.clone(),
            identity: self.identity,
            realtime: self.realtime,
            mail: self.mail,
        }
    }
}

/// Limits a plugin asks for; `None` takes the host's default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub memory_mb: Option<u32>,
    pub timeout_ms: Option<u32>,
}

pub(crate) fn describe<P: Plugin>() -> wit::Manifest {
    let limits = P::limits();
    wit::Manifest {
        name: P::NAME.to_string(),
        version: P::VERSION.to_string(),
        routes: P::router().to_wit(),
        subscriptions: P::subscriptions(),
        capabilities: P::capabilities().to_wit(),
        limits: wit::Limits {
            memory_mb: limits.memory_mb,
            timeout_ms: limits.timeout_ms,
        },
    }
}

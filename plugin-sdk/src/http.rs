//! Requests and responses as a handler sees them.

use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::bindings::kirana::platform::types as wit;
use crate::error::{ApiError, FieldError};

/// HTTP methods a route can declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// The caller as the host verified it.
pub type Identity = wit::Identity;

/// One request handed to a handler.
#[derive(Debug, Clone)]
pub struct Request {
    inner: wit::Request,
    query: Vec<(String, String)>,
}

impl Request {
    pub(crate) fn from_wit(inner: wit::Request) -> Self {
        let query = form_urlencoded::parse(inner.query.as_bytes())
            .into_owned()
            .collect();
        Self { inner, query }
    }

    /// Builds a request by hand, e.g. for unit tests of handlers.
    pub fn new(method: Method, route: &str, path: &str, body: &[u8]) -> Self {
        Self::from_wit(wit::Request {
            method: method.as_str().to_string(),
            path: path.to_string(),
            route: route.to_string(),
            params: Vec::new(),
            query: String::new(),
            headers: Vec::new(),
            body: body.to_vec(),
            caller: None,
            request_id: "test".to_string(),
        })
    }

    pub fn method(&self) -> &str {
        &self.inner.method
    }

    /// The matched route pattern, e.g. `/api/v1/products/{id}`.
    pub fn route(&self) -> &str {
        &self.inner.route
    }

    pub fn path(&self) -> &str {
        &self.inner.path
    }

    pub fn id(&self) -> &str {
        &self.inner.request_id
    }

    pub fn body(&self) -> &[u8] {
        &self.inner.body
    }

    /// A header by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The caller, when a valid token came with the request.
    pub fn caller(&self) -> Option<&Identity> {
        self.inner.caller.as_ref()
    }

    /// The caller, or `401` when there is none (the host already enforces this on
    /// routes that are not public).
    pub fn user(&self) -> Result<&Identity, ApiError> {
        self.caller()
            .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))
    }

    /// True when the caller has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.caller().is_some_and(|c| c.role == role)
    }

    /// A path parameter parsed as `T`; a value that does not parse is a 404 (the
    /// resource cannot exist), a missing one is a bug in the route.
    pub fn param<T: FromStr>(&self, name: &str) -> Result<T, ApiError> {
        let raw = self
            .inner
            .params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ApiError::internal(format!("route has no parameter {name}")))?;
        raw.parse().map_err(|_| ApiError::not_found(name))
    }

    /// A decoded query parameter; the first one when repeated.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter parsed as `T`; `400 validation_failed` naming it when it does
    /// not parse. Absent or empty is `None`.
    pub fn query_as<T: FromStr>(&self, name: &str, expected: &str) -> Result<Option<T>, ApiError> {
        match self.query(name) {
            None | Some("") => Ok(None),
            Some(raw) => raw
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid_field(name, format!("must be {expected}"))),
        }
    }

    /// True when the body is declared as JSON (`application/json`, parameters allowed,
    /// or any `+json` type).
    pub fn is_json(&self) -> bool {
        self.header("content-type").is_some_and(|ct| {
            let essence = ct.split(';').next().unwrap_or("").trim().as_bytes();
            essence.eq_ignore_ascii_case(b"application/json")
                || essence.len() >= 5 && essence[essence.len() - 5..].eq_ignore_ascii_case(b"+json")
        })
    }

    /// The body as `T`: `415` when it is not declared JSON, `400 invalid_json` when it
    /// does not parse, `400 validation_failed` naming the field when a field has the
    /// wrong type or is missing.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if !self.is_json() {
            return Err(ApiError::unsupported_media_type());
        }
        // The common case, a well-formed object, parses straight into `T`. Anything
        // else takes the slow path below, which alone decides the answer (duplicate
        // keys, say, are refused by a derived struct but kept last-wins by `Value`).
        let body = &self.inner.body;
        let object = body
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .is_some_and(|b| *b == b'{');
        if object {
            if let Ok(parsed) = serde_json::from_slice(body) {
                return Ok(parsed);
            }
        }
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::invalid_json(format!("the body is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::invalid_field("body", "must be a JSON object"));
        }
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "body".to_string()
            } else {
                path
            };
            let inner = e.into_inner().to_string();
            // serde says "missing field `x`" at the parent's path; name the field itself.
            let (field, message) = match inner.strip_prefix("missing field `") {
                Some(rest) => {
                    let name = rest.trim_end_matches('`');
                    let full = if field == "body" {
                        name.to_string()
                    } else {
                        format!("{field}.{name}")
                    };
                    (full, "is required".to_string())
                }
                None => (field, inner),
            };
            ApiError::validation(vec![FieldError { field, message }])
        })
    }
}

/// What a handler returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response with `status`.
    pub fn json<T: Serialize + ?Sized>(status: u16, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => Self::json_bytes(status, bytes),
            Err(e) => ApiError::internal(format!("serialising the response: {e}"))
                .into_response("unknown"),
        }
    }

    /// A response with `status` whose body is JSON serialised earlier (a cached
    /// answer, say).
    pub fn json_bytes(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        }
    }

    /// `200` with a JSON body.
    pub fn ok<T: Serialize + ?Sized>(body: &T) -> Self {
        Self::json(200, body)
    }

    /// `201` with a JSON body.
    pub fn created<T: Serialize + ?Sized>(body: &T) -> Self {
        Self::json(201, body)
    }

    /// `202` with a JSON body.
    pub fn accepted<T: Serialize + ?Sized>(body: &T) -> Self {
        Self::json(202, body)
    }

    /// `204` with no body.
    pub fn no_content() -> Self {
        Self {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `302 Found` to `location`, never cached (redirects here carry one-time values).
    pub fn redirect(location: &str) -> Self {
        Self {
            status: 302,
            headers: vec![
                ("location".into(), location.into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub(crate) fn into_wit(self) -> wit::Response {
        wit::Response {
            status: self.status,
            headers: self.headers,
            body: self.body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        price: i64,
    }

    fn json_request(body: &str) -> Request {
        let mut r = Request::new(Method::Post, "/x", "/x", body.as_bytes());
        r.inner.headers.push((
            "content-type".into(),
            "application/json; charset=utf-8".into(),
        ));
        r
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = json_request(r#"{"name":"a","price":10.5}"#)
            .json::<Body>()
            .unwrap_err();
        assert_eq!(e.code, "validation_failed");
        assert_eq!(e.details["fields"][0]["field"], "price");

        let e = json_request(r#"{"price":10}"#).json::<Body>().unwrap_err();
        assert_eq!(e.details["fields"][0]["field"], "name");
        assert_eq!(e.details["fields"][0]["message"], "is required");

        let e = json_request("{nope").json::<Body>().unwrap_err();
        assert_eq!(e.code, "invalid_json");
    }

    #[test]
    fn json_needs_a_json_content_type() {
        let r = Request::new(Method::Post, "/x", "/x", br#"{"name":"a","price":1}"#);
        assert_eq!(r.json::<Body>().unwrap_err().status, 415);
        let ok = json_request(r#"{"name":"a","price":1}"#).json::<Body>();
        assert!(ok.is_ok());
        let declared = |ct: &str| {
            let mut r = Request::new(Method::Post, "/x", "/x", b"");
            r.inner.headers.push(("content-type".into(), ct.into()));
            r.is_json()
        };
        assert!(declared("APPLICATION/JSON ; charset=utf-8"));
        assert!(declared("application/merge-patch+JSON"));
        assert!(!declared("json"));
        assert!(!declared("text/plain"));
        assert!(!declared("application/jsonx"));
    }

    #[test]
    fn json_answers_as_the_value_path_does_where_a_direct_parse_differs() {
        let ok = |body: &str| json_request(body).json::<Body>().map(|b| (b.name, b.price));
        assert_eq!(ok(r#" {"name":"a","price":1}"#).unwrap(), ("a".into(), 1));
        // A derived struct refuses duplicate keys; the body's last one wins, as before.
        let twice = ok(r#"{"name":"a","price":1,"price":2}"#).unwrap();
        assert_eq!(twice, ("a".into(), 2));
        // A struct would also parse from an array; a body must be an object.
        let e = json_request(r#"["a",1]"#).json::<Body>().unwrap_err();
        assert_eq!(e.details["fields"][0]["field"], "body");
        let e = json_request(r#"{"name":"a","price":1} x"#)
            .json::<Body>()
            .unwrap_err();
        assert_eq!(e.code, "invalid_json");
    }

    #[test]
    fn query_is_decoded_and_typed() {
        let mut r = Request::new(Method::Get, "/x", "/x", b"");
        r.inner.query = "q=aloo%20bhujia&page=x".into();
        let r = Request::from_wit(r.inner);
        assert_eq!(r.query("q"), Some("aloo bhujia"));
        assert_eq!(
            r.query_as::<u32>("page", "an integer").unwrap_err().status,
            400
        );
        assert_eq!(r.query_as::<u32>("missing", "an integer").unwrap(), None);
    }
}

//! The operator API as the CLI sees it: the answer types and a small HTTP client whose
//! errors say what to do next.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::Value;

use super::errors;

/// One plugin as `GET /admin/plugins` and the mutating routes describe it. Every field
/// has a default so that a host adding fields, or leaving one out, still reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Entry {
    pub name: String,
    pub live_version: Option<String>,
    pub state: String,
    pub versions: Vec<VersionInfo>,
    pub routes: Vec<RouteInfo>,
    pub subscriptions: Vec<String>,
    pub grants: Vec<String>,
    pub stats: Stats,
    pub canary: Option<Canary>,
    /// Only in `GET /admin/plugins/{name}`.
    pub history: Vec<HistoryItem>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VersionInfo {
    pub version: String,
    pub sha256: String,
    pub size: u64,
    pub installed_at: Option<String>,
    pub installed_by: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RouteInfo {
    pub method: String,
    pub path: String,
    /// A role name, `public`, or whatever the host reports (a list, null).
    pub role: Value,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Canary {
    pub version: String,
    pub percent: u32,
    pub started_at: Option<String>,
    pub requests: u64,
    pub errors: u64,
    pub stable_requests: u64,
    pub stable_errors: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HistoryItem {
    pub action: String,
    pub version: Option<String>,
    pub actor: Option<String>,
    pub at: Option<String>,
    pub detail: Value,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EntryList {
    pub items: Vec<Entry>,
}

/// `POST /admin/plugins`'s answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Installed {
    pub name: String,
    pub version: String,
    pub sha256: String,
    /// Every grant the version asks for.
    pub requested_grants: Vec<String>,
    /// Of those, what the operator has not approved yet (`enable --grant`).
    pub unapproved_grants: Vec<String>,
}

/// A successful answer: its status and raw body.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    /// The body as `T`; a body that does not fit is a clear error, not a panic.
    pub fn parse<T: for<'de> Deserialize<'de>>(&self, what: &str) -> Result<T> {
        serde_json::from_str(&self.body).with_context(|| {
            format!("the host's answer to {what} is not what this kirana expects (--json shows it as is)")
        })
    }
}

/// A non-2xx answer, explained; callers may look at the status to add a hint.
#[derive(Debug)]
pub struct HttpFailure {
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpFailure {}

/// Talks to one host's operator API.
pub struct Client {
    base: Url,
    shown: String,
    token: Option<String>,
    timeout: Duration,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

/// What a request sends as its body.
pub enum Body {
    Empty,
    Json(Value),
    Wasm(Vec<u8>),
    /// A plugin bundle (a tar of the component and its assets).
    Bundle(Vec<u8>),
}

impl Client {
    /// `url` may omit the scheme (`127.0.0.1:8080` means `http://127.0.0.1:8080`).
    pub fn new(url: &str, token: Option<String>, timeout_secs: u64) -> Result<Self> {
        let base = parse_base(url)?;
        let shown = base.as_str().trim_end_matches('/').to_string();
        let timeout = Duration::from_secs(timeout_secs.max(1));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            .user_agent(concat!("kirana-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("setting up the HTTP client")?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let token = token.filter(|t| !t.trim().is_empty());
        Ok(Self {
            base,
            shown,
            token,
            timeout,
            http,
            rt,
        })
    }

    /// The host's address as the user should see it in messages.
    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    /// Sends one request to `segments` (each percent-encoded as one path segment);
    /// a status outside 2xx becomes an error whose message says what to do.
    pub fn call(&self, method: Method, segments: &[&str], body: Body) -> Result<Reply> {
        let mut req = self.http.request(method, self.url_for(segments)?);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req = match body {
            Body::Empty => req,
            Body::Json(v) => req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&v).context("encoding the request")?),
            Body::Wasm(bytes) => req
                .header(reqwest::header::CONTENT_TYPE, "application/wasm")
                .body(bytes),
            Body::Bundle(bytes) => req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    kirana::admin::BUNDLE_MEDIA_TYPE,
                )
                .body(bytes),
        };
        let (status, body) = self
            .rt
            .block_on(async {
                let res = req.send().await?;
                let status = res.status().as_u16();
                let body = res.text().await?;
                Ok::<_, reqwest::Error>((status, body))
            })
            .map_err(|e| anyhow!(self.transport_error(&e)))?;
        if (200..300).contains(&status) {
            return Ok(Reply { status, body });
        }
        Err(HttpFailure {
            status,
            message: errors::error_message(status, &body, &self.shown, self.token.is_some()),
        }
        .into())
    }

    fn url_for(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| anyhow!("{} cannot be a base URL", self.shown))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn transport_error(&self, e: &reqwest::Error) -> String {
        let url = &self.shown;
        if e.is_timeout() {
            return format!(
                "kirana at {url} did not answer within {} s (raise it with --timeout)",
                self.timeout.as_secs()
            );
        }
        if e.is_connect() {
            return errors::unreachable_message(url, &root_cause(e));
        }
        format!("talking to kirana at {url} failed: {}", error_chain(e))
    }
}

/// `e` and its causes, joined; reqwest's own message alone is often just "error sending
/// request".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The innermost cause, like "Connection refused (os error 111)".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last: &dyn std::error::Error = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}

/// Parses `--url`, adding `http://` when no scheme is given.
pub fn parse_base(url: &str) -> Result<Url> {
    let url = url.trim();
    let with_scheme = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let parsed = Url::parse(&with_scheme).map_err(|e| {
        anyhow!("--url {url:?} is not a URL ({e}); use something like http://127.0.0.1:8080")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
        return Err(anyhow!(
            "--url {url:?} must be an http:// or https:// address, like http://127.0.0.1:8080"
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            parse_base("127.0.0.1:9000").unwrap().as_str(),
            "http://127.0.0.1:9000/"
        );
        assert_eq!(
            parse_base("https://ops.example.in/kirana/")
                .unwrap()
                .as_str(),
            "https://ops.example.in/kirana/"
        );
        assert!(parse_base("ftp://x").is_err());
        assert!(parse_base("http://").is_err());
    }

    #[test]
    fn entries_read_with_missing_and_null_fields() {
        let e: Entry = serde_json::from_str(
            r#"{"name":"cart","live_version":null,"state":"disabled","versions":[{"version":"1.0.0","sha256":"ab","size":3,"installed_at":"2025-01-01T00:00:00Z","installed_by":null}],
                "routes":[{"method":"GET","path":"/api/v1/cart","role":"customer"}],"canary":null,"extra":1}"#,
        )
        .unwrap();
        assert_eq!(e.name, "cart");
        assert_eq!(e.live_version, None);
        assert_eq!(e.versions[0].size, 3);
        assert_eq!(e.routes[0].role, Value::from("customer"));
        assert_eq!(e.stats.requests, 0);
        assert!(e.history.is_empty());
    }

    #[test]
    fn segments_are_encoded() {
        let c = Client::new("http://h:1/base/", None, 5).unwrap();
        let url = c.url_for(&["admin", "plugins", "a/b c"]).unwrap();
        assert_eq!(url.as_str(), "http://h:1/base/admin/plugins/a%2Fb%20c");
        let c = Client::new("h:1", None, 5).unwrap();
        assert_eq!(
            c.url_for(&["admin", "plugins"]).unwrap().as_str(),
            "http://h:1/admin/plugins"
        );
        assert_eq!(c.shown_url(), "http://h:1");
    }
}

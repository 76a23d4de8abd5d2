//! OpenID Connect sign-in for the `identity` capability (`oidc-start`, `oidc-finish`).
//!
//! Plugins have no network, so the host is the relying party: discovery, the
//! authorization-code flow with PKCE, `state` and `nonce`, the code exchange and the ID
//! token's checks (signature against the provider's JWKS, `iss`, `aud`, `exp`, `nonce`)
//! are the `openidconnect` crate's. What the plugin gets back is only who signed in;
//! accounts, linking and tokens stay the auth plugin's.
//!
//! A started flow lives in the host table `oidc_flows`, keyed by its `state`, so any
//! replica can finish it; finishing deletes the row first, which makes a state (and with
//! it a code) work once. Flows older than [`FLOW_TTL_MS`] are refused and swept.
//!
//! A flow is also bound to the browser that started it (against login CSRF: an attacker
//! who starts a sign-in and hands the callback URL, with their own code and state, to a
//! victim must not sign the victim in as the attacker). The start sets the host cookie
//! [`BROWSER_COOKIE`] (HttpOnly, SameSite=Lax, a random value kept across sign-ins) and
//! stores its SHA-256 with the flow; the callback must come with the same cookie.
//! Plugins never see the cookie: the gateway reads it and sets it (`core::Browser`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    TokenResponse as _,
};
use sqlx::Row;
use tokio::sync::Mutex;

use crate::bindings::kirana::platform::identity::{OidcIdentity, OidcSignIn};
use crate::bindings::wit;
use crate::config::OidcProviderConfig;
use crate::core::Browser;
use crate::storage::{now_ms, Db};

/// The host's cookie that ties a sign-in to the browser that started it.
pub const BROWSER_COOKIE: &str = "kirana_browser";

/// How long a started sign-in may take (the user is on the provider's login page).
pub const FLOW_TTL_MS: i64 = 10 * 60 * 1000;
/// How long a provider's discovery document (and with it its keys) is trusted before it
/// is fetched again; a token signed by an unknown key refetches sooner.
const DISCOVERY_TTL: Duration = Duration::from_secs(10 * 60);
/// A refetch for an unknown signing key happens at most this often.
const KEY_REFETCH_AFTER: Duration = Duration::from_secs(30);
/// Every call to a provider (discovery, token exchange) ends within this.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest `return-to` path kept with a flow.
const MAX_RETURN_TO: usize = 512;

/// Largest answer read from a provider (a discovery document, a key set, a token
/// answer are a few KiB): a provider, or whatever answers at its address, cannot make
/// the host buffer an endless body.
const MAX_PROVIDER_ANSWER: usize = 256 * 1024;

/// The HTTP client the OpenID Connect steps use: reqwest, reading at most
/// [`MAX_PROVIDER_ANSWER`] bytes of an answer.
struct ProviderHttp(reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for ProviderHttp {
    type Error = openidconnect::HttpClientError<reqwest::Error>;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, Self::Error>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        use openidconnect::HttpClientError;
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(Box::new)?;
            let mut response = self.0.execute(request).await.map_err(Box::new)?;
            let mut builder = openidconnect::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(Box::new)? {
                if body.len() + chunk.len() > MAX_PROVIDER_ANSWER {
                    return Err(HttpClientError::Other(format!(
                        "the provider's answer is larger than {} KiB",
                        MAX_PROVIDER_ANSWER / 1024
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            builder.body(body).map_err(HttpClientError::Http)
        })
    }
}

/// The configured providers and the flows in progress.
pub struct Oidc {
    db: Db,
    public_url: String,
    providers: BTreeMap<String, Provider>,
    /// Never follows redirects: discovery and token answers come from the issuer itself
    /// (openidconnect's advice against SSRF through a provider's redirects).
    http: ProviderHttp,
}

struct Provider {
    name: String,
    config: OidcProviderConfig,
    discovered: Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

/// Why a provider step failed, before it becomes a WIT error.
fn unavailable(provider: &str, what: impl std::fmt::Display) -> wit::Error {
    wit::Error::Unavailable(format!(
        "the sign-in provider {provider} cannot be reached or answered badly: {what}"
    ))
}

impl Oidc {
    pub fn new(
        db: Db,
        providers: &BTreeMap<String, OidcProviderConfig>,
        public_url: &str,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .context("building the OpenID Connect HTTP client")?;
        Ok(Self {
            db,
            public_url: public_url.trim_end_matches('/').to_string(),
            providers: providers
                .iter()
                .map(|(name, config)| {
                    let p = Provider {
                        name: name.clone(),
                        config: config.clone(),
                        discovered: Mutex::new(None),
                    };
                    (name.clone(), p)
                })
                .collect(),
            http: ProviderHttp(http),
        })
    }

    /// The configured providers' names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.providers.keys().cloned().collect()
    }

    fn provider(&self, name: &str) -> Result<&Provider, wit::Error> {
        self.providers.get(name).ok_or_else(|| {
            wit::Error::NotConfigured(format!("no OpenID Connect provider named {name:?}"))
        })
    }

    /// The provider's discovery document (issuer checked, keys included), cached;
    /// `refresh` ignores a cache older than [`KEY_REFETCH_AFTER`].
    async fn metadata(
        &self,
        p: &Provider,
        refresh: bool,
    ) -> Result<CoreProviderMetadata, wit::Error> {
        let mut cached = p.discovered.lock().await;
        if let Some((at, meta)) = cached.as_ref() {
            let age = at.elapsed();
            if age < DISCOVERY_TTL && !(refresh && age >= KEY_REFETCH_AFTER) {
                return Ok(meta.clone());
            }
        }
        let issuer = IssuerUrl::new(p.config.issuer.clone())
            .map_err(|e| unavailable(&p.name, format!("issuer URL: {e}")))?;
        let meta = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| unavailable(&p.name, format!("discovery: {}", chain(&e))))?;
        *cached = Some((Instant::now(), meta.clone()));
        Ok(meta)
    }

    fn client(
        &self,
        p: &Provider,
        meta: CoreProviderMetadata,
        redirect: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        wit::Error,
    > {
        let secret = (!p.config.client_secret.is_empty())
            .then(|| ClientSecret::new(p.config.client_secret.clone()));
        let redirect = RedirectUrl::new(redirect.to_string())
            .map_err(|e| wit::Error::Invalid(format!("callback URL {redirect:?}: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            meta,
            ClientId::new(p.config.client_id.clone()),
            secret,
        )
        .set_redirect_uri(redirect))
    }
}

/// Where the provider sends the browser back: `public_url` (or the request's host) plus
/// the plugin's callback path.
fn callback_url(public_url: &str, start: &OidcSignIn) -> Result<String, wit::Error> {
    {
        if !start.callback_path.starts_with('/') || start.callback_path.starts_with("//") {
            return Err(wit::Error::Invalid(format!(
                "callback path {:?} must be an absolute path",
                start.callback_path
            )));
        }
        let base = if public_url.is_empty() {
            let host = start.request_host.as_deref().unwrap_or_default();
            let valid = !host.is_empty()
                && host.len() <= 255
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
            if !valid {
                return Err(wit::Error::Invalid(
                    "the request has no usable Host header and public_url is unset (KIRANA_PUBLIC_URL)"
                        .into(),
                ));
            }
            format!("http://{host}")
        } else {
            public_url.to_string()
        };
        Ok(format!("{base}{}", start.callback_path))
    }
}

impl Oidc {
    /// Begins a sign-in from `browser`'s request; returns the provider's authorization
    /// URL and asks the answer to set the browser cookie.
    pub async fn start(
        &self,
        start: OidcSignIn,
        browser: Option<&Browser>,
    ) -> Result<String, wit::Error> {
        let browser = browser.ok_or_else(|| {
            wit::Error::Invalid(
                "a sign-in starts from a browser's request to a route, not from a service call or an event"
                    .into(),
            )
        })?;
        let p = self.provider(&start.provider)?;
        if let Some(to) = &start.return_to {
            check_return_to(to)?;
        }
        let redirect = callback_url(&self.public_url, &start)?;
        let meta = self.metadata(p, false).await?;
        let client = self.client(p, meta, &redirect)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        let browser_id = browser
            .cookie
            .clone()
            .filter(|c| well_formed_browser_id(c))
            .unwrap_or_else(new_browser_id);
        let now = now_ms();
        // Abandoned flows go here rather than in a sweeper task: starts are rare.
        sqlx::query("DELETE FROM oidc_flows WHERE created_at < $1")
            .bind(now - FLOW_TTL_MS)
            .execute(&self.db.pool)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO oidc_flows (state, provider, nonce, pkce_verifier, redirect_url, return_to, created_at, browser) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(state.secret())
        .bind(&p.name)
        .bind(nonce.secret())
        .bind(verifier.secret())
        .bind(&redirect)
        .bind(start.return_to.as_deref())
        .bind(now)
        .bind(browser_hash(&browser_id))
        .execute(&self.db.pool)
        .await
        .map_err(db_err)?;
        if let Ok(mut set) = browser.set_cookie.lock() {
            *set = Some(self.browser_cookie(&browser_id));
        }
        Ok(url.to_string())
    }

    /// The `Set-Cookie` value: for the whole site (the callback is the plugin's path),
    /// sent on the provider's top-level redirect back (Lax), never to scripts, and only
    /// over TLS when the shop's public URL is `https://`.
    fn browser_cookie(&self, id: &str) -> String {
        let secure = if self.public_url.starts_with("https://") {
            "; Secure"
        } else {
            ""
        };
        format!(
            "{BROWSER_COOKIE}={id}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            BROWSER_COOKIE_MAX_AGE_S
        )
    }

    /// Completes a sign-in: uses up the state, exchanges the code, checks the ID token.
    pub async fn finish(
        &self,
        provider: &str,
        code: &str,
        state: &str,
        browser: Option<&Browser>,
    ) -> Result<OidcIdentity, wit::Error> {
        let p = self.provider(provider)?;
        let flow = self.take_flow(provider, state).await?;
        // Compared after the flow is used up: a callback carried to another browser
        // burns the state instead of leaving it for a retry.
        let same_browser = browser
            .and_then(|b| b.cookie.as_deref())
            .filter(|c| well_formed_browser_id(c))
            .is_some_and(|c| browser_hash(c) == flow.browser);
        if !same_browser {
            return Err(wit::Error::Invalid(
                "this sign-in was started in another browser, or the browser did not keep its cookie: start the sign-in again here"
                    .into(),
            ));
        }
        if code.is_empty() || code.len() > 2048 {
            return Err(wit::Error::Invalid(
                "the authorization code is missing".into(),
            ));
        }
        let meta = self.metadata(p, false).await?;
        let client = self.client(p, meta, &flow.redirect_url)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| unavailable(&p.name, format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => match r.error() {
                    CoreErrorResponseType::InvalidGrant => wit::Error::Invalid(format!(
                        "the provider refused the code (used, expired or not issued for this sign-in): {}",
                        r.error_description().map(String::as_str).unwrap_or("invalid_grant")
                    )),
                    other => unavailable(
                        &p.name,
                        format!(
                            "token endpoint refused the client ({}): check client_id and client_secret",
                            other.as_ref()
                        ),
                    ),
                },
                other => unavailable(&p.name, format!("token endpoint: {}", chain(&other))),
            })?;
        let id_token = token.id_token().ok_or_else(|| {
            unavailable(
                &p.name,
                "the token answer has no ID token (is it an OpenID Connect provider?)",
            )
        })?;
        let nonce = Nonce::new(flow.nonce.clone());
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(claims) => claims.clone(),
            Err(ClaimsVerificationError::SignatureVerification(first)) => {
                // Perhaps the provider rotated its keys since discovery: look once more.
                let meta = self.metadata(p, true).await?;
                let client = self.client(p, meta, &flow.redirect_url)?;
                let verifier = client.id_token_verifier();
                let claims = id_token.claims(&verifier, &nonce).map_err(|e| {
                    tracing::warn!(provider = %p.name, error = %first, "ID token signature refused");
                    refused(e)
                })?;
                claims.clone()
            }
            Err(e) => return Err(refused(e)),
        };
        Ok(OidcIdentity {
            provider: p.name.clone(),
            subject: claims.subject().as_str().to_string(),
            email: claims.email().map(|e| e.as_str().to_lowercase()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string()),
            return_to: flow.return_to,
        })
    }

    /// Deletes and returns the flow `state` names, if it is this provider's and live.
    async fn take_flow(&self, provider: &str, state: &str) -> Result<Flow, wit::Error> {
        let bad_state = || {
            wit::Error::Invalid(
                "the sign-in state is unknown, already used or expired: start the sign-in again"
                    .into(),
            )
        };
        if state.is_empty() || state.len() > 256 {
            return Err(bad_state());
        }
        let row = sqlx::query(
            "DELETE FROM oidc_flows WHERE state = $1 \
             RETURNING provider, nonce, pkce_verifier, redirect_url, return_to, created_at, browser",
        )
        .bind(state)
        .fetch_optional(&self.db.pool)
        .await
        .map_err(db_err)?
        .ok_or_else(bad_state)?;
        let flow = Flow {
            provider: row.try_get("provider").map_err(db_err)?,
            nonce: row.try_get("nonce").map_err(db_err)?,
            pkce_verifier: row.try_get("pkce_verifier").map_err(db_err)?,
            redirect_url: row.try_get("redirect_url").map_err(db_err)?,
            return_to: row.try_get("return_to").map_err(db_err)?,
            created_at: row.try_get("created_at").map_err(db_err)?,
            browser: row.try_get("browser").map_err(db_err)?,
        };
        if flow.provider != provider || flow.created_at < now_ms() - FLOW_TTL_MS {
            return Err(bad_state());
        }
        Ok(flow)
    }
}

struct Flow {
    provider: String,
    nonce: String,
    pkce_verifier: String,
    redirect_url: String,
    return_to: Option<String>,
    created_at: i64,
    /// SHA-256 (hex) of the browser cookie the start set.
    browser: String,
}

/// The browser cookie lives a day: long enough to span a sign-in, short enough not to
/// become a tracking id.
const BROWSER_COOKIE_MAX_AGE_S: u32 = 24 * 60 * 60;

/// A fresh browser id: 32 random bytes, base64url.
fn new_browser_id() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `id` looks like one [`new_browser_id`] made (anything else is replaced).
fn well_formed_browser_id(id: &str) -> bool {
    id.len() == 43
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn browser_hash(id: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn refused(e: ClaimsVerificationError) -> wit::Error {
    wit::Error::Invalid(format!("the provider's ID token was refused: {e}"))
}

/// A same-site page only: never `//host` or `/\host`, which browsers read as another
/// site, nor an API route (a browser carries the tokens' fragment across its redirects).
fn check_return_to(to: &str) -> Result<(), wit::Error> {
    let ok = to.starts_with('/')
        && !to.starts_with("//")
        && !to.starts_with("/\\")
        // Not an API route: a redirect there would carry the fragment's tokens along.
        && !to.starts_with("/api/")
        && to.len() <= MAX_RETURN_TO
        && !to.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(wit::Error::Invalid(format!(
            "redirect_uri must be a page on this site: a path starting with a single /, not under /api/ (at most {MAX_RETURN_TO} characters)"
        )))
    }
}

/// An error and its causes on one line (reqwest hides the useful part in a source).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn db_err(e: sqlx::Error) -> wit::Error {
    wit::Error::Failed(format!("sign-in store: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_is_a_path_on_this_site_only() {
        for good in ["/", "/orders/o_1", "/account?tab=providers"] {
            assert!(check_return_to(good).is_ok(), "{good}");
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "orders",
            "/a b",
            "/a\nb",
            "",
            "/api/v1/auth/oidc/other/start",
        ] {
            assert!(
                matches!(check_return_to(bad), Err(wit::Error::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(check_return_to(&format!("/{}", "a".repeat(MAX_RETURN_TO))).is_err());
    }

    fn start(host: Option<&str>) -> OidcSignIn {
        OidcSignIn {
            provider: "google".into(),
            callback_path: "/api/v1/auth/oidc/google/callback".into(),
            request_host: host.map(str::to_string),
            return_to: None,
        }
    }

    #[test]
    fn the_callback_url_prefers_public_url_and_checks_the_host_header() {
        assert_eq!(
            callback_url("https://shop.example", &start(Some("evil.example"))).unwrap(),
            "https://shop.example/api/v1/auth/oidc/google/callback"
        );
        assert_eq!(
            callback_url("", &start(Some("127.0.0.1:8080"))).unwrap(),
            "http://127.0.0.1:8080/api/v1/auth/oidc/google/callback"
        );
        for bad in [None, Some(""), Some("evil.example/x?"), Some("a@b")] {
            assert!(callback_url("", &start(bad)).is_err(), "{bad:?}");
        }
        let mut s = start(Some("h"));
        s.callback_path = "//evil.example/cb".into();
        assert!(callback_url("", &s).is_err());
    }
}

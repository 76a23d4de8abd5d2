//! A small REST client for the benchmark's setup (users, addresses, stock) and for the
//! operator API; measured traffic goes through [`crate::load`] instead.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use reqwest::Method;
use serde_json::{json, Value};

/// The bootstrap admin of development mode (config/development.toml).
pub const ADMIN_EMAIL: &str = "admin@kirana.local";
pub const ADMIN_PASSWORD: &str = "kirana-admin-123";
/// The operator token the bench's hosts are configured with (the operator API).
pub const OPERATOR_TOKEN: &str = "kirana-bench-operator-token-0123456789";

#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
}

/// A status and the decoded body (Null when empty or not JSON).
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Api {
    pub fn new(base: String) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(Self { client, base })
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Answer> {
        let mut rb = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        answer(resp)
            .await
            .with_context(|| format!("{method} {path}"))
    }

    /// Like [`Api::call`], failing unless the status is `status`.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        status: u16,
    ) -> Result<Value> {
        let a = self.call(method.clone(), path, token, body).await?;
        if a.status != status {
            bail!(
                "{method} {path}: expected {status}, got {}: {}",
                a.status,
                a.text
            );
        }
        Ok(a.body)
    }

    /// Uploads raw bytes with a content type (the operator API's component upload).
    pub async fn upload(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Answer> {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        answer(resp).await.with_context(|| format!("POST {path}"))
    }

    pub async fn admin_token(&self) -> Result<String> {
        let body = self
            .expect(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
                200,
            )
            .await
            .context("logging in as the configured admin")?;
        string(&body, "access_token")
    }

    /// Every active product id of the catalog.
    pub async fn product_ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for page in 1..=1000 {
            let body = self
                .expect(
                    Method::GET,
                    &format!("/api/v1/products?page_size=100&page={page}"),
                    None,
                    None,
                    200,
                )
                .await?;
            let items = body["items"]
                .as_array()
                .context("GET /api/v1/products: no items array")?;
            if items.is_empty() {
                break;
            }
            for item in items {
                ids.push(string(item, "id")?);
            }
        }
        if ids.is_empty() {
            bail!("the catalog has no products (is [catalog] seed = true?)");
        }
        Ok(ids)
    }

    /// Signs up a customer and gives it an address.
    pub async fn shopper(&self, email: &str) -> Result<Shopper> {
        let body = self
            .expect(
                Method::POST,
                "/api/v1/auth/signup",
                None,
                Some(&json!({"email": email, "password": "bench-password-1", "name": "Bench Shopper"})),
                201,
            )
            .await?;
        let token = string(&body, "access_token")?;
        let address = self
            .expect(
                Method::POST,
                "/api/v1/addresses",
                Some(&token),
                Some(
                    &json!({"label": "Home", "line1": "12 MG Road", "city": "Bengaluru",
                             "pincode": "560001", "lat": 12.97, "lon": 77.59}),
                ),
                201,
            )
            .await?;
        Ok(Shopper {
            token: Arc::from(token.as_str()),
            address_id: string(&address, "id")?,
        })
    }
}

/// A signed-up customer with an address.
#[derive(Clone, Debug)]
pub struct Shopper {
    pub token: Arc<str>,
    pub address_id: String,
}

async fn answer(resp: reqwest::Response) -> Result<Answer> {
    let status = resp.status().as_u16();
    let text = resp.text().await.context("reading the answer")?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Answer { status, body, text })
}

/// A string field of a JSON object.
pub fn string(v: &Value, field: &str) -> Result<String> {
    v[field]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no string field {field:?} in {v}"))
}

//! Web Push for the `push` mail channel: the subscriptions browsers registered, the
//! host's VAPID key pair, and one delivery (RFC 8030 request, RFC 8291 "aes128gcm"
//! encryption, RFC 8292 VAPID signature).
//!
//! The plugin never sees a network or a key: it stores subscriptions and sends
//! messages through `mail`, and the mail sender calls [`Push::deliver`] for each due
//! push row. Endpoints are attacker-supplied URLs the host POSTs to, so they are
//! checked at subscribe time (https only, no private addresses unless the operator
//! allows it for a test push service), requests follow no redirect and use no proxy,
//! and every name is resolved by [`PublicOnly`], which drops private addresses: a
//! public-looking host whose DNS answers 127.0.0.1 or 10.x (DNS rebinding) is never
//! reached.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use anyhow::{Context, Result};
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use rand::RngCore;
use sha2::Sha256;
use sqlx::Row;

use crate::capabilities::mail::MailError;
use crate::config::PushConfig;
use crate::storage::{now_ms, Db};

/// Longest endpoint URL accepted (real push services use well under 512 bytes).
pub const MAX_ENDPOINT: usize = 1024;
/// The record size announced in the header; one record holds the whole message.
const RECORD_SIZE: u32 = 4096;
/// Largest plaintext that encrypts into a 4096-byte body (RFC 8291 §4: the body a
/// push service must accept): 4096 − 86 header − 16 tag − 1 padding delimiter.
pub const MAX_PAYLOAD: usize = 3993;
/// How long a VAPID token is valid (RFC 8292 allows at most 24 hours).
const VAPID_TTL_SECS: i64 = 12 * 3600;
/// The name of the VAPID private key in the host's `secrets` table.
const VAPID_SECRET: &str = "vapid-p256";

/// base64url that accepts padding or none (browsers differ), and writes none.
const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Subscriptions, the VAPID key pair and the HTTP client that delivers.
pub struct Push {
    db: Db,
    config: PushConfig,
    /// The VAPID `sub` claim.
    subject: String,
    key: SigningKey,
    /// The public key as browsers want it: base64url of the uncompressed point.
    public_key: String,
    client: reqwest::Client,
}

/// A subscription as delivery needs it.
pub struct Subscription {
    pub id: String,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

/// What one delivery attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Worth trying again later (network, 429, 5xx).
    Retry(String),
    /// Will never succeed (the push service refused the request itself).
    Failed(String),
    /// The push service says the subscription no longer exists: it was deleted.
    Gone(String),
}

impl Push {
    /// Loads the VAPID key pair from the host database, generating it on first start
    /// (every replica and restart reads the same one).
    pub async fn new(db: Db, config: PushConfig, subject: String) -> Result<Self> {
        let fresh = hex::encode(SecretKey::random(&mut rand::thread_rng()).to_bytes());
        let stored = crate::storage::host_secret_or(&db, VAPID_SECRET, fresh).await?;
        let bytes = hex::decode(stored.trim()).context("the stored VAPID key is not hex")?;
        let secret = SecretKey::from_slice(&bytes).context("the stored VAPID key is invalid")?;
        let public_key = URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false));
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_millis(config.timeout_ms.max(1)))
            .connect_timeout(Duration::from_millis(config.timeout_ms.clamp(1, 5_000)))
            .user_agent("kirana-push");
        if !config.allow_insecure_endpoints {
            client = client.dns_resolver(Arc::new(PublicOnly));
        }
        let client = client.build().context("building the push HTTP client")?;
        Ok(Self {
            db,
            config,
            subject,
            key: SigningKey::from(secret),
            public_key,
            client,
        })
    }

    /// The VAPID public key (base64url, uncompressed P-256 point).
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// Stores `user_id`'s subscription; returns its id and whether it is new. The same
    /// endpoint of the same user keeps its id (its keys are updated); one that belonged
    /// to another user (another account signed in on that browser) moves to this one.
    pub async fn subscribe(
        &self,
        user_id: &str,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> Result<(String, bool), MailError> {
        let user_id = user_id.trim();
        if user_id.is_empty() {
            return Err(MailError::Invalid("user-id is empty".into()));
        }
        let endpoint = endpoint.trim();
        check_endpoint(endpoint, self.config.allow_insecure_endpoints)
            .map_err(MailError::Invalid)?;
        check_keys(p256dh.trim(), auth.trim()).map_err(MailError::Invalid)?;
        match self.store(user_id, endpoint, p256dh, auth).await {
            // The same endpoint stored at the same moment by a parallel request (a
            // PostgreSQL transaction does not see the other's row): now it is there.
            Err(MailError::Store(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                self.store(user_id, endpoint, p256dh, auth).await
            }
            stored => stored,
        }
    }

    /// [`Push::subscribe`] after validation, in one transaction.
    async fn store(
        &self,
        user_id: &str,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> Result<(String, bool), MailError> {
        let mut tx = self.db.pool.begin_with(self.db.begin_statement()).await?;
        let existing =
            sqlx::query("SELECT id, user_id FROM push_subscriptions WHERE endpoint = $1")
                .bind(endpoint)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(row) = existing {
            let id: String = row.try_get(0)?;
            let owner: String = row.try_get(1)?;
            if owner == user_id {
                sqlx::query("UPDATE push_subscriptions SET p256dh = $1, auth = $2 WHERE id = $3")
                    .bind(p256dh.trim())
                    .bind(auth.trim())
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok((id, false));
            }
            sqlx::query("DELETE FROM push_subscriptions WHERE id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        let id = format!("psub_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(
            "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(endpoint)
        .bind(p256dh.trim())
        .bind(auth.trim())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        // Over the cap: the oldest go (a browser that still wants pushes subscribes again).
        let ids: Vec<String> = sqlx::query(
            "SELECT id FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        let keep = usize::try_from(self.config.max_subscriptions_per_user).unwrap_or(usize::MAX);
        for old in ids.iter().skip(keep) {
            sqlx::query("DELETE FROM push_subscriptions WHERE id = $1")
                .bind(old)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((id, true))
    }

    /// Deletes one of `user_id`'s subscriptions; false when the user has no such one.
    pub async fn unsubscribe(&self, user_id: &str, id: &str) -> Result<bool, MailError> {
        let n = sqlx::query("DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2")
            .bind(id.trim())
            .bind(user_id.trim())
            .execute(&self.db.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// The ids of `user_id`'s subscriptions, oldest first.
    pub async fn subscription_ids(&self, user_id: &str) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query("SELECT id FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at, id")
            .bind(user_id.trim())
            .fetch_all(&self.db.pool)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect()
    }

    async fn subscription(&self, id: &str) -> Result<Option<Subscription>, sqlx::Error> {
        let row =
            sqlx::query("SELECT id, endpoint, p256dh, auth FROM push_subscriptions WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.db.pool)
                .await?;
        row.map(|r| {
            Ok(Subscription {
                id: r.try_get(0)?,
                endpoint: r.try_get(1)?,
                p256dh: r.try_get(2)?,
                auth: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// Encrypts `payload` for subscription `subscription_id` and POSTs it to its push
    /// service. A 404 or 410 deletes the subscription.
    pub async fn deliver(&self, subscription_id: &str, payload: &str) -> Outcome {
        let sub = match self.subscription(subscription_id).await {
            Ok(Some(s)) => s,
            Ok(None) => return Outcome::Failed("the subscription no longer exists".into()),
            Err(e) => return Outcome::Retry(format!("reading the subscription: {e}")),
        };
        let body = match encrypt_for(&sub.p256dh, &sub.auth, payload.as_bytes()) {
            Ok(b) => b,
            Err(e) => return Outcome::Failed(e),
        };
        let auth = match self.vapid_header(&sub.endpoint) {
            Ok(a) => a,
            Err(e) => return Outcome::Failed(e),
        };
        let sent = self
            .client
            .post(&sub.endpoint)
            .header("TTL", self.config.ttl_secs.to_string())
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("Urgency", "normal")
            .header("Authorization", auth)
            .body(body)
            .send()
            .await;
        let status = match sent {
            Ok(r) => r.status().as_u16(),
            // No URL or key in the text: reqwest's error names the host at most.
            Err(e) => {
                return Outcome::Retry(format!(
                    "the push service did not answer: {}",
                    e.without_url()
                ))
            }
        };
        match status {
            200..=299 => Outcome::Sent,
            404 | 410 => {
                if let Err(e) = sqlx::query("DELETE FROM push_subscriptions WHERE id = $1")
                    .bind(&sub.id)
                    .execute(&self.db.pool)
                    .await
                {
                    return Outcome::Retry(format!("deleting a gone subscription: {e}"));
                }
                tracing::info!(subscription_id = %sub.id, status, "a push subscription is gone; deleted");
                Outcome::Gone(format!(
                    "the push service answered {status}: subscription deleted"
                ))
            }
            408 | 429 | 500..=599 => Outcome::Retry(format!("the push service answered {status}")),
            _ => Outcome::Failed(format!("the push service answered {status}")),
        }
    }

    /// `vapid t=<JWT>, k=<public key>` for `endpoint` (the JWT's `aud` is its origin).
    fn vapid_header(&self, endpoint: &str) -> Result<String, String> {
        let aud = origin(endpoint)?;
        let exp = now_ms() / 1000 + VAPID_TTL_SECS;
        let token = vapid_jwt(&self.key, &aud, exp, &self.subject);
        Ok(format!("vapid t={token}, k={}", self.public_key))
    }
}

/// `scheme://host[:port]` of an endpoint URL.
fn origin(endpoint: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(endpoint).map_err(|e| format!("endpoint: {e}"))?;
    match url.origin() {
        o @ url::Origin::Tuple(..) => Ok(o.ascii_serialization()),
        url::Origin::Opaque(_) => Err("endpoint has no origin".into()),
    }
}

/// An ES256 JWT `{aud, exp, sub}` (RFC 8292 §2).
fn vapid_jwt(key: &SigningKey, aud: &str, exp: i64, sub: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
    let claims = serde_json::json!({ "aud": aud, "exp": exp, "sub": sub });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    let signature: Signature = key.sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    )
}

/// Refuses an endpoint the host should not POST to. `insecure` (test push services
/// only) also allows `http://` and loopback or private addresses.
pub fn check_endpoint(endpoint: &str, insecure: bool) -> Result<(), String> {
    if endpoint.is_empty() {
        return Err("endpoint: is required".into());
    }
    if endpoint.len() > MAX_ENDPOINT {
        return Err(format!("endpoint: longer than {MAX_ENDPOINT} characters"));
    }
    let url = reqwest::Url::parse(endpoint).map_err(|e| format!("endpoint: not a URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if insecure => {}
        _ => return Err("endpoint: must be an https:// URL".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("endpoint: must not carry a user name or password".into());
    }
    let Some(host) = url.host() else {
        return Err("endpoint: has no host".into());
    };
    if !insecure {
        let private = match host {
            url::Host::Domain(d) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost") || d.ends_with(".local")
            }
            url::Host::Ipv4(ip) => is_private(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => is_private(IpAddr::V6(ip)),
        };
        if private {
            return Err(
                "endpoint: must be a public push service, not a local or private address".into(),
            );
        }
    }
    Ok(())
}

/// A DNS resolver that keeps only public addresses, so a push endpoint's host cannot be
/// pointed at the host's own network after its subscription was checked.
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let public = public_addrs(&host).await?;
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// `host`'s public addresses; an error when it has none (only private ones, or none).
async fn public_addrs(
    host: &str,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    let public: Vec<SocketAddr> = all
        .iter()
        .copied()
        .filter(|a| !is_private(a.ip()))
        .collect();
    if public.is_empty() {
        return Err(format!(
            "{host} resolves to no public address (private or local addresses are refused)"
        )
        .into());
    }
    Ok(public)
}

/// Loopback, private, link-local, unspecified, multicast or otherwise not a public host.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                // 100.64.0.0/10, carrier-grade NAT.
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
        }
    }
}

/// Checks the browser's keys: `p256dh` a P-256 public key (65-byte uncompressed point),
/// `auth` 16 bytes, both base64url.
pub fn check_keys(p256dh: &str, auth: &str) -> Result<(), String> {
    let point = B64_LENIENT
        .decode(p256dh)
        .map_err(|_| "p256dh: must be base64url".to_string())?;
    if point.len() != 65 || point[0] != 4 {
        return Err("p256dh: must be a 65-byte uncompressed P-256 point".into());
    }
    PublicKey::from_sec1_bytes(&point).map_err(|_| "p256dh: is not a point on P-256")?;
    let secret = B64_LENIENT
        .decode(auth)
        .map_err(|_| "auth: must be base64url".to_string())?;
    if secret.len() != 16 {
        return Err("auth: must be 16 bytes".into());
    }
    Ok(())
}

/// Encrypts `plaintext` for a subscription's stored keys with a fresh sender key and salt.
fn encrypt_for(p256dh: &str, auth: &str, plaintext: &[u8]) -> Result<Vec<u8>, String> {
    let ua_public = B64_LENIENT
        .decode(p256dh)
        .map_err(|_| "the subscription's p256dh is not base64url".to_string())?;
    let auth = B64_LENIENT
        .decode(auth)
        .map_err(|_| "the subscription's auth is not base64url".to_string())?;
    let ephemeral = SecretKey::random(&mut rand::thread_rng());
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    encrypt(&ua_public, &auth, &ephemeral, &salt, plaintext)
}

/// RFC 8291 §3-4: one aes128gcm record for the user agent's public key `ua_public`
/// and auth secret, from the application server's key `as_secret` and `salt`.
pub fn encrypt(
    ua_public: &[u8],
    auth: &[u8],
    as_secret: &SecretKey,
    salt: &[u8; 16],
    plaintext: &[u8],
) -> Result<Vec<u8>, String> {
    if plaintext.len() > MAX_PAYLOAD {
        return Err(format!("the payload is larger than {MAX_PAYLOAD} bytes"));
    }
    if auth.len() != 16 {
        return Err("the auth secret is not 16 bytes".into());
    }
    let ua_key =
        PublicKey::from_sec1_bytes(ua_public).map_err(|_| "p256dh is not a P-256 point")?;
    let as_public = as_secret.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua_key.as_affine());

    // IKM = HKDF(auth, ecdh, "WebPush: info" 0x00 ua_public as_public, 32)
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public.as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .map_err(|_| "HKDF expand (ikm)")?;

    // CEK and nonce from the salt (RFC 8188 §2.2-2.3).
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .map_err(|_| "HKDF expand (cek)")?;
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .map_err(|_| "HKDF expand (nonce)")?;

    // The only (so last) record: the plaintext, then the 0x02 delimiter, no padding.
    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(2);
    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|_| "AES key")?;
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), record.as_slice())
        .map_err(|_| "AES-GCM encryption failed")?;

    let mut body = Vec::with_capacity(16 + 4 + 1 + 65 + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_public.as_bytes());
    body.extend_from_slice(&sealed);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name that resolves to loopback (as a rebinding attacker's would) is reached by
    /// a plain client but never by one that resolves through [`PublicOnly`].
    #[tokio::test]
    async fn the_resolver_refuses_names_that_point_at_private_addresses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let app = axum::Router::new().fallback(|| async { "inside" });
            let _ = axum::serve(listener, app).await;
        });
        let url = format!("http://localhost:{port}/");
        let plain = reqwest::Client::builder().no_proxy().build().unwrap();
        assert_eq!(plain.get(&url).send().await.unwrap().status(), 200);
        let guarded = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(PublicOnly))
            .build()
            .unwrap();
        let err = guarded.get(&url).send().await.unwrap_err();
        let mut text = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        assert!(text.contains("no public address"), "{text}");
        assert!(public_addrs("localhost").await.is_err());
    }

    fn b64(s: &str) -> Vec<u8> {
        B64_LENIENT.decode(s).unwrap()
    }

    /// RFC 8291 Appendix A, byte for byte.
    #[test]
    fn encrypts_the_rfc_8291_example() {
        let as_secret =
            SecretKey::from_slice(&b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).unwrap();
        let ua_public = b64(
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        );
        let auth = b64("BTBZMqHH6r4Tts7J_aSIgg");
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let body = encrypt(
            &ua_public,
            &auth,
            &as_secret,
            &salt,
            b"When I grow up, I want to be a watermelon",
        )
        .unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn payload_size_is_capped_at_one_4096_byte_record() {
        let ua = SecretKey::random(&mut rand::thread_rng());
        let ua_public = ua.public_key().to_encoded_point(false);
        let as_secret = SecretKey::random(&mut rand::thread_rng());
        let body = encrypt(
            ua_public.as_bytes(),
            &[7; 16],
            &as_secret,
            &[1; 16],
            &[b'x'; MAX_PAYLOAD],
        )
        .unwrap();
        assert_eq!(body.len(), 4096);
        assert!(encrypt(
            ua_public.as_bytes(),
            &[7; 16],
            &as_secret,
            &[1; 16],
            &[b'x'; MAX_PAYLOAD + 1]
        )
        .is_err());
    }

    #[test]
    fn vapid_tokens_verify_with_the_public_key() {
        let secret = SecretKey::random(&mut rand::thread_rng());
        let key = SigningKey::from(secret.clone());
        let token = vapid_jwt(
            &key,
            "https://push.example.net",
            2_000_000_000,
            "mailto:a@b.in",
        );
        let point = secret.public_key().to_encoded_point(false);
        let decoding = jsonwebtoken::DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            &URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        )
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&["https://push.example.net"]);
        let data =
            jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(data.claims["sub"], "mailto:a@b.in");
        assert_eq!(data.claims["exp"], 2_000_000_000);
    }

    #[test]
    fn endpoints_must_be_public_https() {
        let ok = "https://fcm.googleapis.com/fcm/send/abc:def";
        assert!(check_endpoint(ok, false).is_ok());
        for bad in [
            "",
            "http://push.example.net/x",
            "ftp://push.example.net/x",
            "https://user:pw@push.example.net/x",
            "https://localhost/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://192.168.0.1/x",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[fd00::1]/x",
            "not a url",
        ] {
            assert!(check_endpoint(bad, false).is_err(), "{bad}");
        }
        let long = format!("https://push.example.net/{}", "a".repeat(MAX_ENDPOINT));
        assert!(check_endpoint(&long, false).is_err());
        // A test push service, when the operator allows it.
        assert!(check_endpoint("http://127.0.0.1:4000/push/1", true).is_ok());
        assert!(check_endpoint("ftp://127.0.0.1/x", true).is_err());
        assert_eq!(
            origin("https://push.example.net:8443/a/b?c").unwrap(),
            "https://push.example.net:8443"
        );
    }

    #[test]
    fn keys_are_checked() {
        let ua = SecretKey::random(&mut rand::thread_rng());
        let p256dh = URL_SAFE_NO_PAD.encode(ua.public_key().to_encoded_point(false));
        let auth = URL_SAFE_NO_PAD.encode([9u8; 16]);
        assert!(check_keys(&p256dh, &auth).is_ok());
        // Padded base64url is accepted too.
        let padded = base64::engine::general_purpose::URL_SAFE.encode([9u8; 16]);
        assert!(check_keys(&p256dh, &padded).is_ok());
        let compressed = URL_SAFE_NO_PAD.encode(ua.public_key().to_encoded_point(true));
        assert!(check_keys(&compressed, &auth)
            .unwrap_err()
            .starts_with("p256dh"));
        let mut off_curve = ua.public_key().to_encoded_point(false).as_bytes().to_vec();
        off_curve[64] ^= 1;
        assert!(check_keys(&URL_SAFE_NO_PAD.encode(off_curve), &auth)
            .unwrap_err()
            .starts_with("p256dh"));
        assert!(check_keys("not base64!", &auth)
            .unwrap_err()
            .starts_with("p256dh"));
        let short = URL_SAFE_NO_PAD.encode([9u8; 15]);
        assert!(check_keys(&p256dh, &short).unwrap_err().starts_with("auth"));
    }
}

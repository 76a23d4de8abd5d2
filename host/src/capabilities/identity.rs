//! `kirana:platform/identity`: sessions, tokens and passwords, with the signing key
//! held by the host.
//!
//! Access tokens are HS256 JWTs (`sub`, `role`, `sid`, `iat`, `exp`). Refresh tokens are
//! opaque random strings stored by hash; each refresh rotates the token, and a used
//! token presented again revokes its whole session (theft detection). The gateway
//! checks every access token's session, through a short-lived in-memory cache, so a
//! revoked session is refused from the next request on. A revocation is told to every
//! other replica over the change feed, which marks it in their caches too; while the
//! feed is down the cache is not trusted and every check asks the database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use dashmap::DashMap;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::bindings::kirana::platform::identity::{
    Host, OidcIdentity, OidcSignIn, SessionInfo, TokenPair,
};
use crate::bindings::wit;
use crate::capabilities::denied;
use crate::capabilities::oidc::Oidc;
use crate::cluster::{Channel, Feed};
use crate::config::IdentityConfig;
use crate::core::View;
use crate::storage::{now_ms, rfc3339_ms, Db};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    sid: String,
    iat: i64,
    exp: i64,
}

#[derive(Clone)]
struct CachedSession {
    live: bool,
    checked: Instant,
}

/// Why a bearer token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed or its signature is invalid")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the session was revoked")]
    Revoked,
    #[error("the session store is unavailable: {0}")]
    Store(String),
}

pub struct IdentityService {
    db: Db,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    config: IdentityConfig,
    argon: Arc<Argon2<'static>>,
    sessions: DashMap<String, CachedSession>,
    feed: Arc<dyn Feed>,
    /// Sign-in with OpenID Connect providers (`oidc-start`, `oidc-finish`).
    oidc: Oidc,
}

impl IdentityService {
    /// Uses the configured key, or the one generated at first start and kept in the
    /// host database (so every replica and every restart signs alike).
    pub async fn new(
        db: Db,
        config: &IdentityConfig,
        oidc: Oidc,
        feed: Arc<dyn Feed>,
    ) -> Result<Self> {
        let secret = if config.jwt_secret.is_empty() {
            crate::storage::host_secret(&db, "jwt").await?
        } else {
            config.jwt_secret.clone()
        };
        let params = Params::new(config.argon2_memory_kib, config.argon2_iterations, 1, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            db,
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            config: config.clone(),
            argon: Arc::new(Argon2::new(Algorithm::Argon2id, Version::V0x13, params)),
            sessions: DashMap::new(),
            feed,
            oidc,
        })
    }

    /// Sessions another replica revoked (`sid:<id>,...`): refused here from now on.
    pub fn revoked_elsewhere(&self, body: &str) {
        for sid in body.split(',').filter_map(|s| s.strip_prefix("sid:")) {
            self.remember(sid, false);
        }
    }

    /// Forgets every cached session state (the feed reconnected: revocations may have
    /// been missed).
    pub fn forget_cache(&self) {
        self.sessions.clear();
    }

    /// Marks `sids` revoked here and tells the other replicas.
    fn revoked(&self, sids: &[String]) {
        if sids.is_empty() {
            return;
        }
        for sid in sids {
            self.remember(sid, false);
        }
        for chunk in sids.chunks(100) {
            let body = chunk
                .iter()
                .map(|s| format!("sid:{s}"))
                .collect::<Vec<_>>()
                .join(",");
            self.feed.publish(Channel::Revoked, body);
        }
    }

    /// Verifies a bearer token: signature, expiry, and that its session is live.
    pub async fn verify(&self, token: &str) -> Result<wit::Identity, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        let claims = data.claims;
        if !self.session_live(&claims.sid).await? {
            return Err(TokenError::Revoked);
        }
        Ok(wit::Identity {
            user_id: claims.sub,
            role: claims.role,
            session_id: claims.sid,
        })
    }

    async fn session_live(&self, sid: &str) -> Result<bool, TokenError> {
        // Without the feed another replica's revocation would go unheard: ask the
        // database every time until it is back.
        if self.feed.healthy() {
            if let Some(c) = self.sessions.get(sid) {
                if !c.live || c.checked.elapsed() < self.cache_ttl() {
                    return Ok(c.live);
                }
            }
        }
        let row = sqlx::query("SELECT revoked_at, expires_at FROM sessions WHERE id = $1")
            .bind(sid)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(|e| TokenError::Store(e.to_string()))?;
        let live = match row {
            None => false,
            Some(r) => {
                let revoked: Option<i64> = r
                    .try_get("revoked_at")
                    .map_err(|e| TokenError::Store(e.to_string()))?;
                let expires: i64 = r
                    .try_get("expires_at")
                    .map_err(|e| TokenError::Store(e.to_string()))?;
                revoked.is_none() && expires > now_ms()
            }
        };
        self.remember(sid, live);
        Ok(live)
    }

    /// How long a cached live session is trusted before the database is asked again:
    /// the bound on how stale a revocation whose feed message was lost can be.
    fn cache_ttl(&self) -> Duration {
        Duration::from_secs(self.config.session_cache_secs)
    }

    fn remember(&self, sid: &str, live: bool) {
        if self.sessions.len() > 100_000 {
            let ttl = self.cache_ttl();
            self.sessions.retain(|_, c| c.checked.elapsed() < ttl);
        }
        self.sessions.insert(
            sid.to_string(),
            CachedSession {
                live,
                checked: Instant::now(),
            },
        );
    }

    fn access_token(&self, user_id: &str, role: &str, sid: &str) -> Result<String, wit::Error> {
        let now = now_ms() / 1000;
        let claims = Claims {
            sub: user_id.to_string(),
            role: role.to_string(),
            sid: sid.to_string(),
            iat: now,
            exp: now + i64::try_from(self.config.access_ttl_secs).unwrap_or(3600),
        };
        jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &self.encoding,
        )
        .map_err(|e| wit::Error::Failed(format!("signing the token: {e}")))
    }

    fn pair(
        &self,
        user_id: &str,
        role: &str,
        sid: &str,
        refresh: String,
    ) -> Result<TokenPair, wit::Error> {
        Ok(TokenPair {
            access_token: self.access_token(user_id, role, sid)?,
            refresh_token: refresh,
            expires_in: u32::try_from(self.config.access_ttl_secs).unwrap_or(u32::MAX),
            session_id: sid.to_string(),
            user_id: user_id.to_string(),
            role: role.to_string(),
        })
    }

    /// Starts a session and issues its first token pair.
    pub async fn issue(
        &self,
        user_id: &str,
        role: &str,
        user_agent: Option<&str>,
    ) -> Result<TokenPair, wit::Error> {
        let sid = format!("ses_{}", uuid::Uuid::now_v7().simple());
        let (refresh, hash) = new_refresh_token();
        let now = now_ms();
        let expires =
            now + i64::try_from(self.config.refresh_ttl_secs).unwrap_or(i64::MAX / 4) * 1000;
        let ua = user_agent.map(|s| s.chars().take(256).collect::<String>());
        let mut tx = self.db.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, role, user_agent, created_at, last_used_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
        )
        .bind(&sid)
        .bind(user_id)
        .bind(role)
        .bind(ua)
        .bind(now)
        .bind(expires)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        insert_refresh(&mut tx, &hash, &sid, now).await?;
        tx.commit().await.map_err(db_err)?;
        self.remember(&sid, true);
        self.pair(user_id, role, &sid, refresh)
    }

    /// Rotates a refresh token (see the module docs for reuse detection).
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, wit::Error> {
        let hash = hash_token(token);
        let denied = |m: &str| wit::Error::Denied(m.to_string());
        let mut tx = self
            .db
            .pool
            .begin_with(self.db.begin_statement())
            .await
            .map_err(db_err)?;
        let found = sqlx::query("SELECT session_id, used FROM refresh_tokens WHERE hash = $1")
            .bind(&hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let Some(found) = found else {
            return Err(denied("unknown refresh token"));
        };
        let sid: String = found.try_get("session_id").map_err(db_err)?;
        let used = found.try_get::<i64, _>("used").map_err(db_err)? != 0;
        let session =
            sqlx::query("SELECT user_id, role, revoked_at, expires_at FROM sessions WHERE id = $1")
                .bind(&sid)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        let Some(session) = session else {
            return Err(denied("unknown session"));
        };
        let user_id: String = session.try_get("user_id").map_err(db_err)?;
        let role: String = session.try_get("role").map_err(db_err)?;
        let revoked: Option<i64> = session.try_get("revoked_at").map_err(db_err)?;
        let expires: i64 = session.try_get("expires_at").map_err(db_err)?;
        let now = now_ms();
        if revoked.is_some() || expires <= now {
            return Err(denied("the session has ended"));
        }
        let claimed =
            sqlx::query("UPDATE refresh_tokens SET used = 1 WHERE hash = $1 AND used = 0")
                .bind(&hash)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
        if used || claimed != 1 {
            revoke_in(&mut tx, &sid, now).await?;
            tx.commit().await.map_err(db_err)?;
            self.revoked(std::slice::from_ref(&sid));
            return Err(denied("refresh token reused; the session is revoked"));
        }
        let (refresh, new_hash) = new_refresh_token();
        insert_refresh(&mut tx, &new_hash, &sid, now).await?;
        sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&sid)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        self.pair(&user_id, &role, &sid, refresh)
    }

    pub async fn sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>, wit::Error> {
        let rows = sqlx::query(
            "SELECT id, created_at, last_used_at, user_agent FROM sessions \
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC",
        )
        .bind(user_id)
        .bind(now_ms())
        .fetch_all(&self.db.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(SessionInfo {
                    id: r.try_get("id").map_err(db_err)?,
                    created_at: rfc3339_ms(r.try_get("created_at").map_err(db_err)?),
                    last_used_at: rfc3339_ms(r.try_get("last_used_at").map_err(db_err)?),
                    user_agent: r.try_get("user_agent").map_err(db_err)?,
                })
            })
            .collect()
    }

    /// Revokes one live session of `user_id`; false when it is not theirs or not live.
    pub async fn revoke_session(&self, user_id: &str, sid: &str) -> Result<bool, wit::Error> {
        let n = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(sid)
            .bind(user_id)
            .execute(&self.db.pool)
            .await
            .map_err(db_err)?
            .rows_affected();
        if n > 0 {
            self.revoked(&[sid.to_string()]);
        }
        Ok(n > 0)
    }

    pub async fn revoke_all(&self, user_id: &str) -> Result<u32, wit::Error> {
        let rows = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL RETURNING id")
            .bind(now_ms())
            .bind(user_id)
            .fetch_all(&self.db.pool)
            .await
            .map_err(db_err)?;
        let sids: Vec<String> = rows
            .iter()
            .filter_map(|r| r.try_get::<String, _>("id").ok())
            .collect();
        self.revoked(&sids);
        Ok(u32::try_from(rows.len()).unwrap_or(u32::MAX))
    }

    /// Argon2id on a blocking thread (it is deliberately slow).
    pub async fn hash_password(&self, password: String) -> Result<String, wit::Error> {
        if password.len() > 1024 {
            return Err(wit::Error::Invalid(
                "passwords are at most 1024 bytes".into(),
            ));
        }
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| wit::Error::Failed(format!("hashing: {e}")))
        })
        .await
        .map_err(|e| wit::Error::Failed(format!("hashing task: {e}")))?
    }

    pub async fn verify_password(
        &self,
        password: String,
        hash: String,
    ) -> Result<bool, wit::Error> {
        if password.len() > 1024 {
            return Ok(false);
        }
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash)
                .map_err(|e| wit::Error::Invalid(format!("not a PHC password hash: {e}")))?;
            Ok(argon.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .map_err(|e| wit::Error::Failed(format!("verifying task: {e}")))?
    }

    /// Signs an access token for tests and tools that need one without a login.
    pub fn sign_for_test(&self, user_id: &str, role: &str, sid: &str) -> Result<String> {
        self.access_token(user_id, role, sid)
            .map_err(|e| anyhow::anyhow!("{e:?}"))
    }
}

fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = format!(
        "rt_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = hash_token(&token);
    (token, hash)
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

async fn insert_refresh(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    hash: &str,
    sid: &str,
    now: i64,
) -> Result<(), wit::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (hash, session_id, used, created_at) VALUES ($1, $2, 0, $3)",
    )
    .bind(hash)
    .bind(sid)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

async fn revoke_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    sid: &str,
    now: i64,
) -> Result<(), wit::Error> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(sid)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

fn db_err(e: sqlx::Error) -> wit::Error {
    wit::Error::Failed(format!("session store: {e}"))
}

impl View<'_, IdentityService> {
    fn identity(&self) -> Result<&IdentityService, wit::Error> {
        if !self.plugin.grants.identity {
            return Err(denied("identity", &self.plugin.name));
        }
        Ok(self.state)
    }
}

impl Host for View<'_, IdentityService> {
    async fn issue(
        &mut self,
        user_id: String,
        role: String,
        user_agent: Option<String>,
    ) -> wasmtime::Result<Result<TokenPair, wit::Error>> {
        Ok(match self.identity() {
            Ok(id) => id.issue(&user_id, &role, user_agent.as_deref()).await,
            Err(e) => Err(e),
        })
    }

    async fn refresh(
        &mut self,
        refresh_token: String,
    ) -> wasmtime::Result<Result<TokenPair, wit::Error>> {
        Ok(match self.identity() {
            Ok(id) => id.refresh(&refresh_token).await,
            Err(e) => Err(e),
        })
    }

    async fn sessions(
        &mut self,
        user_id: String,
    ) -> wasmtime::Result<Result<Vec<SessionInfo>, wit::Error>> {
        Ok(match self.identity() {
            Ok(id) => id.sessions(&user_id).await,
            Err(e) => Err(e),
        })
    }

    async fn revoke_session(
        &mut self,
        user_id: String,
        session_id: String,
    ) -> wasmtime::Result<Result<bool, wit::Error>> {
        Ok(match self.identity() {
            Ok(id) => id.revoke_session(&user_id, &session_id).await,
            Err(e) => Err(e),
        })
    }

    async fn revoke_all(&mut self, user_id: String) -> wasmtime::Result<Result<u32, wit::Error>> {
        Ok(match self.identity() {
            Ok(id) => id.revoke_all(&user_id).await,
            Err(e) => Err(e),
        })
    }

    async fn hash_password(
        &mut self,
        password: String,
    ) -> wasmtime::Result<Result<String, wit::Error>> {
        Ok(match self.identity() {
            Ok(id) => id.hash_password(password).await,
            Err(e) => Err(e),
        })
    }

    async fn verify_password(
        &mut self,
        password: String,
        hash: String,
    ) -> wasmtime::Result<Result<bool, wit::Error>> {
        Ok(match self.identity() {
            Ok(id) => id.verify_password(password, hash).await,
            Err(e) => Err(e),
        })
    }

    async fn oidc_start(
        &mut self,
        start: OidcSignIn,
    ) -> wasmtime::Result<Result<String, wit::Error>> {
        Ok(match self.identity() {
            Ok(id) => id.oidc.start(start, self.call.browser.as_deref()).await,
            Err(e) => Err(e),
        })
    }

    async fn oidc_providers(&mut self) -> wasmtime::Result<Result<Vec<String>, wit::Error>> {
        Ok(self.identity().map(|id| id.oidc.names()))
    }

    async fn oidc_finish(
        &mut self,
        provider: String,
        code: String,
        state: String,
    ) -> wasmtime::Result<Result<OidcIdentity, wit::Error>> {
        Ok(match self.identity() {
            Ok(id) => {
                id.oidc
                    .finish(&provider, &code, &state, self.call.browser.as_deref())
                    .await
            }
            Err(e) => Err(e),
        })
    }
}

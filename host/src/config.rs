//! Configuration: embedded defaults, then an optional file merged over them, then
//! environment overrides (`KIRANA_<SECTION>_<KEY>`), then typed.
//!
//! The merged TOML document is kept whole because plugin settings (`[cart]`, `[auth]`
//! ...) are free-form: the host hands each plugin its own section without knowing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The defaults shipped in the binary (`config/kirana.toml`).
pub const DEFAULTS: &str = include_str!("../../config/kirana.toml");

/// The published development values (`config/development.toml`): applied under the
/// operator's own settings only in development mode, and refused by a production start.
pub const DEVELOPMENT: &str = include_str!("../../config/development.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// Empty: every shared concern in process (one replica). `redis://...`: plugin KV,
    /// rate budgets and the change feed (revocations, registry changes, realtime
    /// pushes, wake-ups) shared by every replica through this Redis.
    #[serde(default)]
    pub redis_url: String,
    /// SQLite's `synchronous`: `normal` (a committed write survives a process crash;
    /// an OS crash or power loss may undo the last ones) or `full` (fsync at every
    /// commit: survives power loss too, each commit costs an fsync).
    #[serde(default)]
    pub sqlite_synchronous: SqliteSync,
    pub plugin_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub log_format: String,
    pub log_level: String,
    /// Development mode (`kirana up`, `KIRANA_DEV=true`): published development values
    /// fill what is unset, and the host must listen on loopback only.
    #[serde(default)]
    pub dev: bool,
    pub runtime: RuntimeConfig,
    pub limits: LimitsConfig,
    pub services: ServicesConfig,
    pub identity: IdentityConfig,
    pub events: EventsConfig,
    #[serde(default)]
    pub realtime: RealtimeConfig,
    pub rate_limit: RateLimitConfig,
    pub cors: CorsConfig,
    pub mail: MailConfig,
    #[serde(default)]
    pub push: PushConfig,
    #[serde(default)]
    pub files: FilesConfig,
    pub admin: AdminConfig,
    pub registry: RegistryConfig,
    #[serde(default)]
    pub secrets: SecretsConfig,
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginConfig>,
    /// Where shoppers reach the shop (`https://shop.example`), without a trailing slash:
    /// OpenID Connect callback URLs are built from it. Empty: from the request's `Host`
    /// (fine on loopback; set it behind a proxy or on a public name).
    #[serde(default)]
    pub public_url: String,
    /// OpenID Connect providers by name (`[oidc.google]`); the name is the
    /// `{provider}` of the sign-in routes.
    #[serde(default)]
    pub oidc: BTreeMap<String, OidcProviderConfig>,
    /// The whole merged document, for plugin sections.
    #[serde(skip)]
    pub document: toml::Table,
}

/// See [`Config::sqlite_synchronous`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    #[default]
    Normal,
    Full,
}

impl SqliteSync {
    /// The pragma's value.
    pub fn pragma(self) -> &'static str {
        match self {
            SqliteSync::Normal => "NORMAL",
            SqliteSync::Full => "FULL",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct RuntimeConfig {
    pub pool_instances: u32,
    pub max_memory_mb: u32,
    pub epoch_tick_ms: u64,
    pub warm_instances: usize,
    /// Lets `perf` name JIT-compiled plugin functions (`perfmap` writes
    /// `/tmp/perf-<pid>.map`); `none` in production.
    #[serde(default)]
    pub profiler: Profiler,
}

/// `runtime.profiler`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profiler {
    #[default]
    None,
    Perfmap,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LimitsConfig {
    pub memory_mb: u32,
    pub timeout_ms: u64,
    pub body_bytes: usize,
    pub max_call_depth: u32,
    pub db_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServicesConfig {
    pub breaker_failures: u32,
    pub breaker_cooldown_ms: u64,
}

/// One OpenID Connect provider (`[oidc.<name>]`, or `KIRANA_OIDC_<NAME>_ISSUER`,
/// `_CLIENT_ID`, `_CLIENT_SECRET`). Nothing is provider-specific: Google is
/// `issuer = "https://accounts.google.com"`.
#[derive(Debug, Clone, Deserialize)]
pub struct OidcProviderConfig {
    /// The issuer URL; `{issuer}/.well-known/openid-configuration` is its discovery
    /// document. `https://` (plain `http://` only on a loopback address, for tests).
    pub issuer: String,
    pub client_id: String,
    /// Empty for a public client (PKCE alone).
    #[serde(default)]
    pub client_secret: String,
}

/// The `[oidc.<name>]` keys settable from the environment.
const OIDC_ENV_KEYS: [&str; 3] = ["issuer", "client_id", "client_secret"];

#[derive(Debug, Clone, Deserialize)]
pub struct IdentityConfig {
    pub jwt_secret: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// How long the gateway trusts a cached "this session is live" before asking the
    /// database again (bounds a revocation whose change-feed message was lost).
    pub session_cache_secs: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventsConfig {
    pub max_attempts: u32,
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub poll_ms: u64,
    pub lease_ms: u64,
}

/// Live streams (`GET /api/v1/realtime`).
#[derive(Debug, Clone, Deserialize)]
pub struct RealtimeConfig {
    /// How often a stream sends a keep-alive comment and checks its token again (a
    /// logout or an expired token ends the stream at the next check).
    pub recheck_ms: u64,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self { recheck_ms: 15_000 }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub per_minute: u32,
    pub auth_per_minute: u32,
    /// Requests per minute per client address to the operator API (`/admin/...`).
    #[serde(default = "admin_per_minute")]
    pub admin_per_minute: u32,
    /// Requests per minute per user (else client address) to routes that answer files
    /// (pages, scripts, product images): one page view pulls dozens of them.
    #[serde(default = "files_per_minute")]
    pub files_per_minute: u32,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// What to do with a request when the shared (Redis) limiter cannot be asked:
    /// let it through (`open`, with a warning and a metric) or refuse it (`closed`).
    #[serde(default)]
    pub on_backend_error: FailMode,
}

/// See [`RateLimitConfig::on_backend_error`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    #[default]
    Open,
    Closed,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CorsConfig {
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age_secs: u64,
}

/// Where the `files` capability keeps plugin files (`[files]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct FilesConfig {
    /// `auto` (the database on PostgreSQL, so every replica sees the same files; a
    /// directory with SQLite), `directory` or `database`.
    pub backend: FilesBackend,
    /// The directory backend's root; empty = `data_dir/files`. One subdirectory per plugin.
    pub dir: PathBuf,
    /// Largest file a plugin may write, in MiB.
    pub max_file_mb: u32,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            backend: FilesBackend::Auto,
            dir: PathBuf::new(),
            max_file_mb: 8,
        }
    }
}

/// See [`FilesConfig::backend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilesBackend {
    Auto,
    Directory,
    Database,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MailConfig {
    /// `smtp://[user:pass@]host[:port]` (plain; add `?tls=required` for STARTTLS),
    /// `smtps://...` (TLS), or empty: messages are only recorded in the outbox.
    pub smtp_url: String,
    /// The `From` of every email.
    pub from: String,
    /// SMTP attempts per email before it is marked `failed`.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt.
    pub backoff_ms: u64,
    /// How often the sender looks for due emails when not woken by a send.
    pub poll_ms: u64,
    /// One SMTP conversation's time limit.
    pub timeout_ms: u64,
    /// A PEM file of certificate authorities the SMTP server's certificate may chain
    /// to, trusted besides the public roots: for a relay with a private CA. Empty:
    /// public roots only. Needs a TLS `smtp_url` (a plain one would never use it).
    #[serde(default)]
    pub tls_ca_file: String,
}

/// How `mail.smtp_url` secures the SMTP connection (lettre's URL forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtp://host`: plain text.
    None,
    /// `smtp://host?tls=opportunistic`: STARTTLS when offered, else plain text.
    Opportunistic,
    /// `smtp://host?tls=required`: STARTTLS or no delivery.
    Required,
    /// `smtps://host`: TLS from the first byte.
    Wrapper,
}

impl MailConfig {
    /// How `smtp_url` secures the connection (`None` also for an unparsable URL, which
    /// validation refuses).
    pub fn smtp_tls(&self) -> SmtpTls {
        let Ok(url) = url::Url::parse(&self.smtp_url) else {
            return SmtpTls::None;
        };
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        match (url.scheme(), tls.as_deref()) {
            ("smtps", _) => SmtpTls::Wrapper,
            ("smtp", Some("required")) => SmtpTls::Required,
            ("smtp", Some("opportunistic")) => SmtpTls::Opportunistic,
            _ => SmtpTls::None,
        }
    }

    /// The certificate authorities of `tls_ca_file` (none when it is empty); an error
    /// names the file when it cannot be read or holds no PEM certificate.
    pub fn tls_ca(&self) -> Result<Option<lettre::transport::smtp::client::Certificate>> {
        if self.tls_ca_file.is_empty() {
            return Ok(None);
        }
        let path = &self.tls_ca_file;
        let pem = std::fs::read(path).with_context(|| format!("reading {path}"))?;
        // lettre skips what is not a certificate, so an empty or wrong file would only
        // show later as an untrusted server.
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            bail!("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        }
        let ca = lettre::transport::smtp::client::Certificate::from_pem(&pem)
            .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        Ok(Some(ca))
    }
}

/// `[push]`: Web Push delivery (the `push` mail channel). Retries and attempts are
/// `[mail]`'s.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PushConfig {
    /// The VAPID `sub` claim: how a push service reaches the operator (`mailto:` or
    /// `https:`). Empty: `mailto:` and `auth.admin_email`, else `mail.from`'s address.
    pub subject: String,
    /// How long a push service keeps an undelivered message (the `TTL` header).
    pub ttl_secs: u32,
    /// One request to a push service, connecting included.
    pub timeout_ms: u64,
    /// Accepts `http://` and private-address endpoints: for a local test push
    /// service only. Endpoints come from browsers (any signed-in user), and the host
    /// POSTs to them.
    pub allow_insecure_endpoints: bool,
    /// Most subscriptions one user keeps; a new one beyond drops the oldest.
    pub max_subscriptions_per_user: u32,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            subject: String::new(),
            ttl_secs: 3600,
            timeout_ms: 10_000,
            allow_insecure_endpoints: false,
            max_subscriptions_per_user: 10,
        }
    }
}

/// `[secrets]`: the settings a production start needs the operator's own values for.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SecretsConfig {
    /// Dotted keys (`payments.key_secret`) that must be set and must not be published.
    #[serde(default)]
    pub required: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AdminConfig {
    /// The bearer token that opens the operator API (`/admin/...`). Shop admins cannot:
    /// the operator installs and enables code. Empty outside development = no operator
    /// API at all (every call answers 401).
    pub operator_token: String,
    /// Largest component `POST /admin/plugins` accepts, in MiB.
    pub max_upload_mb: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RegistryConfig {
    /// At start, make each configured file live (installing it, and replacing a build
    /// of the same version): what `kirana up` does for development. Off, the registry
    /// in the database decides and the files only seed it.
    pub follow_files: bool,
    /// A canary whose candidate answers more than this share of 5xx ...
    pub canary_max_error_rate: f64,
    /// ... over at least this many requests ...
    pub canary_min_requests: u64,
    /// ... within this many seconds of its start is rolled back by itself.
    pub canary_window_secs: u64,
    /// Every this many seconds a replica compares its loaded plugins with the registry
    /// in the database, catching any change-feed message it missed (0: never; changes
    /// still arrive through the feed and on its reconnection).
    #[serde(default = "reconcile_secs")]
    pub reconcile_secs: u64,
}

fn reconcile_secs() -> u64 {
    30
}

/// How a plugin's instances live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum InstanceMode {
    /// A new store and instance per request (strongest isolation).
    #[default]
    Fresh,
    /// Warm instances reused across requests; discarded after any trap or timeout.
    Reuse,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PluginConfig {
    /// The component file that seeds the registry; empty for plugins installed through
    /// the operator API (a section then only sets grants and limits).
    #[serde(default)]
    pub file: PathBuf,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub instances: InstanceMode,
    /// Warm instances kept for this plugin in `reuse` mode (else
    /// `runtime.warm_instances`): a plugin with a large heap per instance (a Python
    /// one carries its interpreter's) keeps fewer, and requests beyond them get a
    /// fresh instance that is dropped afterwards.
    pub warm_instances: Option<usize>,
    /// Most instances of this plugin alive at once, in use or warm (else no cap).
    /// A call that finds them all busy waits for one until its deadline, then answers
    /// `504 plugin_timeout`. Bounds a large-heap plugin's memory under load; a plugin
    /// that calls itself through `services.call` needs one per nesting level.
    pub max_instances: Option<usize>,
    pub memory_mb: Option<u32>,
    pub timeout_ms: Option<u64>,
    /// Largest request body for this plugin's routes (else `limits.body_bytes`).
    pub body_bytes: Option<usize>,
    /// How deep service calls starting in this plugin may nest (else
    /// `limits.max_call_depth`).
    pub max_call_depth: Option<u32>,
    /// Optional wasm fuel per call (roughly one unit per instruction); running out
    /// answers like the time limit. Setting it for any plugin turns fuel metering on
    /// for the engine (a few percent slower for every plugin).
    pub fuel: Option<u64>,
    /// What the operator approves for this plugin; anything a version asks for beyond
    /// it (and beyond approvals given at enable) keeps that version off.
    #[serde(default)]
    pub grants: Vec<String>,
    /// A directory of read-only assets to bundle with `file` (relative to the working
    /// directory), as `kirana plugins install --assets` does; empty for none.
    #[serde(default)]
    pub assets: PathBuf,
}

fn yes() -> bool {
    true
}

fn admin_per_minute() -> u32 {
    120
}

fn files_per_minute() -> u32 {
    1200
}

impl Config {
    /// Whether any plugin has a fuel budget (the engine then meters fuel).
    pub fn uses_fuel(&self) -> bool {
        self.plugins.values().any(|p| p.fuel.is_some())
    }

    /// Defaults, merged with `file` if given, with the process environment applied.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(file, &env)
    }

    /// Like [`Config::load`], in development mode whatever the file and environment say
    /// (`kirana up`).
    pub fn load_development(file: Option<&Path>) -> Result<Self> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_mode(file, &env, true)
    }

    /// Like [`Config::load`] with an explicit environment (tests use this).
    pub fn load_with_env(file: Option<&Path>, env: &[(String, String)]) -> Result<Self> {
        Self::load_mode(file, env, false)
    }

    /// Defaults, then (in development mode only) the published development values, then
    /// `file`, then the environment. Development mode is `force_dev` or `dev = true`
    /// from the file or `KIRANA_DEV`.
    pub fn load_mode(
        file: Option<&Path>,
        env: &[(String, String)],
        force_dev: bool,
    ) -> Result<Self> {
        let defaults: toml::Table = DEFAULTS.parse().context("embedded defaults do not parse")?;
        let over: Option<toml::Table> = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                Some(
                    text.parse()
                        .with_context(|| format!("parsing config file {}", path.display()))?,
                )
            }
            None => None,
        };
        let build = |dev: bool| -> Result<toml::Table> {
            let mut doc = defaults.clone();
            if dev {
                let development: toml::Table = DEVELOPMENT
                    .parse()
                    .context("embedded development values do not parse")?;
                merge(&mut doc, development);
            }
            if let Some(o) = &over {
                merge(&mut doc, o.clone());
            }
            apply_env(&mut doc, env)?;
            if dev {
                doc.insert("dev".into(), toml::Value::Boolean(true));
            }
            Ok(doc)
        };
        let plain = build(false)?;
        let dev = force_dev || plain.get("dev").and_then(toml::Value::as_bool) == Some(true);
        Self::from_document(if dev { build(true)? } else { plain })
    }

    /// Refuses a production start (not development mode) whose `[secrets] required`
    /// settings are missing, too short, or values published in this repository. The
    /// error is one line naming the setting and how to set it.
    pub fn check_secrets(&self) -> Result<()> {
        if self.dev {
            return Ok(());
        }
        let published = published_values();
        // The shipped list always counts: a config file can add to it, not remove.
        let mut required = shipped_required();
        for key in &self.secrets.required {
            if !required.contains(key) {
                required.push(key.clone());
            }
        }
        for key in &required {
            let path: Vec<&str> = key.split('.').collect();
            let value = lookup(&self.document, &path)
                .and_then(toml::Value::as_str)
                .unwrap_or("");
            let var = self.env_name(key);
            if value.trim().is_empty() {
                bail!(
                    "{key} is not set: `kirana serve` needs your own value (set {var}, or {key} in --config FILE; `kirana up` runs a development shop on loopback without it)"
                );
            }
            if published.iter().any(|(k, v)| k == key && v == value) {
                bail!(
                    "{key} is the published development value from this repository: set your own with {var} (or {key} in --config FILE)"
                );
            }
            if value.chars().count() < MIN_SECRET_CHARS {
                bail!(
                    "{key} is shorter than {MIN_SECRET_CHARS} characters: set a longer value with {var}"
                );
            }
        }
        Ok(())
    }

    /// The environment variable that sets dotted `key`: its alias when it has one.
    fn env_name(&self, key: &str) -> String {
        if let Some(toml::Value::Table(aliases)) = self.document.get("env_aliases") {
            if let Some((var, _)) = aliases.iter().find(|(_, v)| v.as_str() == Some(key)) {
                return var.clone();
            }
        }
        format!("KIRANA_{}", key.replace(['.', '-'], "_").to_uppercase())
    }

    /// In development mode with no operator token configured: the token kept in
    /// `data_dir/operator-token` (made once, readable by its owner only), so the CLI on
    /// the same machine can use it. Returns where it is, or None when not needed.
    pub fn ensure_development_operator_token(&mut self) -> Result<Option<PathBuf>> {
        if !self.dev || !self.admin.operator_token.is_empty() {
            return Ok(None);
        }
        let path = self.data_dir.join(OPERATOR_TOKEN_FILE);
        let existing = std::fs::read_to_string(&path)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| t.len() >= MIN_OPERATOR_TOKEN_CHARS);
        let token = match existing {
            Some(t) => t,
            None => {
                std::fs::create_dir_all(&self.data_dir)
                    .with_context(|| format!("creating {}", self.data_dir.display()))?;
                let mut raw = [0u8; 32];
                rand::RngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut raw)
                    .map_err(|e| anyhow::anyhow!("no randomness for the operator token: {e}"))?;
                let token = hex::encode(raw);
                write_private(&path, &token)?;
                token
            }
        };
        self.admin.operator_token = token;
        Ok(Some(path))
    }

    /// Types a merged document.
    pub fn from_document(doc: toml::Table) -> Result<Self> {
        let mut config: Config = toml::Value::Table(doc.clone())
            .try_into()
            .context("invalid configuration")?;
        config.document = doc;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        if self.dev && !self.rate_limit.trusted_proxies.is_empty() {
            bail!(
                "development mode (kirana up, KIRANA_DEV) uses published secrets and must not sit behind a proxy, but rate_limit.trusted_proxies is set: run `kirana serve` with your own secrets"
            );
        }
        if self.dev && !is_loopback(&self.listen) {
            bail!(
                "development mode (kirana up, KIRANA_DEV) uses published secrets and listens on loopback only, but listen = {:?}: use 127.0.0.1:PORT, or run `kirana serve` with your own secrets",
                self.listen
            );
        }
        let token = &self.admin.operator_token;
        if !token.is_empty() && token.chars().count() < MIN_OPERATOR_TOKEN_CHARS {
            bail!(
                "admin.operator_token must be at least {MIN_OPERATOR_TOKEN_CHARS} characters (KIRANA_ADMIN_OPERATOR_TOKEN; e.g. `openssl rand -hex 32`)"
            );
        }
        if self.limits.timeout_ms == 0 || self.limits.memory_mb == 0 {
            bail!("limits.timeout_ms and limits.memory_mb must be positive");
        }
        for (name, pc) in &self.plugins {
            if pc.max_instances == Some(0) {
                bail!("plugins.{name}.max_instances must be at least 1 (leave it out for no cap)");
            }
        }
        for p in &self.rate_limit.trusted_proxies {
            if p.parse::<std::net::IpAddr>().is_err() {
                bail!("rate_limit.trusted_proxies: {p:?} is not an IP address");
            }
        }
        if self.cors.allow_credentials && self.cors.allowed_origins.iter().any(|o| o == "*") {
            bail!("cors: allow_credentials cannot be combined with the \"*\" origin; list the origins");
        }
        if !self.mail.smtp_url.is_empty() {
            check_smtp_url(&self.mail.smtp_url).context("mail.smtp_url")?;
        }
        if !self.mail.tls_ca_file.is_empty() {
            if self.mail.smtp_tls() == SmtpTls::None {
                bail!(
                    "mail.tls_ca_file is set but mail.smtp_url does not use TLS: use \
                     smtp://host:587?tls=required (STARTTLS) or smtps://host:465"
                );
            }
            self.mail.tls_ca().context("mail.tls_ca_file")?;
        }
        if !self.redis_url.is_empty()
            && !["redis://", "rediss://", "redis+unix://", "unix://"]
                .iter()
                .any(|s| self.redis_url.starts_with(s))
        {
            bail!(
                "redis_url must be a Redis URL (redis://[:password@]host:6379/N, rediss:// for TLS) or empty for no Redis (KIRANA_REDIS_URL)"
            );
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            bail!("mail.from: {:?} is not an email address", self.mail.from);
        }
        let subject = &self.push.subject;
        let subject_ok =
            subject.is_empty() || subject.starts_with("mailto:") || subject.starts_with("https://");
        if !subject_ok {
            bail!(
                "push.subject: {subject:?} must be a mailto: or https: URL (KIRANA_PUSH_SUBJECT)"
            );
        }
        if self.push.max_subscriptions_per_user == 0 {
            bail!("push.max_subscriptions_per_user must be at least 1");
        }
        if self.runtime.epoch_tick_ms == 0 {
            bail!("runtime.epoch_tick_ms must be positive");
        }
        if !self.public_url.is_empty() {
            let url = url::Url::parse(&self.public_url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            if url.is_none() || self.public_url.ends_with('/') {
                bail!(
                    "public_url = {:?} must be an http(s) URL without a trailing slash, e.g. https://shop.example (KIRANA_PUBLIC_URL)",
                    self.public_url
                );
            }
        }
        for (name, p) in &self.oidc {
            check_oidc_provider(name, p)?;
        }
        if !self.dev && !self.oidc.is_empty() && self.public_url.is_empty() {
            // Else the callback URL would come from the request's Host header, which
            // anyone can set.
            bail!(
                "OpenID Connect providers are configured but public_url is empty: set it to the address shoppers use, e.g. https://shop.example (KIRANA_PUBLIC_URL)"
            );
        }
        for (name, p) in &self.plugins {
            if let Some(mb) = p.memory_mb {
                if mb > self.runtime.max_memory_mb {
                    bail!(
                        "plugins.{name}.memory_mb = {mb} exceeds runtime.max_memory_mb = {}",
                        self.runtime.max_memory_mb
                    );
                }
            }
        }
        Ok(())
    }

    /// The VAPID `sub` claim: `push.subject`, else `mailto:` the admin's email, else
    /// `mailto:` the address email is sent from.
    pub fn push_subject(&self) -> String {
        if !self.push.subject.is_empty() {
            return self.push.subject.clone();
        }
        let admin = lookup(&self.document, &["auth", "admin_email"])
            .and_then(toml::Value::as_str)
            .map(str::trim)
            .filter(|a| a.contains('@'));
        match admin {
            Some(a) => format!("mailto:{a}"),
            None => match self.mail.from.parse::<lettre::message::Mailbox>() {
                Ok(m) => format!("mailto:{}", m.email),
                Err(_) => "mailto:no-reply@kirana.local".into(),
            },
        }
    }

    /// The embedded SQLite setup when `database_url` is empty.
    pub fn uses_postgres(&self) -> bool {
        self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://")
    }

    /// A plugin's own settings section (`[name]`), rendered as text values.
    pub fn plugin_settings(&self, name: &str) -> Vec<(String, String)> {
        match self.document.get(name) {
            Some(toml::Value::Table(t)) => t
                .iter()
                .filter_map(|(k, v)| render_scalar(v).map(|s| (k.clone(), s)))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Where a plugin's component file is.
    pub fn plugin_path(&self, p: &PluginConfig) -> PathBuf {
        if p.file.is_absolute() || p.file.components().count() > 1 {
            p.file.clone()
        } else {
            self.plugin_dir.join(&p.file)
        }
    }

    pub fn cache_dir(&self) -> PathBuf {
        if self.cache_dir.as_os_str().is_empty() {
            self.data_dir.join("cache")
        } else {
            self.cache_dir.clone()
        }
    }
}

/// Shortest value a required secret may have.
const MIN_SECRET_CHARS: usize = 12;
/// Shortest operator token.
pub const MIN_OPERATOR_TOKEN_CHARS: usize = 24;
/// Where development mode keeps its generated operator token, under `data_dir`.
pub const OPERATOR_TOKEN_FILE: &str = "operator-token";

/// Whether `listen` (`host:port`) binds a loopback address only.
fn is_loopback(listen: &str) -> bool {
    if let Ok(addr) = listen.parse::<std::net::SocketAddr>() {
        return addr.ip().is_loopback();
    }
    matches!(listen.rsplit_once(':'), Some(("localhost", _)))
}

/// The `[secrets] required` list of the shipped defaults.
fn shipped_required() -> Vec<String> {
    DEFAULTS
        .parse::<toml::Table>()
        .ok()
        .as_ref()
        .and_then(|d| lookup(d, &["secrets", "required"]))
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Every value at a shipped `[secrets] required` key in the files this repository
/// publishes.
fn published_values() -> Vec<(String, String)> {
    let docs: Vec<toml::Table> = [DEFAULTS, DEVELOPMENT]
        .iter()
        .filter_map(|text| text.parse::<toml::Table>().ok())
        .collect();
    let required = shipped_required();
    let mut out = Vec::new();
    for doc in &docs {
        for key in &required {
            let path: Vec<&str> = key.split('.').collect();
            if let Some(v) = lookup(doc, &path).and_then(toml::Value::as_str) {
                if !v.is_empty() {
                    out.push((key.clone(), v.to_string()));
                }
            }
        }
    }
    out
}

fn lookup<'a>(doc: &'a toml::Table, path: &[&str]) -> Option<&'a toml::Value> {
    let (last, parents) = path.split_last()?;
    let mut cur = doc;
    for p in parents {
        cur = cur.get(*p)?.as_table()?;
    }
    cur.get(*last)
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Numbers and booleans rendered as text; arrays/tables are not plugin settings.
fn render_scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        _ => None,
    }
}

/// Deep-merges `over` into `base`: tables merge, everything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Applies `KIRANA_A_B_C` to every scalar leaf `a.b.c` of the document, and the
/// `[env_aliases]` table (variable name → dotted key).
fn apply_env(doc: &mut toml::Table, env: &[(String, String)]) -> Result<()> {
    let vars: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut leaves = Vec::new();
    collect_leaves(doc, &mut Vec::new(), &mut leaves);
    for path in leaves {
        let name = format!("KIRANA_{}", path.join("_").replace('-', "_").to_uppercase());
        if let Some(raw) = vars.get(name.as_str()) {
            set_path(doc, &path, parse_env_value(raw));
        }
    }
    let aliases: Vec<(String, String)> = match doc.get("env_aliases") {
        Some(toml::Value::Table(t)) => t
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect(),
        _ => Vec::new(),
    };
    for (var, key) in aliases {
        if let Some(raw) = vars.get(var.as_str()) {
            let path: Vec<String> = key.split('.').map(str::to_string).collect();
            set_path(doc, &path, parse_env_value(raw));
        }
    }
    // `KIRANA_OIDC_<NAME>_<KEY>` names a provider the file need not list. Always a
    // string (a client id may look like a number).
    for (var, raw) in &vars {
        let Some(rest) = var.strip_prefix("KIRANA_OIDC_") else {
            continue;
        };
        for key in OIDC_ENV_KEYS {
            let suffix = format!("_{}", key.to_uppercase());
            if let Some(name) = rest.strip_suffix(&suffix).filter(|n| !n.is_empty()) {
                let path = ["oidc".to_string(), name.to_lowercase(), key.to_string()];
                set_path(doc, &path, toml::Value::String(raw.to_string()));
            }
        }
    }
    Ok(())
}

fn collect_leaves(t: &toml::Table, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    for (k, v) in t {
        prefix.push(k.clone());
        match v {
            toml::Value::Table(inner) => collect_leaves(inner, prefix, out),
            toml::Value::Array(_) => {}
            _ => out.push(prefix.clone()),
        }
        prefix.pop();
    }
}

fn set_path(doc: &mut toml::Table, path: &[String], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = doc;
    for p in parents {
        let entry = cur
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        match entry {
            toml::Value::Table(t) => cur = t,
            _ => return,
        }
    }
    cur.insert(last.clone(), value);
}

/// Environment values are TOML scalars when they parse as one, else strings.
fn parse_env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if let Ok(f) = raw.parse::<f64>() {
        if raw.contains('.') {
            return toml::Value::Float(f);
        }
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_string()),
    }
}

/// A provider's name becomes a route segment; its issuer is where the host sends
/// client credentials, so it must be TLS unless it is this machine.
fn check_oidc_provider(name: &str, p: &OidcProviderConfig) -> Result<()> {
    let env = name.to_uppercase();
    if name.is_empty()
        || name.len() > 32
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        bail!("oidc.{name}: a provider name is 1-32 characters of a-z, 0-9, _ and -");
    }
    let issuer = url::Url::parse(&p.issuer).with_context(|| {
        format!(
            "oidc.{name}.issuer = {:?} is not a URL (KIRANA_OIDC_{env}_ISSUER)",
            p.issuer
        )
    })?;
    let loopback = match issuer.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if issuer.scheme() != "https" && !(issuer.scheme() == "http" && loopback) {
        bail!(
            "oidc.{name}.issuer = {:?} must be https:// (plain http only on a loopback address) (KIRANA_OIDC_{env}_ISSUER)",
            p.issuer
        );
    }
    if p.client_id.trim().is_empty() {
        bail!("oidc.{name}.client_id is empty: set the client id the provider gave you (KIRANA_OIDC_{env}_CLIENT_ID)");
    }
    Ok(())
}

/// `mail.smtp_url` is a URL lettre can use (`smtp://` or `smtps://`).
pub fn check_smtp_url(url: &str) -> Result<()> {
    if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
        bail!("must start with smtp:// or smtps://");
    }
    lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load() {
        let c = Config::load_with_env(None, &[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.limits.memory_mb, 64);
        assert!(c.plugins.contains_key("catalog"));
        assert!(!c.uses_postgres());
    }

    #[test]
    fn push_subject_defaults_to_the_admin_email() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let c =
            Config::load_with_env(None, &env(&[("KIRANA_ADMIN_EMAIL", "boss@shop.in")])).unwrap();
        assert_eq!(c.push_subject(), "mailto:boss@shop.in");
        let c = Config::load_with_env(
            None,
            &env(&[("KIRANA_PUSH_SUBJECT", "https://shop.in/contact")]),
        )
        .unwrap();
        assert_eq!(c.push_subject(), "https://shop.in/contact");
        assert!(!c.push.allow_insecure_endpoints);
        let err = Config::load_with_env(None, &env(&[("KIRANA_PUSH_SUBJECT", "boss@shop.in")]))
            .unwrap_err();
        assert!(err.to_string().contains("push.subject"), "{err}");
    }

    #[test]
    fn env_overrides_sections_and_aliases() {
        let c = Config::load_with_env(
            None,
            &env(&[
                ("KIRANA_LISTEN", "0.0.0.0:9000"),
                ("KIRANA_LIMITS_TIMEOUT_MS", "250"),
                ("KIRANA_CART_DELIVERY_FEE", "3000"),
                ("KIRANA_ADMIN_EMAIL", "boss@shop.in"),
                ("KIRANA_PLUGINS_CART_INSTANCES", "fresh"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.limits.timeout_ms, 250);
        assert_eq!(c.plugins["cart"].instances, InstanceMode::Fresh);
        let cart = c.plugin_settings("cart");
        assert!(cart.contains(&("delivery_fee".into(), "3000".into())));
        let auth = c.plugin_settings("auth");
        assert!(auth.contains(&("admin_email".into(), "boss@shop.in".into())));
    }

    #[test]
    fn file_merges_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(
            &path,
            "[limits]\ntimeout_ms = 100\n[cart]\ndelivery_fee = 1\n",
        )
        .unwrap();
        let c = Config::load_with_env(Some(&path), &[]).unwrap();
        assert_eq!(c.limits.timeout_ms, 100);
        assert_eq!(c.limits.memory_mb, 64, "untouched keys keep their defaults");
        assert!(c
            .plugin_settings("cart")
            .contains(&("free_delivery_threshold".into(), "19900".into())));
    }

    fn serve_env<'a>(over: &[(&'a str, &'a str)]) -> Vec<(String, String)> {
        let mut all = vec![
            (
                "KIRANA_ADMIN_OPERATOR_TOKEN",
                "operator-token-of-this-shop-0123",
            ),
            ("KIRANA_ADMIN_PASSWORD", "a-real-admin-password"),
            ("KIRANA_PAYMENTS_KEY_SECRET", "live-key-secret-0123"),
            ("KIRANA_PAYMENTS_WEBHOOK_SECRET", "live-webhook-secret-0123"),
        ];
        for (k, v) in over {
            all.retain(|(a, _)| a != k);
            all.push((k, v));
        }
        env(&all)
    }

    #[test]
    fn production_needs_every_secret_set_and_unpublished() {
        let ok = Config::load_with_env(None, &serve_env(&[])).unwrap();
        assert!(!ok.dev);
        ok.check_secrets().unwrap();

        let shipped = Config::load_with_env(None, &[]).unwrap();
        let err = shipped.check_secrets().unwrap_err().to_string();
        assert!(
            err.contains("admin.operator_token") && err.contains("KIRANA_ADMIN_OPERATOR_TOKEN"),
            "{err}"
        );

        let cases = [
            ("KIRANA_ADMIN_PASSWORD", "kirana-admin-123", "published"),
            ("KIRANA_ADMIN_PASSWORD", "", "KIRANA_ADMIN_PASSWORD"),
            (
                "KIRANA_PAYMENTS_KEY_SECRET",
                "kirana_sandbox_key_secret",
                "published",
            ),
            (
                "KIRANA_PAYMENTS_WEBHOOK_SECRET",
                "kirana_sandbox_webhook_secret",
                "published",
            ),
            ("KIRANA_PAYMENTS_WEBHOOK_SECRET", "short", "shorter"),
        ];
        for (var, value, says) in cases {
            let c = Config::load_with_env(None, &serve_env(&[(var, value)])).unwrap();
            let err = c.check_secrets().unwrap_err().to_string();
            assert!(
                err.contains(says) && err.contains(var),
                "{var}={value}: {err}"
            );
        }
    }

    #[test]
    fn development_mode_fills_published_values_on_loopback_only() {
        let dev = Config::load_with_env(None, &env(&[("KIRANA_DEV", "true")])).unwrap();
        assert!(dev.dev);
        dev.check_secrets().unwrap();
        assert!(dev
            .plugin_settings("payments")
            .contains(&("key_secret".into(), "kirana_sandbox_key_secret".into())));
        // The operator's own values still win over the development ones.
        let own = Config::load_mode(
            None,
            &env(&[("KIRANA_PAYMENTS_KEY_SECRET", "mine-mine-mine-mine")]),
            true,
        )
        .unwrap();
        assert!(own
            .plugin_settings("payments")
            .contains(&("key_secret".into(), "mine-mine-mine-mine".into())));
        // Not in production: the development values never fill in.
        let prod = Config::load_with_env(None, &[]).unwrap();
        assert!(prod
            .plugin_settings("payments")
            .contains(&("key_secret".into(), String::new())));
        let err = Config::load_mode(None, &env(&[("KIRANA_LISTEN", "0.0.0.0:8080")]), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("loopback"), "{err}");
        assert!(
            Config::load_mode(None, &env(&[("KIRANA_LISTEN", "localhost:9000")]), true).is_ok()
        );
        assert!(Config::load_mode(None, &env(&[("KIRANA_LISTEN", "[::1]:9000")]), true).is_ok());
    }

    #[test]
    fn development_operator_token_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().display().to_string();
        let mut c =
            Config::load_mode(None, &env(&[("KIRANA_DATA_DIR", data.as_str())]), true).unwrap();
        let path = c.ensure_development_operator_token().unwrap().unwrap();
        let first = c.admin.operator_token.clone();
        assert!(first.len() >= MIN_OPERATOR_TOKEN_CHARS);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read it: {mode:o}");
        }
        let mut again =
            Config::load_mode(None, &env(&[("KIRANA_DATA_DIR", data.as_str())]), true).unwrap();
        again.ensure_development_operator_token().unwrap();
        assert_eq!(again.admin.operator_token, first);
        // Production never makes one.
        let mut prod =
            Config::load_with_env(None, &env(&[("KIRANA_DATA_DIR", data.as_str())])).unwrap();
        assert_eq!(prod.ensure_development_operator_token().unwrap(), None);
        assert!(prod.admin.operator_token.is_empty());
    }

    #[test]
    fn a_config_file_cannot_drop_a_required_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(&path, "[secrets]\nrequired = []\n").unwrap();
        let c = Config::load_with_env(Some(&path), &[]).unwrap();
        let err = c.check_secrets().unwrap_err().to_string();
        assert!(err.contains("admin.operator_token is not set"), "{err}");
        // Development mode refuses to sit behind a proxy.
        std::fs::write(&path, "[rate_limit]\ntrusted_proxies = [\"127.0.0.1\"]\n").unwrap();
        let err = Config::load_mode(Some(&path), &[], true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("proxy"), "{err}");
    }

    #[test]
    fn a_short_operator_token_is_refused() {
        let err = Config::load_with_env(None, &env(&[("KIRANA_ADMIN_OPERATOR_TOKEN", "short")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("operator_token"), "{err}");
    }

    #[test]
    fn a_redis_url_that_is_not_one_is_refused_naming_the_setting() {
        for bad in ["127.0.0.1:6379", "http://cache:6379", "redis"] {
            let err = Config::load_with_env(None, &env(&[("KIRANA_REDIS_URL", bad)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("redis_url") && err.contains("KIRANA_REDIS_URL"),
                "{err}"
            );
            assert!(
                !err.contains(bad) || bad == "redis",
                "the value may hold a password: {err}"
            );
        }
        let ok = Config::load_with_env(
            None,
            &env(&[("KIRANA_REDIS_URL", "redis://:pw@cache:6379/2")]),
        );
        assert!(ok.is_ok(), "{:?}", ok.err());
    }

    #[test]
    fn oidc_providers_come_from_the_environment_and_are_checked() {
        let c = Config::load_with_env(
            None,
            &env(&[
                ("KIRANA_OIDC_GOOGLE_ISSUER", "https://accounts.google.com"),
                ("KIRANA_OIDC_GOOGLE_CLIENT_ID", "1234"),
                ("KIRANA_OIDC_GOOGLE_CLIENT_SECRET", "shh"),
                ("KIRANA_OIDC_MY_IDP_ISSUER", "http://127.0.0.1:9400"),
                ("KIRANA_OIDC_MY_IDP_CLIENT_ID", "kirana"),
                ("KIRANA_PUBLIC_URL", "https://shop.example"),
            ]),
        )
        .unwrap();
        assert_eq!(c.public_url, "https://shop.example");
        let google = &c.oidc["google"];
        assert_eq!(google.issuer, "https://accounts.google.com");
        assert_eq!(google.client_id, "1234", "a numeric id stays text");
        assert_eq!(google.client_secret, "shh");
        assert_eq!(c.oidc["my_idp"].client_secret, "");

        for (vars, needle) in [
            (
                vec![
                    ("KIRANA_OIDC_X_ISSUER", "http://idp.example"),
                    ("KIRANA_OIDC_X_CLIENT_ID", "a"),
                ],
                "https://",
            ),
            (
                vec![("KIRANA_OIDC_X_ISSUER", "https://idp.example")],
                "client_id",
            ),
            (
                vec![("KIRANA_PUBLIC_URL", "https://shop.example/")],
                "public_url",
            ),
            (vec![("KIRANA_PUBLIC_URL", "shop.example")], "public_url"),
            (
                vec![
                    ("KIRANA_OIDC_X_ISSUER", "https://idp.example"),
                    ("KIRANA_OIDC_X_CLIENT_ID", "a"),
                ],
                "public_url is empty",
            ),
        ] {
            let err = Config::load_with_env(None, &env(&vars)).unwrap_err();
            assert!(format!("{err:#}").contains(needle), "{vars:?}: {err:#}");
        }
        // On loopback (development) the request's host is this machine's: allowed.
        let local = env(&[
            ("KIRANA_OIDC_X_ISSUER", "http://127.0.0.1:9400"),
            ("KIRANA_OIDC_X_CLIENT_ID", "a"),
        ]);
        assert!(Config::load_mode(None, &local, true).is_ok());
    }

    #[test]
    fn a_private_smtp_ca_is_checked_at_start() {
        let ca = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/smtp-tls/ca.pem"
        );
        let key = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/smtp-tls/server.key"
        );
        let load = |url: &str, file: &str| {
            Config::load_with_env(
                None,
                &env(&[
                    ("KIRANA_MAIL_SMTP_URL", url),
                    ("KIRANA_MAIL_TLS_CA_FILE", file),
                ]),
            )
            .map_err(|e| format!("{e:#}"))
        };
        for url in [
            "smtp://relay:587?tls=required",
            "smtp://relay?tls=opportunistic",
            "smtps://relay:465",
        ] {
            let c = load(url, ca).expect("a TLS URL with a CA file");
            assert!(c.mail.tls_ca().expect("the CA reads").is_some());
        }
        // A plain URL would never use the CA: the operator meant TLS.
        let err = load("smtp://relay:25", ca).unwrap_err();
        assert!(
            err.contains("mail.tls_ca_file") && err.contains("tls=required"),
            "{err}"
        );
        let err = load("smtp://relay:587?tls=required", "/nonexistent/ca.pem").unwrap_err();
        assert!(
            err.contains("mail.tls_ca_file") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );
        // A PEM file without a certificate (here a private key) is not a CA.
        let err = load("smtp://relay:587?tls=required", key).unwrap_err();
        assert!(
            err.contains("mail.tls_ca_file") && err.contains("no PEM certificate"),
            "{err}"
        );
        // Unset: public roots only.
        let c = load("smtp://relay:587?tls=required", "").expect("no CA file");
        assert!(c.mail.tls_ca().expect("nothing to read").is_none());
    }

    #[test]
    fn bad_values_are_refused_with_context() {
        let err =
            Config::load_with_env(None, &env(&[("KIRANA_LIMITS_TIMEOUT_MS", "soon")])).unwrap_err();
        assert!(format!("{err:#}").contains("timeout_ms"), "{err:#}");
    }
}

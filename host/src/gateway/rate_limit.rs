//! Request rate limits: a sliding one-minute window per authenticated user, else per
//! client IP, with a stricter per-IP budget for `/api/v1/auth/*`.
//!
//! The window is exact (a log of the hits inside the last minute per key), so a burst at
//! the end of one minute cannot be followed by a full budget at the start of the next.
//! The backend is a trait: the in-process log ([`MemoryRateLimiter`]) for one replica,
//! or [`RedisRateLimiter`], one budget per key across every replica, counted atomically
//! in Redis. When Redis cannot be asked, `rate_limit.on_backend_error` decides.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;
use prometheus_client::metrics::counter::Counter;

use crate::cluster::redis::Redis;
use crate::config::{FailMode, RateLimitConfig};

/// The window every budget is counted over.
pub const WINDOW: Duration = Duration::from_secs(60);

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the oldest hit in the window leaves it (a slot frees up).
    pub reset_secs: u64,
    /// The shared limiter could not be asked; `allowed` is the configured fail mode.
    pub uncounted: bool,
}

/// Where hits are counted.
#[async_trait]
pub trait RateLimitBackend: Send + Sync {
    /// Records a hit for `key` if it fits in `limit` per [`WINDOW`]; an error when the
    /// count could not be asked.
    async fn hit(&self, key: &str, limit: u32) -> Result<Decision, String>;
    /// Forgets keys with no hit inside the window; returns how many.
    fn sweep(&self) -> usize;
}

/// The in-process backend: one log of hit times per key.
#[derive(Default)]
pub struct MemoryRateLimiter {
    keys: DashMap<String, Mutex<VecDeque<Instant>>>,
}

impl MemoryRateLimiter {
    fn hit_at(&self, key: &str, limit: u32, now: Instant) -> Decision {
        let entry = self.keys.entry(key.to_string()).or_default();
        let Ok(mut log) = entry.lock() else {
            // A poisoned log only loses counting; never refuse service for it.
            return Decision {
                allowed: true,
                limit,
                remaining: limit,
                reset_secs: 0,
                uncounted: false,
            };
        };
        while log
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            log.pop_front();
        }
        let used = u32::try_from(log.len()).unwrap_or(u32::MAX);
        let allowed = used < limit;
        if allowed {
            log.push_back(now);
        }
        let used = u32::try_from(log.len()).unwrap_or(u32::MAX);
        let reset_secs = log
            .front()
            .map(|t| {
                (WINDOW.saturating_sub(now.duration_since(*t)))
                    .as_secs_f64()
                    .ceil() as u64
            })
            .unwrap_or(0)
            .max(u64::from(!allowed));
        Decision {
            allowed,
            limit,
            remaining: limit.saturating_sub(used),
            reset_secs,
            uncounted: false,
        }
    }
}

#[async_trait]
impl RateLimitBackend for MemoryRateLimiter {
    async fn hit(&self, key: &str, limit: u32) -> Result<Decision, String> {
        Ok(self.hit_at(key, limit, Instant::now()))
    }

    fn sweep(&self) -> usize {
        let now = Instant::now();
        let before = self.keys.len();
        self.keys.retain(|_, log| {
            log.get_mut()
                .map(|l| l.back().is_some_and(|t| now.duration_since(*t) < WINDOW))
                .unwrap_or(false)
        });
        before - self.keys.len()
    }
}

/// `KEYS[1]` the key's sorted set of hit times; `ARGV`: window ms, limit, a unique
/// member. Uses the Redis server's clock, so replicas with skewed clocks agree.
static SLIDING: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
local allowed = 0
if used < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  used = used + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], window)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local left = 0
if oldest[2] then left = tonumber(oldest[2]) + window - now end
return {allowed, used, left}
",
    )
});

/// One budget per key for the whole cluster, in Redis.
pub struct RedisRateLimiter {
    redis: Redis,
}

impl RedisRateLimiter {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }
}

#[async_trait]
impl RateLimitBackend for RedisRateLimiter {
    async fn hit(&self, key: &str, limit: u32) -> Result<Decision, String> {
        // Redis down: fail at once (the caller then lets the request through or not).
        let Some(mut c) = self.redis.conn_if_up() else {
            return Err("Redis is down".into());
        };
        let member = uuid::Uuid::new_v4().simple().to_string();
        let (allowed, used, left_ms): (i64, i64, i64) = SLIDING
            .key(format!("kirana:rate:{key}"))
            .arg(WINDOW.as_millis() as u64)
            .arg(limit)
            .arg(member)
            .invoke_async(&mut c)
            .await
            .map_err(|e| {
                self.redis.failed("rate limit", &e);
                e.to_string()
            })?;
        let allowed = allowed == 1;
        let used = u32::try_from(used.max(0)).unwrap_or(u32::MAX);
        let reset_secs = (left_ms.max(0) as u64)
            .div_ceil(1000)
            .max(u64::from(!allowed));
        Ok(Decision {
            allowed,
            limit,
            remaining: limit.saturating_sub(used),
            reset_secs,
            uncounted: false,
        })
    }

    fn sweep(&self) -> usize {
        0 // keys expire in Redis
    }
}

/// The limiter the gateway asks, with the configured budgets.
pub struct RateLimiter {
    config: RateLimitConfig,
    trusted: Vec<IpAddr>,
    backend: Box<dyn RateLimitBackend>,
    /// `kirana_rate_limit_unchecked_total` by `open`/`closed`.
    unchecked: [Counter; 2],
    /// When the last "cannot count" warning was logged (one a minute at most).
    warned: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig, backend: Box<dyn RateLimitBackend>) -> Self {
        Self::with_metrics(config, backend, [Counter::default(), Counter::default()])
    }

    /// `unchecked`: the counters for requests let through / refused uncounted.
    pub fn with_metrics(
        config: RateLimitConfig,
        backend: Box<dyn RateLimitBackend>,
        unchecked: [Counter; 2],
    ) -> Self {
        let trusted = config
            .trusted_proxies
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        Self {
            config,
            trusted,
            backend,
            unchecked,
            warned: Mutex::new(None),
        }
    }

    /// Paths that are never limited.
    pub fn exempt(path: &str) -> bool {
        matches!(path, "/health" | "/ready" | "/metrics")
    }

    /// Decides for a request to `path` from `ip`, by `user` when authenticated; `file`
    /// when it is a `GET` of a route that answers a file (its own, larger budget).
    /// `None` when limits are off or the path is exempt.
    pub async fn check(
        &self,
        path: &str,
        ip: IpAddr,
        user: Option<&str>,
        file: bool,
    ) -> Option<Decision> {
        if !self.config.enabled || Self::exempt(path) {
            return None;
        }
        let (key, limit) = if path == "/admin" || path.starts_with("/admin/") {
            // The operator API is keyed by address whatever the token: it is where an
            // operator token would be guessed.
            (format!("admin-ip:{ip}"), self.config.admin_per_minute)
        } else if path.starts_with("/api/v1/auth/") {
            (format!("auth-ip:{ip}"), self.config.auth_per_minute)
        } else if file {
            match user {
                Some(u) => (format!("files-user:{u}"), self.config.files_per_minute),
                None => (format!("files-ip:{ip}"), self.config.files_per_minute),
            }
        } else {
            match user {
                Some(u) => (format!("user:{u}"), self.config.per_minute),
                None => (format!("ip:{ip}"), self.config.per_minute),
            }
        };
        match self.backend.hit(&key, limit).await {
            Ok(d) => Some(d),
            Err(e) => Some(self.uncounted(limit, &e)),
        }
    }

    /// What a request gets when its hit could not be counted.
    fn uncounted(&self, limit: u32, error: &str) -> Decision {
        let open = self.config.on_backend_error == FailMode::Open;
        self.unchecked[usize::from(!open)].inc();
        if let Ok(mut last) = self.warned.lock() {
            if last.is_none_or(|t| t.elapsed() >= WINDOW) {
                *last = Some(Instant::now());
                tracing::warn!(
                    error,
                    letting_through = open,
                    "the shared rate limiter cannot be asked (rate_limit.on_backend_error decides)"
                );
            }
        }
        Decision {
            allowed: open,
            limit,
            remaining: if open { limit } else { 0 },
            reset_secs: if open { 0 } else { 1 },
            uncounted: true,
        }
    }

    /// The client's address: the socket's, unless it is a trusted proxy, in which case
    /// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy, reading
    /// every header line in order (a proxy may append a line instead of extending one).
    /// An entry that is not an address ends the walk at the last trusted hop: what lies
    /// left of it was written by someone the proxies did not vouch for.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        if !self.trusted.contains(&peer) {
            return peer;
        }
        let lines: Vec<&str> = forwarded_for.into_iter().collect();
        let mut hop = peer;
        for entry in lines.iter().rev().flat_map(|l| l.rsplit(',')) {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) if self.trusted.contains(&ip) => hop = ip,
                Ok(ip) => return ip,
                Err(_) => return hop,
            }
        }
        hop
    }

    pub fn sweep(&self) -> usize {
        self.backend.sweep()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(per_minute: u32, auth: u32, trusted: &[&str]) -> RateLimitConfig {
        RateLimitConfig {
            enabled: true,
            per_minute,
            auth_per_minute: auth,
            admin_per_minute: auth,
            files_per_minute: per_minute * 10,
            trusted_proxies: trusted.iter().map(|s| s.to_string()).collect(),
            on_backend_error: FailMode::Open,
        }
    }

    #[test]
    fn the_window_slides() {
        let l = MemoryRateLimiter::default();
        let t0 = Instant::now();
        for i in 0..3 {
            let d = l.hit_at("k", 3, t0 + Duration::from_secs(i * 10));
            assert!(d.allowed);
            assert_eq!(d.remaining, 2 - i as u32);
        }
        let d = l.hit_at("k", 3, t0 + Duration::from_secs(30));
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.reset_secs, 30, "the first hit leaves the window at t0+60");
        // At t0+60 the first hit has left the window: one slot again.
        assert!(l.hit_at("k", 3, t0 + Duration::from_secs(60)).allowed);
        assert!(!l.hit_at("k", 3, t0 + Duration::from_secs(61)).allowed);
    }

    #[tokio::test]
    async fn keys_by_user_then_ip_and_auth_paths_by_ip() {
        let rl = RateLimiter::new(config(2, 1, &[]), Box::<MemoryRateLimiter>::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(
            rl.check("/api/v1/cart", ip, Some("u1"), false)
                .await
                .unwrap()
                .allowed
        );
        assert!(
            rl.check("/api/v1/cart", ip, Some("u1"), false)
                .await
                .unwrap()
                .allowed
        );
        assert!(
            !rl.check("/api/v1/cart", ip, Some("u1"), false)
                .await
                .unwrap()
                .allowed
        );
        assert!(
            rl.check("/api/v1/cart", ip, Some("u2"), false)
                .await
                .unwrap()
                .allowed,
            "another user has their own budget"
        );
        assert!(
            rl.check("/api/v1/products", ip, None, false)
                .await
                .unwrap()
                .allowed,
            "anonymous counts per IP"
        );
        assert!(
            rl.check("/api/v1/auth/login", ip, None, false)
                .await
                .unwrap()
                .allowed
        );
        assert!(
            !rl.check("/api/v1/auth/login", ip, Some("u3"), false)
                .await
                .unwrap()
                .allowed,
            "auth is per IP"
        );
        assert!(rl.check("/health", ip, None, false).await.is_none());
    }

    #[tokio::test]
    async fn files_have_their_own_budget() {
        let rl = RateLimiter::new(config(2, 1, &[]), Box::<MemoryRateLimiter>::default());
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        let allowed = |d: Option<Decision>| d.is_some_and(|d| d.allowed);
        for _ in 0..2 {
            assert!(allowed(rl.check("/api/v1/products", ip, None, false).await));
        }
        assert!(!allowed(
            rl.check("/api/v1/products", ip, None, false).await
        ));
        // The API budget is spent; the page's files still load, up to their own limit.
        for _ in 0..20 {
            assert!(allowed(rl.check("/static/app.js", ip, None, true).await));
        }
        let over = rl.check("/static/app.js", ip, None, true).await.unwrap();
        assert!(!over.allowed);
        assert_eq!(over.limit, 20);
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let rl = RateLimiter::new(
            config(1, 1, &["127.0.0.1"]),
            Box::<MemoryRateLimiter>::default(),
        );
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "192.0.2.9".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            rl.client_ip(proxy, ["203.0.113.5, 127.0.0.1"]),
            ip("203.0.113.5")
        );
        assert_eq!(
            rl.client_ip(other, ["203.0.113.5"]),
            other,
            "untrusted peers cannot pick their address"
        );
        assert_eq!(rl.client_ip(proxy, ["garbage"]), proxy);
        assert_eq!(rl.client_ip(proxy, Vec::<&str>::new()), proxy);
        // Every header line counts, the last one nearest: a client's own first line
        // cannot hide the address the proxy appended on a second line.
        assert_eq!(
            rl.client_ip(proxy, ["198.51.100.1", "203.0.113.7"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            rl.client_ip(proxy, ["198.51.100.1, 203.0.113.8", "127.0.0.1"]),
            ip("203.0.113.8")
        );
        // Garbage right of a real address stops the walk: the spoofed left part is not
        // taken.
        assert_eq!(rl.client_ip(proxy, ["198.51.100.1, junk"]), proxy);
    }
}

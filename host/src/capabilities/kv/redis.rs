//! The KV backend every replica shares: one Redis, each plugin's keys under
//! `kirana:kv:<plugin>:` (plugin names never hold a `:`, so spaces cannot overlap).
//! Increments and compare-and-swap run as Lua scripts, atomically in Redis. When Redis
//! cannot be reached a call fails with `unavailable`, which the plugin can handle.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, ErrorKind, Script};

use super::{KvBackend, MAX_SCAN, MAX_TTL};
use crate::bindings::wit;
use crate::cluster::redis::Redis;

pub struct RedisKv {
    redis: Redis,
}

impl RedisKv {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    /// The connection, or at once `unavailable` while Redis is down (a plugin that
    /// only caches in KV, the cart, would otherwise wait a second per call).
    fn conn(&self) -> Result<redis::aio::ConnectionManager, wit::Error> {
        self.redis.conn_if_up().ok_or_else(|| {
            wit::Error::Unavailable("the shared KV store (Redis) is down; retry later".into())
        })
    }

    fn err(&self, what: &str, e: redis::RedisError) -> wit::Error {
        if e.kind() == ErrorKind::Server(redis::ServerErrorKind::ResponseError)
            || e.kind() == ErrorKind::UnexpectedReturnType
        {
            // The script's own refusals: not an integer, overflow.
            return wit::Error::Invalid(format!("kv {what}: {}", e.detail().unwrap_or("refused")));
        }
        self.redis.failed(what, &e);
        wit::Error::Unavailable(format!(
            "the shared KV store (Redis) did not answer {what}: {e}; retry later"
        ))
    }
}

fn full_key(ns: &str, key: &str) -> String {
    format!("kirana:kv:{ns}:{key}")
}

/// A TTL Redis accepts: at least 1 ms, at most [`MAX_TTL`].
fn ttl_arg(ttl_ms: Option<u64>) -> String {
    match ttl_ms {
        Some(ms) => ms.clamp(1, MAX_TTL.as_millis() as u64).to_string(),
        None => String::new(),
    }
}

/// `KEYS[1]` the key; `ARGV[1]` delta, `ARGV[2]` TTL for a new key ("" = none).
static INCR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local existed = redis.call('EXISTS', KEYS[1])
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if existed == 0 and ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n
",
    )
});

/// `KEYS[1]` the key; `ARGV`: expected present ('1'/'0'), expected, new present,
/// new, TTL ("" = none).
static CAS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur ~= ARGV[2] then return 0 end
elseif cur then
  return 0
end
if ARGV[3] == '1' then
  if ARGV[5] ~= '' then
    redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
  else
    redis.call('SET', KEYS[1], ARGV[4])
  end
else
  redis.call('DEL', KEYS[1])
end
return 1
",
    )
});

/// `KEYS[1]` the key; `ARGV`: the revision as 16 hex digits, the value, TTL ("" =
/// none). The rule is [`super::Revisioned::replaces`]'s.
static PUT_REVISION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
if cur then
  local held = string.sub(cur, 1, 16)
  if held > ARGV[1] then return 0 end
  if held == ARGV[1] and (#cur > 16 or #ARGV[2] == 0) then return 0 end
end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[1], ARGV[1] .. ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[1] .. ARGV[2])
end
return 1
",
    )
});

/// `prefix` with Redis glob characters escaped.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 2);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait]
impl KvBackend for RedisKv {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, wit::Error> {
        let mut c = self.conn()?;
        c.get(full_key(ns, key))
            .await
            .map_err(|e| self.err("get", e))
    }

    async fn get_many(
        &self,
        ns: &str,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, wit::Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn()?;
        let full: Vec<String> = keys.iter().map(|k| full_key(ns, k)).collect();
        redis::cmd("MGET")
            .arg(&full)
            .query_async(&mut c)
            .await
            .map_err(|e| self.err("get-many", e))
    }

    async fn set(
        &self,
        ns: &str,
        key: &str,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), wit::Error> {
        let mut c = self.conn()?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(full_key(ns, key)).arg(value);
        if ttl_ms.is_some() {
            cmd.arg("PX").arg(ttl_arg(ttl_ms));
        }
        cmd.query_async::<()>(&mut c)
            .await
            .map_err(|e| self.err("set", e))
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<bool, wit::Error> {
        let mut c = self.conn()?;
        let n: i64 = c
            .del(full_key(ns, key))
            .await
            .map_err(|e| self.err("delete", e))?;
        Ok(n > 0)
    }

    async fn incr(
        &self,
        ns: &str,
        key: &str,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> Result<i64, wit::Error> {
        let mut c = self.conn()?;
        INCR.key(full_key(ns, key))
            .arg(delta)
            .arg(ttl_arg(ttl_ms))
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.err("incr", e))
    }

    async fn compare_and_swap(
        &self,
        ns: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, wit::Error> {
        let mut c = self.conn()?;
        let swapped: i64 = CAS
            .key(full_key(ns, key))
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or_default())
            .arg(if new.is_some() { "1" } else { "0" })
            .arg(new.unwrap_or_default())
            .arg(ttl_arg(ttl_ms))
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.err("compare-and-swap", e))?;
        Ok(swapped == 1)
    }

    async fn put_revision(
        &self,
        ns: &str,
        key: &str,
        revision: u64,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, wit::Error> {
        let mut c = self.conn()?;
        let wrote: i64 = PUT_REVISION
            .key(full_key(ns, key))
            .arg(format!("{revision:016x}"))
            .arg(value)
            .arg(ttl_arg(ttl_ms))
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.err("put-revision", e))?;
        Ok(wrote == 1)
    }

    /// Walks the plugin's keys with `SCAN` (cost grows with the whole keyspace; the
    /// plugins use scans for operator views, not per request).
    async fn scan(
        &self,
        ns: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<(String, Vec<u8>)>, wit::Error> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX).min(MAX_SCAN);
        let space = full_key(ns, "");
        let pattern = format!("{}*", glob_escape(&full_key(ns, prefix)));
        let mut c = self.conn()?;
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut c)
                .await
                .map_err(|e| self.err("scan", e))?;
            keys.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(wit::Error::Timeout(
                    "kv scan: the shared store holds too many keys to scan in 5 s".into(),
                ));
            }
        }
        keys.sort();
        keys.dedup();
        let mut out = Vec::new();
        for chunk in keys.chunks(500) {
            if out.len() >= limit {
                break;
            }
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(chunk)
                .query_async(&mut c)
                .await
                .map_err(|e| self.err("scan", e))?;
            for (k, v) in chunk.iter().zip(values) {
                if let (Some(v), Some(short)) = (v, k.strip_prefix(&space)) {
                    out.push((short.to_string(), v));
                    if out.len() >= limit {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    /// A real `redis-server` on a free port for one test, killed when dropped.
    struct Server(std::process::Child, u16);

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    async fn server() -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Server(child, port)
    }

    #[tokio::test]
    async fn behaves_like_the_embedded_store_and_fails_cleanly_without_redis() {
        let mut srv = server().await;
        let redis = Redis::connect(
            &format!("redis://127.0.0.1:{}/0", srv.1),
            &Metrics::default(),
        )
        .await
        .unwrap();
        let kv = RedisKv::new(redis);
        kv.set("a", "k", b"1".to_vec(), None).await.unwrap();
        assert_eq!(
            kv.get("b", "k").await.unwrap(),
            None,
            "plugins have separate spaces"
        );
        assert_eq!(kv.incr("a", "k", 4, None).await.unwrap(), 5);
        kv.set("a", "word", b"x".to_vec(), None).await.unwrap();
        assert!(matches!(
            kv.incr("a", "word", 1, None).await,
            Err(wit::Error::Invalid(_))
        ));
        // A new counter takes the TTL; it expires.
        assert_eq!(kv.incr("a", "n", 1, Some(50)).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(kv.get("a", "n").await.unwrap(), None);
        // Compare-and-swap: absent → set, wrong expectation → no, delete.
        assert!(kv
            .compare_and_swap("a", "c", None, Some(b"1".to_vec()), None)
            .await
            .unwrap());
        assert!(!kv
            .compare_and_swap("a", "c", None, Some(b"2".to_vec()), None)
            .await
            .unwrap());
        assert!(kv
            .compare_and_swap("a", "c", Some(b"1".to_vec()), None, None)
            .await
            .unwrap());
        assert_eq!(kv.get("a", "c").await.unwrap(), None);
        // Scans are ordered, limited, and a glob in the prefix is literal.
        for k in ["p:2", "p:1", "p:3", "p*x", "q:1"] {
            kv.set("a", k, k.as_bytes().to_vec(), None).await.unwrap();
        }
        let keys: Vec<String> = kv
            .scan("a", "p:", 2)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["p:1", "p:2"]);
        super::super::check_put_revision(&kv).await;
        let many = ["p:1", "nope", "q:1"].map(String::from);
        assert_eq!(
            kv.get_many("a", &many).await.unwrap(),
            vec![Some(b"p:1".to_vec()), None, Some(b"q:1".to_vec())]
        );
        assert_eq!(
            kv.get_many("a", &["p:2".to_string()]).await.unwrap(),
            vec![Some(b"p:2".to_vec())]
        );
        assert_eq!(kv.scan("a", "p*", 10).await.unwrap().len(), 1);
        assert!(kv.delete("a", "p:1").await.unwrap());
        assert!(!kv.delete("a", "p:1").await.unwrap());

        // Redis gone: a capability error, not a hang or a panic.
        let _ = srv.0.kill();
        let _ = srv.0.wait();
        assert!(matches!(
            kv.get("a", "k").await,
            Err(wit::Error::Unavailable(_))
        ));
    }

    #[test]
    fn globs_in_a_prefix_are_literal() {
        assert_eq!(glob_escape("a*b?[c]"), r"a\*b\?\[c\]");
        assert_eq!(ttl_arg(Some(0)), "1");
        assert_eq!(ttl_arg(None), "");
    }
}

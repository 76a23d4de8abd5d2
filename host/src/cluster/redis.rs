//! The shared Redis: one multiplexed connection that reconnects by itself (the `redis`
//! crate's connection manager), a health flag a pinger keeps fresh, and the change feed
//! over pub/sub.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;

use super::feed::{next_batch, Core, Message, Networked};
use crate::metrics::{BackendLabels, Metrics};

/// The pub/sub channel every replica listens on.
pub const FEED_CHANNEL: &str = "kirana:feed";
/// How long one Redis command may take before it counts as failed.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1000);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// How often the pinger checks the connection (and how fast `/ready` notices).
const PING_EVERY: Duration = Duration::from_millis(500);

/// A handle on the shared Redis; cheap to clone.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    conn: ConnectionManager,
    up: Arc<AtomicBool>,
    errors: Counter,
}

impl Redis {
    /// Parses `url` and starts connecting. Redis being down is not an error (the host
    /// starts degraded); a malformed URL is.
    pub async fn connect(url: &str, metrics: &Metrics) -> Result<Self> {
        let client = redis::Client::open(url).with_context(|| {
            format!(
                "redis_url {:?} is not a Redis URL (KIRANA_REDIS_URL; e.g. redis://127.0.0.1:6379/0, or empty for no Redis)",
                redact(url)
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = client
            .get_connection_manager_lazy(config)
            .context("setting up the Redis connection (redis_url)")?;
        let up_gauge = metrics.redis_up.clone();
        let redis = Self {
            client,
            conn,
            up: Arc::new(AtomicBool::new(false)),
            errors: metrics
                .backend_errors
                .get_or_create(&BackendLabels {
                    backend: "redis".into(),
                })
                .clone(),
        };
        // One check before serving, so `/ready` is right from the first request.
        redis.check(&up_gauge).await;
        if !redis.is_up() {
            tracing::warn!(
                redis = %redact(url),
                "Redis is not reachable; starting degraded and reconnecting"
            );
        }
        let pinger = redis.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PING_EVERY).await;
                pinger.check(&up_gauge).await;
                if Arc::strong_count(&pinger.up) == 1 {
                    return; // the host went away
                }
            }
        });
        Ok(redis)
    }

    async fn check(&self, gauge: &Gauge) {
        let mut conn = self.conn.clone();
        let ok = tokio::time::timeout(
            RESPONSE_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        let was = self.up.swap(ok, Ordering::SeqCst);
        gauge.set(i64::from(ok));
        if was && !ok {
            tracing::warn!("Redis stopped answering; reconnecting");
        } else if !was && ok {
            tracing::info!("Redis is reachable");
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// A connection for one command or pipeline (shares the one multiplexed socket).
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// [`Redis::conn`], or `None` at once while the pinger finds Redis down: a command
    /// would otherwise wait out its timeout (a second) on every request of an outage.
    pub fn conn_if_up(&self) -> Option<ConnectionManager> {
        self.is_up().then(|| self.conn.clone())
    }

    /// Counts a failed command (`kirana_backend_errors_total{backend="redis"}`).
    pub fn failed(&self, what: &str, e: &redis::RedisError) {
        self.errors.inc();
        tracing::debug!(error = %e, "redis {what} failed");
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_string(),
        },
        None => "<not a URL>".to_string(),
    }
}

/// The change feed over Redis pub/sub.
/// Starts the change feed over Redis pub/sub.
pub struct RedisFeed;

impl RedisFeed {
    /// Starts the sender and the listener; the listener reconnects forever.
    pub fn start(redis: &Redis, replica: String) -> Networked {
        let (core, rx) = Core::new(replica);
        let core = Arc::new(core);
        tokio::spawn(send(redis.clone(), rx));
        tokio::spawn(listen(redis.client.clone(), core.clone()));
        Networked::new(core, "redis")
    }
}

async fn send(redis: Redis, mut rx: mpsc::Receiver<Message>) {
    while let Some(batch) = next_batch(&mut rx, 256).await {
        let mut pipe = redis::pipe();
        for m in &batch {
            match serde_json::to_string(m) {
                Ok(payload) => {
                    pipe.cmd("PUBLISH").arg(FEED_CHANNEL).arg(payload).ignore();
                }
                Err(e) => tracing::error!(error = %e, "encoding a change-feed message"),
            }
        }
        let mut conn = redis.conn();
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            redis.failed("publish", &e);
            tracing::warn!(error = %e, messages = batch.len(), "change-feed messages not sent to Redis; replicas reconcile when it returns");
        }
    }
}

async fn listen(client: redis::Client, core: Arc<Core>) {
    let mut delay = Duration::from_millis(50);
    loop {
        if core.is_closed() {
            return;
        }
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(FEED_CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, subscribed).await {
            Ok(Ok(pubsub)) => {
                delay = Duration::from_millis(50);
                core.connected();
                let mut messages = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        msg = messages.next() => match msg {
                            Some(msg) => core.receive(msg.get_payload_bytes()),
                            None => break,
                        },
                        _ = core.wait_closed() => return,
                    }
                }
                core.disconnected();
                tracing::warn!("lost the Redis change feed; reconnecting");
            }
            Ok(Err(e)) => {
                core.disconnected();
                tracing::debug!(error = %e, "subscribing to the Redis change feed");
            }
            Err(_) => core.disconnected(),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("redis://:hunter2@db:6379/0"),
            "redis://***@db:6379/0"
        );
        assert_eq!(redact("redis://db:6379"), "redis://db:6379");
        assert_eq!(redact("hunter2"), "<not a URL>");
    }
}

//! The change feed over PostgreSQL's LISTEN/NOTIFY, for replicas that share a
//! PostgreSQL database and no Redis. NOTIFY is delivered only to sessions of the same
//! database, so two shops on one server do not hear each other.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use super::feed::{next_batch, Core, Message, Networked};
use crate::metrics::{BackendLabels, Metrics};
use crate::storage::Db;

/// The NOTIFY channel.
pub const CHANNEL: &str = "kirana_feed";
/// NOTIFY payloads must stay under 8000 bytes; larger messages (a big realtime push)
/// do not travel this feed.
pub const MAX_PAYLOAD: usize = 7900;

/// Starts the change feed over LISTEN/NOTIFY.
pub struct PgFeed;

impl PgFeed {
    pub fn start(url: &str, db: Db, replica: String, metrics: &Metrics) -> Networked {
        let (core, rx) = Core::new(replica);
        let core = Arc::new(core);
        let errors = metrics
            .backend_errors
            .get_or_create(&BackendLabels {
                backend: "postgres_notify".into(),
            })
            .clone();
        tokio::spawn(send(db, rx, errors));
        tokio::spawn(listen(url.to_string(), core.clone()));
        Networked::new(core, "postgres")
    }
}

async fn send(db: Db, mut rx: mpsc::Receiver<Message>, errors: Counter) {
    while let Some(batch) = next_batch(&mut rx, 64).await {
        for m in batch {
            let Ok(payload) = serde_json::to_string(&m) else {
                continue;
            };
            if payload.len() > MAX_PAYLOAD {
                tracing::warn!(
                    channel = ?m.channel,
                    bytes = payload.len(),
                    "change-feed message too large for NOTIFY; other replicas miss it (configure redis_url)"
                );
                continue;
            }
            if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(&db.pool)
                .await
            {
                errors.inc();
                tracing::warn!(error = %e, "change-feed NOTIFY failed; replicas reconcile later");
            }
        }
    }
}

async fn listen(url: String, core: Arc<Core>) {
    let mut delay = Duration::from_millis(50);
    loop {
        if core.is_closed() {
            return;
        }
        let listener = async {
            let mut l = PgListener::connect(&url).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        match tokio::time::timeout(Duration::from_secs(5), listener).await {
            Ok(Ok(mut listener)) => {
                delay = Duration::from_millis(50);
                core.connected();
                loop {
                    tokio::select! {
                        n = listener.try_recv() => match n {
                            Ok(Some(n)) => core.receive(n.payload().as_bytes()),
                            // The connection dropped: reconnect and reconcile.
                            Ok(None) | Err(_) => break,
                        },
                        _ = core.wait_closed() => return,
                    }
                }
                core.disconnected();
                tracing::warn!("lost the PostgreSQL change feed; reconnecting");
            }
            Ok(Err(e)) => {
                core.disconnected();
                tracing::debug!(error = %e, "listening for the PostgreSQL change feed");
            }
            Err(_) => core.disconnected(),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(1000));
    }
}

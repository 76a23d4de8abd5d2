//! The change feed: small messages every replica of a shop hears.
//!
//! A message is a hint, never the truth: the database (sessions, plugin state, the event
//! bus) stays the source, so a lost message costs at most a delay until the next
//! reconciliation, and a replica that reconnects reconciles everything.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A session (`sid:<id>`) or all of a user's sessions (`user:<id>`) were revoked.
    Revoked,
    /// A plugin's registry state changed (body: its name).
    Registry,
    /// A realtime push for a user (body: JSON of user, event and data).
    Realtime,
    /// Work is waiting: `events` on the bus, `mail` in the outbox.
    Wake,
}

/// One message on the feed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// The replica that published it.
    pub origin: String,
    pub channel: Channel,
    pub body: String,
}

/// How replicas hear of each other's changes.
pub trait Feed: Send + Sync {
    /// Tells the other replicas. Never waits on the network: the message is queued and
    /// sent in the background (a failure is logged and counted; the database stays the
    /// truth).
    fn publish(&self, channel: Channel, body: String);
    /// Messages other replicas publish from now on.
    fn subscribe(&self) -> broadcast::Receiver<Message>;
    /// Moves on every (re)connection: messages may have been missed before it, so
    /// whoever keeps derived state reconciles it from the database.
    fn connections(&self) -> watch::Receiver<u64>;
    /// Whether messages flow now (always, for the embedded feed).
    fn healthy(&self) -> bool;
    /// `embedded`, `postgres` or `redis`.
    fn kind(&self) -> &'static str;
}

/// The single-process feed: there is nobody else to tell.
pub struct LocalFeed {
    incoming: broadcast::Sender<Message>,
    connections: watch::Sender<u64>,
}

impl LocalFeed {
    pub fn new(_replica: String) -> Self {
        Self {
            incoming: broadcast::channel(1).0,
            connections: watch::channel(0).0,
        }
    }
}

impl Feed for LocalFeed {
    fn publish(&self, _channel: Channel, _body: String) {}
    fn subscribe(&self) -> broadcast::Receiver<Message> {
        self.incoming.subscribe()
    }
    fn connections(&self) -> watch::Receiver<u64> {
        self.connections.subscribe()
    }
    fn healthy(&self) -> bool {
        true
    }
    fn kind(&self) -> &'static str {
        "embedded"
    }
}

/// Messages buffered for a slow consumer before it misses some (it then reconciles).
const INCOMING: usize = 4096;
/// Messages queued for sending before new ones are dropped (and counted).
const OUTGOING: usize = 8192;

/// What the networked feeds share: the outgoing queue, the incoming fan-out, the
/// connection counter and the health flag.
pub struct Core {
    pub replica: String,
    outgoing: mpsc::Sender<Message>,
    incoming: broadcast::Sender<Message>,
    connections: watch::Sender<u64>,
    up: AtomicBool,
    closed: watch::Sender<bool>,
}

impl Core {
    /// The core and the receiving end of its outgoing queue (for the sender task).
    pub fn new(replica: String) -> (Self, mpsc::Receiver<Message>) {
        let (outgoing, rx) = mpsc::channel(OUTGOING);
        (
            Self {
                replica,
                outgoing,
                incoming: broadcast::channel(INCOMING).0,
                connections: watch::channel(0).0,
                up: AtomicBool::new(false),
                closed: watch::channel(false).0,
            },
            rx,
        )
    }

    /// Queues a message; `false` when the queue is full (the message is dropped).
    pub fn queue(&self, channel: Channel, body: String) -> bool {
        self.outgoing
            .try_send(Message {
                origin: self.replica.clone(),
                channel,
                body,
            })
            .is_ok()
    }

    /// Hands a received payload to the local subscribers, unless it is ours or garbled.
    pub fn receive(&self, payload: &[u8]) {
        let Ok(msg) = serde_json::from_slice::<Message>(payload) else {
            tracing::warn!("ignored a change-feed message that is not one of ours");
            return;
        };
        if msg.origin != self.replica {
            let _ = self.incoming.send(msg);
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Message> {
        self.incoming.subscribe()
    }

    pub fn connections(&self) -> watch::Receiver<u64> {
        self.connections.subscribe()
    }

    /// The feed is listening (again): subscribers reconcile.
    pub fn connected(&self) {
        self.up.store(true, Ordering::SeqCst);
        self.connections.send_modify(|n| *n += 1);
    }

    pub fn disconnected(&self) {
        self.up.store(false, Ordering::SeqCst);
    }

    pub fn healthy(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Tells the listener to stop (the feed is being dropped).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Resolves once [`Core::close`] was called.
    pub async fn wait_closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }
}

/// A feed over the network (PostgreSQL NOTIFY, Redis pub/sub): the shared [`Core`]
/// fed by the backend's own sender and listener tasks.
pub struct Networked {
    core: Arc<Core>,
    kind: &'static str,
}

impl Networked {
    pub fn new(core: Arc<Core>, kind: &'static str) -> Self {
        Self { core, kind }
    }
}

impl Drop for Networked {
    fn drop(&mut self) {
        self.core.close();
    }
}

impl Feed for Networked {
    fn publish(&self, channel: Channel, body: String) {
        if !self.core.queue(channel, body) {
            tracing::warn!(?channel, "change-feed queue full; message dropped");
        }
    }
    fn subscribe(&self) -> broadcast::Receiver<Message> {
        self.core.subscribe()
    }
    fn connections(&self) -> watch::Receiver<u64> {
        self.core.connections()
    }
    fn healthy(&self) -> bool {
        self.core.healthy()
    }
    fn kind(&self) -> &'static str {
        self.kind
    }
}

/// Takes what is queued now, at most `max`, dropping repeated wake-ups (one per kind is
/// enough however many commits asked for it).
pub async fn next_batch(rx: &mut mpsc::Receiver<Message>, max: usize) -> Option<Vec<Message>> {
    let first = rx.recv().await?;
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(m) => batch.push(m),
            Err(_) => break,
        }
    }
    let mut wakes = HashSet::new();
    batch.retain(|m| m.channel != Channel::Wake || wakes.insert(m.body.clone()));
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_ignores_its_own_messages_and_garbage() {
        let (core, _rx) = Core::new("a".into());
        let mut sub = core.subscribe();
        let own = serde_json::to_vec(&Message {
            origin: "a".into(),
            channel: Channel::Registry,
            body: "cart".into(),
        })
        .unwrap();
        let other = serde_json::to_vec(&Message {
            origin: "b".into(),
            channel: Channel::Revoked,
            body: "sid:1".into(),
        })
        .unwrap();
        core.receive(&own);
        core.receive(b"not json");
        core.receive(&other);
        let got = sub.try_recv().unwrap();
        assert_eq!((got.origin.as_str(), got.channel), ("b", Channel::Revoked));
        assert!(sub.try_recv().is_err(), "only the other replica's message");
    }

    #[tokio::test]
    async fn batches_keep_one_wake_per_kind_and_every_other_message() {
        let (core, mut rx) = Core::new("a".into());
        for _ in 0..5 {
            core.queue(Channel::Wake, "events".into());
        }
        core.queue(Channel::Wake, "mail".into());
        core.queue(Channel::Registry, "cart".into());
        core.queue(Channel::Registry, "cart".into());
        let batch = next_batch(&mut rx, 100).await.unwrap();
        let kinds: Vec<(Channel, &str)> =
            batch.iter().map(|m| (m.channel, m.body.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (Channel::Wake, "events"),
                (Channel::Wake, "mail"),
                (Channel::Registry, "cart"),
                (Channel::Registry, "cart"),
            ]
        );
    }

    #[test]
    fn connecting_moves_the_counter_and_health() {
        let (core, _rx) = Core::new("a".into());
        let seen = core.connections();
        assert!(!core.healthy());
        core.connected();
        assert!(core.healthy());
        assert_eq!(*seen.borrow(), 1);
        core.disconnected();
        assert!(!core.healthy());
    }
}

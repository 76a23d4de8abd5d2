//! `kirana:platform/realtime`: pushes to a user's live connections.
//!
//! A [`Hub`] keeps one broadcast channel per user with at least one open connection;
//! `push` hands an event to every connection of that user and to nobody else. The
//! gateway serves the connections as Server-Sent Events (`GET /api/v1/realtime`). With
//! several replicas a push also goes out on the change feed (Redis pub/sub, or NOTIFY
//! for pushes under 7.9 KB on PostgreSQL alone), and every other replica hands it to the
//! connections it holds.

use std::sync::Arc;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::bindings::kirana::platform::realtime::Host;
use crate::bindings::wit;
use crate::capabilities::denied;
use crate::cluster::{Channel, Feed};
use crate::core::View;

/// Largest `data` one push may carry.
pub const MAX_DATA: usize = 64 * 1024;
/// Pushes buffered per user before a slow connection starts missing them.
const BUFFER: usize = 256;

/// One pushed event: the SSE event name and its JSON data (compact, one line).
#[derive(Debug, Clone)]
pub struct Push {
    pub event: String,
    pub data: Arc<str>,
}

/// Live connections by user.
pub struct Hub {
    users: DashMap<String, broadcast::Sender<Push>>,
    closed: watch::Sender<bool>,
    feed: Arc<dyn Feed>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new(Arc::new(
            crate::cluster::feed::LocalFeed::new(String::new()),
        ))
    }
}

/// A push as it travels the feed.
#[derive(Serialize, Deserialize)]
struct Wire {
    user: String,
    event: String,
    data: String,
}

impl Hub {
    pub fn new(feed: Arc<dyn Feed>) -> Self {
        Self {
            users: DashMap::new(),
            closed: watch::channel(false).0,
            feed,
        }
    }

    /// Sends to `user_id`'s connections here and on every other replica.
    pub fn push_everywhere(&self, user_id: &str, push: Push) {
        if let Ok(body) = serde_json::to_string(&Wire {
            user: user_id.to_string(),
            event: push.event.clone(),
            data: push.data.to_string(),
        }) {
            self.feed.publish(Channel::Realtime, body);
        }
        self.push(user_id, push);
    }

    /// A push another replica published: handed to the connections held here.
    pub fn push_from_feed(&self, body: &str) {
        match serde_json::from_str::<Wire>(body) {
            Ok(w) => {
                self.push(
                    &w.user,
                    Push {
                        event: w.event,
                        data: w.data.into(),
                    },
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "ignored a malformed realtime message from the feed")
            }
        }
    }

    /// A new connection of `user_id`: its pushes from now on.
    pub fn subscribe(&self, user_id: &str) -> broadcast::Receiver<Push> {
        self.users
            .entry(user_id.to_string())
            .or_insert_with(|| broadcast::channel(BUFFER).0)
            .subscribe()
    }

    /// Sends to every live connection of `user_id`; returns how many received it.
    pub fn push(&self, user_id: &str, push: Push) -> usize {
        let Some(tx) = self.users.get(user_id).map(|t| t.clone()) else {
            return 0;
        };
        match tx.send(push) {
            Ok(n) => n,
            Err(_) => {
                // Every connection went away: forget the channel unless one came back.
                self.users
                    .remove_if(user_id, |_, tx| tx.receiver_count() == 0);
                0
            }
        }
    }

    /// Open connections in all.
    pub fn connections(&self) -> usize {
        self.users.iter().map(|e| e.receiver_count()).sum()
    }

    /// Drops the channels of users with no connection left.
    pub fn sweep(&self) {
        self.users.retain(|_, tx| tx.receiver_count() > 0);
    }

    /// Ends every stream (graceful shutdown must not wait on endless connections).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Becomes true when the host shuts down.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }
}

/// Checks an event name: 1–64 characters of `[A-Za-z0-9._-]` (it is an SSE field).
fn valid_event(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The push a plugin asked for, or why it is refused.
pub fn make_push(event: &str, data: &[u8]) -> Result<Push, String> {
    if !valid_event(event) {
        return Err(format!(
            "event name {event:?} must be 1 to 64 characters of letters, digits, '.', '_', '-'"
        ));
    }
    if data.len() > MAX_DATA {
        return Err(format!("data is larger than {MAX_DATA} bytes"));
    }
    let value: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("data is not JSON: {e}"))?;
    // Re-serialised compactly: one line, as an SSE data field needs.
    Ok(Push {
        event: event.to_string(),
        data: value.to_string().into(),
    })
}

impl Host for View<'_, Hub> {
    async fn push(
        &mut self,
        user_id: String,
        event: String,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        if !self.plugin.grants.realtime {
            return Ok(Err(denied("realtime", &self.plugin.name)));
        }
        if user_id.is_empty() {
            return Ok(Err(wit::Error::Invalid("user-id is empty".into())));
        }
        Ok(match make_push(&event, &data) {
            Ok(push) => {
                self.state.push_everywhere(&user_id, push);
                Ok(())
            }
            Err(m) => Err(wit::Error::Invalid(m)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pushes_reach_only_their_user() {
        let hub = Hub::default();
        let mut asha = hub.subscribe("asha");
        let mut asha2 = hub.subscribe("asha");
        let mut ravi = hub.subscribe("ravi");
        let push = make_push("order.status_changed", br#"{ "to": "preparing" }"#).unwrap();
        assert_eq!(hub.push("asha", push), 2);
        assert_eq!(
            asha.recv().await.unwrap().data.as_ref(),
            r#"{"to":"preparing"}"#
        );
        assert_eq!(asha2.recv().await.unwrap().event, "order.status_changed");
        assert!(ravi.try_recv().is_err());
        assert_eq!(hub.push("nobody", make_push("x", b"{}").unwrap()), 0);
    }

    #[test]
    fn channels_go_when_connections_go() {
        let hub = Hub::default();
        let rx = hub.subscribe("asha");
        assert_eq!(hub.connections(), 1);
        drop(rx);
        assert_eq!(hub.push("asha", make_push("x", b"1").unwrap()), 0);
        hub.sweep();
        assert_eq!(hub.users.len(), 0);
    }

    #[test]
    fn refuses_bad_pushes() {
        assert!(make_push("has space", b"{}").is_err());
        assert!(make_push("", b"{}").is_err());
        assert!(make_push("ok", b"not json").is_err());
        assert!(make_push("ok", &vec![b' '; MAX_DATA + 1]).is_err());
        assert!(make_push("delivery.location_updated", b"{\"lat\":1}").is_ok());
    }
}

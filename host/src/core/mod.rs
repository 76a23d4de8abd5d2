//! What the capabilities, the runtime and the registry share about one call, and
//! nothing else: the loaded plugin's context, the state of the call in progress, the
//! view a capability gets of a store, and the [`Invoker`] through which a capability
//! reaches another plugin (the registry implements it).

pub mod grants;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use wasmtime::component::ResourceTable;

use crate::bindings::wit;
use crate::config::InstanceMode;
use crate::storage::statements::{Tx, Unit};
use crate::storage::PluginDb;
use grants::Grants;

/// Everything about a loaded plugin version that its capability calls need.
pub struct PluginCtx {
    pub name: String,
    pub version: String,
    pub grants: Grants,
    pub db: PluginDb,
    /// The plugin's own `[name]` section of the configuration.
    pub settings: Vec<(String, String)>,
    pub memory_bytes: usize,
    pub timeout: Duration,
    pub mode: InstanceMode,
    /// Largest request body the gateway hands this plugin.
    pub body_bytes: usize,
    /// Nesting limit for service calls this plugin makes.
    pub max_call_depth: u32,
    /// Fuel per call when the engine meters fuel (none = unlimited).
    pub fuel: Option<u64>,
    /// The read-only assets of this version (`files.read-asset`).
    pub assets: Arc<Assets>,
}

/// One read-only asset shipped with a plugin version (a bundle's `assets/`, see
/// `registry::bundle`), held in memory with that loaded version.
#[derive(Debug, Clone)]
pub struct Asset {
    pub data: Arc<[u8]>,
    /// Lower-case hex SHA-256 of `data` (a ready `ETag`).
    pub sha256: String,
}

/// A version's assets by path.
pub type Assets = std::collections::BTreeMap<String, Asset>;

/// An event published during a call, held until the call succeeds.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub id: String,
    pub topic: String,
    pub payload: String,
    pub source: String,
    pub delay: Duration,
    /// The plugin's innermost open `transaction` when it published: rolling that
    /// back drops the event.
    pub savepoint: Option<u32>,
}

/// A KV write held until the call's writes commit (`kv.incr-after-commit`,
/// `kv.put-revision-after-commit`).
#[derive(Debug, Clone)]
pub struct PendingKv {
    pub key: String,
    pub op: KvAfterCommit,
    pub ttl_ms: Option<u64>,
    /// As for [`PendingEvent::savepoint`].
    pub savepoint: Option<u32>,
}

/// What a [`PendingKv`] does once applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvAfterCommit {
    Incr(i64),
    PutRevision { revision: u64, value: Vec<u8> },
}

impl KvAfterCommit {
    /// Bytes of value it keeps in the host until the call ends.
    pub fn held_bytes(&self) -> usize {
        match self {
            KvAfterCommit::Incr(_) => 0,
            KvAfterCommit::PutRevision { value, .. } => value.len(),
        }
    }
}

/// The state of one call (a request, an event delivery, a migration).
pub struct CallCtx {
    pub request_id: String,
    pub caller: Option<wit::Identity>,
    /// How many `services.call` hops led here (0 at the gateway).
    pub depth: u32,
    pub deadline: Instant,
    /// Events published so far; committed only if the call succeeds.
    pub pending: Vec<PendingEvent>,
    /// KV writes to apply once the call's writes have committed.
    pub after_commit: Vec<PendingKv>,
    /// During `migrate`, every SQL statement runs in this transaction.
    pub migration_tx: Option<Tx>,
    /// The call's own transaction (see [`Unit`]), from its first write on.
    pub unit: Option<Unit>,
    /// The unit failed after holding work: the call must not succeed.
    pub unit_lost: bool,
    /// The browser behind a request that came through the gateway (`None` for service
    /// calls, events and migrations).
    pub browser: Option<Arc<Browser>>,
}

/// The host's own cookie for one browser request, which no plugin sees: its value as it
/// came in, and the `Set-Cookie` a capability wants on the answer. It binds a sign-in
/// started in a browser to that same browser (see `capabilities::oidc`).
#[derive(Debug, Default)]
pub struct Browser {
    pub cookie: Option<String>,
    pub set_cookie: std::sync::Mutex<Option<String>>,
}

impl Browser {
    /// The header value a capability asked the answer to carry, if any.
    pub fn take_set_cookie(&self) -> Option<String> {
        self.set_cookie.lock().ok().and_then(|mut s| s.take())
    }
}

impl CallCtx {
    pub fn new(
        request_id: String,
        caller: Option<wit::Identity>,
        depth: u32,
        timeout: Duration,
    ) -> Self {
        Self {
            request_id,
            caller,
            depth,
            deadline: Instant::now() + timeout,
            pending: Vec::new(),
            after_commit: Vec::new(),
            migration_tx: None,
            unit: None,
            unit_lost: false,
            browser: None,
        }
    }

    /// Drops the events published and the KV writes asked for since savepoint `sp`
    /// began (it was rolled back).
    pub fn drop_effects_from(&mut self, sp: u32) {
        let kept = |savepoint: Option<u32>| savepoint.is_none_or(|made_in| made_in < sp);
        self.pending.retain(|e| kept(e.savepoint));
        self.after_commit.retain(|i| kept(i.savepoint));
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// What a service call made from this call inherits.
    pub fn origin(&self) -> CallOrigin {
        CallOrigin {
            request_id: self.request_id.clone(),
            caller: self.caller.clone(),
            depth: self.depth,
            deadline: self.deadline,
        }
    }
}

impl Default for CallCtx {
    fn default() -> Self {
        Self::new(String::new(), None, 0, Duration::ZERO)
    }
}

/// An export call.
pub enum Op {
    Describe,
    Migrate(Option<String>),
    Handle(wit::Request),
    OnEvent(wit::Event),
}

/// What the export returned.
pub enum OpResult {
    Manifest(wit::Manifest),
    Migrated(Result<(), String>),
    Response(wit::Response),
    Event(Result<(), String>),
}

/// Why a call produced no result. The instance is discarded in every case.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("the plugin ran past its {0}")]
    Timeout(Limit),
    #[error("the plugin hit its memory limit: {0}")]
    MemoryLimit(String),
    #[error("the plugin trapped: {0}")]
    Trap(String),
    #[error("the plugin could not be instantiated: {0}")]
    Instantiate(String),
}

/// Which limit stopped a call (each answers `504 plugin_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The call's deadline (epoch interruption).
    Time,
    /// The plugin's fuel budget (`[plugins.NAME] fuel`).
    Fuel,
    /// The deadline passed while every one of the plugin's `max_instances` was busy.
    Instances,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::Time => "time limit",
            Limit::Fuel => "fuel budget",
            Limit::Instances => "time limit waiting for a free instance",
        })
    }
}

/// What one capability sees of a store during a call: the plugin, the call, the
/// store's resources, and the capability's own shared state `S`. Each capability
/// implements its WIT `Host` trait on `View<'_, ItsState>`; the runtime links each
/// interface with a projection from its store data.
pub struct View<'a, S: ?Sized> {
    pub plugin: &'a Arc<PluginCtx>,
    pub call: &'a mut CallCtx,
    pub table: &'a mut ResourceTable,
    /// SQL transactions the plugin holds open (an instance holding one is not reused).
    pub open_txs: &'a mut usize,
    pub state: &'a S,
}

/// What a service call inherits from the call that makes it.
#[derive(Debug, Clone)]
pub struct CallOrigin {
    pub request_id: String,
    pub caller: Option<wit::Identity>,
    pub depth: u32,
    pub deadline: Instant,
}

impl CallOrigin {
    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// A callee's answer to a service call.
pub enum Called {
    /// The callee ran and answered (its work is committed).
    Ran(wit::Response),
    /// The host answered for it without running it: no such route (404), or the
    /// route's access rule refuses the caller (401, 403).
    Refused(wit::Response),
}

/// How a service call ended without an answer from the callee.
#[derive(Debug)]
pub enum CallFailure {
    /// The callee is not loaded (disabled or missing); it was not run.
    NotLoaded(String),
    /// The callee ran and failed (trapped), or its work could not be committed.
    Unavailable(String),
    /// The callee ran out of time or fuel.
    Timeout(String),
    /// The callee answered something that is not an answer.
    Failed(String),
}

/// Reaches other plugins: the registry implements it, so capabilities need not know
/// the registry.
#[async_trait]
pub trait Invoker: Send + Sync {
    /// Runs `target`'s route for `request` as a service call made from `parent` (the
    /// caller's identity and request id, one level deeper, within the caller's time),
    /// commits the callee's work, and returns its answer. A route the callee does not
    /// have, or whose access rule refuses the caller, is an answer (404, 401, 403).
    async fn call(
        &self,
        parent: CallOrigin,
        target: &str,
        request: wit::OutgoingRequest,
    ) -> Result<Called, CallFailure>;
}

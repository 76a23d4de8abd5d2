//! `kirana:platform/kv`: a key-value store namespaced per plugin, with TTLs, atomic
//! increments, compare-and-swap and ordered prefix scans.
//!
//! Two backends behind [`KvBackend`]: the embedded one ([`MemoryKv`]) keeps one ordered
//! map per plugin in this process (values with a TTL are dropped when read after
//! expiry and by a periodic sweep); [`redis::RedisKv`] keeps every replica's plugins in
//! one Redis, so a login lockout or an idempotency claim counts across the cluster.
//! The capability checks the grant and the key and value sizes, then asks whichever
//! backend it was given.

pub mod redis;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;

use crate::bindings::kirana::platform::kv::Host;
use crate::bindings::wit;
use crate::capabilities::denied;
use crate::core::{KvAfterCommit, PendingKv, View};

/// Longest key accepted.
pub const MAX_KEY: usize = 512;
/// Largest value accepted.
pub const MAX_VALUE: usize = 1 << 20;

#[derive(Debug, Clone)]
struct Entry {
    value: Vec<u8>,
    expires_at: Option<Instant>,
    /// Names this entry's place in [`Space::expiries`] (set when it is stored).
    ticket: u64,
}

impl Entry {
    fn new(value: Vec<u8>, expires_at: Option<Instant>) -> Self {
        Self {
            value,
            expires_at,
            ticket: 0,
        }
    }

    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

/// Bytes a plugin's keys and values may take in the embedded store (each entry also
/// counts [`ENTRY_OVERHEAD`], and [`INDEX_OVERHEAD`] with its key again when it has a
/// TTL): without a bound one plugin's `set`s could fill the host's memory. Redis has
/// its own `maxmemory`.
pub const MAX_SPACE_BYTES: usize = 64 << 20;
/// What an entry costs beyond its key and value (the map node, the expiry).
const ENTRY_OVERHEAD: usize = 64;
/// What an entry with a TTL costs in the expiry index beyond its key's copy.
const INDEX_OVERHEAD: usize = 48;

fn cost(key: &str, entry: &Entry) -> usize {
    let indexed = entry.expires_at.map_or(0, |_| key.len() + INDEX_OVERHEAD);
    key.len() + entry.value.len() + ENTRY_OVERHEAD + indexed
}

/// One plugin's keys in the embedded store, with what they take.
#[derive(Default)]
struct Space {
    map: BTreeMap<String, Entry>,
    /// The keys with a TTL by when they expire (the ticket tells apart keys expiring
    /// at the same instant), so a sweep visits only what has expired: a full space
    /// refuses a write in O(log n), not by walking every key.
    expiries: BTreeMap<(Instant, u64), String>,
    next_ticket: u64,
    bytes: usize,
}

impl Space {
    fn get(&self, key: &str) -> Option<&Entry> {
        self.map.get(key)
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let e = self.map.remove(key)?;
        if let Some(at) = e.expires_at {
            self.expiries.remove(&(at, e.ticket));
        }
        self.bytes = self.bytes.saturating_sub(cost(key, &e));
        Some(e)
    }

    /// Stores the entry unless that takes the space past `quota` (expired entries are
    /// dropped first); an entry that does not grow is always stored.
    fn insert(&mut self, key: &str, mut entry: Entry, quota: usize) -> Result<(), wit::Error> {
        let new = cost(key, &entry);
        // What the entry replaced costs, and its place in the index: one lookup, and
        // one more only after a sweep (which may have dropped it).
        let current = |s: &Self| {
            s.map.get(key).map_or((0, None), |e| {
                (cost(key, e), e.expires_at.map(|at| (at, e.ticket)))
            })
        };
        let (mut old, mut place) = current(self);
        if new > old && self.bytes - old + new > quota {
            self.sweep(Instant::now());
            (old, place) = current(self);
            if self.bytes - old + new > quota {
                return Err(wit::Error::Invalid(format!(
                    "the plugin's KV space is full ({quota} bytes); delete keys or give them TTLs"
                )));
            }
        }
        // The replaced entry's key copy in the index is reused for the new place.
        let indexed = place.and_then(|place| self.expiries.remove(&place));
        if let Some(at) = entry.expires_at {
            entry.ticket = self.next_ticket;
            self.next_ticket += 1;
            let copy = indexed.unwrap_or_else(|| key.to_string());
            self.expiries.insert((at, entry.ticket), copy);
        }
        self.bytes = self.bytes - old + new;
        match self.map.get_mut(key) {
            Some(e) => *e = entry,
            None => {
                self.map.insert(key.to_string(), entry);
            }
        }
        Ok(())
    }

    /// Drops expired entries, earliest first, visiting no live one; returns how many.
    fn sweep(&mut self, now: Instant) -> usize {
        let mut removed = 0;
        while let Some(first) = self.expiries.first_entry() {
            if first.key().0 > now {
                break;
            }
            let key = first.remove();
            if let Some(e) = self.map.remove(&key) {
                self.bytes = self.bytes.saturating_sub(cost(&key, &e));
                removed += 1;
            }
        }
        removed
    }
}

/// Where plugin keys live. `ns` is the plugin's name; keys and values were checked.
#[async_trait]
pub trait KvBackend: Send + Sync {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, wit::Error>;
    /// `get` of each key, in order.
    async fn get_many(&self, ns: &str, keys: &[String])
        -> Result<Vec<Option<Vec<u8>>>, wit::Error>;
    async fn set(
        &self,
        ns: &str,
        key: &str,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), wit::Error>;
    /// Whether a live value was there.
    async fn delete(&self, ns: &str, key: &str) -> Result<bool, wit::Error>;
    /// Adds `delta` to the integer at `key` (0 when absent, which then takes `ttl_ms`;
    /// an existing key keeps its expiry).
    async fn incr(
        &self,
        ns: &str,
        key: &str,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> Result<i64, wit::Error>;
    /// Sets (or with `new = None` deletes) `key` only if its live value is `expected`.
    async fn compare_and_swap(
        &self,
        ns: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, wit::Error>;
    /// Live keys starting with `prefix`, in key order, at most `limit`.
    async fn scan(
        &self,
        ns: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<(String, Vec<u8>)>, wit::Error>;
    /// Stores `value` tagged `revision` (see [`Revisioned`]) unless the live value
    /// there is of a later revision, or of the same one and known. True when it wrote.
    async fn put_revision(
        &self,
        ns: &str,
        key: &str,
        revision: u64,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, wit::Error>;
    /// Drops expired entries the backend keeps itself; returns how many.
    fn sweep(&self) -> usize {
        0
    }
    /// `embedded` or `redis`.
    fn kind(&self) -> &'static str;
}

/// Most keys one `get-many` reads.
pub const MAX_GET_MANY: usize = 1024;
/// Most bytes one `get-many` answers (each value may be up to [`MAX_VALUE`]).
pub const MAX_GET_MANY_BYTES: usize = 16 << 20;
/// Most bytes of values one call may hold for after its commit
/// (`put-revision-after-commit`), so 256 held writes cannot pin 256 MiB in the host.
pub const MAX_AFTER_COMMIT_BYTES: usize = 4 << 20;

fn too_much_for_one_get_many() -> wit::Error {
    wit::Error::Invalid(format!(
        "get-many answers at most {MAX_GET_MANY_BYTES} bytes; read fewer keys at once"
    ))
}

/// `get-many`'s answer, refused past [`MAX_GET_MANY_BYTES`].
fn bounded(values: Vec<Option<Vec<u8>>>) -> Result<Vec<Option<Vec<u8>>>, wit::Error> {
    let total: usize = values.iter().flatten().map(Vec::len).sum();
    if total > MAX_GET_MANY_BYTES {
        return Err(too_much_for_one_get_many());
    }
    Ok(values)
}

/// Most KV writes after commit one call may hold: each is kept until the call ends.
pub const MAX_AFTER_COMMIT: usize = 256;

/// How a value written by `put-revision` is stored: its revision as 16 lowercase hex
/// digits (so revisions compare as bytes, in Redis's scripts too), then the value.
pub struct Revisioned;

impl Revisioned {
    /// Length of the revision prefix.
    pub const PREFIX: usize = 16;

    pub fn encode(revision: u64, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::PREFIX + value.len());
        out.extend_from_slice(format!("{revision:016x}").as_bytes());
        out.extend_from_slice(value);
        out
    }

    /// The revision and value of a stored `put-revision` value.
    pub fn decode(key: &str, mut stored: Vec<u8>) -> Result<(u64, Vec<u8>), wit::Error> {
        let revision = stored
            .get(..Self::PREFIX)
            .filter(|p| p.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .and_then(|p| std::str::from_utf8(p).ok())
            .and_then(|p| u64::from_str_radix(p, 16).ok())
            .ok_or_else(|| {
                wit::Error::Invalid(format!("value at {key} was not written by put-revision"))
            })?;
        stored.drain(..Self::PREFIX);
        Ok((revision, stored))
    }

    /// Whether `revision` with `value` replaces what is stored (`None`: nothing live).
    /// The stored prefix is compared as bytes, as Redis's script does.
    pub fn replaces(stored: Option<&[u8]>, revision: u64, value: &[u8]) -> bool {
        let Some(stored) = stored else { return true };
        let new = format!("{revision:016x}");
        let old = &stored[..stored.len().min(Self::PREFIX)];
        match old.cmp(new.as_bytes()) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Equal => stored.len() == Self::PREFIX && !value.is_empty(),
            std::cmp::Ordering::Greater => false,
        }
    }
}

/// Most keys one scan returns.
pub const MAX_SCAN: usize = 10_000;

/// The in-process store: plugin name → its ordered key space, each bounded by
/// `quota` bytes ([`MAX_SPACE_BYTES`] by default).
pub struct MemoryKv {
    spaces: DashMap<String, Mutex<Space>>,
    quota: usize,
}

impl Default for MemoryKv {
    fn default() -> Self {
        Self::with_quota(MAX_SPACE_BYTES)
    }
}

/// Longest TTL honoured; longer ones are clamped (and can never overflow the clock).
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

fn expiry(ttl_ms: Option<u64>) -> Option<Instant> {
    ttl_ms.map(|ms| {
        let ttl = Duration::from_millis(ms).min(MAX_TTL);
        Instant::now().checked_add(ttl).unwrap_or_else(Instant::now)
    })
}

fn check_key(key: &str) -> Result<(), wit::Error> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(wit::Error::Invalid(format!(
            "keys are 1 to {MAX_KEY} bytes"
        )));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), wit::Error> {
    if value.len() > MAX_VALUE {
        return Err(wit::Error::Invalid(format!(
            "values are at most {MAX_VALUE} bytes"
        )));
    }
    Ok(())
}

impl MemoryKv {
    pub fn with_quota(quota: usize) -> Self {
        Self {
            spaces: DashMap::new(),
            quota,
        }
    }

    fn with_space<R>(&self, ns: &str, f: impl FnOnce(&mut Space) -> R) -> Result<R, wit::Error> {
        let run = |space: &Mutex<Space>| {
            let mut map = space
                .lock()
                .map_err(|_| wit::Error::Failed("kv space poisoned".into()))?;
            Ok(f(&mut map))
        };
        // A shared lock on the shard, and no copy of the name, for a space that exists.
        match self.spaces.get(ns) {
            Some(space) => run(&space),
            None => run(&self.spaces.entry(ns.to_string()).or_default()),
        }
    }

    pub fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, wit::Error> {
        check_key(key)?;
        let now = Instant::now();
        self.with_space(ns, |m| match m.get(key) {
            Some(e) if e.live(now) => Some(e.value.clone()),
            Some(_) => {
                m.remove(key);
                None
            }
            None => None,
        })
    }

    pub fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, wit::Error> {
        let now = Instant::now();
        self.with_space(ns, |m| {
            let mut total = 0usize;
            keys.iter()
                .map(|key| {
                    let value = m.get(key).filter(|e| e.live(now)).map(|e| &e.value);
                    total += value.map_or(0, |v| v.len());
                    if total > MAX_GET_MANY_BYTES {
                        return Err(too_much_for_one_get_many());
                    }
                    Ok(value.cloned())
                })
                .collect()
        })?
    }

    pub fn set(
        &self,
        ns: &str,
        key: &str,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), wit::Error> {
        check_key(key)?;
        check_value(&value)?;
        let entry = Entry::new(value, expiry(ttl_ms));
        let quota = self.quota;
        self.with_space(ns, |m| m.insert(key, entry, quota))?
    }

    pub fn delete(&self, ns: &str, key: &str) -> Result<bool, wit::Error> {
        check_key(key)?;
        let now = Instant::now();
        self.with_space(ns, |m| m.remove(key).is_some_and(|e| e.live(now)))
    }

    pub fn incr(
        &self,
        ns: &str,
        key: &str,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> Result<i64, wit::Error> {
        check_key(key)?;
        let now = Instant::now();
        let fresh_expiry = expiry(ttl_ms);
        let quota = self.quota;
        self.with_space(ns, |m| {
            let current = match m.get(key) {
                Some(e) if e.live(now) => Some(e),
                _ => None,
            };
            let (base, expires_at) = match current {
                Some(e) => {
                    let text = std::str::from_utf8(&e.value).map_err(|_| {
                        wit::Error::Invalid(format!("value at {key} is not an integer"))
                    })?;
                    let n: i64 = text.parse().map_err(|_| {
                        wit::Error::Invalid(format!("value at {key} is not an integer"))
                    })?;
                    (n, e.expires_at)
                }
                None => (0, fresh_expiry),
            };
            let next = base
                .checked_add(delta)
                .ok_or_else(|| wit::Error::Invalid(format!("incrementing {key} overflows")))?;
            let value = next.to_string().into_bytes();
            m.insert(key, Entry::new(value, expires_at), quota)?;
            Ok(next)
        })?
    }

    pub fn compare_and_swap(
        &self,
        ns: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, wit::Error> {
        check_key(key)?;
        if let Some(v) = &new {
            check_value(v)?;
        }
        let now = Instant::now();
        let expires_at = expiry(ttl_ms);
        let quota = self.quota;
        self.with_space(ns, |m| {
            let current = m.get(key).filter(|e| e.live(now)).map(|e| &e.value);
            if current != expected.as_ref() {
                return Ok(false);
            }
            match new {
                Some(value) => m.insert(key, Entry::new(value, expires_at), quota)?,
                None => {
                    m.remove(key);
                }
            }
            Ok(true)
        })?
    }

    pub fn put_revision(
        &self,
        ns: &str,
        key: &str,
        revision: u64,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, wit::Error> {
        check_key(key)?;
        check_value(&value)?;
        let now = Instant::now();
        let expires_at = expiry(ttl_ms);
        let quota = self.quota;
        self.with_space(ns, |m| {
            let current = m
                .get(key)
                .filter(|e| e.live(now))
                .map(|e| e.value.as_slice());
            if !Revisioned::replaces(current, revision, &value) {
                return Ok(false);
            }
            let value = Revisioned::encode(revision, &value);
            m.insert(key, Entry::new(value, expires_at), quota)?;
            Ok(true)
        })?
    }

    pub fn scan(
        &self,
        ns: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<(String, Vec<u8>)>, wit::Error> {
        let now = Instant::now();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX).min(MAX_SCAN);
        self.with_space(ns, |m| {
            m.map
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter(|(_, e)| e.live(now))
                .take(limit)
                .map(|(k, e)| (k.clone(), e.value.clone()))
                .collect()
        })
    }

    /// Drops expired entries everywhere; returns how many.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut removed = 0;
        for space in self.spaces.iter() {
            if let Ok(mut m) = space.value().lock() {
                removed += m.sweep(now);
            }
        }
        removed
    }
}

#[async_trait]
impl KvBackend for MemoryKv {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, wit::Error> {
        MemoryKv::get(self, ns, key)
    }
    async fn get_many(
        &self,
        ns: &str,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, wit::Error> {
        MemoryKv::get_many(self, ns, keys)
    }
    async fn set(
        &self,
        ns: &str,
        key: &str,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), wit::Error> {
        MemoryKv::set(self, ns, key, value, ttl_ms)
    }
    async fn delete(&self, ns: &str, key: &str) -> Result<bool, wit::Error> {
        MemoryKv::delete(self, ns, key)
    }
    async fn incr(
        &self,
        ns: &str,
        key: &str,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> Result<i64, wit::Error> {
        MemoryKv::incr(self, ns, key, delta, ttl_ms)
    }
    async fn compare_and_swap(
        &self,
        ns: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, wit::Error> {
        MemoryKv::compare_and_swap(self, ns, key, expected, new, ttl_ms)
    }
    async fn scan(
        &self,
        ns: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<(String, Vec<u8>)>, wit::Error> {
        MemoryKv::scan(self, ns, prefix, limit)
    }
    async fn put_revision(
        &self,
        ns: &str,
        key: &str,
        revision: u64,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, wit::Error> {
        MemoryKv::put_revision(self, ns, key, revision, value, ttl_ms)
    }
    fn sweep(&self) -> usize {
        MemoryKv::sweep(self)
    }
    fn kind(&self) -> &'static str {
        "embedded"
    }
}

impl View<'_, Arc<dyn KvBackend>> {
    /// The plugin's key space, once the grant, the key and any value pass.
    fn space(&self, key: Option<&str>, value: Option<&[u8]>) -> Result<String, wit::Error> {
        if !self.plugin.grants.kv {
            return Err(denied("kv", &self.plugin.name));
        }
        if let Some(k) = key {
            check_key(k)?;
        }
        if let Some(v) = value {
            check_value(v)?;
        }
        Ok(self.plugin.name.clone())
    }
}

/// The checked call's result, or the check's refusal.
macro_rules! checked {
    ($space:expr, $call:expr) => {
        Ok(match $space {
            Ok(ns) => $call(ns).await,
            Err(e) => Err(e),
        })
    };
}

impl Host for View<'_, Arc<dyn KvBackend>> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, wit::Error>> {
        let kv = self.state;
        checked!(self.space(Some(&key), None), |ns: String| async move {
            kv.get(&ns, &key).await
        })
    }

    async fn get_many(
        &mut self,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<Vec<u8>>>, wit::Error>> {
        let kv = self.state;
        let checked = self.space(None, None).and_then(|ns| {
            if keys.len() > MAX_GET_MANY {
                return Err(wit::Error::Invalid(format!(
                    "get-many reads at most {MAX_GET_MANY} keys"
                )));
            }
            keys.iter().try_for_each(|k| check_key(k))?;
            Ok(ns)
        });
        checked!(checked, |ns: String| async move {
            kv.get_many(&ns, &keys).await.and_then(bounded)
        })
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let kv = self.state;
        checked!(
            self.space(Some(&key), Some(&value)),
            |ns: String| async move { kv.set(&ns, &key, value, ttl_ms).await }
        )
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<bool, wit::Error>> {
        let kv = self.state;
        checked!(self.space(Some(&key), None), |ns: String| async move {
            kv.delete(&ns, &key).await
        })
    }

    async fn incr(
        &mut self,
        key: String,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<i64, wit::Error>> {
        let kv = self.state;
        checked!(self.space(Some(&key), None), |ns: String| async move {
            kv.incr(&ns, &key, delta, ttl_ms).await
        })
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<bool, wit::Error>> {
        let kv = self.state;
        checked!(
            self.space(Some(&key), new.as_deref()),
            |ns: String| async move { kv.compare_and_swap(&ns, &key, expected, new, ttl_ms).await }
        )
    }

    async fn scan(
        &mut self,
        prefix: String,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<(String, Vec<u8>)>, wit::Error>> {
        let kv = self.state;
        checked!(self.space(None, None), |ns: String| async move {
            kv.scan(&ns, &prefix, limit).await
        })
    }

    async fn incr_after_commit(
        &mut self,
        key: String,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        Ok(self.after_commit(key, KvAfterCommit::Incr(delta), ttl_ms))
    }

    async fn put_revision(
        &mut self,
        key: String,
        revision: u64,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<bool, wit::Error>> {
        let kv = self.state;
        checked!(
            self.space(Some(&key), Some(&value)),
            |ns: String| async move { kv.put_revision(&ns, &key, revision, value, ttl_ms).await }
        )
    }

    async fn put_revision_after_commit(
        &mut self,
        key: String,
        revision: u64,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        if let Err(e) = check_value(&value) {
            return Ok(Err(e));
        }
        let op = KvAfterCommit::PutRevision { revision, value };
        Ok(self.after_commit(key, op, ttl_ms))
    }

    async fn get_revision(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<(u64, Vec<u8>)>, wit::Error>> {
        let kv = self.state;
        checked!(self.space(Some(&key), None), |ns: String| async move {
            match kv.get(&ns, &key).await {
                Ok(Some(stored)) => Revisioned::decode(&key, stored).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }
}

impl View<'_, Arc<dyn KvBackend>> {
    /// Holds a KV write until the call's writes commit. One asked for again for the
    /// same key in the same savepoint (each write of one cart) is merged into the one
    /// held: increments add up, and the newest revision is kept.
    fn after_commit(
        &mut self,
        key: String,
        op: KvAfterCommit,
        ttl_ms: Option<u64>,
    ) -> Result<(), wit::Error> {
        self.space(Some(&key), None)?;
        if let KvAfterCommit::PutRevision { value, .. } = &op {
            let held: usize = self
                .call
                .after_commit
                .iter()
                .map(|p| p.op.held_bytes())
                .sum();
            if held + value.len() > MAX_AFTER_COMMIT_BYTES {
                return Err(wit::Error::Invalid(format!(
                    "a call holds at most {MAX_AFTER_COMMIT_BYTES} bytes of KV values for after its commit"
                )));
            }
        }
        let savepoint = self.call.unit.as_ref().and_then(|u| u.innermost());
        let same = self
            .call
            .after_commit
            .iter_mut()
            .find(|p| p.key == key && p.savepoint == savepoint);
        if let Some(held) = same {
            match (&mut held.op, op) {
                (KvAfterCommit::Incr(sum), KvAfterCommit::Incr(delta)) => {
                    *sum = sum.checked_add(delta).ok_or_else(|| {
                        wit::Error::Invalid(format!("incrementing {key} overflows"))
                    })?;
                    return Ok(());
                }
                (
                    KvAfterCommit::PutRevision { revision, value },
                    KvAfterCommit::PutRevision {
                        revision: newer,
                        value: known,
                    },
                ) => {
                    let held = Revisioned::encode(*revision, value);
                    if Revisioned::replaces(Some(&held), newer, &known) {
                        *revision = newer;
                        *value = known;
                    }
                    return Ok(());
                }
                // Two kinds of write for one key: a plugin's mistake, applied as asked.
                (_, op) => return self.hold(key, op, ttl_ms, savepoint),
            }
        }
        self.hold(key, op, ttl_ms, savepoint)
    }

    fn hold(
        &mut self,
        key: String,
        op: KvAfterCommit,
        ttl_ms: Option<u64>,
        savepoint: Option<u32>,
    ) -> Result<(), wit::Error> {
        if self.call.after_commit.len() >= MAX_AFTER_COMMIT {
            return Err(wit::Error::Invalid(format!(
                "at most {MAX_AFTER_COMMIT} KV writes after commit per call"
            )));
        }
        self.call.after_commit.push(PendingKv {
            key,
            op,
            ttl_ms,
            savepoint,
        });
        Ok(())
    }
}

/// What every backend's `put_revision` must do; each backend's tests run it.
#[cfg(test)]
pub(crate) async fn check_put_revision(kv: &dyn KvBackend) {
    let put = |rev: u64, value: &'static str| kv.put_revision("a", "r", rev, value.into(), None);
    let held = || async {
        let stored = kv.get("a", "r").await.unwrap().unwrap();
        Revisioned::decode("r", stored).unwrap()
    };
    assert!(
        put(5, "five").await.unwrap(),
        "an absent key takes any revision"
    );
    assert!(
        !put(4, "four").await.unwrap(),
        "an older revision never replaces"
    );
    assert!(!put(5, "again").await.unwrap(), "a known revision is kept");
    assert_eq!(held().await, (5, b"five".to_vec()));
    assert!(
        put(6, "").await.unwrap(),
        "a newer revision, even unknown, replaces"
    );
    assert!(!put(5, "five").await.unwrap());
    assert!(!put(6, "").await.unwrap());
    assert!(
        put(6, "six").await.unwrap(),
        "an unknown revision takes its value"
    );
    assert_eq!(held().await, (6, b"six".to_vec()));
    // Revisions compare as numbers across digit counts and up to the largest.
    assert!(put(0x10, "sixteen").await.unwrap());
    assert!(put(u64::MAX, "max").await.unwrap());
    assert!(!put(u64::MAX - 1, "less").await.unwrap());
    assert_eq!(held().await, (u64::MAX, b"max".to_vec()));
    // With a TTL the entry goes, and any revision is taken again.
    assert!(kv
        .put_revision("a", "t", 9, b"x".to_vec(), Some(40))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(kv.get("a", "t").await.unwrap(), None);
    assert!(kv
        .put_revision("a", "t", 1, b"y".to_vec(), None)
        .await
        .unwrap());
    // A value not written by put-revision is refused when read as one.
    kv.set("a", "plain", b"hello".to_vec(), None).await.unwrap();
    let plain = kv.get("a", "plain").await.unwrap().unwrap();
    assert!(matches!(
        Revisioned::decode("plain", plain),
        Err(wit::Error::Invalid(_))
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn revisions_keep_the_newest_known_value() {
        check_put_revision(&MemoryKv::default()).await;
    }

    #[test]
    fn a_plugin_space_is_bounded_and_expired_entries_make_room() {
        let kv = MemoryKv::with_quota(3 * (MAX_VALUE + 120));
        let mib = vec![b'x'; MAX_VALUE];
        kv.set("a", "k1", mib.clone(), None).unwrap();
        kv.set("a", "k2", mib.clone(), Some(400)).unwrap();
        kv.set("a", "k3", mib.clone(), None).unwrap();
        let full = kv.set("a", "k4", mib.clone(), None);
        assert!(
            matches!(&full, Err(wit::Error::Invalid(m)) if m.contains("full")),
            "{full:?}"
        );
        assert!(
            kv.set("b", "k4", mib.clone(), None).is_ok(),
            "each plugin has its own"
        );
        // Replacing a value with one no larger always works; deleting makes room.
        kv.set("a", "k1", b"small".to_vec(), None).unwrap();
        kv.set("a", "k4", mib.clone(), None).unwrap();
        assert!(kv.set("a", "k5", mib.clone(), None).is_err());
        // Once k2 has expired, the next write that needs room drops it first.
        std::thread::sleep(Duration::from_millis(450));
        kv.set("a", "k5", mib.clone(), None).unwrap();
        assert!(kv
            .compare_and_swap("a", "k6", None, Some(mib.clone()), None)
            .is_err());
        assert!(kv.delete("a", "k4").unwrap());
        assert!(kv
            .compare_and_swap("a", "k6", None, Some(mib.clone()), None)
            .unwrap());
        assert!(kv.put_revision("a", "k7", 1, mib, None).is_err());
        kv.delete("a", "k6").unwrap();
        kv.incr("a", "n", 1, None).unwrap();
    }

    /// The space's books: every entry with a TTL has exactly one place in the expiry
    /// index, and `bytes` is what its entries cost.
    fn books_balance(kv: &MemoryKv, ns: &str) -> usize {
        let space = kv.spaces.get(ns).unwrap();
        let space = space.lock().unwrap();
        let with_ttl: Vec<(&String, &Entry)> = space
            .map
            .iter()
            .filter(|(_, e)| e.expires_at.is_some())
            .collect();
        assert_eq!(space.expiries.len(), with_ttl.len(), "{:?}", space.expiries);
        for (k, e) in with_ttl {
            let place = (e.expires_at.unwrap(), e.ticket);
            assert_eq!(space.expiries.get(&place), Some(k));
        }
        let spent: usize = space.map.iter().map(|(k, e)| cost(k, e)).sum();
        assert_eq!(space.bytes, spent);
        space.map.len()
    }

    #[test]
    fn the_expiry_index_follows_every_write_and_a_sweep_drops_only_what_expired() {
        let kv = MemoryKv::default();
        let ttl = Some(20);
        kv.set("a", "plain", b"1".to_vec(), None).unwrap();
        kv.set("a", "ttl-then-plain", b"1".to_vec(), ttl).unwrap();
        kv.set("a", "ttl-then-plain", b"2".to_vec(), None).unwrap();
        kv.set("a", "plain-then-ttl", b"1".to_vec(), None).unwrap();
        kv.set("a", "plain-then-ttl", b"2".to_vec(), ttl).unwrap();
        kv.set("a", "ttl-twice", b"1".to_vec(), ttl).unwrap();
        kv.set("a", "ttl-twice", b"22".to_vec(), Some(60_000))
            .unwrap();
        kv.incr("a", "n", 1, ttl).unwrap();
        kv.incr("a", "n", 1, Some(60_000)).unwrap(); // keeps its first expiry
        kv.put_revision("a", "r", 1, b"x".to_vec(), ttl).unwrap();
        kv.put_revision("a", "r", 2, b"y".to_vec(), ttl).unwrap();
        kv.set("a", "gone", b"1".to_vec(), ttl).unwrap();
        assert!(kv.delete("a", "gone").unwrap());
        kv.set("a", "swapped", b"1".to_vec(), ttl).unwrap();
        assert!(kv
            .compare_and_swap("a", "swapped", Some(b"1".to_vec()), None, None)
            .unwrap());
        assert_eq!(books_balance(&kv, "a"), 6);
        std::thread::sleep(Duration::from_millis(40));
        // plain-then-ttl, n and r expired; the others have no TTL or a later one.
        assert_eq!(kv.sweep(), 3);
        assert_eq!(books_balance(&kv, "a"), 3);
        assert_eq!(kv.get("a", "ttl-twice").unwrap(), Some(b"22".to_vec()));
        assert_eq!(kv.get("a", "ttl-then-plain").unwrap(), Some(b"2".to_vec()));
        assert_eq!(kv.sweep(), 0);
    }

    #[test]
    fn get_many_answers_a_bounded_number_of_bytes() {
        let kv = MemoryKv::default();
        let mib = vec![b'x'; MAX_VALUE];
        let keys: Vec<String> = (0..17).map(|i| format!("k{i}")).collect();
        for k in &keys {
            kv.set("a", k, mib.clone(), None).unwrap();
        }
        assert!(matches!(
            kv.get_many("a", &keys),
            Err(wit::Error::Invalid(_))
        ));
        assert_eq!(kv.get_many("a", &keys[..16]).unwrap().len(), 16);
        assert!(bounded(vec![Some(mib.clone()); 17]).is_err());
    }

    #[test]
    fn get_many_reads_each_key_in_order() {
        let kv = MemoryKv::default();
        kv.set("a", "x", b"1".to_vec(), None).unwrap();
        kv.set("a", "z", b"3".to_vec(), Some(1)).unwrap();
        kv.set("b", "y", b"2".to_vec(), None).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let keys = ["y", "x", "z", "x"].map(String::from);
        assert_eq!(
            kv.get_many("a", &keys).unwrap(),
            vec![None, Some(b"1".to_vec()), None, Some(b"1".to_vec())],
            "another space's key and an expired one are absent"
        );
        assert_eq!(
            kv.get_many("a", &[]).unwrap(),
            Vec::<Option<Vec<u8>>>::new()
        );
    }

    #[test]
    fn namespaces_are_separate() {
        let kv = MemoryKv::default();
        kv.set("a", "k", b"1".to_vec(), None).unwrap();
        assert_eq!(kv.get("a", "k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(kv.get("b", "k").unwrap(), None);
    }

    #[test]
    fn ttl_expires() {
        let kv = MemoryKv::default();
        kv.set("a", "k", b"v".to_vec(), Some(1)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(kv.get("a", "k").unwrap(), None);
        kv.set("a", "j", b"v".to_vec(), Some(1)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(kv.sweep(), 1);
    }

    #[test]
    fn huge_ttls_are_clamped_not_panics() {
        let kv = MemoryKv::default();
        kv.set("a", "k", b"1".to_vec(), Some(u64::MAX)).unwrap();
        assert_eq!(kv.incr("a", "n", 1, Some(u64::MAX)).unwrap(), 1);
        assert!(kv
            .compare_and_swap("a", "c", None, Some(b"x".to_vec()), Some(u64::MAX))
            .unwrap());
        assert_eq!(kv.get("a", "k").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn incr_counts_and_refuses_non_integers() {
        let kv = MemoryKv::default();
        assert_eq!(kv.incr("a", "n", 2, None).unwrap(), 2);
        assert_eq!(kv.incr("a", "n", -5, None).unwrap(), -3);
        kv.set("a", "s", b"x".to_vec(), None).unwrap();
        assert!(matches!(
            kv.incr("a", "s", 1, None),
            Err(wit::Error::Invalid(_))
        ));
    }

    #[test]
    fn cas_and_scan() {
        let kv = MemoryKv::default();
        assert!(kv
            .compare_and_swap("a", "k", None, Some(b"1".to_vec()), None)
            .unwrap());
        assert!(!kv
            .compare_and_swap("a", "k", None, Some(b"2".to_vec()), None)
            .unwrap());
        assert!(kv
            .compare_and_swap("a", "k", Some(b"1".to_vec()), Some(b"2".to_vec()), None)
            .unwrap());
        kv.set("a", "k2", b"x".to_vec(), None).unwrap();
        kv.set("a", "l", b"y".to_vec(), None).unwrap();
        let keys: Vec<String> = kv
            .scan("a", "k", 10)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec!["k", "k2"]);
        assert!(kv
            .compare_and_swap("a", "k", Some(b"2".to_vec()), None, None)
            .unwrap());
        assert_eq!(kv.get("a", "k").unwrap(), None);
    }
}

//! Read-through caching of derived answers (a listing page, a report) in the plugin's
//! key-value space, invalidated by a generation counter.
//!
//! Every write that can change a cached answer calls [`Cache::invalidate`], which moves
//! the generation on. An entry carries (after the answer) the generation read *before*
//! its answer was computed and is served only while that is still the current one, so an answer
//! computed from data a concurrent write then changed is never served after the write.
//! Each key has one entry, overwritten when recomputed, so the store holds at most one
//! answer per key however often the data changes. Entries also expire after the
//! cache's TTL, which bounds staleness when an invalidation is lost (the KV store
//! unreachable), when data changes behind the plugin's back, and between replicas that
//! do not share a KV store. The plugin must ask for the `kv` capability.
//!
//! A plugin's writes commit at the end of its call, after the handler (and so after its
//! `invalidate`) returned: a reader that misses in between computes from the data as it
//! was before the write, under the new generation. A cache whose answers must never
//! outlive a write (a price) sets a *settle* time ([`Cache::with_settle`]) of at least
//! the plugin's call timeout: every `invalidate` records when it ran, and for the settle
//! time after it answers are computed but not stored.
//!
//! The cache is an optimisation only: a KV failure while reading or filling it is
//! logged and the answer is computed as if there were no cache.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::CapError;
use crate::kv;

/// Set when the host denies the KV capability: the cache then stays out of the way
/// (one warning, not one per request).
static DENIED: AtomicBool = AtomicBool::new(false);

/// What a computation produced: an answer to keep for the next caller, or one to
/// pass on only (an empty result a made-up key produced, say: caching those would let
/// any client fill the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Computed {
    Keep(Vec<u8>),
    Pass(Vec<u8>),
}

impl Computed {
    /// The answer, kept or not.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Computed::Keep(b) | Computed::Pass(b) => b,
        }
    }
}

/// Longest key stored as it is rather than by its digest.
const RAW_KEY_MAX: usize = 96;

/// A named cache of one plugin version's answers.
#[derive(Debug, Clone, Copy)]
pub struct Cache {
    name: &'static str,
    version: &'static str,
    ttl: Duration,
    settle: Duration,
}

impl Cache {
    /// A cache whose entries live at most `ttl` (zero turns it off). `version` (the
    /// plugin's) keeps answers of one version from being served by another, as an
    /// answer's shape may change; the generation is shared by every version, so a
    /// write through either one invalidates both (a canary and its stable version).
    pub const fn new(name: &'static str, version: &'static str, ttl: Duration) -> Self {
        Self {
            name,
            version,
            ttl,
            settle: Duration::ZERO,
        }
    }

    /// The same cache (name, version, generation: one `invalidate` forgets the answers
    /// of both) whose entries live at most `ttl`: another kind of answer kept beside the
    /// first, under keys of its own.
    pub const fn with_ttl(self, ttl: Duration) -> Self {
        Self { ttl, ..self }
    }

    /// Answers computed less than `settle` after an `invalidate` (of this cache or any
    /// sharing its name) are not stored: the write behind it may not have committed
    /// yet. Use at least the plugin's call timeout.
    pub const fn with_settle(self, settle: Duration) -> Self {
        Self { settle, ..self }
    }

    fn off(&self) -> bool {
        self.ttl.is_zero() || DENIED.load(Ordering::Relaxed)
    }

    fn generation_key(&self) -> String {
        format!("cache:{}:generation", self.name)
    }

    fn invalidated_key(&self) -> String {
        format!("cache:{}:invalidated_us", self.name)
    }

    /// A short key is used as it is (`=` marks it); a long one (a statement and its
    /// parameters) by its digest, which hashing in wasm makes dear for every key of a
    /// batch.
    fn entry_key(&self, key: &str) -> String {
        if key.len() <= RAW_KEY_MAX {
            format!("cache:{}:{}:={key}", self.name, self.version)
        } else {
            format!("cache:{}:{}:{}", self.name, self.version, digest(key))
        }
    }

    /// Whether an answer computed now may be stored: no settle time, or the last
    /// `invalidate` is at least that long ago. Unknown counts as "not settled".
    fn may_store(&self) -> bool {
        if self.settle.is_zero() {
            return true;
        }
        match kv::get(&self.invalidated_key()).and_then(parse_invalidated) {
            Ok(0) => true,
            Ok(last) => settled(last, now_us(), self.settle),
            Err(e) => {
                self.failed("reading the last invalidation", &e);
                false
            }
        }
    }

    fn generation(&self) -> Result<i64, CapError> {
        parse_generation(kv::get(&self.generation_key())?)
    }

    /// The cached answer for `key`, or `compute`'s (stored for the next caller when it
    /// says [`Computed::Keep`]). `key` may be any text that determines the answer, such
    /// as the statement and parameters that produce it; one longer than 96 bytes is hashed.
    pub fn get_or_compute<E>(
        &self,
        key: &str,
        compute: impl FnOnce() -> Result<Computed, E>,
    ) -> Result<Vec<u8>, E> {
        if self.off() {
            return compute().map(Computed::into_bytes);
        }
        let generation = match self.generation() {
            Ok(g) => g,
            Err(e) => {
                self.failed("reading the generation", &e);
                return compute().map(Computed::into_bytes);
            }
        };
        let entry = self.entry_key(key);
        match kv::get(&entry) {
            Ok(Some(stored)) => {
                if let Some(answer) = current(stored, generation) {
                    return Ok(answer);
                }
            }
            Ok(None) => {}
            Err(e) => self.failed("reading an entry", &e),
        }
        let computed = compute()?;
        let store = matches!(computed, Computed::Keep(_)) && self.may_store();
        Ok(self.keep(&entry, computed, generation, store))
    }

    /// The cached answers for `keys` (in their order), computing every missing one with
    /// ONE call of `compute`, which gets the positions (in `keys`) of the missing keys
    /// and returns one answer per position, in that order. What `compute` keeps is
    /// stored for the next caller, as [`Cache::get_or_compute`] does.
    pub fn get_many<E>(
        &self,
        keys: &[String],
        compute: impl FnOnce(&[usize]) -> Result<Vec<Computed>, E>,
        too_few: impl FnOnce() -> E,
    ) -> Result<Vec<Vec<u8>>, E> {
        self.get_many_stamped(keys, compute, too_few)
            .map(|many| many.answers)
    }

    /// [`Cache::get_many`], with the stamp of the state the answers were read under
    /// when they are answers the cache keeps (it is on, and the last `invalidate` has
    /// settled, so every write behind the generation has committed). A caller may keep
    /// the answers with the stamp's text and use them again while [`Cache::still`]
    /// says so. The generation, the last invalidation and every entry are read in one
    /// KV call, even for no keys.
    pub fn get_many_stamped<E>(
        &self,
        keys: &[String],
        compute: impl FnOnce(&[usize]) -> Result<Vec<Computed>, E>,
        too_few: impl FnOnce() -> E,
    ) -> Result<Many, E> {
        let read = if self.off() {
            None
        } else {
            let mut wanted = Vec::with_capacity(keys.len() + 2);
            wanted.push(self.generation_key());
            wanted.push(self.invalidated_key());
            wanted.extend(keys.iter().map(|k| self.entry_key(k)));
            let read = kv::get_many(&wanted).and_then(|stored| {
                if stored.len() != wanted.len() {
                    return Err(CapError::Failed("kv get-many answered too few keys".into()));
                }
                let mut stored = stored.into_iter();
                let generation = parse_generation(stored.next().flatten())?;
                let last_us = parse_invalidated(stored.next().flatten())?;
                Ok((generation, last_us, stored.collect::<Vec<_>>()))
            });
            read.inspect_err(|e| self.failed("reading the generation and entries", e))
                .ok()
        };
        let Some((generation, last_us, stored)) = read else {
            let all: Vec<usize> = (0..keys.len()).collect();
            return Ok(Many {
                answers: answers(compute(&all)?, keys.len(), too_few)?,
                stamp: None,
            });
        };
        let now = now_us();
        // No settle time, nothing ever invalidated, or the last invalidation settled.
        let settled_now =
            self.settle.is_zero() || last_us == 0 || settled(last_us, now, self.settle);
        let stamp = settled_now.then_some(Stamp {
            generation,
            last_us,
            at_us: now,
        });
        let mut missing = Vec::new();
        let mut found: Vec<Option<Vec<u8>>> = stored
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let hit = s.and_then(|s| current(s, generation));
                if hit.is_none() {
                    missing.push(i);
                }
                hit
            })
            .collect();
        if !missing.is_empty() {
            let computed = compute(&missing)?;
            if computed.len() != missing.len() {
                return Err(too_few());
            }
            let store = settled_now && computed.iter().any(|c| matches!(c, Computed::Keep(_)));
            for (i, c) in missing.into_iter().zip(computed) {
                found[i] = Some(self.keep(&self.entry_key(&keys[i]), c, generation, store));
            }
        }
        Ok(Many {
            answers: found.into_iter().map(Option::unwrap_or_default).collect(),
            stamp,
        })
    }

    /// Whether answers kept under `kept` are still current, judged by `now`, the stamp
    /// of a read just made ([`Cache::get_many_stamped`]): no `invalidate` ran between
    /// the two, and `kept` is younger than the cache's TTL (which bounds, as for the
    /// entries, how long a change behind the plugin's back or a lost invalidation
    /// goes unseen).
    pub fn still(&self, kept: &Stamp, now: Option<&Stamp>) -> bool {
        !self.off()
            && now.is_some_and(|n| (n.generation, n.last_us) == (kept.generation, kept.last_us))
            && young(kept.at_us, now_us(), self.ttl)
    }

    /// The answer of a computation, stored at `entry` first when it is to be kept and
    /// `store` allows it.
    fn keep(&self, entry: &str, computed: Computed, generation: i64, store: bool) -> Vec<u8> {
        match computed {
            Computed::Keep(mut fresh) if store => {
                let len = fresh.len();
                fresh.extend_from_slice(&generation.to_le_bytes());
                if let Err(e) = kv::set(entry, &fresh, Some(self.ttl)) {
                    self.failed("storing an entry", &e);
                }
                fresh.truncate(len);
                fresh
            }
            other => other.into_bytes(),
        }
    }

    /// Forgets every cached answer: call after each write that can change one. A
    /// failure is logged; entries then live out their TTL. It also records when it ran,
    /// for caches with a settle time (before moving the generation on).
    pub fn invalidate(&self) {
        if self.off() {
            return;
        }
        // The time first: a reader that sees the new generation then sees it too.
        let at = now_us().to_string();
        if let Err(e) = kv::set(&self.invalidated_key(), at.as_bytes(), None) {
            self.failed("recording the invalidation", &e);
        }
        if let Err(e) = kv::incr(&self.generation_key(), 1, None) {
            self.failed("invalidating", &e);
        }
    }

    fn failed(&self, what: &str, e: &CapError) {
        failed(self.name, self.ttl, what, e);
    }
}

/// What [`Cache::get_many_stamped`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Many {
    /// One answer per key, in order.
    pub answers: Vec<Vec<u8>>,
    /// The state they were read under, when the cache keeps such answers.
    pub stamp: Option<Stamp>,
}

/// When a set of a [`Cache`]'s answers was computed: the generation and the last
/// invalidation then, and the time. Its text form (`Display`, `FromStr`) lets a peer keep the answers and hand the
/// stamp back later; an unreadable one is an error, treated as "not current".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    generation: i64,
    last_us: i64,
    at_us: i64,
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.generation, self.last_us, self.at_us)
    }
}

impl std::str::FromStr for Stamp {
    type Err = CapError;

    fn from_str(s: &str) -> Result<Self, CapError> {
        let bad = || CapError::Invalid(format!("{s:?} is not a cache stamp"));
        let mut parts = s.split('.').map(|p| p.parse::<i64>().map_err(|_| bad()));
        let (Some(generation), Some(last_us), Some(at_us), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(Stamp {
            generation: generation?,
            last_us: last_us?,
            at_us: at_us?,
        })
    }
}

/// Whether a stamp taken at `at_us` is younger than `ttl` at `now_us` (a stamp from the
/// future, a clock that went back, is not).
fn young(at_us: i64, now_us: i64, ttl: Duration) -> bool {
    let ttl_us = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
    let age = now_us.saturating_sub(at_us);
    (0..ttl_us).contains(&age)
}

/// Logs a KV failure of cache `name` (whose entries live `ttl`); a denied capability
/// turns every cache off, so it is logged once.
fn failed(name: &str, ttl: Duration, what: &str, e: &CapError) {
    if matches!(e, CapError::Denied(_)) {
        DENIED.store(true, Ordering::Relaxed);
    }
    crate::log::warn(
        &format!(
            "cache {name}: {what} failed ({}); answers are computed, and entries may live \
             out their {} s",
            crate::cap_error_message(e),
            ttl.as_secs()
        ),
        &[],
    );
}

/// `computed` as answers, when there is one per key.
fn answers<E>(
    computed: Vec<Computed>,
    keys: usize,
    too_few: impl FnOnce() -> E,
) -> Result<Vec<Vec<u8>>, E> {
    if computed.len() != keys {
        return Err(too_few());
    }
    Ok(computed.into_iter().map(Computed::into_bytes).collect())
}

/// A stored number (`what`: the generation, the last invalidation); absent counts as 0.
fn parse_number(raw: Option<Vec<u8>>, what: &str) -> Result<i64, CapError> {
    let Some(raw) = raw else { return Ok(0) };
    std::str::from_utf8(&raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| CapError::Invalid(format!("the cache's {what} is not an integer")))
}

/// A stored generation (absent counts as 0).
fn parse_generation(raw: Option<Vec<u8>>) -> Result<i64, CapError> {
    parse_number(raw, "generation")
}

/// The stored time of the last invalidation (absent counts as 0: none).
fn parse_invalidated(raw: Option<Vec<u8>>) -> Result<i64, CapError> {
    parse_number(raw, "last invalidation")
}

/// Microseconds since the Unix epoch, now.
fn now_us() -> i64 {
    i64::try_from(crate::now().unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// Whether an invalidation at `last_us` lies at least `settle` before `now_us`.
fn settled(last_us: i64, now_us: i64, settle: Duration) -> bool {
    let settle_us = i64::try_from(settle.as_micros()).unwrap_or(i64::MAX);
    now_us.saturating_sub(last_us) >= settle_us
}

/// The answer of a stored entry (the answer, then its generation in 8 bytes) when it
/// was computed under `generation`; taken apart in place, without a copy.
fn current(mut stored: Vec<u8>, generation: i64) -> Option<Vec<u8>> {
    let (answer, tag) = stored.split_last_chunk::<8>()?;
    if i64::from_le_bytes(*tag) != generation {
        return None;
    }
    let len = answer.len();
    stored.truncate(len);
    Some(stored)
}

/// An exact cache of one value per key (one user's cart) for data that carries a
/// revision: a number every write of the data bumps in the write's own transaction (a
/// counter column), so revisions grow in commit order.
///
/// The key holds the newest revision anyone stored (`kv.put-revision`: an older one
/// never replaces a newer one), with its value when known. After every write the
/// writer calls [`Revisioned::wrote`] with the revision its write made, and the value
/// after it when it knows it: applied once the write commits and before the writer's
/// answer leaves, so the entry is never older than any write already answered. A
/// reader serves a known value at once ([`Revisioned::get`]); else it reads the data
/// with its revision and offers it ([`Revisioned::offer`]), which stores it unless a
/// newer revision is there already. A writer may also start from the cached value
/// without a read, if its write's revision shows that nobody wrote in between (the
/// revision it made is the cached one plus one).
///
/// The TTL bounds staleness only when a write after commit is lost (the KV store
/// unreachable just then) or the data changes behind the plugin's back. Values are
/// tagged with the plugin's version; one version does not serve another's (a canary
/// reads the database while the stable version's value is there). The plugin must ask
/// for the `kv` capability.
#[derive(Debug, Clone, Copy)]
pub struct Revisioned {
    name: &'static str,
    version: &'static str,
    ttl: Duration,
}

/// What [`Revisioned::get`] found for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub revision: u64,
    /// The value at that revision; `None` when its writer did not know it, or it was
    /// stored by another version of the plugin.
    pub value: Option<Vec<u8>>,
}

impl Revisioned {
    /// A cache whose entries live at most `ttl` (zero turns it off); `version` (the
    /// plugin's) keeps one version's values from another's, as their shape may differ.
    pub const fn new(name: &'static str, version: &'static str, ttl: Duration) -> Self {
        Self { name, version, ttl }
    }

    fn off(&self) -> bool {
        self.ttl.is_zero() || DENIED.load(Ordering::Relaxed)
    }

    fn key(&self, key: &str) -> String {
        format!("rcache:{}:{key}", self.name)
    }

    /// The value stored: this version's tag, a newline, the value.
    fn tagged(&self, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.version.len() + 1 + value.len());
        out.extend_from_slice(self.version.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(value);
        out
    }

    /// The newest revision stored for `key`, with its value when known; `None` when
    /// nothing is stored (or the cache is off or failing).
    pub fn get(&self, key: &str) -> Option<Held> {
        if self.off() {
            return None;
        }
        let (revision, stored) = match kv::get_revision(&self.key(key)) {
            Ok(found) => found?,
            Err(e) => {
                self.failed("reading an entry", &e);
                return None;
            }
        };
        Some(Held {
            revision,
            value: untag(stored, self.version),
        })
    }

    /// Stores `value`, read together with its `revision` outside any write of this
    /// call (a read that saw the call's own uncommitted writes must use
    /// [`Revisioned::wrote`] instead), unless a newer revision is stored.
    pub fn offer(&self, key: &str, revision: u64, value: &[u8]) {
        if self.off() {
            return;
        }
        let stored = self.tagged(value);
        if let Err(e) = kv::put_revision(&self.key(key), revision, &stored, Some(self.ttl)) {
            self.failed("storing an entry", &e);
        }
    }

    /// Records, once this call's writes commit, that a write made `revision`, with the
    /// value after it when known (`None`: readers read the data again). Call it after
    /// every write of the data, with the revision that write returned. A failure is
    /// logged; the entry then lives out its TTL.
    pub fn wrote(&self, key: &str, revision: u64, value: Option<&[u8]>) {
        if self.off() {
            return;
        }
        let stored = value.map(|v| self.tagged(v)).unwrap_or_default();
        if let Err(e) =
            kv::put_revision_after_commit(&self.key(key), revision, &stored, Some(self.ttl))
        {
            self.failed("recording a write", &e);
        }
    }

    fn failed(&self, what: &str, e: &CapError) {
        failed(self.name, self.ttl, what, e);
    }
}

/// The value of a stored entry when `version` stored it (empty: not known).
fn untag(mut stored: Vec<u8>, version: &str) -> Option<Vec<u8>> {
    let tag = version.len();
    if stored.len() <= tag || !stored.starts_with(version.as_bytes()) || stored[tag] != b'\n' {
        return None;
    }
    stored.drain(..=tag);
    Some(stored)
}

/// A 128-bit digest of `key` (two independently seeded SipHash passes): short keys of
/// fixed length whatever the text, with collisions out of reach for a cache's size.
fn digest(key: &str) -> String {
    let pass = |seed: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        key.hash(&mut h);
        h.finish()
    };
    format!("{:016x}{:016x}", pass(0), pass(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_stable_fixed_length_and_tell_keys_apart() {
        let a = digest("SELECT 1 [Int(20), Int(0)]");
        assert_eq!(a, digest("SELECT 1 [Int(20), Int(0)]"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, digest("SELECT 1 [Int(20), Int(20)]"));
        assert_ne!(a, digest(""));
    }

    #[test]
    fn stamps_read_back_and_refuse_anything_else() {
        let stamp = Stamp {
            generation: 42,
            last_us: 7,
            at_us: 1_700_000_000_000_000,
        };
        assert_eq!(stamp.to_string(), "42.7.1700000000000000");
        assert_eq!("42.7.1700000000000000".parse::<Stamp>().ok(), Some(stamp));
        assert_eq!(
            "-1.0.5".parse::<Stamp>().ok().map(|s| s.generation),
            Some(-1)
        );
        for bad in [
            "",
            "42",
            "42.7",
            "42.7.",
            ".7.5",
            "a.7.5",
            "4.2.5.1",
            "42 .7.5",
            "99999999999999999999.1.1",
        ] {
            assert!(bad.parse::<Stamp>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_stamp_is_young_for_the_ttl_and_never_from_the_future() {
        let ttl = Duration::from_secs(10);
        assert!(young(1_000_000, 1_000_000, ttl));
        assert!(young(1_000_000, 10_999_999, ttl));
        assert!(!young(1_000_000, 11_000_000, ttl));
        assert!(!young(1_000_001, 1_000_000, ttl), "from the future");
        assert!(!young(1_000_000, 1_000_000, Duration::ZERO));
        assert!(young(i64::MIN, i64::MIN, Duration::MAX));
        assert!(!young(i64::MIN, i64::MAX, ttl), "no overflow");
    }

    #[test]
    fn answers_are_stored_only_once_the_last_invalidation_settled() {
        let s = Duration::from_secs(5);
        assert!(!settled(1_000_000, 1_000_000, s));
        assert!(!settled(1_000_000, 5_999_999, s));
        assert!(settled(1_000_000, 6_000_000, s));
        assert!(settled(1_000_000, 2_000_000, Duration::ZERO));
        // A clock that went back is not settled; no overflow at the extremes.
        assert!(!settled(6_000_000, 1_000_000, s));
        assert!(settled(i64::MIN, i64::MAX, s));
        assert!(!settled(i64::MAX, i64::MIN, s));
    }

    #[test]
    fn computed_answers_must_match_the_keys() {
        let two = vec![Computed::Keep(b"a".to_vec()), Computed::Pass(Vec::new())];
        assert_eq!(
            answers(two.clone(), 2, || "few"),
            Ok(vec![b"a".to_vec(), Vec::new()])
        );
        assert_eq!(answers(two, 3, || "few"), Err("few"));
    }

    #[test]
    fn derived_caches_share_the_name_and_generation() {
        let listing = Cache::new("listing", "1.0.0", Duration::from_secs(10));
        let products = listing
            .with_ttl(Duration::from_secs(60))
            .with_settle(Duration::from_secs(6));
        assert_eq!(products.generation_key(), listing.generation_key());
        assert_eq!(products.invalidated_key(), listing.invalidated_key());
        assert_ne!(products.entry_key("product:a"), listing.entry_key("SELECT"));
        // Short keys as they are, long ones by digest: the two never meet (a digest
        // has no `=`).
        assert!(products.entry_key("summary:p1").ends_with(":=summary:p1"));
        let long = "x".repeat(RAW_KEY_MAX + 1);
        assert!(!products.entry_key(&long).contains('='));
        assert!(products.entry_key(&long).len() < long.len());
        assert_eq!(products.ttl, Duration::from_secs(60));
        assert_eq!(listing.settle, Duration::ZERO);
    }

    #[test]
    fn a_revisioned_value_is_served_only_to_the_version_that_stored_it() {
        let c = Revisioned::new("cart", "1.2.0", Duration::from_secs(60));
        let stored = c.tagged(b"{\"lines\":[]}");
        assert_eq!(
            untag(stored.clone(), "1.2.0"),
            Some(b"{\"lines\":[]}".to_vec())
        );
        assert_eq!(untag(stored.clone(), "1.2.1"), None);
        assert_eq!(untag(stored.clone(), "1.2"), None);
        // An unknown value (empty), a truncated one: misses, never a panic.
        assert_eq!(untag(Vec::new(), "1.2.0"), None);
        assert_eq!(untag(b"1.2.0".to_vec(), "1.2.0"), None);
        assert_eq!(untag(c.tagged(b""), "1.2.0"), Some(Vec::new()));
        assert_eq!(c.key("u1"), "rcache:cart:u1");
    }

    #[test]
    fn an_entry_is_served_only_under_its_own_generation() {
        let mut stored = b"{\"total\":1}".to_vec();
        stored.extend_from_slice(&7i64.to_le_bytes());
        assert_eq!(current(stored.clone(), 7), Some(b"{\"total\":1}".to_vec()));
        assert_eq!(current(stored.clone(), 8), None);
        assert_eq!(current(stored[..5].to_vec(), 7), None);
        assert_eq!(current(7i64.to_le_bytes().to_vec(), 7), Some(Vec::new()));
    }
}

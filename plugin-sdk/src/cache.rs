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

/// A named cache of one plugin version's answers.
#[derive(Debug, Clone, Copy)]
pub struct Cache {
    name: &'static str,
    version: &'static str,
    ttl: Duration,
}

impl Cache {
    /// A cache whose entries live at most `ttl` (zero turns it off). `version` (the
    /// plugin's) keeps answers of one version from being served by another, as an
    /// answer's shape may change; the generation is shared by every version, so a
    /// write through either one invalidates both (a canary and its stable version).
    pub const fn new(name: &'static str, version: &'static str, ttl: Duration) -> Self {
        Self { name, version, ttl }
    }

    fn off(&self) -> bool {
        self.ttl.is_zero() || DENIED.load(Ordering::Relaxed)
    }

    fn generation_key(&self) -> String {
        format!("cache:{}:generation", self.name)
    }

    fn generation(&self) -> Result<i64, CapError> {
        let Some(raw) = kv::get(&self.generation_key())? else {
            return Ok(0);
        };
        std::str::from_utf8(&raw)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| CapError::Invalid("the cache generation is not an integer".into()))
    }

    /// The cached answer for `key`, or `compute`'s (stored for the next caller when it
    /// says [`Computed::Keep`]). `key` may be any text that determines the answer, such
    /// as the statement and parameters that produce it; it is hashed.
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
        let entry = format!("cache:{}:{}:{}", self.name, self.version, digest(key));
        match kv::get(&entry) {
            Ok(Some(stored)) => {
                if let Some(answer) = current(stored, generation) {
                    return Ok(answer);
                }
            }
            Ok(None) => {}
            Err(e) => self.failed("reading an entry", &e),
        }
        match compute()? {
            Computed::Keep(mut fresh) => {
                let len = fresh.len();
                fresh.extend_from_slice(&generation.to_le_bytes());
                if let Err(e) = kv::set(&entry, &fresh, Some(self.ttl)) {
                    self.failed("storing an entry", &e);
                }
                fresh.truncate(len);
                Ok(fresh)
            }
            Computed::Pass(fresh) => Ok(fresh),
        }
    }

    /// Forgets every cached answer: call after each write that can change one. A
    /// failure is logged; entries then live out their TTL.
    pub fn invalidate(&self) {
        if self.off() {
            return;
        }
        if let Err(e) = kv::incr(&self.generation_key(), 1, None) {
            self.failed("invalidating", &e);
        }
    }

    fn failed(&self, what: &str, e: &CapError) {
        if matches!(e, CapError::Denied(_)) {
            DENIED.store(true, Ordering::Relaxed);
        }
        crate::log::warn(
            &format!(
                "cache {}: {what} failed ({}); answers are computed, and entries may live \
                 out their {} s",
                self.name,
                crate::cap_error_message(e),
                self.ttl.as_secs()
            ),
            &[],
        );
    }
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
    fn an_entry_is_served_only_under_its_own_generation() {
        let mut stored = b"{\"total\":1}".to_vec();
        stored.extend_from_slice(&7i64.to_le_bytes());
        assert_eq!(current(stored.clone(), 7), Some(b"{\"total\":1}".to_vec()));
        assert_eq!(current(stored.clone(), 8), None);
        assert_eq!(current(stored[..5].to_vec(), 7), None);
        assert_eq!(current(7i64.to_le_bytes().to_vec(), 7), Some(Vec::new()));
    }
}

//! Read-through caching of derived answers (a listing page, a report) in the plugin's
//! key-value space, invalidated by a generation counter.
//!
//! Every write that can change a cached answer calls [`Cache::invalidate`], which moves
//! the generation on; entries are keyed by the generation read *before* computing, so
//! an answer computed from data a concurrent write then changed is filed under the old
//! generation and never read again. Entries also expire after the cache's TTL, which
//! bounds staleness if an invalidation is lost (the KV store unreachable) or the data
//! is changed behind the plugin's back. The plugin must ask for the `kv` capability.
//!
//! The cache is an optimisation only: a KV failure while reading or filling it is
//! logged and the answer is computed as if there were no cache.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::error::CapError;
use crate::kv;

/// What a computation produced: an answer to keep for the next caller, or one to
/// pass on only (an empty result a made-up key produced, say: caching those would let
/// any client fill the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Computed {
    Keep(Vec<u8>),
    Pass(Vec<u8>),
}

impl Computed {
    fn into_bytes(self) -> Vec<u8> {
        match self {
            Computed::Keep(b) | Computed::Pass(b) => b,
        }
    }
}

/// A named cache; `name` should carry the plugin's version (an answer's shape may
/// change between versions, and a shared KV store outlives a swap).
#[derive(Debug, Clone, Copy)]
pub struct Cache {
    name: &'static str,
    ttl: Duration,
}

impl Cache {
    /// A cache whose entries live at most `ttl`; a zero `ttl` disables it.
    pub const fn new(name: &'static str, ttl: Duration) -> Self {
        Self { name, ttl }
    }

    /// The same cache with another TTL (from the plugin's configuration, say).
    pub const fn with_ttl(self, ttl: Duration) -> Self {
        Self { ttl, ..self }
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
        if self.ttl.is_zero() {
            return compute().map(Computed::into_bytes);
        }
        let generation = match self.generation() {
            Ok(g) => g,
            Err(e) => {
                self.warn("reading the generation", &e);
                return compute().map(Computed::into_bytes);
            }
        };
        let entry = format!("cache:{}:{generation}:{}", self.name, digest(key));
        match kv::get(&entry) {
            Ok(Some(hit)) => return Ok(hit),
            Ok(None) => {}
            Err(e) => self.warn("reading an entry", &e),
        }
        match compute()? {
            Computed::Keep(fresh) => {
                if let Err(e) = kv::set(&entry, &fresh, Some(self.ttl)) {
                    self.warn("storing an entry", &e);
                }
                Ok(fresh)
            }
            Computed::Pass(fresh) => Ok(fresh),
        }
    }

    /// Forgets every cached answer: call after each write that can change one. A
    /// failure is logged; entries then live out their TTL.
    pub fn invalidate(&self) {
        if self.ttl.is_zero() {
            return;
        }
        if let Err(e) = kv::incr(&self.generation_key(), 1, None) {
            crate::log::error(
                &format!(
                    "cache {}: invalidating failed ({}); entries expire within {} s",
                    self.name,
                    crate::cap_error_message(&e),
                    self.ttl.as_secs()
                ),
                &[],
            );
        }
    }

    fn warn(&self, what: &str, e: &CapError) {
        crate::log::warn(
            &format!(
                "cache {}: {what} failed ({}); computing the answer",
                self.name,
                crate::cap_error_message(e)
            ),
            &[],
        );
    }
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
}

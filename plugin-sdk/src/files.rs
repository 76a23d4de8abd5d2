//! The plugin's own files: a directory tree only it can reach, with a quota.
//!
//! Needs the operator's grant `files:MiB` (the quota); without it every call is
//! `CapError::Denied`. Paths are relative, `/`-separated segments of letters, digits,
//! `.`, `_` and `-`, each starting with a letter or digit (`images/p_1/large.webp`).

use crate::bindings::kirana::platform::files as wit;
use crate::error::CapError;

pub use wit::{FileInfo, QuotaUsage};

/// A file's bytes, or `None` when there is none.
pub fn read(path: &str) -> Result<Option<Vec<u8>>, CapError> {
    wit::read(path)
}

/// Creates or replaces a file. `Invalid` for a bad path or an oversized file;
/// `Conflict` when the quota would be exceeded (then nothing changed).
pub fn write(path: &str, data: &[u8]) -> Result<(), CapError> {
    wit::write(path, data)
}

/// Deletes a file; `false` when there was none.
pub fn delete(path: &str) -> Result<bool, CapError> {
    wit::delete(path)
}

/// Files whose path starts with `prefix` (empty: all), by path, at most `limit` (1000).
pub fn list(prefix: &str, limit: u32) -> Result<Vec<FileInfo>, CapError> {
    wit::list_files(prefix, limit)
}

/// Bytes stored, and the quota.
pub fn usage() -> Result<QuotaUsage, CapError> {
    wit::usage()
}

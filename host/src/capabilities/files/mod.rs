//! `kirana:platform/files`: each plugin's own directory tree, with a quota.
//!
//! The operator's grant `files:MiB` is both the approval and the quota (the manifest
//! record cannot grow a field without breaking older plugins, so a plugin documents
//! that it needs the grant; without it every call is `denied`). The capability checks
//! the grant, the path ([`check_path`]) and the size, then asks a [`FileStore`]:
//!
//! - [`dir::DirStore`] keeps files under `<dir>/<plugin>/` and opens every path through
//!   a `cap-std` directory handle, so neither `..`, an absolute path nor a symlink
//!   planted in the tree can lead out of it;
//! - [`db::DbStore`] keeps them in the host database, so every replica serves the same
//!   files.
//!
//! Both keep each plugin's usage exact under concurrent writes: the directory store
//! serialises one plugin's writes in process, the database store takes the plugin's
//! usage row first in each write's transaction.

pub mod db;
pub mod dir;

use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;

use crate::bindings::kirana::platform::files::{FileInfo, Host, QuotaUsage};
use crate::bindings::wit;
use crate::capabilities::denied;
use crate::config::{Config, FilesBackend};
use crate::core::View;
use crate::storage::Db;

/// Longest path, in bytes.
pub const MAX_PATH: usize = 255;
/// Most directories a path may go down.
pub const MAX_DEPTH: usize = 8;
/// Most entries one `list` returns.
pub const MAX_LIST: u32 = 1000;
const MIB: u64 = 1024 * 1024;

/// Where plugin files live. `plugin` is a registered plugin's name and `path` passed
/// [`check_path`] (a `prefix` passed [`check_prefix`]).
#[async_trait]
pub trait FileStore: Send + Sync {
    async fn read(&self, plugin: &str, path: &str) -> Result<Option<Vec<u8>>, wit::Error>;
    /// Creates or replaces the file unless the plugin's bytes would then exceed
    /// `quota`: `conflict` then, and nothing changes.
    async fn write(
        &self,
        plugin: &str,
        path: &str,
        data: Vec<u8>,
        quota: u64,
    ) -> Result<(), wit::Error>;
    async fn delete(&self, plugin: &str, path: &str) -> Result<bool, wit::Error>;
    /// Files only (no directories, no symlinks), ordered by path.
    async fn list(
        &self,
        plugin: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<FileInfo>, wit::Error>;
    /// Bytes the plugin stores.
    async fn used(&self, plugin: &str) -> Result<u64, wit::Error>;
}

/// The capability's shared state.
pub struct Files {
    store: Arc<dyn FileStore>,
    max_file: u64,
}

impl Files {
    /// The store `[files] backend` names (`auto`: the database on PostgreSQL, where
    /// replicas share it, a directory with SQLite).
    pub fn new(config: &Config, db: &Db) -> Result<Self> {
        let use_db = match config.files.backend {
            FilesBackend::Database => true,
            FilesBackend::Directory => false,
            FilesBackend::Auto => config.uses_postgres(),
        };
        let store: Arc<dyn FileStore> = if use_db {
            Arc::new(db::DbStore::new(db.clone()))
        } else {
            let root = if config.files.dir.as_os_str().is_empty() {
                config.data_dir.join("files")
            } else {
                config.files.dir.clone()
            };
            Arc::new(dir::DirStore::open(&root)?)
        };
        Ok(Self {
            store,
            max_file: u64::from(config.files.max_file_mb) * MIB,
        })
    }

    /// The store, for the host's own uses (tests, the console).
    pub fn store(&self) -> &Arc<dyn FileStore> {
        &self.store
    }
}

/// A file path: relative, `/`-separated segments that start with a letter or digit and
/// hold only letters, digits, `.`, `_` and `-`; at most [`MAX_DEPTH`] directories down
/// and [`MAX_PATH`] bytes. So no `..`, no `.`, no absolute path, no hidden names (the
/// stores keep their temporary files there), no backslashes or NULs.
pub fn check_path(path: &str) -> Result<(), wit::Error> {
    let bad = |why: &str| {
        Err(wit::Error::Invalid(format!(
            "file path {path:?} {why}: use relative segments of letters, digits, '.', '_' and '-' separated by '/', each starting with a letter or digit"
        )))
    };
    if path.is_empty() {
        return bad("is empty");
    }
    if path.len() > MAX_PATH {
        return bad(&format!("is longer than {MAX_PATH} bytes"));
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() > MAX_DEPTH + 1 {
        return bad(&format!("is more than {MAX_DEPTH} directories deep"));
    }
    for s in segments {
        let first_ok = s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
        let rest_ok = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !first_ok || !rest_ok {
            return bad("has a segment that is empty, hidden, '..' or holds other characters");
        }
    }
    Ok(())
}

/// A `list` prefix: empty, or what a path may start with.
pub fn check_prefix(prefix: &str) -> Result<(), wit::Error> {
    let ok = prefix.len() <= MAX_PATH
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        && !prefix.starts_with('/')
        && !prefix.split('/').any(|s| s == "..");
    if ok {
        Ok(())
    } else {
        Err(wit::Error::Invalid(format!(
            "list prefix {prefix:?} must be the start of a relative file path"
        )))
    }
}

impl View<'_, Files> {
    /// The plugin's quota in bytes: its `files:MiB` grant.
    fn quota(&self) -> Result<u64, wit::Error> {
        match self.plugin.grants.files_mb {
            Some(mb) => Ok(mb * MIB),
            None => Err(wit::Error::Denied(format!(
                "{}: grant files:MiB (its quota), e.g. --grant files:64",
                crate::capabilities::error_text(&denied("files", &self.plugin.name))
            ))),
        }
    }
}

impl Host for View<'_, Files> {
    async fn read(
        &mut self,
        path: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wit::Error>> {
        if let Err(e) = self.quota().and_then(|_| check_path(&path)) {
            return Ok(Err(e));
        }
        Ok(self.state.store.read(&self.plugin.name, &path).await)
    }

    async fn write(
        &mut self,
        path: String,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let quota = match self.quota().and_then(|q| check_path(&path).map(|_| q)) {
            Ok(q) => q,
            Err(e) => return Ok(Err(e)),
        };
        if data.len() as u64 > self.state.max_file {
            return Ok(Err(wit::Error::Invalid(format!(
                "{} bytes is over the largest file this host accepts ({} MiB, [files] max_file_mb)",
                data.len(),
                self.state.max_file / MIB
            ))));
        }
        Ok(self
            .state
            .store
            .write(&self.plugin.name, &path, data, quota)
            .await)
    }

    async fn delete(&mut self, path: String) -> wasmtime::Result<Result<bool, wit::Error>> {
        if let Err(e) = self.quota().and_then(|_| check_path(&path)) {
            return Ok(Err(e));
        }
        Ok(self.state.store.delete(&self.plugin.name, &path).await)
    }

    async fn list_files(
        &mut self,
        prefix: String,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<FileInfo>, wit::Error>> {
        if let Err(e) = self.quota().and_then(|_| check_prefix(&prefix)) {
            return Ok(Err(e));
        }
        let limit = limit.min(MAX_LIST) as usize;
        Ok(self
            .state
            .store
            .list(&self.plugin.name, &prefix, limit)
            .await)
    }

    async fn usage(&mut self) -> wasmtime::Result<Result<QuotaUsage, wit::Error>> {
        let quota = match self.quota() {
            Ok(q) => q,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self
            .state
            .store
            .used(&self.plugin.name)
            .await
            .map(|used| QuotaUsage { used, quota }))
    }
}

/// The quota's refusal, the same from every store.
pub(crate) fn over_quota(plugin: &str, used: u64, adding: u64, quota: u64) -> wit::Error {
    wit::Error::Conflict(format!(
        "plugin {plugin} stores {used} bytes; {adding} more would exceed its files quota of {quota} bytes (the operator raises it with the files:MiB grant)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_relative_plain_and_shallow() {
        for good in [
            "a",
            "images/p_1/large.webp",
            "a-b_c.d/e",
            "0/1/2/3/4/5/6/7/8",
        ] {
            assert!(check_path(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            ".hidden",
            "a/.tmp-1",
            "a//b",
            "a/",
            "a\\b",
            "a\0b",
            "C:/x",
            "ü",
            "0/1/2/3/4/5/6/7/8/9",
        ] {
            assert!(
                matches!(check_path(bad), Err(wit::Error::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(check_path(&"a".repeat(MAX_PATH + 1)).is_err());
        assert!(check_prefix("").is_ok() && check_prefix("images/p_").is_ok());
        for bad in ["/", "../", "a/../", "a%"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }
}

//! Plugin files in a local directory (one process, or a volume every replica mounts).
//!
//! Every path is opened relative to a `cap_std::fs::Dir` for the plugin's own
//! subdirectory: cap-std resolves it without ever leaving that directory, so a `..`,
//! an absolute path or a symlink pointing elsewhere (say, one an operator's script left
//! there) is an error, not a way out. Paths were checked before they get here; this is
//! the second wall. Files are written to a hidden temporary name and renamed over the
//! target, so a reader never sees half a file. One plugin's writes and deletes are
//! serialised, which keeps its usage count exact.

use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use dashmap::DashMap;
use tokio::sync::Mutex;

use super::{over_quota, FileStore, MAX_DEPTH};
use crate::bindings::kirana::platform::files::FileInfo;
use crate::bindings::wit;
use crate::storage::rfc3339_ms;

pub struct DirStore {
    root: Arc<Dir>,
    /// Per plugin: the lock its writes take, holding its usage once counted.
    usage: DashMap<String, Arc<Mutex<Option<u64>>>>,
}

impl DirStore {
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("creating the plugin files directory {}", root.display()))?;
        let dir = Dir::open_ambient_dir(root, ambient_authority())
            .with_context(|| format!("opening the plugin files directory {}", root.display()))?;
        Ok(Self {
            root: Arc::new(dir),
            usage: DashMap::new(),
        })
    }

    fn lock(&self, plugin: &str) -> Arc<Mutex<Option<u64>>> {
        self.usage
            .entry(plugin.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(None)))
            .clone()
    }

    /// Runs `f` on the plugin's directory (made when missing) on a blocking thread.
    async fn with_dir<T, F>(&self, plugin: &str, f: F) -> Result<T, wit::Error>
    where
        T: Send + 'static,
        F: FnOnce(&Dir) -> std::io::Result<T> + Send + 'static,
    {
        let root = self.root.clone();
        let plugin = plugin.to_string();
        tokio::task::spawn_blocking(move || {
            if plugin.is_empty() || plugin.starts_with('.') || plugin.contains('/') {
                return Err(wit::Error::Denied(format!(
                    "{plugin:?} cannot have a files directory"
                )));
            }
            root.create_dir_all(&plugin)
                .and_then(|_| root.open_dir(&plugin))
                .and_then(|dir| f(&dir))
                .map_err(io_err)
        })
        .await
        .map_err(|e| wit::Error::Failed(format!("files task: {e}")))?
    }

    /// The plugin's usage, counted once and then kept up to date under `slot`'s lock.
    async fn counted(&self, plugin: &str, slot: &mut Option<u64>) -> Result<u64, wit::Error> {
        if let Some(n) = *slot {
            return Ok(n);
        }
        let n = self
            .with_dir(plugin, |dir| {
                let mut total = 0;
                walk(dir, "", 0, &mut |_, size, _| total += size)?;
                Ok(total)
            })
            .await?;
        *slot = Some(n);
        Ok(n)
    }
}

/// Visits every regular file under `dir` (symlinks are skipped, never followed):
/// `f(path, size, modified_ms)`.
fn walk(
    dir: &Dir,
    prefix: &str,
    depth: usize,
    f: &mut dyn FnMut(String, u64, i64),
) -> std::io::Result<()> {
    let mut entries: Vec<_> = dir.entries()?.collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        let path = format!("{prefix}{name}");
        if kind.is_dir() && depth < MAX_DEPTH {
            walk(&entry.open_dir()?, &format!("{path}/"), depth + 1, f)?;
        } else if kind.is_file() {
            let meta = entry.metadata()?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.into_std().duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            f(path, meta.len(), modified);
        }
    }
    Ok(())
}

/// The size of the regular file at `path`, if there is one (a symlink is not).
fn size_of(dir: &Dir, path: &str) -> std::io::Result<Option<u64>> {
    match dir.symlink_metadata(path) {
        Ok(m) if m.is_file() => Ok(Some(m.len())),
        Ok(m) if m.is_dir() => Err(std::io::Error::new(
            ErrorKind::IsADirectory,
            "the path is a directory",
        )),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn io_err(e: std::io::Error) -> wit::Error {
    match e.kind() {
        // cap-std's answer for a path (or symlink) that would leave the directory.
        ErrorKind::PermissionDenied => {
            wit::Error::Denied(format!("the path leads outside the plugin's files ({e})"))
        }
        ErrorKind::IsADirectory | ErrorKind::NotADirectory | ErrorKind::DirectoryNotEmpty => {
            wit::Error::Invalid(format!("the path clashes with a directory: {e}"))
        }
        _ => wit::Error::Failed(format!("plugin files: {e}")),
    }
}

#[async_trait]
impl FileStore for DirStore {
    async fn read(&self, plugin: &str, path: &str) -> Result<Option<Vec<u8>>, wit::Error> {
        let path = path.to_string();
        self.with_dir(plugin, move |dir| match dir.read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    async fn write(
        &self,
        plugin: &str,
        path: &str,
        data: Vec<u8>,
        quota: u64,
    ) -> Result<(), wit::Error> {
        let lock = self.lock(plugin);
        let mut slot = lock.lock().await;
        let used = self.counted(plugin, &mut slot).await?;
        let path = path.to_string();
        let check = path.clone();
        let old = self
            .with_dir(plugin, move |dir| size_of(dir, &check))
            .await?
            .unwrap_or(0);
        let len = data.len() as u64;
        let after = used - old.min(used) + len;
        if after > quota {
            return Err(over_quota(plugin, used, len, quota));
        }
        self.with_dir(plugin, move |dir| {
            if let Some((parent, _)) = path.rsplit_once('/') {
                dir.create_dir_all(parent)?;
            }
            let tmp = match path.rsplit_once('/') {
                Some((parent, _)) => format!("{parent}/.tmp-{}", uuid::Uuid::new_v4().simple()),
                None => format!(".tmp-{}", uuid::Uuid::new_v4().simple()),
            };
            dir.write(&tmp, &data)?;
            dir.rename(&tmp, dir, &path).inspect_err(|_| {
                let _ = dir.remove_file(&tmp);
            })
        })
        .await?;
        *slot = Some(after);
        Ok(())
    }

    async fn delete(&self, plugin: &str, path: &str) -> Result<bool, wit::Error> {
        let lock = self.lock(plugin);
        let mut slot = lock.lock().await;
        let used = self.counted(plugin, &mut slot).await?;
        let path = path.to_string();
        let removed = self
            .with_dir(plugin, move |dir| match size_of(dir, &path)? {
                Some(size) => dir.remove_file(&path).map(|_| Some(size)),
                None => Ok(None),
            })
            .await?;
        if let Some(size) = removed {
            *slot = Some(used.saturating_sub(size));
        }
        Ok(removed.is_some())
    }

    async fn list(
        &self,
        plugin: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<FileInfo>, wit::Error> {
        let prefix = prefix.to_string();
        self.with_dir(plugin, move |dir| {
            let mut out = Vec::new();
            walk(dir, "", 0, &mut |path, size, modified| {
                if path.starts_with(&prefix) && out.len() < limit {
                    out.push(FileInfo {
                        path,
                        size,
                        modified_at: rfc3339_ms(modified),
                    });
                }
            })?;
            Ok(out)
        })
        .await
    }

    async fn used(&self, plugin: &str) -> Result<u64, wit::Error> {
        let lock = self.lock(plugin);
        let mut slot = lock.lock().await;
        self.counted(plugin, &mut slot).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: u64 = 1000;

    #[tokio::test]
    async fn files_round_trip_and_count_against_the_quota() {
        let tmp = tempfile::tempdir().unwrap();
        let s = DirStore::open(tmp.path()).unwrap();
        s.write("p", "a/b.txt", vec![1; 300], Q).await.unwrap();
        s.write("p", "c", vec![2; 600], Q).await.unwrap();
        assert_eq!(s.read("p", "a/b.txt").await.unwrap(), Some(vec![1; 300]));
        assert_eq!(s.used("p").await.unwrap(), 900);
        // Replacing counts the difference; going over refuses and changes nothing.
        s.write("p", "c", vec![3; 700], Q).await.unwrap();
        let err = s.write("p", "d", vec![4; 1], Q).await.unwrap_err();
        assert!(matches!(err, wit::Error::Conflict(_)), "{err:?}");
        assert_eq!(s.read("p", "d").await.unwrap(), None);
        assert_eq!(s.used("p").await.unwrap(), 1000);
        // Another plugin has its own tree and count.
        assert_eq!(s.read("q", "c").await.unwrap(), None);
        assert_eq!(s.used("q").await.unwrap(), 0);
        assert!(s.delete("p", "c").await.unwrap());
        assert!(!s.delete("p", "c").await.unwrap());
        assert_eq!(s.used("p").await.unwrap(), 300);
        let listed = s.list("p", "a/", 10).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].path.as_str(), listed[0].size), ("a/b.txt", 300));
        // A fresh store (a restart) counts what is on disk.
        let again = DirStore::open(tmp.path()).unwrap();
        assert_eq!(again.used("p").await.unwrap(), 300);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_symlink_in_the_tree_never_leads_out_of_it() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("secret.txt");
        std::fs::write(&outside, b"host secret").unwrap();
        let s = DirStore::open(&tmp.path().join("files")).unwrap();
        s.write("p", "ok", b"mine".to_vec(), Q).await.unwrap();
        let plugin_dir = tmp.path().join("files/p");
        std::os::unix::fs::symlink(&outside, plugin_dir.join("link")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), plugin_dir.join("up")).unwrap();
        for path in ["link", "up/secret.txt"] {
            let err = s.read("p", path).await.unwrap_err();
            assert!(matches!(err, wit::Error::Denied(_)), "{path}: {err:?}");
        }
        // Writing through them is refused too, and nothing outside changes.
        assert!(s
            .write("p", "up/secret.txt", b"x".to_vec(), Q)
            .await
            .is_err());
        assert_eq!(std::fs::read(&outside).unwrap(), b"host secret");
        // Listing and usage skip them.
        let paths: Vec<String> = s
            .list("p", "", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(paths, vec!["ok".to_string()]);
        assert_eq!(s.used("p").await.unwrap(), 4);
    }
}

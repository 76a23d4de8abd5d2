//! Plugin files in the host database (`plugin_files`), so every replica serves the same
//! files with nothing else to run. Each write's transaction first takes the plugin's
//! row in `plugin_file_usage` (a row lock on PostgreSQL; SQLite has one writer), so
//! concurrent writes of one plugin, on any replica, keep its usage exact and never
//! pass the quota.

use async_trait::async_trait;
use sqlx::Row;

use super::{over_quota, FileStore};
use crate::bindings::kirana::platform::files::FileInfo;
use crate::bindings::wit;
use crate::storage::{now_ms, rfc3339_ms, Db};

pub struct DbStore {
    db: Db,
}

impl DbStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Opens a write transaction holding the plugin's usage row; returns its usage.
    async fn begin(
        &self,
        plugin: &str,
    ) -> Result<(sqlx::Transaction<'static, sqlx::Any>, u64), wit::Error> {
        let mut tx = self
            .db
            .pool
            .begin_with(self.db.begin_statement())
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO plugin_file_usage (plugin, used) VALUES ($1, 0) ON CONFLICT (plugin) DO NOTHING",
        )
        .bind(plugin)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        // Writing the row takes its lock before anything is read.
        sqlx::query("UPDATE plugin_file_usage SET used = used WHERE plugin = $1")
            .bind(plugin)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let used: i64 = sqlx::query("SELECT used FROM plugin_file_usage WHERE plugin = $1")
            .bind(plugin)
            .fetch_one(&mut *tx)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(db_err)?;
        Ok((tx, u64::try_from(used).unwrap_or(0)))
    }
}

fn db_err(e: sqlx::Error) -> wit::Error {
    wit::Error::Failed(format!("plugin files store: {e}"))
}

fn size(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn size_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    plugin: &str,
    path: &str,
) -> Result<Option<u64>, wit::Error> {
    let row = sqlx::query("SELECT size FROM plugin_files WHERE plugin = $1 AND path = $2")
        .bind(plugin)
        .bind(path)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?;
    row.map(|r| {
        r.try_get::<i64, _>(0)
            .map(|n| u64::try_from(n).unwrap_or(0))
    })
    .transpose()
    .map_err(db_err)
}

async fn set_used(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    plugin: &str,
    used: u64,
) -> Result<(), wit::Error> {
    sqlx::query("UPDATE plugin_file_usage SET used = $1 WHERE plugin = $2")
        .bind(size(used))
        .bind(plugin)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

#[async_trait]
impl FileStore for DbStore {
    async fn read(&self, plugin: &str, path: &str) -> Result<Option<Vec<u8>>, wit::Error> {
        let row = sqlx::query("SELECT data FROM plugin_files WHERE plugin = $1 AND path = $2")
            .bind(plugin)
            .bind(path)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| r.try_get::<Vec<u8>, _>(0))
            .transpose()
            .map_err(db_err)
    }

    async fn write(
        &self,
        plugin: &str,
        path: &str,
        data: Vec<u8>,
        quota: u64,
    ) -> Result<(), wit::Error> {
        let (mut tx, used) = self.begin(plugin).await?;
        let old = size_in(&mut tx, plugin, path).await?.unwrap_or(0);
        let len = data.len() as u64;
        let after = used - old.min(used) + len;
        if after > quota {
            return Err(over_quota(plugin, used, len, quota));
        }
        sqlx::query(
            "INSERT INTO plugin_files (plugin, path, data, size, modified_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (plugin, path) DO UPDATE SET data = excluded.data, size = excluded.size, \
             modified_at = excluded.modified_at",
        )
        .bind(plugin)
        .bind(path)
        .bind(data)
        .bind(size(len))
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        set_used(&mut tx, plugin, after).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn delete(&self, plugin: &str, path: &str) -> Result<bool, wit::Error> {
        let (mut tx, used) = self.begin(plugin).await?;
        let Some(old) = size_in(&mut tx, plugin, path).await? else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM plugin_files WHERE plugin = $1 AND path = $2")
            .bind(plugin)
            .bind(path)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        set_used(&mut tx, plugin, used.saturating_sub(old)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn list(
        &self,
        plugin: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<FileInfo>, wit::Error> {
        let rows = sqlx::query(
            "SELECT path, size, modified_at FROM plugin_files \
             WHERE plugin = $1 AND substr(path, 1, CAST($2 AS INTEGER)) = $3 ORDER BY path LIMIT $4",
        )
        .bind(plugin)
        .bind(size(prefix.len() as u64))
        .bind(prefix)
        .bind(size(limit as u64))
        .fetch_all(&self.db.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(FileInfo {
                    path: r.try_get(0)?,
                    size: u64::try_from(r.try_get::<i64, _>(1)?).unwrap_or(0),
                    modified_at: rfc3339_ms(r.try_get(2)?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db_err)
    }

    async fn used(&self, plugin: &str) -> Result<u64, wit::Error> {
        let row = sqlx::query("SELECT used FROM plugin_file_usage WHERE plugin = $1")
            .bind(plugin)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_err)?;
        Ok(row
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()
            .map_err(db_err)?
            .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }
}

//! The registry's tables in the host database: installed versions with their component
//! bytes (stored once per sha256) and manifests, each plugin's state (live version, the
//! version before it, live or disabled), and the history of operator actions.

use anyhow::Result;
use serde::Serialize;
use sqlx::Row;

use crate::storage::{now_ms, rfc3339_ms, Db};

/// One installed version (without its bytes).
#[derive(Debug, Clone, Serialize)]
pub struct VersionRow {
    #[serde(skip)]
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub size: i64,
    /// RFC 3339.
    pub installed_at: String,
    pub installed_by: Option<String>,
    /// Whether the component bytes are stored (rows from before the registry kept
    /// bytes have none and are re-seeded from their file).
    #[serde(skip)]
    pub has_bytes: bool,
}

/// A plugin's state.
#[derive(Debug, Clone)]
pub struct StateRow {
    pub name: String,
    pub live_version: Option<String>,
    pub previous_version: Option<String>,
    /// `live` or `disabled`.
    pub state: String,
    /// A running canary's version and share of requests (percent).
    pub canary_version: Option<String>,
    pub canary_percent: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    pub action: String,
    pub version: Option<String>,
    pub actor: Option<String>,
    pub detail: Option<String>,
    /// RFC 3339.
    pub at: String,
}

const VERSION_COLUMNS: &str =
    "v.name, v.version, v.sha256, v.size, v.installed_at, v.installed_by, \
     (SELECT COUNT(*) FROM plugin_components c WHERE c.sha256 = v.sha256) AS has_bytes";

fn version_row(r: &sqlx::any::AnyRow) -> Result<VersionRow, sqlx::Error> {
    let has: i64 = r.try_get("has_bytes")?;
    Ok(VersionRow {
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        sha256: r.try_get("sha256")?,
        size: r.try_get("size")?,
        installed_at: rfc3339_ms(r.try_get("installed_at")?),
        installed_by: r.try_get("installed_by")?,
        has_bytes: has > 0,
    })
}

/// Every installed version, by plugin then install time.
pub async fn all_versions(db: &Db) -> Result<Vec<VersionRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {VERSION_COLUMNS} FROM plugin_versions v ORDER BY v.name, v.installed_at, v.version"
    ))
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(version_row).collect::<Result<_, _>>()?)
}

pub async fn version(db: &Db, name: &str, version: &str) -> Result<Option<VersionRow>> {
    let row = sqlx::query(&format!(
        "SELECT {VERSION_COLUMNS} FROM plugin_versions v WHERE v.name = $1 AND v.version = $2"
    ))
    .bind(name)
    .bind(version)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.as_ref().map(version_row).transpose()?)
}

/// The newest installed version of `name` by semantic version.
pub async fn newest_version(db: &Db, name: &str) -> Result<Option<VersionRow>> {
    let mut all: Vec<VersionRow> = all_versions(db)
        .await?
        .into_iter()
        .filter(|v| v.name == name)
        .collect();
    all.sort_by(|a, b| {
        let pa = semver::Version::parse(&a.version).ok();
        let pb = semver::Version::parse(&b.version).ok();
        pa.cmp(&pb)
    });
    Ok(all.pop())
}

/// The stored manifest (JSON) of a version.
pub async fn manifest(db: &Db, name: &str, version: &str) -> Result<Option<serde_json::Value>> {
    let row = sqlx::query("SELECT manifest FROM plugin_versions WHERE name = $1 AND version = $2")
        .bind(name)
        .bind(version)
        .fetch_optional(&db.pool)
        .await?;
    let text: Option<String> = row
        .map(|r| r.try_get::<Option<String>, _>("manifest"))
        .transpose()?
        .flatten();
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

pub async fn component(db: &Db, sha256: &str) -> Result<Option<Vec<u8>>> {
    let row = sqlx::query("SELECT bytes FROM plugin_components WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|r| r.try_get::<Vec<u8>, _>("bytes")).transpose()?)
}

/// A version to record.
pub struct NewVersion<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub sha256: &'a str,
    pub bytes: &'a [u8],
    pub manifest_json: &'a str,
    pub installed_by: &'a str,
}

/// Records a version with its bytes and manifest. With `replace`, an existing row of
/// the same version is overwritten (development: `follow_files`).
pub async fn insert_version(db: &Db, v: &NewVersion<'_>, replace: bool) -> Result<()> {
    let NewVersion {
        name,
        version,
        sha256,
        bytes,
        manifest_json,
        installed_by,
    } = *v;
    let mut tx = db.pool.begin_with(db.begin_statement()).await?;
    sqlx::query(
        "INSERT INTO plugin_components (sha256, bytes) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha256)
    .bind(bytes.to_vec())
    .execute(&mut *tx)
    .await?;
    let conflict = if replace {
        "ON CONFLICT (name, version) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, \
         installed_at = excluded.installed_at, installed_by = excluded.installed_by, \
         manifest = excluded.manifest"
    } else {
        "ON CONFLICT (name, version) DO NOTHING"
    };
    sqlx::query(&format!(
        "INSERT INTO plugin_versions (name, version, sha256, size, installed_at, installed_by, manifest) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) {conflict}"
    ))
    .bind(name)
    .bind(version)
    .bind(sha256)
    .bind(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
    .bind(now_ms())
    .bind(installed_by)
    .bind(manifest_json)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn states(db: &Db) -> Result<Vec<StateRow>> {
    let rows = sqlx::query(
        "SELECT name, live_version, previous_version, state, canary_version, canary_percent \
         FROM plugin_state ORDER BY name",
    )
    .fetch_all(&db.pool)
    .await?;
    state_rows(&rows)
}

fn state_rows(rows: &[sqlx::any::AnyRow]) -> Result<Vec<StateRow>> {
    rows.iter()
        .map(|r| {
            Ok(StateRow {
                name: r.try_get("name")?,
                live_version: r.try_get("live_version")?,
                previous_version: r.try_get("previous_version")?,
                state: r.try_get("state")?,
                canary_version: r.try_get("canary_version")?,
                canary_percent: r.try_get("canary_percent")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub async fn state(db: &Db, name: &str) -> Result<Option<StateRow>> {
    let rows = sqlx::query(
        "SELECT name, live_version, previous_version, state, canary_version, canary_percent \
         FROM plugin_state WHERE name = $1",
    )
    .bind(name)
    .fetch_all(&db.pool)
    .await?;
    Ok(state_rows(&rows)?.into_iter().next())
}

/// `version` becomes live (and enabled); `previous` is remembered for rollback.
pub async fn set_live(db: &Db, name: &str, version: &str, previous: Option<&str>) -> Result<()> {
    sqlx::query(
        "INSERT INTO plugin_state (name, live_version, migrated_version, updated_at, state, previous_version) \
         VALUES ($1, $2, $2, $3, 'live', $4) \
         ON CONFLICT (name) DO UPDATE SET live_version = excluded.live_version, \
         migrated_version = excluded.migrated_version, updated_at = excluded.updated_at, \
         state = 'live', previous_version = excluded.previous_version",
    )
    .bind(name)
    .bind(version)
    .bind(now_ms())
    .bind(previous)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Records that `version`'s `migrate` ran (without making it live: a canary).
pub async fn set_migrated(db: &Db, name: &str, version: &str) -> Result<()> {
    sqlx::query("UPDATE plugin_state SET migrated_version = $1, updated_at = $2 WHERE name = $3")
        .bind(version)
        .bind(now_ms())
        .bind(name)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn migrated_version(db: &Db, name: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT migrated_version FROM plugin_state WHERE name = $1")
        .bind(name)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row
        .map(|r| r.try_get::<Option<String>, _>("migrated_version"))
        .transpose()?
        .flatten())
}

/// The running canary of `name` (version and percent), or none.
pub async fn set_canary(db: &Db, name: &str, canary: Option<(&str, u8)>) -> Result<()> {
    sqlx::query(
        "UPDATE plugin_state SET canary_version = $1, canary_percent = $2, updated_at = $3 \
         WHERE name = $4",
    )
    .bind(canary.map(|(v, _)| v))
    .bind(canary.map(|(_, p)| i64::from(p)))
    .bind(now_ms())
    .bind(name)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Ends every recorded canary (at start: a restart ends a canary); returns the plugins
/// that had one.
pub async fn clear_canaries(db: &Db) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "UPDATE plugin_state SET canary_version = NULL, canary_percent = NULL \
         WHERE canary_version IS NOT NULL RETURNING name",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("name").map_err(Into::into))
        .collect()
}

/// `live` or `disabled`.
pub async fn set_state(db: &Db, name: &str, state: &str) -> Result<()> {
    sqlx::query("UPDATE plugin_state SET state = $1, updated_at = $2 WHERE name = $3")
        .bind(state)
        .bind(now_ms())
        .bind(name)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Deletes a version, and its bytes when no other version shares them.
pub async fn delete_version(db: &Db, name: &str, version: &str, sha256: &str) -> Result<()> {
    let mut tx = db.pool.begin_with(db.begin_statement()).await?;
    sqlx::query("DELETE FROM plugin_versions WHERE name = $1 AND version = $2")
        .bind(name)
        .bind(version)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM plugin_components WHERE sha256 = $1 \
         AND NOT EXISTS (SELECT 1 FROM plugin_versions WHERE sha256 = $1)",
    )
    .bind(sha256)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE plugin_state SET previous_version = NULL WHERE name = $1 AND previous_version = $2",
    )
    .bind(name)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Appends to a plugin's history.
pub async fn record(
    db: &Db,
    name: &str,
    action: &str,
    version: Option<&str>,
    actor: &str,
    detail: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO plugin_history (id, name, action, version, actor, detail, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(format!("hist_{}", uuid::Uuid::now_v7().simple()))
    .bind(name)
    .bind(action)
    .bind(version)
    .bind(actor)
    .bind(detail)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The grants approved for `name` at enable, oldest first.
pub async fn approved_grants(db: &Db, name: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT capability FROM plugin_grants WHERE name = $1 ORDER BY approved_at, capability",
    )
    .bind(name)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get("capability"))
        .collect::<Result<_, _>>()?)
}

/// Records the operator's approval of `grants` for `name` (an approval given twice is
/// kept once).
pub async fn approve_grants(db: &Db, name: &str, grants: &[String], actor: &str) -> Result<()> {
    let now = now_ms();
    for g in grants {
        sqlx::query(
            "INSERT INTO plugin_grants (name, capability, approved_by, approved_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (name, capability) DO NOTHING",
        )
        .bind(name)
        .bind(g)
        .bind(actor)
        .bind(now)
        .execute(&db.pool)
        .await?;
    }
    Ok(())
}

/// A plugin's history, newest first.
pub async fn history(db: &Db, name: &str, limit: i64) -> Result<Vec<HistoryRow>> {
    let rows = sqlx::query(
        "SELECT action, version, actor, detail, at FROM plugin_history WHERE name = $1 \
         ORDER BY at DESC, id DESC LIMIT $2",
    )
    .bind(name)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HistoryRow {
                action: r.try_get("action")?,
                version: r.try_get("version")?,
                actor: r.try_get("actor")?,
                detail: r.try_get("detail")?,
                at: rfc3339_ms(r.try_get("at")?),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

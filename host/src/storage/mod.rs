//! Database connections: the host's own tables and one database per plugin.
//!
//! Both backends go through sqlx's `Any` driver so the host's SQL is written once.
//! SQLite: `data_dir/kirana.db` for the host and `data_dir/plugins/NAME.db` per plugin,
//! WAL mode. PostgreSQL: the host's tables in `public`, and one schema per plugin
//! (`plugin_NAME`) that its connections see through `search_path`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::config::Config;

pub mod sqlite;

pub use sqlite::SqliteDb;

/// Which SQL a database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A plugin's database through the backend's native driver, so every column type the
/// driver knows (SQLite's `BOOLEAN` among them) can be read.
#[derive(Clone, Debug)]
pub enum PluginDb {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

impl PluginDb {
    pub async fn close(&self) {
        match self {
            PluginDb::Sqlite(db) => db.close(),
            PluginDb::Postgres(p) => p.close().await,
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            PluginDb::Sqlite(_) => Backend::Sqlite,
            PluginDb::Postgres(_) => Backend::Postgres,
        }
    }
}

/// The host's own database: a pool through sqlx's `Any` driver plus the backend.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

impl Db {
    /// The statement that opens a write transaction: SQLite takes the write lock up
    /// front so two transactions never deadlock upgrading their locks.
    pub fn begin_statement(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/host");

/// Opens the host database and brings its tables forward.
pub async fn open_host(config: &Config) -> Result<Db> {
    sqlx::any::install_default_drivers();
    let db = if config.uses_postgres() {
        connect_postgres(
            &config.database_url,
            None,
            config.limits.db_connections.max(1) * 2,
        )
        .await?
    } else {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
        connect_sqlite(
            &config.data_dir.join("kirana.db"),
            config.limits.db_connections.max(1),
        )
        .await?
    };
    MIGRATOR
        .run(&db.pool)
        .await
        .context("running the host's migrations")?;
    Ok(db)
}

/// Opens (creating if needed) the database of plugin `name`.
///
/// Isolation is enforced by the database, not by convention: on PostgreSQL the plugin
/// connects as its own login role that owns its schema and nothing else; on SQLite its
/// connections cannot `ATTACH` another file (the host's or another plugin's).
pub async fn open_plugin(config: &Config, name: &str, host: &Db) -> Result<PluginDb> {
    let max = config.limits.db_connections.max(1);
    if config.uses_postgres() {
        let schema = plugin_schema(name)?;
        let options =
            PgConnectOptions::from_str(&config.database_url).context("parsing database_url")?;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .context("connecting to PostgreSQL (database_url)")?;
        let database: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&admin)
            .await
            .context("reading the database name")?;
        let role = plugin_role(&database, name);
        let password = hex::encode(Sha256::digest(
            format!("{}:{role}", host_secret(host, "plugin-db").await?).as_bytes(),
        ));
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(&role)
                .fetch_one(&admin)
                .await?;
        // Role and password are plain identifiers / hex, so formatting them is safe.
        let verb = if exists { "ALTER" } else { "CREATE" };
        admin
            .execute(format!("{verb} ROLE {role} LOGIN PASSWORD '{password}'").as_str())
            .await
            .with_context(|| {
                format!(
                    "creating the database role {role} (the database_url user needs CREATEROLE)"
                )
            })?;
        for statement in [
            format!("CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}"),
            format!("ALTER SCHEMA {schema} OWNER TO {role}"),
            format!("ALTER ROLE {role} SET search_path = {schema}"),
        ] {
            admin
                .execute(statement.as_str())
                .await
                .with_context(|| format!("preparing schema {schema}: {statement}"))?;
        }
        admin.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(
                options
                    .username(&role)
                    .password(&password)
                    .options([("search_path", schema.as_str())]),
            )
            .await
            .with_context(|| format!("connecting plugin {name} to PostgreSQL as {role}"))?;
        Ok(PluginDb::Postgres(pool))
    } else {
        let dir = config.data_dir.join("plugins");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{name}.db"));
        let db = SqliteDb::open(&path, max)
            .await
            .with_context(|| format!("opening SQLite database {}", path.display()))?;
        Ok(PluginDb::Sqlite(db))
    }
}

/// `kirana_<database>_<plugin>`: the plugin's PostgreSQL role, unique per database so
/// several deployments can share a cluster.
fn plugin_role(database: &str, plugin: &str) -> String {
    let db: String = database
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("kirana_{db}_{plugin}").chars().take(63).collect()
}

/// Drops PostgreSQL database `database` (closing its connections) and the plugin login
/// roles the host made for it (roles are cluster-wide, so they outlive the database).
/// `admin_url` names another database on the same server, as a user allowed to drop
/// both. For throw-away deployments: the test suite and the bench.
pub async fn drop_postgres_database(admin_url: &str, database: &str) -> Result<()> {
    if database.is_empty()
        || !database
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        anyhow::bail!("{database:?} is not a plain database name");
    }
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin_url)
        .await
        .context("connecting to the PostgreSQL server")?;
    conn.execute(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)").as_str())
        .await
        .with_context(|| format!("DROP DATABASE {database}"))?;
    let prefix = plugin_role(database, "");
    let roles: Vec<String> =
        sqlx::query_scalar("SELECT rolname FROM pg_roles WHERE left(rolname, length($1)) = $1")
            .bind(&prefix)
            .fetch_all(&mut conn)
            .await
            .context("listing the plugin roles")?;
    for role in roles {
        conn.execute(format!("DROP ROLE IF EXISTS \"{role}\"").as_str())
            .await
            .with_context(|| format!("DROP ROLE {role}"))?;
    }
    let _ = sqlx::Connection::close(conn).await;
    Ok(())
}

/// A random secret kept in the host database, made on first use (so every replica and
/// every restart sees the same one).
pub async fn host_secret(db: &Db, name: &str) -> Result<String> {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    sqlx::query("INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(hex::encode(bytes))
        .execute(&db.pool)
        .await
        .with_context(|| format!("storing secret {name}"))?;
    let row = sqlx::query("SELECT value FROM secrets WHERE name = $1")
        .bind(name)
        .fetch_one(&db.pool)
        .await
        .with_context(|| format!("reading secret {name}"))?;
    sqlx::Row::try_get::<String, _>(&row, "value").with_context(|| format!("reading secret {name}"))
}

/// `plugin_NAME`, refusing names that are not plain identifiers.
pub fn plugin_schema(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && name.as_bytes()[0].is_ascii_lowercase();
    anyhow::ensure!(
        ok,
        "plugin name {name:?} must be lowercase letters, digits and _"
    );
    Ok(format!("plugin_{name}"))
}

async fn connect_sqlite(path: &Path, max: u32) -> Result<Db> {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let options =
        AnyConnectOptions::from_str(&url).with_context(|| format!("bad sqlite path {url}"))?;
    let pool = AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        // A local file needs no liveness ping before each use (a round trip to the
        // connection's thread per statement in the bench's profile).
        .test_before_acquire(false)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                )
                .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .with_context(|| format!("opening SQLite database {}", path.display()))?;
    Ok(Db {
        pool,
        backend: Backend::Sqlite,
    })
}

async fn connect_postgres(url: &str, schema: Option<String>, max: u32) -> Result<Db> {
    let options = AnyConnectOptions::from_str(url).context("parsing database_url")?;
    let pool = AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            let schema = schema.clone();
            Box::pin(async move {
                if let Some(schema) = schema {
                    conn.execute(format!("SET search_path TO {schema}").as_str())
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .context("connecting to PostgreSQL (database_url)")?;
    Ok(Db {
        pool,
        backend: Backend::Postgres,
    })
}

/// Milliseconds since the Unix epoch: the host tables' time unit.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// RFC 3339 (UTC, seconds) for a unix-millisecond time.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert_eq!(plugin_schema("cart").unwrap(), "plugin_cart");
        assert!(plugin_schema("cart; drop").is_err());
        assert!(plugin_schema("1cart").is_err());
        assert!(plugin_schema("").is_err());
    }

    #[test]
    fn plugin_roles_are_identifiers() {
        assert_eq!(plugin_role("Shop-DB", "cart"), "kirana_shop_db_cart");
        assert!(plugin_role(&"x".repeat(100), "notifications").len() <= 63);
    }

    #[test]
    fn rfc3339_from_ms() {
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }
}

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

use crate::config::{Config, SqliteSync};

pub mod sqlite;
pub mod statements;

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
/// Advisory locks the replicas of one PostgreSQL database take turns on. The keys are
/// constants unique to Kirana ("kirana" in ASCII, then a number per lock).
pub mod locks {
    /// Around a host's start: creating plugin roles and running plugin migrations at
    /// the same moment fails (`tuple concurrently updated`, duplicate keys, deadlocks).
    pub const STARTUP: i64 = 0x6b69_7261_6e61_0001;
    /// Around an operator's registry action (install, enable, canary, disable, ...), so
    /// two operators on two replicas never enable or migrate one plugin at once.
    pub const REGISTRY: i64 = 0x6b69_7261_6e61_0002;
}

/// A held advisory lock (PostgreSQL; nothing on SQLite, where one process owns the
/// files). Dropping it closes its connection, which ends the lock; [`AdvisoryLock::release`]
/// unlocks and keeps the connection.
pub struct AdvisoryLock(Option<sqlx::pool::PoolConnection<sqlx::Any>>, i64);

impl AdvisoryLock {
    /// Waits for lock `key` (see [`locks`]).
    pub async fn take(db: &Db, key: i64) -> Result<Self> {
        if db.backend != Backend::Postgres {
            return Ok(Self(None, key));
        }
        let mut conn = db.pool.acquire().await.context("taking an advisory lock")?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await
            .context("taking an advisory lock (pg_advisory_lock)")?;
        Ok(Self(Some(conn), key))
    }

    pub async fn release(mut self) {
        if let Some(mut conn) = self.0.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.1)
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                // Closing the session ends its locks.
                let _ = conn.detach();
            }
        }
    }
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            // Never back to the pool still holding the lock.
            drop(conn.detach());
        }
    }
}

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
            config.sqlite_synchronous,
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
/// connects as its own login role that owns its schema and nothing else, may not create
/// anything in `public`, and has a `statement_timeout` of its time limit; on SQLite its
/// connections cannot `ATTACH` another file and run with the limits in [`sqlite`].
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
        adopt_legacy_role(&admin, &legacy_plugin_role(&database, name), &role, &schema).await?;
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
        let timeout_ms = plugin_timeout_ms(config, name);
        for statement in [
            format!("CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}"),
            format!("ALTER SCHEMA {schema} OWNER TO {role}"),
            format!("ALTER ROLE {role} SET search_path = {schema}"),
            // The role's default for any session (the pool sets it per connection too,
            // so each host uses its own configured limit).
            format!("ALTER ROLE {role} SET statement_timeout = {timeout_ms}"),
            format!(
                "COMMENT ON ROLE {role} IS {}",
                sql_literal(&role_comment(&database))
            ),
            // PostgreSQL before 15 lets every role create tables in `public`. Only the
            // schema's owner can revoke that; for anyone else this is a warning.
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC".to_string(),
            format!("REVOKE CREATE ON SCHEMA public FROM {role}"),
        ] {
            admin
                .execute(statement.as_str())
                .await
                .with_context(|| format!("preparing schema {schema}: {statement}"))?;
        }
        // Lets the host cancel the role's overdue statements (pg_cancel_backend) without
        // being a superuser.
        if let Err(e) = admin
            .execute(format!("GRANT {role} TO CURRENT_USER").as_str())
            .await
        {
            tracing::warn!(
                plugin = name, %role, error = %e,
                "the database_url user cannot become a member of the plugin's role, so it \
                 cannot cancel the plugin's overdue statements; grant it with GRANT {role} TO <that user>"
            );
        }
        let public_create: bool =
            sqlx::query_scalar("SELECT has_schema_privilege($1, 'public', 'CREATE')")
                .bind(&role)
                .fetch_one(&admin)
                .await
                .context("checking the plugin role's rights on schema public")?;
        if public_create {
            tracing::warn!(
                plugin = name,
                %role,
                "the plugin's role can create objects in schema public, and the database_url \
                 user cannot revoke that: run REVOKE CREATE ON SCHEMA public FROM PUBLIC as \
                 the schema's owner (see docs/operations.md)"
            );
        }
        admin.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.username(&role).password(&password).options([
                ("search_path", schema.clone()),
                ("statement_timeout", timeout_ms.to_string()),
            ]))
            .await
            .with_context(|| format!("connecting plugin {name} to PostgreSQL as {role}"))?;
        Ok(PluginDb::Postgres(pool))
    } else {
        let dir = config.data_dir.join("plugins");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{name}.db"));
        let db = SqliteDb::open_with(&path, max, config.sqlite_synchronous)
            .await
            .with_context(|| format!("opening SQLite database {}", path.display()))?;
        Ok(PluginDb::Sqlite(db))
    }
}

/// The longest a plugin's `migrate` may run (seeding a fresh database may take longer
/// than a request).
pub const MIGRATION_TIME: Duration = Duration::from_secs(60);
/// The `application_name` of a migration's PostgreSQL session: the statement watchdog
/// allows it [`MIGRATION_TIME`]. A plugin could set it itself, which only buys it that
/// bounded time.
pub const MIGRATION_APPLICATION: &str = "kirana migrate";

/// Cancels PostgreSQL statements of plugin roles that have run past their plugin's
/// time limit plus a second of grace; `limits` pairs each plugin name with its limit.
/// The roles' `statement_timeout` normally stops them first, but a plugin may change
/// its own session settings (`SET statement_timeout = 0`), so the host checks from
/// outside. Answers how many it cancelled.
pub async fn cancel_overdue_statements(
    host: &Db,
    database: &str,
    limits: &[(String, Duration)],
) -> Result<u64> {
    if host.backend != Backend::Postgres || limits.is_empty() {
        return Ok(0);
    }
    // Role names are plain identifiers and the limits integers: safe to format.
    let values: Vec<String> = limits
        .iter()
        .map(|(name, limit)| {
            format!(
                "('{}', {})",
                plugin_role(database, name),
                limit.as_millis().saturating_add(1000)
            )
        })
        .collect();
    // Found first, cancelled one by one after: in one statement the planner could
    // call pg_cancel_backend before the filters that pick the plugin's sessions.
    let overdue: Vec<(i32,)> = sqlx::query_as(&format!(
        "SELECT a.pid FROM pg_stat_activity a \
         JOIN (VALUES {}) AS l(role, ms) ON a.usename = l.role \
         WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() \
           AND a.state = 'active' \
           AND a.query_start < clock_timestamp() - INTERVAL '1 millisecond' * \
               CASE WHEN a.application_name = '{MIGRATION_APPLICATION}' \
                    THEN GREATEST(l.ms, {migration_ms}) ELSE l.ms END",
        values.join(", "),
        migration_ms = MIGRATION_TIME.as_millis().saturating_add(1000),
    ))
    .fetch_all(&host.pool)
    .await
    .context("looking for overdue plugin statements")?;
    let mut cancelled = 0;
    for (pid,) in overdue {
        let done: bool = sqlx::query_scalar("SELECT pg_cancel_backend($1)")
            .bind(pid)
            .fetch_one(&host.pool)
            .await
            .with_context(|| format!("cancelling the overdue statement of backend {pid}"))?;
        cancelled += u64::from(done);
    }
    Ok(cancelled)
}

/// The name of the host's PostgreSQL database (what plugin role names are made from).
pub async fn database_name(host: &Db) -> Result<String> {
    sqlx::query_scalar("SELECT CAST(current_database() AS TEXT)")
        .fetch_one(&host.pool)
        .await
        .context("reading the database name")
}

/// The longest any call of plugin `name` may run, in milliseconds: its own
/// `plugins.NAME.timeout_ms`, else `limits.timeout_ms` (a manifest may only ask for
/// less; see `registry::build`). Statements of its database stop after this long. It
/// is read at every start, so a changed limit applies from the next start on.
fn plugin_timeout_ms(config: &Config, name: &str) -> u64 {
    config
        .plugins
        .get(name)
        .and_then(|p| p.timeout_ms)
        .unwrap_or(config.limits.timeout_ms)
        .max(1)
}

/// The longest role name PostgreSQL keeps (it silently cuts longer ones).
const PG_NAME_MAX: usize = 63;
/// Characters of the database name in a role name.
const ROLE_DB_MAX: usize = 40;
/// Hex digits of the hash that ends a role name that had to be cut.
const ROLE_HASH_HEX: usize = 8;

/// The database name as it appears in role names: lowercase letters, digits and `_`.
fn role_db_part(database: &str) -> String {
    database
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// `kirana_<database>_<plugin>`: the plugin's PostgreSQL role, unique per database so
/// several deployments can share a cluster.
///
/// When that does not fit (a database name over 40 characters, or more than 63 in all)
/// the name is cut and ends in `_` and 8 hex digits of a hash of the full database and
/// plugin names, so two names that share their first 54 characters still get two roles.
/// Names that fit are what earlier versions made, so existing deployments keep theirs.
fn plugin_role(database: &str, plugin: &str) -> String {
    let db = role_db_part(database);
    let full = format!("kirana_{db}_{plugin}");
    if db.len() <= ROLE_DB_MAX && full.len() <= PG_NAME_MAX {
        return full;
    }
    let hash = hex::encode(Sha256::digest(format!("{database}\0{plugin}").as_bytes()));
    let keep = PG_NAME_MAX - 1 - ROLE_HASH_HEX;
    // `full` is ASCII, so byte offsets are character offsets.
    format!(
        "{}_{}",
        &full[..keep.min(full.len())],
        &hash[..ROLE_HASH_HEX]
    )
}

/// The role name earlier versions made: the database part cut at 40 characters and the
/// whole at 63, so long names could share one role.
fn legacy_plugin_role(database: &str, plugin: &str) -> String {
    let db: String = role_db_part(database).chars().take(ROLE_DB_MAX).collect();
    format!("kirana_{db}_{plugin}")
        .chars()
        .take(PG_NAME_MAX)
        .collect()
}

/// Renames the role an earlier version made for this plugin (a name that was cut) to
/// `role`, so the plugin keeps owning its schema and tables. Only when that role is
/// clearly this plugin's alone: it owns `schema`, no other schema here, and nothing in
/// another database. A role two plugins or two databases shared is left to the operator
/// (the plugin then gets a new role; see docs/operations.md).
async fn adopt_legacy_role(admin: &PgPool, legacy: &str, role: &str, schema: &str) -> Result<()> {
    if legacy == role {
        return Ok(());
    }
    let adopt: Option<bool> = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspowner = r.oid AND nspname = $2) \
            AND NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspowner = r.oid AND nspname <> $2) \
            AND NOT EXISTS (SELECT 1 FROM pg_shdepend d WHERE d.refobjid = r.oid \
                AND d.refclassid = 'pg_authid'::regclass AND d.dbid <> 0 \
                AND d.dbid <> (SELECT oid FROM pg_database WHERE datname = current_database())) \
            AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $3) \
         FROM pg_roles r WHERE r.rolname = $1",
    )
    .bind(legacy)
    .bind(schema)
    .bind(role)
    .fetch_optional(admin)
    .await
    .context("looking for the plugin's role under its earlier name")?;
    if adopt == Some(true) {
        tracing::info!(
            from = legacy,
            to = role,
            "renaming a plugin's database role"
        );
        // A rename clears an MD5 password; open_plugin sets the password next.
        admin
            .execute(format!("ALTER ROLE {legacy} RENAME TO {role}").as_str())
            .await
            .with_context(|| format!("renaming role {legacy} to {role}"))?;
    }
    Ok(())
}

/// The comment that marks a plugin role as made for `database`, so
/// [`drop_postgres_database`] finds exactly its roles, whatever their names.
fn role_comment(database: &str) -> String {
    format!("kirana plugin role of database {database}")
}

/// `text` as a SQL string literal (standard-conforming strings: only `'` is special).
fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
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
    // Roles are marked with their database's name; roles made by earlier versions
    // carry no mark and are found by their name's prefix.
    let prefix = legacy_plugin_role(database, "");
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT rolname FROM pg_roles \
         WHERE shobj_description(oid, 'pg_authid') = $1 \
            OR (shobj_description(oid, 'pg_authid') IS NULL \
                AND left(rolname, length($2)) = $2)",
    )
    .bind(role_comment(database))
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
    host_secret_or(db, name, hex::encode(bytes)).await
}

/// The secret `name` kept in the host database, storing `fresh` when there is none yet
/// (the first replica to store wins; every other one reads its value).
pub async fn host_secret_or(db: &Db, name: &str, fresh: String) -> Result<String> {
    sqlx::query("INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(fresh)
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

async fn connect_sqlite(path: &Path, max: u32, sync: SqliteSync) -> Result<Db> {
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
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(
                    format!(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; \
                         PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                        sync.pragma()
                    )
                    .as_str(),
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
        for (db, plugin) in [
            ("kirana", "a"),
            (&*"Shop-DB".repeat(20), "cart"),
            ("kirana", &*"p".repeat(32)),
        ] {
            let role = plugin_role(db, plugin);
            assert!(role.len() <= PG_NAME_MAX, "{role}");
            assert!(
                role.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{role}"
            );
        }
    }

    #[test]
    fn names_that_fit_keep_their_earlier_role() {
        for (db, plugin) in [
            ("kirana", "notifications"),
            ("shop", &*"p".repeat(32)),
            (&*"d".repeat(40), "cart"),
        ] {
            assert_eq!(plugin_role(db, plugin), legacy_plugin_role(db, plugin));
        }
    }

    #[test]
    fn names_that_are_cut_do_not_collide() {
        // Two plugins whose earlier role names were the same 63 characters.
        let db = "kirana_production_eu_west";
        let a = format!("{}_a1", "x".repeat(29));
        let b = format!("{}_b1", "x".repeat(29));
        assert_eq!(legacy_plugin_role(db, &a), legacy_plugin_role(db, &b));
        assert_ne!(plugin_role(db, &a), plugin_role(db, &b));
        assert_eq!(plugin_role(db, &a).len(), PG_NAME_MAX);
        // Two databases whose first 40 characters are the same.
        let long = "kirana_test_0123456789abcdef0123456789abcdef";
        let other = "kirana_test_0123456789abcdef0123456789abcdee";
        assert_eq!(
            legacy_plugin_role(long, "cart"),
            legacy_plugin_role(other, "cart")
        );
        assert_ne!(plugin_role(long, "cart"), plugin_role(other, "cart"));
        // Stable: the same inputs always give the same role.
        assert_eq!(plugin_role(long, "cart"), plugin_role(long, "cart"));
        // The database part is still the prefix a reader recognises.
        assert!(plugin_role(long, "cart").starts_with("kirana_kirana_test_"));
    }

    #[test]
    fn role_comments_quote_the_database_name() {
        assert_eq!(sql_literal("it's"), "'it''s'");
        assert_eq!(
            sql_literal(&role_comment("shop")),
            "'kirana plugin role of database shop'"
        );
    }

    #[test]
    fn rfc3339_from_ms() {
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }
}

//! A plugin's SQLite database: a small pool of `rusqlite` connections whose statements
//! run on the thread that asks for them.
//!
//! Why not sqlx here (the host's own tables still use it): sqlx runs every SQLite
//! connection on a thread of its own and hands each row across a channel, so one 20-row
//! page cost some twenty thread wake-ups; the bench's profile put a third of the host's
//! CPU in the kernel scheduler. Here a statement first runs in place with SQLite's busy
//! timeout at zero: in WAL mode a read never waits for a lock, and a write either gets
//! the write lock at once or fails with `SQLITE_BUSY` having done nothing. Only then is
//! it run again on tokio's blocking pool, where it may wait for the lock. Commits do no
//! I/O wait either: the automatic checkpoint (which fsyncs) is off, and a background task
//! checkpoints each written database on the blocking pool instead.
//!
//! Every statement carries the call's deadline, enforced by SQLite's progress handler:
//! a runaway query is interrupted, so it never keeps a thread past the plugin's time
//! limit.
//!
//! Plugin SQL is untrusted, and it runs inside the host's process: every connection is
//! opened in SQLite's defensive mode with limits ([`LIMITS`]) so a statement such as
//! `SELECT randomblob(999999999)` fails with `SQLITE_TOOBIG` before it allocates, and
//! the process's SQLite heap has a hard ceiling ([`HEAP_LIMIT`]) for whatever the
//! per-value limits do not cover (a row of many large columns).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use crate::config::SqliteSync;

/// How long a caller waits for a free connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a written database is checkpointed (WAL pages copied back, WAL reset).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;
/// SQLite VM instructions between two deadline checks (a few microseconds).
const PROGRESS_OPS: i32 = 2_000;

/// Largest string or blob (and stored row) plugin SQL may make, in bytes; SQLite's own
/// default is 1,000,000,000. A request body is at most 1 MiB by default, and the plugins
/// keep kilobytes. With [`MAX_COLUMNS`] it also bounds one result row (100 MiB).
pub const MAX_LENGTH: i32 = 1 << 20;
/// Longest SQL statement, in bytes (one statement per call; migrations run one by one).
pub const MAX_SQL_LENGTH: i32 = 1 << 20;
/// Most columns in a table, index, result, `ORDER BY` or `GROUP BY` (default 2000; the
/// plugins' widest row has about 30).
pub const MAX_COLUMNS: i32 = 100;

/// The limits set on every plugin connection. What is not listed keeps SQLite's
/// default, which is already small or costs nothing: `VARIABLE_NUMBER` (32766),
/// `COMPOUND_SELECT` (500), `FUNCTION_ARG` (127), `LIKE_PATTERN_LENGTH` (50000).
const LIMITS: &[(rusqlite::limits::Limit, i32)] = {
    use rusqlite::limits::Limit::*;
    &[
        // No other database file (the host's or another plugin's) can be reached.
        (SQLITE_LIMIT_ATTACHED, 0),
        (SQLITE_LIMIT_LENGTH, MAX_LENGTH),
        (SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_LENGTH),
        (SQLITE_LIMIT_COLUMN, MAX_COLUMNS),
        // SQLite walks expression trees recursively on the caller's thread (a runtime
        // worker with a 2 MiB stack): 250 levels instead of 1000. Catalog search, the
        // deepest plugin SQL, nests about 20.
        (SQLITE_LIMIT_EXPR_DEPTH, 250),
        // A trigger firing a trigger firing ... (recursive triggers are off, and the
        // PRAGMA that turns them on is refused).
        (SQLITE_LIMIT_TRIGGER_DEPTH, 16),
        // Sorts run on the caller's thread, never on helper threads SQLite starts.
        (SQLITE_LIMIT_WORKER_THREADS, 0),
    ]
};

/// Memory one plugin statement may add to SQLite's heap while it runs: a row of many
/// large values (each under [`MAX_LENGTH`]) is refused here, long before the process
/// ceiling below, which every database in the process shares. The progress handler
/// checks it with the deadline; usage is process-wide, so a statement is measured by
/// what the heap grew since it began.
pub const STATEMENT_MEMORY: i64 = 48 << 20;

/// Ceiling on all SQLite memory in the process (every plugin database and the host's
/// own), enforced by SQLite (`sqlite3_hard_heap_limit64`): past it an allocation fails
/// with `SQLITE_NOMEM` instead of growing the host. Normal use stays far below (each
/// connection caches at most ~2 MiB of pages); only a statement that builds many large
/// values at once gets near it, and it fails rather than the process.
pub const HEAP_LIMIT: i64 = 128 << 20;
/// Above this SQLite frees cached pages before it allocates more.
const SOFT_HEAP_LIMIT: i64 = HEAP_LIMIT / 2;

/// Sets the process's SQLite heap limits (once; they are process-wide).
fn set_heap_limits() {
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| {
        // SAFETY: both calls only store a number under SQLite's global mutex; they are
        // safe at any time, from any thread, with connections open.
        unsafe {
            rusqlite::ffi::sqlite3_hard_heap_limit64(HEAP_LIMIT);
            rusqlite::ffi::sqlite3_soft_heap_limit64(SOFT_HEAP_LIMIT);
        }
    });
}

/// Why a database call failed before or around SQLite itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "SQL statement too large in memory: the per-statement memory limit for plugins is {} MiB (fewer or smaller values per row, or page with LIMIT)",
        STATEMENT_MEMORY >> 20
    )]
    TooMuchMemory,
    #[error("no database connection free in time")]
    PoolTimedOut,
    #[error("another call held the database's write lock until this call's deadline")]
    WriteLockTimedOut,
    #[error("the database is closed")]
    Closed,
    #[error("the database task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// A plugin's SQLite database (cheap to clone).
#[derive(Clone)]
pub struct SqliteDb(Arc<Inner>);

struct Inner {
    /// A file path, or `:memory:` (a private database per connection).
    path: PathBuf,
    idle: Mutex<Vec<Pooled>>,
    permits: Arc<Semaphore>,
    closed: AtomicBool,
    /// Set by every write; the checkpointer clears it.
    written: AtomicBool,
    /// `PRAGMA synchronous` of every connection.
    sync: SqliteSync,
    /// Taken by a write transaction before its `BEGIN IMMEDIATE`: writers of this
    /// process queue here in order instead of in SQLite's busy handler, which sleeps
    /// (1, 2, 5 ... 100 ms) between tries and so wastes the lock's idle time.
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SqliteDb").field(&self.0.path).finish()
    }
}

/// An open connection and the deadline and memory budget its progress handler
/// enforces.
struct Pooled {
    conn: Connection,
    /// Nanoseconds after [`epoch`] past which statements are interrupted; 0 = none.
    deadline: Arc<AtomicU64>,
    /// SQLite's heap use when the current work began (see [`STATEMENT_MEMORY`]).
    memory_start: Arc<AtomicI64>,
    /// Set by the progress handler when it interrupted for memory, not time.
    over_memory: Arc<AtomicBool>,
}

impl Pooled {
    /// Arms the progress handler for work that must end by `deadline`.
    fn arm(&self, deadline: Instant) {
        self.memory_start.store(memory_used(), Ordering::Relaxed);
        self.over_memory.store(false, Ordering::Relaxed);
        self.deadline
            .store(nanos_since_epoch(deadline), Ordering::Relaxed);
    }

    /// Disarms it; an interruption for memory becomes [`Error::TooMuchMemory`].
    fn disarm<R>(&self, out: Result<R, Error>) -> Result<R, Error> {
        self.deadline.store(0, Ordering::Relaxed);
        match out {
            Err(Error::Sqlite(e))
                if self.over_memory.load(Ordering::Relaxed)
                    && e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) =>
            {
                Err(Error::TooMuchMemory)
            }
            other => other,
        }
    }
}

/// SQLite's current heap use in the whole process.
fn memory_used() -> i64 {
    // SAFETY: reads a counter under SQLite's own mutex; callable at any time.
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos_since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl SqliteDb {
    /// Opens (creating if needed) the database at `path` with at most `max` connections,
    /// checks that one connection opens, and starts its checkpointer.
    pub async fn open(path: &Path, max: u32) -> Result<SqliteDb, Error> {
        Self::open_with(path, max, SqliteSync::Normal).await
    }

    /// Like [`SqliteDb::open`], with `sync` as SQLite's `synchronous` setting.
    pub async fn open_with(path: &Path, max: u32, sync: SqliteSync) -> Result<SqliteDb, Error> {
        let mut db = Self::lazy(path.to_path_buf(), max);
        if let Some(inner) = Arc::get_mut(&mut db.0) {
            inner.sync = sync;
        }
        drop(db.acquire().await?);
        tokio::spawn(checkpointer(Arc::downgrade(&db.0)));
        Ok(db)
    }

    /// A private in-memory database per connection, opened on first use (the registry's
    /// probe of an uploaded component, which has no grants).
    pub fn memory() -> SqliteDb {
        Self::lazy(PathBuf::from(":memory:"), 1)
    }

    fn lazy(path: PathBuf, max: u32) -> SqliteDb {
        let max = usize::try_from(max.max(1)).unwrap_or(1);
        SqliteDb(Arc::new(Inner {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max)),
            closed: AtomicBool::new(false),
            written: AtomicBool::new(false),
            sync: SqliteSync::Normal,
            gate: Arc::new(tokio::sync::Mutex::new(())),
        }))
    }

    /// A connection for the caller alone, opened if none is idle.
    pub async fn acquire(&self) -> Result<Conn, Error> {
        if self.0.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, self.0.permits.clone().acquire_owned())
            .await
            .map_err(|_| Error::PoolTimedOut)?
            .map_err(|_| Error::Closed)?;
        let idle = self.0.idle.lock().map(|mut idle| idle.pop()).ok().flatten();
        let pooled = match idle {
            Some(p) => p,
            None => {
                let path = self.0.path.clone();
                let sync = self.0.sync;
                tokio::task::spawn_blocking(move || connect(&path, sync))
                    .await
                    .map_err(|e| Error::Task(e.to_string()))??
            }
        };
        Ok(Conn {
            pooled: Some((pooled, permit)),
            db: self.0.clone(),
            off_runtime: false,
            gate: None,
        })
    }

    /// Waits (until `deadline`) for this database's write gate; a write transaction
    /// keeps it until it ends (see [`Conn::keep_gate`]).
    pub async fn write_gate(&self, deadline: Instant) -> Result<OwnedMutexGuard<()>, Error> {
        tokio::time::timeout_at(deadline.into(), self.0.gate.clone().lock_owned())
            .await
            .map_err(|_| Error::WriteLockTimedOut)
    }

    /// Refuses new work and closes the idle connections (busy ones close when returned).
    pub fn close(&self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.permits.close();
        if let Ok(mut idle) = self.0.idle.lock() {
            idle.clear();
        }
    }
}

/// Checkpoints the database every [`CHECKPOINT_EVERY`] while it is being written, on
/// the blocking pool (a checkpoint fsyncs), until the database is closed or dropped.
async fn checkpointer(db: std::sync::Weak<Inner>) {
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        let Some(inner) = db.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        if !inner.written.swap(false, Ordering::AcqRel) {
            continue;
        }
        let db = SqliteDb(inner);
        if let Err(e) = checkpoint(&db).await {
            tracing::warn!(db = %db.0.path.display(), error = %e, "checkpointing a plugin database failed");
        }
    }
}

/// WAL frames from which a checkpoint pauses the writers to let the WAL start over.
const GATED_CHECKPOINT_FRAMES: i64 = 1_000;

/// Copies the WAL back into the database, so that the next writer can start the WAL
/// over. SQLite does that only when every frame was copied and no transaction still
/// reads an older one.
///
/// A first pass runs beside the writers and copies the bulk. Under a steady stream of
/// writes that is never enough: a writer is always between its `BEGIN` and its commit
/// when the pass ends, so the WAL is never started over and grows for as long as the
/// writes go on, every frame landing on a new page of the file (the kernel's page
/// allocation was 6.5 % of a cart add's host time). So once the WAL holds
/// [`GATED_CHECKPOINT_FRAMES`] or more, a second pass runs holding the write gate: it
/// copies only what was appended meanwhile, and the writer after it starts the WAL
/// over.
pub async fn checkpoint(db: &SqliteDb) -> Result<(), Error> {
    let (log, _) = checkpoint_pass(db).await?;
    if log >= GATED_CHECKPOINT_FRAMES {
        let _gate = db.write_gate(Instant::now() + BUSY_TIMEOUT).await?;
        checkpoint_pass(db).await?;
    }
    Ok(())
}

/// One `PASSIVE` checkpoint (it never waits for readers or writers): the WAL's frames,
/// and how many of them are now copied.
async fn checkpoint_pass(db: &SqliteDb) -> Result<(i64, i64), Error> {
    let mut conn = db.acquire().await?;
    conn.run_blocking(Instant::now() + BUSY_TIMEOUT, |c| {
        // The host's own PRAGMA: outside the plugins' authorizer.
        c.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
        let done = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        c.authorizer(Some(plugin_authorizer));
        Ok(done?)
    })
    .await
}

/// Opens one connection with the settings every plugin database uses.
fn connect(path: &Path, sync: SqliteSync) -> Result<Pooled, Error> {
    // NO_MUTEX: the pool hands a connection to one caller at a time, so SQLite's own
    // per-connection mutex would only cost time.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    set_heap_limits();
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Set up with the busy timeout (another connection may be writing), then run
    // statements without it: see `Conn::run`.
    for &(limit, value) in LIMITS {
        conn.set_limit(limit, value);
    }
    // No SQL that could corrupt the file on purpose: `writable_schema`, `journal_mode =
    // OFF`, writes to `sqlite_dbpage` or to virtual tables' shadow tables.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; \
         PRAGMA wal_autocheckpoint = 0;",
        sync.pragma()
    ))?;
    conn.busy_timeout(Duration::ZERO)?;
    conn.authorizer(Some(plugin_authorizer));
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let deadline = Arc::new(AtomicU64::new(0));
    let memory_start = Arc::new(AtomicI64::new(0));
    let over_memory = Arc::new(AtomicBool::new(false));
    let (watched, start, over) = (deadline.clone(), memory_start.clone(), over_memory.clone());
    conn.progress_handler(
        PROGRESS_OPS,
        Some(move || {
            let at = watched.load(Ordering::Relaxed);
            if at == 0 {
                return false;
            }
            if memory_used() - start.load(Ordering::Relaxed) > STATEMENT_MEMORY {
                over.store(true, Ordering::Relaxed);
                return true;
            }
            nanos_since_epoch(Instant::now()) > at
        }),
    );
    Ok(Pooled {
        conn,
        deadline,
        memory_start,
        over_memory,
    })
}

/// PRAGMAs a plugin may run with an argument: they only read the schema. Any other
/// PRAGMA that takes a value could change what the pool relies on (the busy timeout,
/// the journal mode, automatic checkpoints, foreign keys) for every later user of the
/// connection, so it is refused (`SQLITE_AUTH`). PRAGMAs without a value only read.
const READ_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
];

fn plugin_authorizer(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Pragma {
            pragma_name,
            pragma_value: Some(_),
        } if !READ_PRAGMAS
            .iter()
            .any(|p| p.eq_ignore_ascii_case(pragma_name)) =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

/// A connection taken from the pool; it goes back (rolled back to autocommit) on drop.
pub struct Conn {
    /// The connection and its pool permit, which travel together into a blocking task
    /// (so a task that outlives a cancelled caller still counts against the pool).
    /// `None` only while a blocking task has them, or after that task was lost.
    pooled: Option<(Pooled, OwnedSemaphorePermit)>,
    db: Arc<Inner>,
    /// Run everything on the blocking pool (see [`Conn::off_the_runtime`]).
    off_runtime: bool,
    /// The database's write gate while this connection holds a write transaction.
    gate: Option<OwnedMutexGuard<()>>,
}

impl Conn {
    /// Runs `f` in place, and again on the blocking pool (where it may wait for the
    /// write lock) only if SQLite was busy. `f` must be safe to repeat after
    /// `SQLITE_BUSY`, which holds for one statement, `BEGIN IMMEDIATE` and `COMMIT`: a
    /// busy statement has done nothing. `writes` marks the database for checkpointing.
    pub async fn run<R: Send + 'static>(
        &mut self,
        deadline: Instant,
        writes: bool,
        f: impl Fn(&Connection) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        if writes {
            self.db.written.store(true, Ordering::Relaxed);
        }
        if !self.off_runtime {
            match self.run_here(deadline, &f) {
                Err(e) if is_busy(&e) => {}
                done => return done,
            }
        }
        self.run_blocking(deadline, move |c| {
            // Wait for the lock no longer than the call may still run.
            let left = deadline.saturating_duration_since(Instant::now());
            c.busy_timeout(left.min(BUSY_TIMEOUT))?;
            let out = f(c);
            c.busy_timeout(Duration::ZERO)?;
            out
        })
        .await
    }

    /// Keeps the write gate with this connection: released when it goes back to the
    /// pool (after its transaction ended).
    pub fn keep_gate(&mut self, gate: OwnedMutexGuard<()>) {
        self.gate = Some(gate);
    }

    /// From now on [`Conn::run`] goes straight to the blocking pool: for work whose
    /// statements may each take long (a migration building an index over a big table),
    /// which must not hold a runtime thread.
    pub fn off_the_runtime(&mut self) {
        self.off_runtime = true;
    }

    /// Runs `f` on this thread with no busy wait; statements past `deadline` are
    /// interrupted.
    pub fn run_here<R>(
        &mut self,
        deadline: Instant,
        f: impl FnOnce(&Connection) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let (pooled, _) = self.pooled.as_ref().ok_or(Error::Closed)?;
        pooled.arm(deadline);
        let out = f(&pooled.conn);
        pooled.disarm(out)
    }

    /// Whether a transaction is open on this connection. SQLite ends one on its own
    /// after some errors (an interrupted write, a full disk), rolling it back.
    pub fn in_transaction(&self) -> bool {
        self.pooled
            .as_ref()
            .is_some_and(|(p, _)| !p.conn.is_autocommit())
    }

    /// Whether `statement` only reads (prepared once, then kept in the cache).
    pub fn is_read_only(&self, statement: &str) -> Result<bool, Error> {
        let (pooled, _) = self.pooled.as_ref().ok_or(Error::Closed)?;
        Ok(pooled.conn.prepare_cached(statement)?.readonly())
    }

    /// Runs `f` on tokio's blocking pool.
    pub async fn run_blocking<R: Send + 'static>(
        &mut self,
        deadline: Instant,
        f: impl FnOnce(&Connection) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let (pooled, permit) = self.pooled.take().ok_or(Error::Closed)?;
        let task = tokio::task::spawn_blocking(move || {
            pooled.arm(deadline);
            let out = f(&pooled.conn);
            let out = pooled.disarm(out);
            ((pooled, permit), out)
        });
        // If this future is dropped meanwhile, the task still finishes and the
        // connection closes with it (rolling back anything uncommitted).
        let (pooled, out) = task.await.map_err(|e| Error::Task(e.to_string()))?;
        self.pooled = Some(pooled);
        out
    }
}

/// Runs one of the host's transaction statements (`BEGIN IMMEDIATE`, `COMMIT`,
/// `ROLLBACK`) through the connection's statement cache: every write runs two of them,
/// and parsing each anew was about 1 % of a cart add's host time.
pub fn control(c: &Connection, statement: &'static str) -> Result<(), Error> {
    c.prepare_cached(statement)?.execute([])?;
    Ok(())
}

/// Whether SQLite refused for a lock held elsewhere (nothing was done).
pub fn is_busy(e: &Error) -> bool {
    matches!(e, Error::Sqlite(e) if matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    ))
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some((pooled, _permit)) = self.pooled.take() else {
            return;
        };
        if self.db.closed.load(Ordering::Acquire) {
            return;
        }
        // A transaction left open (a plugin dropped it, a call trapped) is rolled back
        // here, so the next user always starts in autocommit.
        if !pooled.conn.is_autocommit() {
            let _ = pooled.conn.execute_batch("ROLLBACK");
            if !pooled.conn.is_autocommit() {
                return;
            }
        }
        if let Ok(mut idle) = self.db.idle.lock() {
            idle.push(pooled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn connections_are_reused_and_rolled_back_to_autocommit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteDb::open(&dir.path().join("t.db"), 2)
            .await
            .expect("open");
        let mut c = db.acquire().await.expect("acquire");
        c.run_here(soon(), |c| {
            c.execute_batch("CREATE TABLE t (x INTEGER); BEGIN; INSERT INTO t VALUES (1);")?;
            Ok(())
        })
        .expect("write");
        drop(c);
        let mut c = db.acquire().await.expect("acquire again");
        let n: i64 = c
            .run(soon(), false, |c| {
                Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)
            })
            .await
            .expect("count");
        assert_eq!(n, 0, "the dropped transaction was rolled back");
        assert_eq!(
            db.0.idle.lock().expect("lock").len(),
            0,
            "the one connection is in use"
        );
    }

    #[tokio::test]
    async fn a_runaway_statement_is_interrupted_at_the_deadline() {
        let db = SqliteDb::memory();
        let mut c = db.acquire().await.expect("acquire");
        let err = c
            .run_here(Instant::now() + Duration::from_millis(50), |c| {
                Ok(c.query_row(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                     SELECT COUNT(*) FROM n",
                    [],
                    |r| r.get::<_, i64>(0),
                )?)
            })
            .expect_err("interrupted");
        assert!(
            matches!(&err, Error::Sqlite(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)),
            "{err}"
        );
        // (The statement never ends on its own: the error is the interruption.)
        // The connection stays usable after the interruption.
        let one: i64 = c
            .run_here(soon(), |c| Ok(c.query_row("SELECT 1", [], |r| r.get(0))?))
            .expect("next statement");
        assert_eq!(one, 1);
    }

    #[tokio::test]
    async fn attach_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteDb::open(&dir.path().join("t.db"), 1)
            .await
            .expect("open");
        let mut c = db.acquire().await.expect("acquire");
        let other = dir.path().join("other.db").display().to_string();
        let attach = c.run_here(soon(), move |c| {
            c.execute("ATTACH DATABASE ?1 AS other", [other])?;
            Ok(())
        });
        assert!(attach.is_err(), "ATTACH must fail");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_waits_for_the_lock_on_the_blocking_pool() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteDb::open(&dir.path().join("t.db"), 2)
            .await
            .expect("open");
        let mut holder = db.acquire().await.expect("acquire");
        holder
            .run_here(soon(), |c| {
                c.execute_batch(
                    "CREATE TABLE t (x INTEGER); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);",
                )?;
                Ok(())
            })
            .expect("hold the write lock");
        let mut writer = db.acquire().await.expect("acquire");
        let busy = writer.run_here(soon(), |c| {
            c.execute("INSERT INTO t VALUES (2)", [])?;
            Ok(())
        });
        assert!(
            busy.as_ref().is_err_and(is_busy),
            "in place it does not wait"
        );
        let waiting = tokio::spawn(async move {
            writer
                .run(soon(), true, |c| {
                    Ok(c.execute("INSERT INTO t VALUES (2)", [])?)
                })
                .await
        });
        // Give the writer time to reach SQLite's busy wait; it must still be waiting
        // (not finished, not failed busy) when the lock is let go.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !waiting.is_finished(),
            "the write ended while another connection held the lock"
        );
        holder
            .run_here(soon(), |c| Ok(c.execute_batch("COMMIT")?))
            .expect("commit");
        let inserted = waiting
            .await
            .expect("join")
            .expect("the write went through");
        assert_eq!(inserted, 1);
        let n: i64 = holder
            .run_here(soon(), |c| {
                Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)
            })
            .expect("count");
        assert_eq!(n, 2);
    }

    #[tokio::test]
    async fn synchronous_follows_the_setting() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (sync, want) in [(SqliteSync::Normal, 1), (SqliteSync::Full, 2)] {
            let path = dir.path().join(format!("{want}.db"));
            let db = SqliteDb::open_with(&path, 1, sync).await.expect("open");
            let mut c = db.acquire().await.expect("acquire");
            let got: i64 = c
                .run_here(soon(), |c| {
                    Ok(c.query_row("PRAGMA synchronous", [], |r| r.get(0))?)
                })
                .expect("pragma");
            assert_eq!(got, want, "{sync:?}");
        }
    }

    #[tokio::test]
    async fn the_checkpointer_resets_the_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let db = SqliteDb::open(&path, 1).await.expect("open");
        let mut c = db.acquire().await.expect("acquire");
        c.run(soon(), true, |c| {
            c.execute_batch(
                "CREATE TABLE t (x BLOB); \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
                 INSERT INTO t SELECT randomblob(4000) FROM n;",
            )?;
            Ok(())
        })
        .await
        .expect("write");
        drop(c);
        let wal = dir.path().join("t.db-wal");
        let before = std::fs::metadata(&wal).expect("wal").len();
        assert!(before > 0);
        // After a checkpoint the next write starts the WAL over instead of growing it.
        tokio::time::sleep(CHECKPOINT_EVERY * 3).await;
        let mut c = db.acquire().await.expect("acquire");
        c.run(soon(), true, |c| {
            Ok(c.execute("INSERT INTO t VALUES (x'00')", [])?)
        })
        .await
        .expect("small write");
        let frames: i64 = c
            .run_here(soon(), |c| {
                c.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
                Ok(c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?)
            })
            .expect("wal frames");
        assert!(
            frames < 10,
            "the WAL restarted after the checkpoint: {frames} frames"
        );
    }

    // Under writes that never pause, a checkpoint beside the writers never copies the
    // last frames, and the WAL would grow for as long as the writes go on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_steady_stream_of_writes_still_lets_the_wal_start_over() {
        const WRITES: usize = 20_000;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let db = SqliteDb::open(&path, 4).await.expect("open");
        let mut c = db.acquire().await.expect("acquire");
        c.run(soon(), true, |c| {
            Ok(c.execute_batch("CREATE TABLE t (x INTEGER)")?)
        })
        .await
        .expect("create");
        drop(c);
        let done = Arc::new(AtomicBool::new(false));
        let writer = {
            let (db, done) = (db.clone(), done.clone());
            tokio::spawn(async move {
                for i in 0..WRITES {
                    let _gate = db.write_gate(soon()).await.expect("gate");
                    let mut c = db.acquire().await.expect("acquire");
                    c.run(soon(), true, move |c| {
                        control(c, "BEGIN IMMEDIATE")?;
                        c.execute("INSERT INTO t VALUES (?1)", [i as i64])?;
                        control(c, "COMMIT")
                    })
                    .await
                    .expect("write");
                }
                done.store(true, Ordering::Release);
            })
        };
        let mut checkpoints = 0;
        while !done.load(Ordering::Acquire) {
            checkpoint(&db).await.expect("checkpoint");
            checkpoints += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        writer.await.expect("writer");
        // One frame (a page and its header) per write; the file keeps its largest size.
        let frame = 4096 + 24;
        let wal = std::fs::metadata(dir.path().join("t.db-wal"))
            .expect("wal")
            .len();
        let bound = (GATED_CHECKPOINT_FRAMES as u64 + WRITES as u64 / 5) * frame;
        assert!(
            wal < bound,
            "the WAL grew to {wal} bytes over {WRITES} writes and {checkpoints} checkpoints; \
             restarted, it stays below {bound}"
        );
    }

    fn refused(c: &mut Conn, sql: &str) -> rusqlite::Error {
        let err = c
            .run_here(soon(), |c| {
                let mut stmt = c.prepare(sql)?;
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    for i in 0..row.as_ref().column_count() {
                        row.get_ref(i)?;
                    }
                }
                Ok(())
            })
            .map(|()| panic!("{sql} must be refused"));
        match err.unwrap_err() {
            Error::Sqlite(e) => e,
            other => panic!("{other}"),
        }
    }

    #[tokio::test]
    async fn plugin_sql_cannot_build_huge_values() {
        let db = SqliteDb::memory();
        let mut c = db.acquire().await.expect("acquire");
        for sql in [
            "SELECT randomblob(999999999)",
            "SELECT zeroblob(999999999)",
            // hex() makes 4,000,000 characters (allowed), replace() triples them.
            "SELECT replace(hex(zeroblob(2000000)), '0', '000')",
            "WITH RECURSIVE c(n, s) AS (SELECT 1, 'x' UNION ALL \
             SELECT n + 1, s || s FROM c WHERE n < 40) SELECT max(length(s)) FROM c",
            "SELECT length(group_concat(hex(zeroblob(1000000)))) FROM \
             (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) \
             SELECT i FROM n)",
        ] {
            let e = refused(&mut c, sql);
            assert_eq!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::TooBig),
                "{sql}: {e}"
            );
        }
        // printf() stops at the limit and answers NULL instead of failing: bounded too.
        let n: Option<i64> = c
            .run_here(soon(), |c| {
                Ok(
                    c.query_row("SELECT length(printf('%.*c', 999999999, 'x'))", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .expect("printf");
        assert_eq!(n, None);
        // At the limit is fine.
        let n: i64 = c
            .run_here(soon(), |c| {
                Ok(
                    c.query_row(&format!("SELECT length(zeroblob({MAX_LENGTH}))"), [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .expect("a value at the limit");
        assert_eq!(n, i64::from(MAX_LENGTH));
    }

    #[tokio::test]
    async fn plugin_sql_has_statement_column_and_depth_limits() {
        let db = SqliteDb::memory();
        let mut c = db.acquire().await.expect("acquire");
        let long = format!("SELECT 1 /*{}*/", " ".repeat(MAX_SQL_LENGTH as usize));
        let e = refused(&mut c, &long);
        assert_eq!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::TooBig),
            "{e}"
        );
        let wide = format!("SELECT {}", vec!["1"; MAX_COLUMNS as usize + 1].join(", "));
        assert!(refused(&mut c, &wide)
            .to_string()
            .contains("too many columns"));
        let deep = format!("SELECT {}", vec!["1"; 300].join(" + "));
        assert!(refused(&mut c, &deep).to_string().contains("too large"));
        let fine = format!("SELECT {}", vec!["1"; MAX_COLUMNS as usize].join(", "));
        c.run_here(soon(), move |c| Ok(c.execute_batch(&fine)?))
            .expect("as many columns as allowed");
    }

    #[tokio::test]
    async fn plugin_connections_are_defensive_and_the_heap_is_capped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteDb::open(&dir.path().join("t.db"), 1)
            .await
            .expect("open");
        let mut c = db.acquire().await.expect("acquire");
        let defensive = c
            .run_here(soon(), |c| {
                Ok(c.db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE)?)
            })
            .expect("reading the flag");
        assert!(defensive);
        // A virtual table's shadow tables cannot be written directly (which could
        // corrupt the file); the table itself works.
        c.run_here(soon(), |c| {
            Ok(c.execute_batch(
                "CREATE VIRTUAL TABLE f USING fts5(x); INSERT INTO f VALUES ('tea');",
            )?)
        })
        .expect("fts5");
        let e = refused(&mut c, "INSERT INTO f_data VALUES (99, x'00')");
        assert!(e.to_string().contains("may not be modified"), "{e}");
        // SAFETY: a negative argument only reads the limit.
        let limit = unsafe { rusqlite::ffi::sqlite3_hard_heap_limit64(-1) };
        assert_eq!(limit, HEAP_LIMIT);
    }

    #[tokio::test]
    async fn a_closed_database_refuses_new_work() {
        let db = SqliteDb::memory();
        db.close();
        assert!(matches!(db.acquire().await, Err(Error::Closed)));
    }
}

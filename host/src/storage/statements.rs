//! The statement engine behind plugin SQL: transactions and the call's unit of work
//! (savepoints, the guard around plain writes), running statements on SQLite
//! (`rusqlite`, on the plugin's connection) and PostgreSQL (sqlx's native driver), and
//! turning values and errors into the WIT types.
//!
//! Plugin SQL goes through the backends' native drivers (not sqlx's `Any`), and values
//! are read by the type of what is actually stored: SQLite is dynamically typed and
//! `Any` cannot read its `BOOLEAN` columns.

use std::time::Instant;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Column, Executor, Postgres, Row, TypeInfo, ValueRef};

use crate::bindings::kirana::platform::sql::{RowSet, Value};
use crate::bindings::wit;
use crate::storage::sqlite::{self, Conn};
use crate::storage::PluginDb;

/// An open transaction on one connection of a plugin's database.
pub enum Tx {
    Sqlite(Conn),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    /// Commits; `deadline` bounds a SQLite commit's wait for the write lock.
    pub async fn commit(self, deadline: Instant) -> Result<(), wit::Error> {
        match self {
            Tx::Sqlite(mut c) => {
                if !c.in_transaction() {
                    return Err(ended_tx());
                }
                c.run(deadline, true, |c| sqlite::control(c, "COMMIT"))
                    .await
                    .map_err(map_sqlite_err)
            }
            Tx::Postgres(t) => t.commit().await.map_err(map_err),
        }
    }

    /// Marks a migration's transaction: its SQLite statements run on the blocking pool,
    /// since one may take long (an index over an existing table).
    pub fn for_migration(mut self) -> Self {
        if let Tx::Sqlite(c) = &mut self {
            c.off_the_runtime();
        }
        self
    }

    /// Runs host SQL without parameters (savepoints) on this transaction.
    pub async fn raw(&mut self, deadline: Instant, sql: &str) -> Result<(), wit::Error> {
        match self {
            Tx::Sqlite(c) => {
                let sql = sql.to_string();
                c.run(deadline, false, move |c| Ok(c.execute_batch(&sql)?))
                    .await
                    .map_err(map_sqlite_err)
            }
            Tx::Postgres(t) => {
                by_deadline(deadline, async {
                    (&mut **t).execute(sql).await.map(|_| ()).map_err(map_err)
                })
                .await
            }
        }
    }

    /// Runs one host statement with parameters (the outbox and inbox rows).
    pub async fn execute_host(
        &mut self,
        deadline: Instant,
        statement: String,
        params: Vec<Value>,
    ) -> Result<u64, wit::Error> {
        execute(Target::Tx(self), deadline, statement, params).await
    }

    /// Whether the transaction is still open (SQLite ends one itself after some errors).
    pub fn alive(&self) -> bool {
        match self {
            Tx::Sqlite(c) => c.in_transaction(),
            Tx::Postgres(_) => true,
        }
    }

    pub async fn rollback(self) -> Result<(), wit::Error> {
        match self {
            // Rolling back a WAL transaction only drops its pages: no lock, no I/O wait.
            Tx::Sqlite(mut c) => c
                .run_here(Instant::now() + std::time::Duration::from_secs(5), |c| {
                    sqlite::control(c, "ROLLBACK")
                })
                .map_err(map_sqlite_err),
            Tx::Postgres(t) => t.rollback().await.map_err(map_err),
        }
    }
}

/// Begins a write transaction: SQLite takes the write lock up front
/// (`BEGIN IMMEDIATE`) so two transactions never deadlock upgrading their locks.
/// PostgreSQL's gets a `statement_timeout` of the call's remaining time (sent with the
/// `BEGIN`, no extra round trip): the connection's own timeout is the plugin's whole
/// time limit, and a migration's transaction may run longer than a request.
pub async fn begin(db: &PluginDb, deadline: Instant) -> Result<Tx, wit::Error> {
    begin_as(db, deadline, "").await
}

/// Like [`begin`], for a migration: on PostgreSQL the session is marked
/// ([`storage::MIGRATION_APPLICATION`]) so the host's statement watchdog grants it the
/// migration's longer time.
pub async fn begin_migration(db: &PluginDb, deadline: Instant) -> Result<Tx, wit::Error> {
    begin_as(
        db,
        deadline,
        &format!(
            "; SET LOCAL application_name = '{}'",
            crate::storage::MIGRATION_APPLICATION
        ),
    )
    .await
}

async fn begin_as(db: &PluginDb, deadline: Instant, also: &str) -> Result<Tx, wit::Error> {
    Ok(match db {
        PluginDb::Sqlite(db) => {
            let gate = db.write_gate(deadline).await.map_err(map_sqlite_err)?;
            let mut conn = db.acquire().await.map_err(map_sqlite_err)?;
            conn.keep_gate(gate);
            conn.run(deadline, true, |c| sqlite::control(c, "BEGIN IMMEDIATE"))
                .await
                .map_err(map_sqlite_err)?;
            Tx::Sqlite(conn)
        }
        PluginDb::Postgres(p) => {
            let left = deadline.saturating_duration_since(Instant::now());
            // 0 would mean "no timeout".
            let ms = left.as_millis().max(1);
            let begin = async {
                p.begin_with(format!("BEGIN; SET LOCAL statement_timeout = {ms}{also}"))
                    .await
                    .map_err(map_err)
            };
            Tx::Postgres(by_deadline(deadline, begin).await?)
        }
    })
}

/// The call's own transaction: everything one call writes (its statements, its
/// `transaction` resources as savepoints, the events it publishes, the event it
/// handled) commits together when the call succeeds, or not at all.
///
/// It begins at the call's first write; reads before it go to the pool. On PostgreSQL a
/// failed statement aborts the whole transaction, so once the unit holds work each
/// plain `execute` runs under a savepoint that undoes only that statement, as
/// autocommit would.
pub struct Unit {
    pub tx: Tx,
    /// Savepoint numbers of the plugin's open `transaction` resources, innermost last.
    pub open: Vec<u32>,
    next: u32,
    /// A statement has succeeded in it: a failure can no longer simply end it.
    pub dirty: bool,
}

impl Unit {
    pub async fn begin(db: &PluginDb, deadline: Instant) -> Result<Self, wit::Error> {
        Ok(Unit {
            tx: begin(db, deadline).await?,
            open: Vec::new(),
            next: 1,
            dirty: false,
        })
    }

    /// A unit over a transaction the host began (a migration's).
    pub fn from_tx(tx: Tx) -> Self {
        Unit {
            tx,
            open: Vec::new(),
            next: 1,
            dirty: true,
        }
    }

    /// Opens a savepoint for a `transaction` resource; returns its number.
    pub async fn savepoint(&mut self, deadline: Instant) -> Result<u32, wit::Error> {
        let sp = self.next;
        self.tx
            .raw(deadline, &savepoint_sql(sp, SavepointOp::Begin))
            .await?;
        self.next += 1;
        self.open.push(sp);
        Ok(sp)
    }

    /// The innermost open `transaction` resource (events published now belong to it).
    pub fn innermost(&self) -> Option<u32> {
        self.open.last().copied()
    }

    /// Rolls back the `transaction` resources the plugin left open, so only what it
    /// committed remains; returns the outermost one rolled back (events published
    /// since then are dropped by the caller).
    pub async fn close_open(&mut self, deadline: Instant) -> Result<Option<u32>, wit::Error> {
        let Some(&first) = self.open.first() else {
            return Ok(None);
        };
        self.rollback_to(first, deadline).await?;
        Ok(Some(first))
    }

    pub async fn rollback_to(&mut self, sp: u32, deadline: Instant) -> Result<(), wit::Error> {
        if let Some(at) = self.open.iter().position(|&n| n == sp) {
            self.open.truncate(at);
        }
        let sql = savepoint_sql(sp, SavepointOp::RollbackAndRelease);
        self.tx.raw(deadline, &sql).await
    }

    /// Commits the call's work (the caller has added the outbox and inbox rows).
    pub async fn commit(self, deadline: Instant) -> Result<(), wit::Error> {
        self.tx.commit(deadline).await
    }

    pub async fn rollback(self) -> Result<(), wit::Error> {
        self.tx.rollback().await
    }

    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Runs a plain (not in a `transaction` resource) statement: on PostgreSQL a write
    /// is guarded by a savepoint once the unit holds work, and anything inside an open
    /// `transaction` resource is. The `bool` says the unit is dead.
    pub async fn guarded<R>(
        &mut self,
        deadline: Instant,
        writes: bool,
        run: impl for<'t> FnOnce(
            &'t mut Tx,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<R, wit::Error>> + Send + 't>,
        >,
    ) -> (Result<R, wit::Error>, bool) {
        // A read outside any `transaction` resource goes unguarded (two round trips
        // saved): its failure (a bug, a timeout) ends the call's transaction.
        let guard =
            matches!(self.tx, Tx::Postgres(_)) && (!self.open.is_empty() || (self.dirty && writes));
        if guard {
            if let Err(e) = self.tx.raw(deadline, "SAVEPOINT kirana_stmt").await {
                return (Err(e), true);
            }
        }
        let out = run(&mut self.tx).await;
        let ok = out.is_ok();
        if guard {
            let sql = if ok {
                "RELEASE SAVEPOINT kirana_stmt"
            } else {
                "ROLLBACK TO SAVEPOINT kirana_stmt; RELEASE SAVEPOINT kirana_stmt"
            };
            if let Err(e) = self.tx.raw(deadline, sql).await {
                return (Err(e), true);
            }
            self.dirty |= ok;
            return (out, false);
        }
        if ok {
            self.dirty = true;
        }
        // Unguarded and failed: on PostgreSQL the transaction is aborted; SQLite may
        // have ended it itself. Before any work, the unit simply ends.
        let dead = !ok && (matches!(self.tx, Tx::Postgres(_)) || !self.tx.alive());
        (out, dead)
    }
}

#[derive(Clone, Copy)]
pub enum SavepointOp {
    Begin,
    Release,
    RollbackAndRelease,
}

pub fn savepoint_sql(n: u32, op: SavepointOp) -> String {
    match op {
        SavepointOp::Begin => format!("SAVEPOINT kirana_tx_{n}"),
        SavepointOp::Release => format!("RELEASE SAVEPOINT kirana_tx_{n}"),
        SavepointOp::RollbackAndRelease => {
            format!("ROLLBACK TO SAVEPOINT kirana_tx_{n}; RELEASE SAVEPOINT kirana_tx_{n}")
        }
    }
}

/// Whether a plain statement may run outside the call's transaction: it only reads.
/// A misjudged read merely begins the unit early; anything unclear counts as a write.
pub fn only_reads(statement: &str) -> bool {
    // Runs for every plain statement: words are compared in place, nothing is copied.
    let is = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    let mut words = statement
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty());
    let cte = match words.next() {
        Some(w) if is(w, "SELECT") || is(w, "VALUES") => false,
        Some(w) if is(w, "WITH") => true,
        _ => return false,
    };
    let mut after_for = false;
    for w in words {
        // `SELECT ... FOR UPDATE / FOR SHARE` takes row locks: it belongs in the unit.
        if after_for && (is(w, "UPDATE") || is(w, "SHARE")) {
            return false;
        }
        if cte
            && ["INSERT", "UPDATE", "DELETE", "MERGE"]
                .iter()
                .any(|k| is(w, k))
        {
            return false;
        }
        after_for = is(w, "FOR");
    }
    true
}

/// Where a statement runs.
pub enum Target<'a> {
    Pool(&'a PluginDb),
    Tx(&'a mut Tx),
}

/// Binds the plugin's parameters for PostgreSQL.
///
/// A NULL is sent untyped to PostgreSQL (it infers the type from the statement, as
/// for a literal NULL). Prepared statements are cached per connection with the
/// parameter types of their first use, so statements with a NULL are prepared afresh
/// each time.
macro_rules! prepare {
    ($statement:expr, $params:expr, $null:expr) => {{
        let params: Vec<Value> = $params;
        let has_null = params.iter().any(|p| matches!(p, Value::Null));
        let mut q = sqlx::query($statement).persistent(!has_null);
        for p in params {
            q = match p {
                Value::Null => q.bind($null),
                Value::Int(i) => q.bind(i),
                Value::Float(f) => q.bind(f),
                Value::Text(s) => q.bind(s),
                Value::Blob(b) => q.bind(b),
                Value::Boolean(b) => q.bind(b),
            };
        }
        q
    }};
}

fn pg_query(statement: &str, params: Vec<Value>) -> Query<'_, Postgres, PgArguments> {
    prepare!(statement, params, UntypedNull)
}

/// A NULL parameter whose type PostgreSQL infers (type oid 0, "unspecified").
struct UntypedNull;

impl sqlx::Type<Postgres> for UntypedNull {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        sqlx::postgres::PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0))
    }
}

impl sqlx::Encode<'_, Postgres> for UntypedNull {
    fn encode_by_ref(
        &self,
        _buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Ok(sqlx::encode::IsNull::Yes)
    }
}

/// Most rows one query may return to a plugin.
pub const MAX_ROWS: usize = 10_000;
/// Most bytes of text and blobs one query may return to a plugin.
pub const MAX_RESULT_BYTES: usize = 16 << 20;

/// Largest text or blob a plugin may pass to or read from its database, on both
/// backends: SQLite's string/blob limit for plugin connections (PostgreSQL's own is
/// 1 GB), so a plugin meets one rule wherever it runs.
pub const MAX_VALUE_BYTES: usize = sqlite::MAX_LENGTH as usize;

fn value_too_large() -> wit::Error {
    wit::Error::Invalid(format!(
        "SQL value too large: the string/blob limit for plugins is {MAX_VALUE_BYTES} bytes \
         ({} MiB, also the largest row SQLite stores)",
        MAX_VALUE_BYTES >> 20
    ))
}

/// Refuses a parameter larger than [`MAX_VALUE_BYTES`].
fn check_params(params: &[Value]) -> Result<(), wit::Error> {
    let too_large = params.iter().any(|p| match p {
        Value::Text(s) => s.len() > MAX_VALUE_BYTES,
        Value::Blob(b) => b.len() > MAX_VALUE_BYTES,
        _ => false,
    });
    if too_large {
        return Err(value_too_large());
    }
    Ok(())
}

/// Collects a result row by row, refusing results larger than the caps so a query
/// cannot make the host buffer more than a plugin could ever take. Each value is
/// counted before it is copied, so the copy that would pass the cap is never made.
struct Collector {
    rows: Vec<Vec<Value>>,
    bytes: usize,
}

impl Collector {
    fn new() -> Self {
        Collector {
            rows: Vec::new(),
            bytes: 0,
        }
    }

    /// Counts `n` more bytes of the result (text and blobs by length, anything else as
    /// 8), failing once the total passes [`MAX_RESULT_BYTES`].
    fn charge(&mut self, n: usize) -> Result<(), wit::Error> {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > MAX_RESULT_BYTES {
            return Err(wit::Error::Invalid(format!(
                "SQL result too large: more than {} MiB of values (the limit for one \
                 query's result); page it with LIMIT",
                MAX_RESULT_BYTES >> 20
            )));
        }
        Ok(())
    }

    fn push(&mut self, values: Vec<Value>) -> Result<(), wit::Error> {
        if self.rows.len() >= MAX_ROWS {
            return Err(wit::Error::Invalid(format!(
                "SQL result too large: more than {MAX_ROWS} rows (the limit for one \
                 query's result); page it with LIMIT"
            )));
        }
        self.rows.push(values);
        Ok(())
    }
}

/// Runs a query and collects every row.
pub async fn fetch(
    target: Target<'_>,
    deadline: Instant,
    statement: String,
    params: Vec<Value>,
) -> Result<RowSet, wit::Error> {
    check_params(&params)?;
    match target {
        Target::Pool(PluginDb::Sqlite(db)) => {
            let mut conn = db.acquire().await.map_err(map_sqlite_err)?;
            on_sqlite(&mut conn, false, deadline, statement, params, sqlite_fetch).await
        }
        Target::Tx(Tx::Sqlite(conn)) => {
            on_sqlite(conn, true, deadline, statement, params, sqlite_fetch).await
        }
        Target::Pool(PluginDb::Postgres(p)) => {
            by_deadline(deadline, pg_fetch(p, &statement, params)).await
        }
        Target::Tx(Tx::Postgres(t)) => {
            by_deadline(deadline, pg_fetch(&mut **t, &statement, params)).await
        }
    }
}

/// Gives up on a PostgreSQL call at the plugin call's deadline, so the plugin is never
/// kept waiting past it. The server stops the statement by itself: every plugin
/// connection runs with a `statement_timeout` (see `storage::open_plugin` and
/// [`begin`]).
async fn by_deadline<T>(
    deadline: Instant,
    work: impl std::future::Future<Output = Result<T, wit::Error>>,
) -> Result<T, wit::Error> {
    tokio::time::timeout_at(deadline.into(), work)
        .await
        .unwrap_or_else(|_| {
            Err(wit::Error::Timeout(
                "the statement ran past the call's time limit".into(),
            ))
        })
}

/// Runs a statement and answers how many rows it changed.
pub async fn execute(
    target: Target<'_>,
    deadline: Instant,
    statement: String,
    params: Vec<Value>,
) -> Result<u64, wit::Error> {
    check_params(&params)?;
    match target {
        Target::Pool(PluginDb::Sqlite(db)) => {
            let mut conn = db.acquire().await.map_err(map_sqlite_err)?;
            on_sqlite(
                &mut conn,
                false,
                deadline,
                statement,
                params,
                sqlite_execute,
            )
            .await
        }
        Target::Tx(Tx::Sqlite(conn)) => {
            on_sqlite(conn, true, deadline, statement, params, sqlite_execute).await
        }
        Target::Pool(PluginDb::Postgres(p)) => {
            by_deadline(deadline, async {
                pg_query(&statement, params)
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(map_err)
            })
            .await
        }
        Target::Tx(Tx::Postgres(t)) => {
            by_deadline(deadline, async {
                pg_query(&statement, params)
                    .execute(&mut **t)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(map_err)
            })
            .await
        }
    }
}

/// Runs one statement on a SQLite connection (see `storage::sqlite` for where).
///
/// Inside a transaction (`in_tx`), a connection SQLite has already returned to
/// autocommit (it rolls a transaction back itself after an interrupted write or a full
/// disk) refuses further statements: they would otherwise commit one by one.
async fn on_sqlite<R: Send + 'static>(
    conn: &mut Conn,
    in_tx: bool,
    deadline: Instant,
    statement: String,
    params: Vec<Value>,
    run: fn(&rusqlite::Connection, &str, &[Value]) -> Result<R, SqliteFailure>,
) -> Result<R, wit::Error> {
    if in_tx && !conn.in_transaction() {
        return Err(ended_tx());
    }
    let writes = !conn.is_read_only(&statement).map_err(map_sqlite_err)?;
    // A plugin's error (a bad parameter count, too many rows) rides inside `Ok` so the
    // connection layer sees only SQLite's own errors, `SQLITE_BUSY` among them.
    let outcome = conn
        .run(deadline, writes, move |c| {
            match run(c, &statement, &params) {
                Ok(r) => Ok(Ok(r)),
                Err(SqliteFailure::Plugin(e)) => Ok(Err(e)),
                Err(SqliteFailure::Sqlite(e)) => Err(e.into()),
            }
        })
        .await;
    let result = outcome.map_err(map_sqlite_err)?;
    if in_tx && !conn.in_transaction() {
        return Err(ended_tx());
    }
    result
}

pub fn ended_tx() -> wit::Error {
    wit::Error::Failed(
        "the transaction was rolled back (an earlier statement failed or ran out of time, \
         or a statement ended it); begin a new one"
            .into(),
    )
}

/// One statement per call, as on PostgreSQL: SQLite would run only the first.
fn refuse_second_statement(
    conn: &rusqlite::Connection,
    statement: &str,
) -> Result<(), SqliteFailure> {
    // The quick scan finds no `;` before anything in almost every statement; a hit is
    // confirmed by SQLite's own parser (a trigger's body has `;` inside one statement).
    if has_second_statement(statement) {
        let mut batch = rusqlite::Batch::new(conn, statement);
        if batch.next()?.is_some() && batch.next()?.is_some() {
            return Err(wit::Error::Invalid(
                "one statement per call: split the SQL and run each statement on its own".into(),
            )
            .into());
        }
    }
    Ok(())
}

/// Whether `sql` holds a second statement: a `;` followed by anything but whitespace,
/// comments or more `;`. Quoted strings and identifiers are skipped.
fn has_second_statement(sql: &str) -> bool {
    if !sql.contains(';') {
        return false;
    }
    let b = sql.as_bytes();
    let mut i = 0;
    let mut ended = false;
    let skip_to = |from: usize, end: &[u8]| {
        b[from..]
            .windows(end.len())
            .position(|w| w == end)
            .map_or(b.len(), |p| from + p + end.len())
    };
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => i = skip_to(i + 2, b"\n"),
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_to(i + 2, b"*/"),
            b';' => {
                ended = true;
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ if ended => return true,
            q @ (b'\'' | b'"' | b'`') => i = skip_to(i + 1, &[q]),
            b'[' => i = skip_to(i + 1, b"]"),
            _ => i += 1,
        }
    }
    false
}

/// What went wrong inside a SQLite statement: SQLite said no, or the plugin's input or
/// result broke a rule of this capability.
enum SqliteFailure {
    Sqlite(rusqlite::Error),
    Plugin(wit::Error),
}

impl From<rusqlite::Error> for SqliteFailure {
    fn from(e: rusqlite::Error) -> Self {
        SqliteFailure::Sqlite(e)
    }
}

impl From<wit::Error> for SqliteFailure {
    fn from(e: wit::Error) -> Self {
        SqliteFailure::Plugin(e)
    }
}

/// Prepares (from the connection's cache) and binds `params` to `$N` / `?N` by number,
/// as the PostgreSQL side does, so a statement binds the same on both.
fn sqlite_prepare<'c>(
    conn: &'c rusqlite::Connection,
    statement: &str,
    params: &[Value],
) -> Result<rusqlite::CachedStatement<'c>, SqliteFailure> {
    refuse_second_statement(conn, statement)?;
    let mut stmt = conn.prepare_cached(statement)?;
    let count = stmt.parameter_count();
    let mut used = vec![false; params.len()];
    for index in 1..=count {
        let number = stmt
            .parameter_name(index)
            .and_then(|name| name.strip_prefix(['$', '?']))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(index);
        let value = number
            .checked_sub(1)
            .and_then(|i| params.get(i).map(|v| (i, v)))
            .ok_or_else(|| {
                wit::Error::Invalid(format!(
                    "the statement uses parameter ${number} but {} values were given",
                    params.len()
                ))
            })?;
        used[value.0] = true;
        stmt.raw_bind_parameter(
            index,
            rusqlite::types::ToSqlOutput::Borrowed(sqlite_param(value.1)),
        )?;
    }
    if let Some(unused) = used.iter().position(|u| !u) {
        return Err(wit::Error::Invalid(format!(
            "{} values were given but the statement never uses ${}",
            params.len(),
            unused + 1
        ))
        .into());
    }
    Ok(stmt)
}

fn sqlite_param(value: &Value) -> rusqlite::types::ValueRef<'_> {
    use rusqlite::types::ValueRef;
    match value {
        Value::Null => ValueRef::Null,
        Value::Int(i) => ValueRef::Integer(*i),
        Value::Float(f) => ValueRef::Real(*f),
        Value::Text(s) => ValueRef::Text(s.as_bytes()),
        Value::Blob(b) => ValueRef::Blob(b),
        Value::Boolean(b) => ValueRef::Integer(i64::from(*b)),
    }
}

fn sqlite_fetch(
    conn: &rusqlite::Connection,
    statement: &str,
    params: &[Value],
) -> Result<RowSet, SqliteFailure> {
    let mut stmt = sqlite_prepare(conn, statement, params)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let mut out = Collector::new();
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter().enumerate() {
            let value = row.get_ref(i)?;
            out.charge(match value {
                rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => b.len(),
                _ => 8,
            })?;
            values.push(sqlite_value(value, column)?);
        }
        out.push(values)?;
    }
    Ok(RowSet {
        columns,
        rows: out.rows,
    })
}

fn sqlite_execute(
    conn: &rusqlite::Connection,
    statement: &str,
    params: &[Value],
) -> Result<u64, SqliteFailure> {
    let mut stmt = sqlite_prepare(conn, statement, params)?;
    let before = conn.total_changes();
    // Stepping through any rows (`RETURNING`) runs the statement to completion.
    let mut rows = stmt.raw_query();
    while rows.next()?.is_some() {}
    drop(rows);
    // `changes()` keeps the count of the last INSERT/UPDATE/DELETE, so a statement
    // that changed nothing (DDL, a SELECT) must not report an earlier one's.
    Ok(if conn.total_changes() == before {
        0
    } else {
        conn.changes()
    })
}

/// A SQLite value by storage class (`INTEGER`, `REAL`, `TEXT`, `BLOB`); a `BOOLEAN`
/// column is stored as an integer and reaches the plugin as one.
fn sqlite_value(
    value: rusqlite::types::ValueRef<'_>,
    column: &str,
) -> Result<Value, SqliteFailure> {
    use rusqlite::types::ValueRef;
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8(t.to_vec()).map_err(|_| {
            wit::Error::Invalid(format!("column {column} holds text that is not UTF-8"))
        })?),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    })
}

async fn pg_fetch<'e>(
    executor: impl Executor<'e, Database = Postgres>,
    statement: &'e str,
    params: Vec<Value>,
) -> Result<RowSet, wit::Error> {
    use futures::TryStreamExt;
    let mut out = Collector::new();
    let mut columns = Vec::new();
    let mut stream = pg_query(statement, params).fetch(executor);
    while let Some(row) = stream.try_next().await.map_err(map_err)? {
        if columns.is_empty() {
            columns = row.columns().iter().map(|c| c.name().to_string()).collect();
        }
        let values = pg_values(&row, &mut out)?;
        out.push(values)?;
    }
    Ok(RowSet {
        columns,
        rows: out.rows,
    })
}

/// A PostgreSQL row by column type, each value counted in `out` before it is copied;
/// types outside the portable set are refused with a message that says which to use.
fn pg_values(row: &PgRow, out: &mut Collector) -> Result<Vec<Value>, wit::Error> {
    (0..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i).map_err(map_err)?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            let len = raw.as_bytes().map_or(8, |b| b.len().max(8));
            if len > MAX_VALUE_BYTES {
                return Err(value_too_large());
            }
            out.charge(len)?;
            pg_value(row, i, raw.type_info().name()).map_err(map_err)
        })
        .collect()
}

fn pg_value(row: &PgRow, i: usize, type_name: &str) -> Result<Value, sqlx::Error> {
    Ok(match type_name {
        "BOOL" => Value::Boolean(row.try_get(i)?),
        "INT2" => Value::Int(i64::from(row.try_get::<i16, _>(i)?)),
        "INT4" => Value::Int(i64::from(row.try_get::<i32, _>(i)?)),
        "INT8" => Value::Int(row.try_get(i)?),
        "FLOAT4" => Value::Float(f64::from(row.try_get::<f32, _>(i)?)),
        "FLOAT8" => Value::Float(row.try_get(i)?),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" => Value::Text(row.try_get(i)?),
        "BYTEA" => Value::Blob(row.try_get(i)?),
        other => {
            return Err(sqlx::Error::ColumnDecode {
                index: row.columns()[i].name().to_string(),
                source: format!(
                    "PostgreSQL type {other} is not portable; cast it to TEXT, BIGINT, DOUBLE PRECISION, BOOLEAN or BYTEA"
                )
                .into(),
            })
        }
    })
}

/// Maps a database error onto the WIT error: unique violations are `conflict` (the
/// plugin turns them into `already_exists` and the like), bad SQL is `invalid`.
pub fn map_err(e: sqlx::Error) -> wit::Error {
    match &e {
        // query_canceled: the role's `statement_timeout` (or a cancel) stopped it.
        sqlx::Error::Database(db) if db.code().as_deref() == Some("57014") => {
            wit::Error::Timeout(format!(
                "the statement ran past the call's time limit and was cancelled ({})",
                db.message()
            ))
        }
        // program_limit_exceeded, statement_too_complex: PostgreSQL's own size limits.
        sqlx::Error::Database(db)
            if matches!(db.code().as_deref(), Some("54000") | Some("54001")) =>
        {
            wit::Error::Invalid(format!("SQL over a PostgreSQL limit: {}", db.message()))
        }
        sqlx::Error::Database(db) => {
            let message = db.message().to_string();
            match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => wit::Error::Conflict(message),
                sqlx::error::ErrorKind::ForeignKeyViolation
                | sqlx::error::ErrorKind::NotNullViolation
                | sqlx::error::ErrorKind::CheckViolation => wit::Error::Invalid(message),
                _ => {
                    let lower = message.to_lowercase();
                    if lower.contains("syntax")
                        || lower.contains("no such")
                        || lower.contains("does not exist")
                    {
                        wit::Error::Invalid(message)
                    } else {
                        wit::Error::Failed(message)
                    }
                }
            }
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. } => wit::Error::Invalid(e.to_string()),
        sqlx::Error::PoolTimedOut => {
            wit::Error::Timeout("no database connection free in time".into())
        }
        _ => wit::Error::Failed(e.to_string()),
    }
}

/// The SQLite side of [`map_err`], by SQLite's extended result codes.
pub fn map_sqlite_err(e: sqlite::Error) -> wit::Error {
    use rusqlite::ffi;
    let e = match e {
        sqlite::Error::Sqlite(e) => e,
        sqlite::Error::PoolTimedOut => {
            return wit::Error::Timeout("no database connection free in time".into())
        }
        e @ sqlite::Error::WriteLockTimedOut => return wit::Error::Timeout(e.to_string()),
        sqlite::Error::Closed => {
            return wit::Error::Unavailable("the plugin's database is closed".into())
        }
        sqlite::Error::Task(m) => return wit::Error::Failed(m),
        e @ sqlite::Error::TooMuchMemory => return wit::Error::Invalid(e.to_string()),
    };
    let message = e.to_string();
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                wit::Error::Conflict(message)
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY
            | ffi::SQLITE_CONSTRAINT_NOTNULL
            | ffi::SQLITE_CONSTRAINT_CHECK => wit::Error::Invalid(message),
            ffi::SQLITE_INTERRUPT => wit::Error::Timeout(
                "the statement ran past the call's time limit and was interrupted".into(),
            ),
            ffi::SQLITE_ERROR | ffi::SQLITE_RANGE | ffi::SQLITE_MISMATCH => {
                wit::Error::Invalid(message)
            }
            ffi::SQLITE_AUTH => wit::Error::Invalid(format!(
                "{message}: a plugin may not change connection settings with PRAGMA"
            )),
            ffi::SQLITE_TOOBIG if message.contains("statement too long") => {
                wit::Error::Invalid(format!(
                    "SQL statement too long: SQLite's statement limit for plugins is {} bytes",
                    sqlite::MAX_SQL_LENGTH
                ))
            }
            ffi::SQLITE_TOOBIG => value_too_large(),
            ffi::SQLITE_NOMEM => wit::Error::Failed(format!(
                "SQL ran out of memory: SQLite's heap limit in the host is {} MiB for all \
                 databases together",
                sqlite::HEAP_LIMIT >> 20
            )),
            _ => wit::Error::Failed(message),
        },
        rusqlite::Error::MultipleStatement => wit::Error::Invalid(
            "one statement per call: split the SQL and run each statement on its own".into(),
        ),
        rusqlite::Error::InvalidParameterCount(..)
        | rusqlite::Error::InvalidColumnIndex(_)
        | rusqlite::Error::Utf8Error(_)
        | rusqlite::Error::NulError(_) => wit::Error::Invalid(message),
        _ => wit::Error::Failed(message),
    }
}
/// Runs a host query on a plugin's database, outside any call (the outbox relay).
pub async fn query_host(
    db: &PluginDb,
    statement: &str,
    params: Vec<Value>,
) -> Result<RowSet, wit::Error> {
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    fetch(Target::Pool(db), deadline, statement.to_string(), params).await
}

/// Runs a host statement on a plugin's database, outside any call.
pub async fn execute_host_pool(
    db: &PluginDb,
    statement: &str,
    params: Vec<Value>,
) -> Result<u64, wit::Error> {
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    if let PluginDb::Sqlite(sqlite) = db {
        // Queue with the plugin's own writers (see `SqliteDb::write_gate`).
        let gate = sqlite.write_gate(deadline).await.map_err(map_sqlite_err)?;
        let mut conn = sqlite.acquire().await.map_err(map_sqlite_err)?;
        conn.keep_gate(gate);
        return on_sqlite(
            &mut conn,
            false,
            deadline,
            statement.to_string(),
            params,
            sqlite_execute,
        )
        .await;
    }
    execute(Target::Pool(db), deadline, statement.to_string(), params).await
}

/// Runs `statement` on a plugin's database outside any plugin (host maintenance, tests).
pub async fn execute_raw(db: &PluginDb, statement: &str) -> anyhow::Result<()> {
    match db {
        PluginDb::Sqlite(db) => {
            let statement = statement.to_string();
            let deadline = Instant::now() + std::time::Duration::from_secs(30);
            db.acquire()
                .await?
                .run(deadline, true, move |c| Ok(c.execute_batch(&statement)?))
                .await?;
        }
        PluginDb::Postgres(p) => {
            p.execute(statement).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn write_transactions_queue_at_the_gate_until_their_deadline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::storage::sqlite::SqliteDb::open(&dir.path().join("g.db"), 4)
            .await
            .expect("open");
        let db = PluginDb::Sqlite(db);
        let soon = || Instant::now() + std::time::Duration::from_millis(200);
        let first = begin(&db, soon()).await.expect("first");
        // A second writer waits for the first instead of failing busy ...
        let waiting = {
            let db = db.clone();
            tokio::spawn(async move {
                let deadline = Instant::now() + std::time::Duration::from_secs(5);
                begin(&db, deadline).await.map(|_| ())
            })
        };
        // ... and one whose deadline passes first times out, naming the lock.
        match begin(&db, soon()).await {
            Err(wit::Error::Timeout(m)) => assert!(m.contains("write lock"), "{m}"),
            Err(e) => panic!("expected a timeout, got {e:?}"),
            Ok(_) => panic!("two write transactions at once"),
        }
        assert!(!waiting.is_finished(), "the waiting writer got in early");
        first.commit(soon()).await.expect("commit");
        waiting
            .await
            .expect("join")
            .expect("the waiting writer got in once the first ended");
    }

    #[test]
    fn reads_are_told_from_writes() {
        assert!(only_reads("SELECT id FROM t WHERE a = $1"));
        assert!(only_reads("  (select 1)"));
        assert!(only_reads("VALUES (1)"));
        assert!(only_reads("WITH x AS (SELECT 1) SELECT * FROM x"));
        assert!(!only_reads("SELECT * FROM t FOR UPDATE"));
        assert!(!only_reads("select * from t for  share"));
        assert!(!only_reads(
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d"
        ));
        assert!(!only_reads("INSERT INTO t VALUES (1)"));
        assert!(
            !only_reads("-- a comment\nSELECT 1"),
            "unclear counts as a write"
        );
        assert!(!only_reads(""));
    }

    #[test]
    fn second_statements_are_found_outside_quotes_and_comments() {
        assert!(!has_second_statement("SELECT 1"));
        assert!(!has_second_statement("SELECT 1;  \n ; -- done\n /* end */"));
        assert!(!has_second_statement("SELECT 'a;b', \"c;d\", [e;f] FROM t"));
        assert!(!has_second_statement("SELECT 'it''s; fine'"));
        assert!(!has_second_statement("SELECT 1 -- ; DROP TABLE t"));
        assert!(has_second_statement("SELECT 1; DROP TABLE t"));
        assert!(has_second_statement(
            "CREATE TABLE a (x);CREATE TABLE b (y)"
        ));
        assert!(has_second_statement("SELECT 1; 'x'"));
    }

    fn conn() -> rusqlite::Connection {
        let c = rusqlite::Connection::open_in_memory().expect("open");
        c.execute_batch("CREATE TABLE t (a INTEGER, b TEXT, c REAL, d BLOB, e BOOLEAN)")
            .expect("schema");
        c
    }

    fn ok<T>(r: Result<T, SqliteFailure>) -> T {
        match r {
            Ok(v) => v,
            Err(SqliteFailure::Sqlite(e)) => panic!("sqlite: {e}"),
            Err(SqliteFailure::Plugin(e)) => panic!("plugin: {e:?}"),
        }
    }

    #[test]
    fn parameters_bind_by_number_and_values_come_back_by_storage_class() {
        let c = conn();
        let n = ok(sqlite_execute(
            &c,
            "INSERT INTO t (b, a, c, d, e) VALUES ($2, $1, $3, $4, $5) RETURNING a",
            &[
                Value::Int(7),
                Value::Text("seven".into()),
                Value::Float(0.5),
                Value::Blob(vec![1, 2]),
                Value::Boolean(true),
            ],
        ));
        assert_eq!(n, 1);
        let rows = ok(sqlite_fetch(
            &c,
            "SELECT a, b, c, d, e, NULL AS f FROM t WHERE a = $1 AND a = $1",
            &[Value::Int(7)],
        ));
        assert_eq!(rows.columns, ["a", "b", "c", "d", "e", "f"]);
        assert!(matches!(
            rows.rows[0].as_slice(),
            [
                Value::Int(7),
                Value::Text(b),
                Value::Float(c),
                Value::Blob(d),
                Value::Int(1),
                Value::Null
            ] if b == "seven" && *c == 0.5 && d == &[1, 2]
        ));
        let empty = ok(sqlite_fetch(&c, "SELECT a FROM t WHERE a < 0", &[]));
        assert_eq!(empty.columns, ["a"], "columns even without rows");
    }

    #[test]
    fn parameter_counts_must_match() {
        let c = conn();
        for (sql, params) in [
            ("SELECT $2", vec![Value::Int(1)]),
            ("SELECT $1", vec![Value::Int(1), Value::Int(2)]),
        ] {
            match sqlite_fetch(&c, sql, &params) {
                Err(SqliteFailure::Plugin(wit::Error::Invalid(_))) => {}
                Err(SqliteFailure::Plugin(e)) => panic!("{sql}: {e:?}"),
                Err(SqliteFailure::Sqlite(e)) => panic!("{sql}: {e}"),
                Ok(_) => panic!("{sql} must be refused"),
            }
        }
    }

    #[test]
    fn sqlite_errors_map_to_the_wit_error() {
        let c = conn();
        c.execute_batch("CREATE UNIQUE INDEX t_a ON t (a); INSERT INTO t (a) VALUES (1)")
            .expect("setup");
        let err = |sql: &str| match sqlite_execute(&c, sql, &[]) {
            Err(SqliteFailure::Sqlite(e)) => map_sqlite_err(e.into()),
            Err(SqliteFailure::Plugin(e)) => e,
            Ok(_) => panic!("{sql} must fail"),
        };
        assert!(matches!(
            err("INSERT INTO t (a) VALUES (1)"),
            wit::Error::Conflict(_)
        ));
        assert!(matches!(err("SELEC 1"), wit::Error::Invalid(_)));
        assert!(matches!(
            err("SELECT * FROM nowhere"),
            wit::Error::Invalid(_)
        ));
    }

    #[test]
    fn a_trigger_is_one_statement_and_ddl_changes_no_rows() {
        let c = conn();
        ok(sqlite_execute(&c, "INSERT INTO t (a) VALUES (1)", &[]));
        let n = ok(sqlite_execute(
            &c,
            "CREATE TRIGGER t_a AFTER INSERT ON t BEGIN UPDATE t SET b = 'x' WHERE a = NEW.a; END",
            &[],
        ));
        assert_eq!(n, 0, "DDL reports no rows, not the last INSERT's");
        assert_eq!(
            ok(sqlite_execute(&c, "INSERT INTO t (a) VALUES (2)", &[])),
            1
        );
        match sqlite_execute(&c, "DELETE FROM t; DELETE FROM t", &[]) {
            Err(SqliteFailure::Plugin(wit::Error::Invalid(_))) => {}
            _ => panic!("two statements must be refused"),
        }
    }

    #[tokio::test]
    async fn a_transaction_sqlite_ended_refuses_further_statements_and_commit() {
        let db = PluginDb::Sqlite(crate::storage::SqliteDb::memory());
        let soon = Instant::now() + std::time::Duration::from_secs(5);
        execute(
            Target::Pool(&db),
            soon,
            "CREATE TABLE t (a INTEGER)".into(),
            vec![],
        )
        .await
        .expect("schema");
        // `memory()` is one connection, so the transaction sees the table.
        let mut tx = begin(&db, soon).await.expect("begin");
        let ended = execute(Target::Tx(&mut tx), soon, "COMMIT".into(), vec![]).await;
        assert!(matches!(ended, Err(wit::Error::Failed(_))), "{ended:?}");
        let next = execute(
            Target::Tx(&mut tx),
            soon,
            "INSERT INTO t VALUES (1)".into(),
            vec![],
        )
        .await;
        assert!(matches!(next, Err(wit::Error::Failed(_))), "{next:?}");
        assert!(matches!(tx.commit(soon).await, Err(wit::Error::Failed(_))));
    }

    fn message(e: wit::Error) -> String {
        match e {
            wit::Error::Invalid(m) => m,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn huge_values_and_results_are_refused_with_the_limit_named() {
        let db = PluginDb::Sqlite(crate::storage::SqliteDb::memory());
        let soon = Instant::now() + std::time::Duration::from_secs(5);
        let run = |sql: &str| fetch(Target::Pool(&db), soon, sql.into(), vec![]);
        let bomb = run("SELECT randomblob(999999999)").await.expect_err("bomb");
        assert!(message(bomb).contains("the string/blob limit for plugins is 1048576 bytes"),);
        // Many values, each allowed, are more than one result may hold: refused after
        // the 17th MiB is counted, not after the 64th is read.
        let rows = run(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64) \
             SELECT zeroblob(1048576) FROM n",
        )
        .await
        .expect_err("too many bytes");
        assert!(message(rows).contains("SQL result too large: more than 16 MiB"));
        let wide = format!("SELECT {}", vec!["zeroblob(1048576)"; 20].join(", "));
        let wide = run(&wide).await.expect_err("one wide row");
        assert!(message(wide).contains("SQL result too large"));
        let many = run(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
             SELECT i FROM n",
        )
        .await
        .expect_err("too many rows");
        assert!(message(many).contains("more than 10000 rows"));
        let long = "SELECT 1 -- ".to_string() + &"x".repeat(1 << 20);
        let long = run(&long).await.expect_err("too long");
        assert!(message(long).contains("statement limit for plugins is 1048576 bytes"));
        // A parameter over the limit never reaches the database.
        let param = fetch(
            Target::Pool(&db),
            soon,
            "SELECT length($1)".into(),
            vec![Value::Text("x".repeat(MAX_VALUE_BYTES + 1))],
        )
        .await
        .expect_err("parameter too large");
        assert!(message(param).contains("string/blob limit"));
    }

    #[tokio::test]
    async fn plugins_may_read_but_not_set_connection_pragmas() {
        let db = PluginDb::Sqlite(crate::storage::SqliteDb::memory());
        let soon = Instant::now() + std::time::Duration::from_secs(5);
        let set = execute(
            Target::Pool(&db),
            soon,
            "PRAGMA busy_timeout = 30000".into(),
            vec![],
        )
        .await;
        assert!(matches!(set, Err(wit::Error::Invalid(_))), "{set:?}");
        let read = fetch(
            Target::Pool(&db),
            soon,
            "PRAGMA journal_mode".into(),
            vec![],
        )
        .await
        .expect("reading a pragma");
        assert_eq!(read.rows.len(), 1);
    }
}

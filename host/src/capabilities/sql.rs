//! `kirana:platform/sql`: each plugin's own database (a SQLite file or a PostgreSQL
//! schema), reached through the host's pools so no plugin ever opens a connection.
//!
//! Plugin SQL goes through the backends' native drivers (not sqlx's `Any`), and values
//! are read by the type of what is actually stored: SQLite is dynamically typed and
//! `Any` cannot read its `BOOLEAN` columns. During `migrate` every statement runs in the
//! call's migration transaction, so a failed migration leaves nothing behind.

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Column, Executor, Postgres, Row, Sqlite, TypeInfo, ValueRef};
use wasmtime::component::Resource;

use crate::capabilities::denied;
use crate::runtime::bindings::kirana::platform::sql::{
    Host, HostTransaction, RowSet, SqlDialect, Value,
};
use crate::runtime::bindings::wit;
use crate::runtime::HostState;
use crate::storage::{Backend, PluginDb};

/// An open transaction on one connection of a plugin's database.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.rollback().await,
            Tx::Postgres(t) => t.rollback().await,
        }
    }
}

/// Begins a write transaction: SQLite takes the write lock up front
/// (`BEGIN IMMEDIATE`) so two transactions never deadlock upgrading their locks.
pub async fn begin(db: &PluginDb) -> Result<Tx, sqlx::Error> {
    Ok(match db {
        PluginDb::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
        PluginDb::Postgres(p) => Tx::Postgres(p.begin().await?),
    })
}

/// The host side of a `transaction` resource. `None` once committed or rolled back.
pub struct TxHandle {
    tx: Option<Tx>,
}

/// Where a statement runs.
enum Target<'a> {
    Pool(&'a PluginDb),
    Tx(&'a mut Tx),
}

/// Binds the plugin's parameters.
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

fn sqlite_query(statement: &str, params: Vec<Value>) -> Query<'_, Sqlite, SqliteArguments<'_>> {
    prepare!(statement, params, None::<i64>)
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

/// Collects a result row by row, refusing results larger than the caps so a query
/// cannot make the host buffer more than a plugin could ever take.
struct Collector {
    rows: Vec<Vec<Value>>,
    bytes: usize,
}

impl Collector {
    fn push(&mut self, values: Vec<Value>) -> Result<(), sqlx::Error> {
        self.bytes += values
            .iter()
            .map(|v| match v {
                Value::Text(s) => s.len(),
                Value::Blob(b) => b.len(),
                _ => 8,
            })
            .sum::<usize>();
        if self.rows.len() >= MAX_ROWS || self.bytes > MAX_RESULT_BYTES {
            return Err(sqlx::Error::Protocol(format!(
                "the result exceeds {MAX_ROWS} rows or {} MiB; page it with LIMIT",
                MAX_RESULT_BYTES >> 20
            )));
        }
        self.rows.push(values);
        Ok(())
    }
}

async fn fetch(
    target: Target<'_>,
    statement: &str,
    params: Vec<Value>,
) -> Result<RowSet, sqlx::Error> {
    use futures::TryStreamExt;
    let mut out = Collector {
        rows: Vec::new(),
        bytes: 0,
    };
    let mut columns = Vec::new();
    macro_rules! drain {
        ($stream:expr, $convert:ident) => {{
            let mut stream = $stream;
            while let Some(row) = stream.try_next().await? {
                if columns.is_empty() {
                    columns = row.columns().iter().map(|c| c.name().to_string()).collect();
                }
                out.push($convert(&row)?)?;
            }
        }};
    }
    match target {
        Target::Pool(PluginDb::Sqlite(p)) => {
            drain!(sqlite_query(statement, params).fetch(p), sqlite_values)
        }
        Target::Tx(Tx::Sqlite(t)) => drain!(
            sqlite_query(statement, params).fetch(&mut **t),
            sqlite_values
        ),
        Target::Pool(PluginDb::Postgres(p)) => {
            drain!(pg_query(statement, params).fetch(p), pg_values)
        }
        Target::Tx(Tx::Postgres(t)) => {
            drain!(pg_query(statement, params).fetch(&mut **t), pg_values)
        }
    }
    Ok(RowSet {
        columns,
        rows: out.rows,
    })
}

async fn execute(
    target: Target<'_>,
    statement: &str,
    params: Vec<Value>,
) -> Result<u64, sqlx::Error> {
    Ok(match target {
        Target::Pool(PluginDb::Sqlite(p)) => sqlite_query(statement, params)
            .execute(p)
            .await?
            .rows_affected(),
        Target::Tx(Tx::Sqlite(t)) => sqlite_query(statement, params)
            .execute(&mut **t)
            .await?
            .rows_affected(),
        Target::Pool(PluginDb::Postgres(p)) => pg_query(statement, params)
            .execute(p)
            .await?
            .rows_affected(),
        Target::Tx(Tx::Postgres(t)) => pg_query(statement, params)
            .execute(&mut **t)
            .await?
            .rows_affected(),
    })
}

/// A SQLite row by storage class (`INTEGER`, `REAL`, `TEXT`, `BLOB`); a `BOOLEAN`
/// column is stored as an integer and reaches the plugin as one.
fn sqlite_values(row: &SqliteRow) -> Result<Vec<Value>, sqlx::Error> {
    (0..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            Ok(match raw.type_info().name() {
                "INTEGER" | "BOOLEAN" => Value::Int(row.try_get(i)?),
                "REAL" => Value::Float(row.try_get(i)?),
                "BLOB" => Value::Blob(row.try_get(i)?),
                _ => Value::Text(row.try_get(i)?),
            })
        })
        .collect()
}

/// A PostgreSQL row by column type; types outside the portable set are refused with a
/// message that says which to use.
fn pg_values(row: &PgRow) -> Result<Vec<Value>, sqlx::Error> {
    (0..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            let type_name = raw.type_info().name().to_string();
            Ok(match type_name.as_str() {
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
        })
        .collect()
}

/// Maps a database error onto the WIT error: unique violations are `conflict` (the
/// plugin turns them into `already_exists` and the like), bad SQL is `invalid`.
pub fn map_err(e: sqlx::Error) -> wit::Error {
    match &e {
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

impl HostState {
    fn sql_granted(&self) -> Result<(), wit::Error> {
        if self.plugin.grants.sql {
            Ok(())
        } else {
            Err(denied("sql", &self.plugin.name))
        }
    }

    /// The migration transaction during `migrate`, else the pool.
    fn sql_target(&mut self) -> Target<'_> {
        match self.call.migration_tx.as_mut() {
            Some(tx) => Target::Tx(tx),
            None => Target::Pool(&self.plugin.db),
        }
    }

    fn tx_mut(&mut self, res: &Resource<TxHandle>) -> wasmtime::Result<&mut Option<Tx>> {
        Ok(&mut self.table().get_mut(res).map_err(wasmtime::Error::from)?.tx)
    }
}

impl Host for HostState {
    async fn dialect(&mut self) -> wasmtime::Result<SqlDialect> {
        Ok(match self.plugin.db.backend() {
            Backend::Sqlite => SqlDialect::Sqlite,
            Backend::Postgres => SqlDialect::Postgres,
        })
    }

    async fn query(
        &mut self,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<RowSet, wit::Error>> {
        if let Err(e) = self.sql_granted() {
            return Ok(Err(e));
        }
        Ok(fetch(self.sql_target(), &statement, params)
            .await
            .map_err(map_err))
    }

    async fn execute(
        &mut self,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, wit::Error>> {
        if let Err(e) = self.sql_granted() {
            return Ok(Err(e));
        }
        Ok(execute(self.sql_target(), &statement, params)
            .await
            .map_err(map_err))
    }
}

const CLOSED: &str = "the transaction is already committed or rolled back";

impl HostTransaction for HostState {
    async fn begin(&mut self) -> wasmtime::Result<Result<Resource<TxHandle>, wit::Error>> {
        if let Err(e) = self.sql_granted() {
            return Ok(Err(e));
        }
        if self.call.migration_tx.is_some() {
            return Ok(Err(wit::Error::Invalid(
                "migrate already runs in a transaction; run the statements directly".into(),
            )));
        }
        let tx = match begin(&self.plugin.db).await {
            Ok(tx) => tx,
            Err(e) => return Ok(Err(map_err(e))),
        };
        let res = self.table().push(TxHandle { tx: Some(tx) })?;
        self.open_txs += 1;
        Ok(Ok(res))
    }

    async fn query(
        &mut self,
        this: Resource<TxHandle>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<RowSet, wit::Error>> {
        let Some(tx) = self.tx_mut(&this)?.as_mut() else {
            return Ok(Err(wit::Error::Invalid(CLOSED.into())));
        };
        Ok(fetch(Target::Tx(tx), &statement, params)
            .await
            .map_err(map_err))
    }

    async fn execute(
        &mut self,
        this: Resource<TxHandle>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, wit::Error>> {
        let Some(tx) = self.tx_mut(&this)?.as_mut() else {
            return Ok(Err(wit::Error::Invalid(CLOSED.into())));
        };
        Ok(execute(Target::Tx(tx), &statement, params)
            .await
            .map_err(map_err))
    }

    async fn commit(
        &mut self,
        this: Resource<TxHandle>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let Some(tx) = self.tx_mut(&this)?.take() else {
            return Ok(Err(wit::Error::Invalid(CLOSED.into())));
        };
        Ok(tx.commit().await.map_err(map_err))
    }

    async fn rollback(
        &mut self,
        this: Resource<TxHandle>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let Some(tx) = self.tx_mut(&this)?.take() else {
            return Ok(Err(wit::Error::Invalid(CLOSED.into())));
        };
        Ok(tx.rollback().await.map_err(map_err))
    }

    async fn drop(&mut self, rep: Resource<TxHandle>) -> wasmtime::Result<()> {
        // Dropping an open sqlx transaction queues its rollback on the connection.
        let handle = self.table().delete(rep)?;
        if handle.tx.is_some() {
            self.open_txs = self.open_txs.saturating_sub(1);
        }
        Ok(())
    }
}

/// Runs `statement` on a plugin's database outside any plugin (host maintenance, tests).
pub async fn execute_raw(db: &PluginDb, statement: &str) -> Result<(), sqlx::Error> {
    match db {
        PluginDb::Sqlite(p) => p.execute(statement).await.map(|_| ()),
        PluginDb::Postgres(p) => p.execute(statement).await.map(|_| ()),
    }
}

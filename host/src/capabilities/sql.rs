//! `kirana:platform/sql`: each plugin's own database (a SQLite file or a PostgreSQL
//! schema), reached through the host's pools so no plugin ever opens a connection.
//!
//! During `migrate` every statement runs in the call's migration transaction, so a
//! failed migration leaves nothing behind.

use sqlx::any::{AnyArguments, AnyRow, AnyTypeInfoKind};
use sqlx::query::Query;
use sqlx::{Any, Executor, Row, ValueRef};
use wasmtime::component::Resource;

use crate::capabilities::denied;
use crate::runtime::bindings::kirana::platform::sql::{
    Host, HostTransaction, RowSet, SqlDialect, Value,
};
use crate::runtime::bindings::wit;
use crate::runtime::HostState;
use crate::storage::{Backend, Db};

/// The host side of a `transaction` resource. `None` once committed or rolled back.
pub struct TxHandle {
    tx: Option<sqlx::Transaction<'static, Any>>,
}

/// Builds the statement with its parameters bound.
///
/// Prepared statements are cached per connection with the parameter types of their
/// first use, so a statement run once with a NULL (typed int8 here) and once with text
/// in the same place would send bytes of the wrong type. Statements with a NULL
/// parameter are therefore prepared afresh each time.
fn prepare(statement: &str, params: Vec<Value>) -> Query<'_, Any, AnyArguments<'_>> {
    let has_null = params.iter().any(|p| matches!(p, Value::Null));
    let mut q = sqlx::query(statement).persistent(!has_null);
    for p in params {
        q = match p {
            // An untyped NULL does not exist in sqlx; int8 NULL casts to text, bigint and
            // double precision columns on PostgreSQL.
            Value::Null => q.bind(None::<i64>),
            Value::Int(i) => q.bind(i),
            Value::Float(f) => q.bind(f),
            Value::Text(s) => q.bind(s),
            Value::Blob(b) => q.bind(b),
            Value::Boolean(b) => q.bind(b),
        };
    }
    q
}

fn to_row_set(rows: Vec<AnyRow>) -> Result<RowSet, sqlx::Error> {
    let columns = rows
        .first()
        .map(|r| {
            r.columns()
                .iter()
                .map(|c| sqlx::Column::name(c).to_string())
                .collect()
        })
        .unwrap_or_default();
    let rows = rows
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| to_value(r, i))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RowSet { columns, rows })
}

/// Reads column `i` by the type of the value actually stored (SQLite is dynamically
/// typed, so the declared column type is not enough).
fn to_value(row: &AnyRow, i: usize) -> Result<Value, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let kind = raw.type_info().kind();
    Ok(match kind {
        AnyTypeInfoKind::Null => Value::Null,
        AnyTypeInfoKind::Bool => Value::Boolean(row.try_get(i)?),
        AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
            Value::Int(row.try_get(i)?)
        }
        AnyTypeInfoKind::Real => Value::Float(f64::from(row.try_get::<f32, _>(i)?)),
        AnyTypeInfoKind::Double => Value::Float(row.try_get(i)?),
        AnyTypeInfoKind::Text => Value::Text(row.try_get(i)?),
        AnyTypeInfoKind::Blob => Value::Blob(row.try_get(i)?),
    })
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
        | sqlx::Error::TypeNotFound { .. } => wit::Error::Invalid(format!(
            "{e} (use TEXT, BIGINT, DOUBLE PRECISION, BOOLEAN or BYTEA columns)"
        )),
        sqlx::Error::PoolTimedOut => {
            wit::Error::Timeout("no database connection free in time".into())
        }
        _ => wit::Error::Failed(e.to_string()),
    }
}

impl HostState {
    fn sql_db(&self) -> Result<Db, wit::Error> {
        if !self.plugin.grants.sql {
            return Err(denied("sql", &self.plugin.name));
        }
        Ok(self.plugin.db.clone())
    }

    async fn run_query(
        &mut self,
        statement: String,
        params: Vec<Value>,
    ) -> Result<RowSet, wit::Error> {
        let db = self.sql_db()?;
        let q = prepare(&statement, params);
        let rows = match self.call.migration_tx.as_mut() {
            Some(tx) => q.fetch_all(&mut **tx).await,
            None => q.fetch_all(&db.pool).await,
        };
        rows.and_then(to_row_set).map_err(map_err)
    }

    async fn run_execute(
        &mut self,
        statement: String,
        params: Vec<Value>,
    ) -> Result<u64, wit::Error> {
        let db = self.sql_db()?;
        let q = prepare(&statement, params);
        let done = match self.call.migration_tx.as_mut() {
            Some(tx) => q.execute(&mut **tx).await,
            None => q.execute(&db.pool).await,
        };
        done.map(|r| r.rows_affected()).map_err(map_err)
    }

    fn tx_mut(&mut self, res: &Resource<TxHandle>) -> wasmtime::Result<&mut TxHandle> {
        self.table().get_mut(res).map_err(wasmtime::Error::from)
    }
}

/// Begins the migration transaction for `db` (used by the registry around `migrate`).
pub async fn begin(db: &Db) -> Result<sqlx::Transaction<'static, Any>, sqlx::Error> {
    db.pool.begin_with(db.begin_statement()).await
}

impl Host for HostState {
    async fn dialect(&mut self) -> wasmtime::Result<SqlDialect> {
        Ok(match self.plugin.db.backend {
            Backend::Sqlite => SqlDialect::Sqlite,
            Backend::Postgres => SqlDialect::Postgres,
        })
    }

    async fn query(
        &mut self,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<RowSet, wit::Error>> {
        Ok(self.run_query(statement, params).await)
    }

    async fn execute(
        &mut self,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, wit::Error>> {
        Ok(self.run_execute(statement, params).await)
    }
}

const CLOSED: &str = "the transaction is already committed or rolled back";

impl HostTransaction for HostState {
    async fn begin(&mut self) -> wasmtime::Result<Result<Resource<TxHandle>, wit::Error>> {
        let db = match self.sql_db() {
            Ok(db) => db,
            Err(e) => return Ok(Err(e)),
        };
        if self.call.migration_tx.is_some() {
            return Ok(Err(wit::Error::Invalid(
                "migrate already runs in a transaction; run the statements directly".into(),
            )));
        }
        let tx = match begin(&db).await {
            Ok(tx) => tx,
            Err(e) => return Ok(Err(map_err(e))),
        };
        let res = self.table().push(TxHandle { tx: Some(tx) })?;
        Ok(Ok(res))
    }

    async fn query(
        &mut self,
        this: Resource<TxHandle>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<RowSet, wit::Error>> {
        let handle = self.tx_mut(&this)?;
        let Some(tx) = handle.tx.as_mut() else {
            return Ok(Err(wit::Error::Invalid(CLOSED.into())));
        };
        let q = prepare(&statement, params);
        Ok(q.fetch_all(&mut **tx)
            .await
            .and_then(to_row_set)
            .map_err(map_err))
    }

    async fn execute(
        &mut self,
        this: Resource<TxHandle>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, wit::Error>> {
        let handle = self.tx_mut(&this)?;
        let Some(tx) = handle.tx.as_mut() else {
            return Ok(Err(wit::Error::Invalid(CLOSED.into())));
        };
        let q = prepare(&statement, params);
        Ok(q.execute(&mut **tx)
            .await
            .map(|r| r.rows_affected())
            .map_err(map_err))
    }

    async fn commit(
        &mut self,
        this: Resource<TxHandle>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let handle = self.tx_mut(&this)?;
        let Some(tx) = handle.tx.take() else {
            return Ok(Err(wit::Error::Invalid(CLOSED.into())));
        };
        Ok(tx.commit().await.map_err(map_err))
    }

    async fn rollback(
        &mut self,
        this: Resource<TxHandle>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let handle = self.tx_mut(&this)?;
        let Some(tx) = handle.tx.take() else {
            return Ok(Err(wit::Error::Invalid(CLOSED.into())));
        };
        Ok(tx.rollback().await.map_err(map_err))
    }

    async fn drop(&mut self, rep: Resource<TxHandle>) -> wasmtime::Result<()> {
        // Dropping an open sqlx transaction queues its rollback on the connection.
        let _ = self.table().delete(rep)?;
        Ok(())
    }
}

/// Runs `statement` on `db` outside any plugin (host maintenance).
pub async fn execute_raw(db: &Db, statement: &str) -> Result<(), sqlx::Error> {
    db.pool.execute(statement).await.map(|_| ())
}

//! `kirana:platform/sql`: each plugin's own database (a SQLite file or a PostgreSQL
//! schema), reached through the host's pools so no plugin ever opens a connection.
//! During `migrate` every statement runs in the call's migration transaction, so a
//! failed migration leaves nothing behind. The statements themselves run in
//! [`crate::storage::statements`].

use std::time::Instant;

use wasmtime::component::Resource;

use crate::bindings::kirana::platform::sql::{Host, HostTransaction, RowSet, SqlDialect, Value};
use crate::bindings::{wit, TxHandle};
use crate::capabilities::denied;
use crate::core::View;
use crate::storage::statements::*;

/// Runs host SQL on a plugin's database outside any call (maintenance, and tests that
/// set up data a plugin would not write).
pub use crate::storage::statements::execute_raw;
use crate::storage::Backend;

impl View<'_, ()> {
    fn sql_granted(&self) -> Result<(), wit::Error> {
        if self.plugin.grants.sql {
            Ok(())
        } else {
            Err(denied("sql", &self.plugin.name))
        }
    }

    fn handle_sp(&mut self, res: &Resource<TxHandle>) -> wasmtime::Result<Option<u32>> {
        Ok(self.table.get(res).map_err(wasmtime::Error::from)?.sp)
    }

    /// The call's unit if `sp` is one of its open savepoints.
    fn unit_for(&mut self, sp: Option<u32>) -> Result<&mut Unit, wit::Error> {
        let sp = sp.ok_or_else(|| wit::Error::Invalid(CLOSED.into()))?;
        match self.call.unit.as_mut() {
            Some(u) if u.open.contains(&sp) => Ok(u),
            _ => Err(ended_tx()),
        }
    }

    /// The call's unit, begun now if the call has none yet.
    async fn unit(&mut self) -> Result<&mut Unit, wit::Error> {
        if self.call.unit.is_none() {
            self.call.unit = Some(Unit::begin(&self.plugin.db, self.call.deadline).await?);
        }
        self.call
            .unit
            .as_mut()
            .ok_or_else(|| wit::Error::Failed("the call's transaction is gone".into()))
    }

    /// Runs a plain statement: in the migration's transaction during `migrate`; else in
    /// the call's unit when one is open or the statement writes; else on the pool.
    async fn plain<R>(
        &mut self,
        statement: String,
        params: Vec<Value>,
        run: Runner<R>,
    ) -> Result<R, wit::Error> {
        self.sql_granted()?;
        let deadline = self.call.deadline;
        if let Some(tx) = self.call.migration_tx.as_mut() {
            return run(Target::Tx(tx), deadline, statement, params).await;
        }
        let writes = !only_reads(&statement);
        if self.call.unit.is_none() && !writes {
            return run(Target::Pool(&self.plugin.db), deadline, statement, params).await;
        }
        let unit = self.unit().await?;
        let (out, dead) = unit
            .guarded(deadline, writes, move |tx| {
                run(Target::Tx(tx), deadline, statement, params)
            })
            .await;
        if dead {
            // Nothing of the call's survives a dead unit; an empty one just ends.
            if let Some(unit) = self.call.unit.take() {
                let had_work = unit.dirty || !unit.open.is_empty();
                let _ = unit.rollback().await;
                if had_work {
                    self.call.unit_lost = true;
                }
            }
        }
        out
    }
}

/// A statement's result, boxed so [`HostState::plain`] can take either kind.
type Pending<'t, R> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<R, wit::Error>> + Send + 't>>;
/// Runs a statement on a target: [`boxed_fetch`] or [`boxed_execute`].
type Runner<R> = for<'t> fn(Target<'t>, Instant, String, Vec<Value>) -> Pending<'t, R>;

fn boxed_fetch<'t>(
    target: Target<'t>,
    deadline: Instant,
    statement: String,
    params: Vec<Value>,
) -> Pending<'t, RowSet> {
    Box::pin(fetch(target, deadline, statement, params))
}

fn boxed_execute<'t>(
    target: Target<'t>,
    deadline: Instant,
    statement: String,
    params: Vec<Value>,
) -> Pending<'t, u64> {
    Box::pin(execute(target, deadline, statement, params))
}

impl Host for View<'_, ()> {
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
        Ok(self.plain(statement, params, boxed_fetch).await)
    }

    async fn execute(
        &mut self,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, wit::Error>> {
        Ok(self.plain(statement, params, boxed_execute).await)
    }
}

const CLOSED: &str = "the transaction is already committed or rolled back";

impl HostTransaction for View<'_, ()> {
    async fn begin(&mut self) -> wasmtime::Result<Result<Resource<TxHandle>, wit::Error>> {
        if let Err(e) = self.sql_granted() {
            return Ok(Err(e));
        }
        if self.call.migration_tx.is_some() {
            return Ok(Err(wit::Error::Invalid(
                "migrate already runs in a transaction; run the statements directly".into(),
            )));
        }
        let deadline = self.call.deadline;
        let unit = match self.unit().await {
            Ok(u) => u,
            Err(e) => return Ok(Err(e)),
        };
        let sp = match unit.savepoint(deadline).await {
            Ok(sp) => sp,
            Err(e) => return Ok(Err(e)),
        };
        let res = self.table.push(TxHandle { sp: Some(sp) })?;
        *self.open_txs += 1;
        Ok(Ok(res))
    }

    async fn query(
        &mut self,
        this: Resource<TxHandle>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<RowSet, wit::Error>> {
        let deadline = self.call.deadline;
        let sp = self.handle_sp(&this)?;
        let unit = match self.unit_for(sp) {
            Ok(u) => u,
            Err(e) => return Ok(Err(e)),
        };
        let out = fetch(Target::Tx(&mut unit.tx), deadline, statement, params).await;
        unit.dirty |= out.is_ok();
        Ok(out)
    }

    async fn execute(
        &mut self,
        this: Resource<TxHandle>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, wit::Error>> {
        let deadline = self.call.deadline;
        let sp = self.handle_sp(&this)?;
        let unit = match self.unit_for(sp) {
            Ok(u) => u,
            Err(e) => return Ok(Err(e)),
        };
        let out = execute(Target::Tx(&mut unit.tx), deadline, statement, params).await;
        unit.dirty |= out.is_ok();
        Ok(out)
    }

    /// Releases the savepoint: the work becomes part of the call's, which commits when
    /// the call succeeds.
    async fn commit(
        &mut self,
        this: Resource<TxHandle>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let deadline = self.call.deadline;
        let sp = self.handle_sp(&this)?;
        self.table.get_mut(&this).map_err(wasmtime::Error::from)?.sp = None;
        if sp.is_some() {
            *self.open_txs = self.open_txs.saturating_sub(1);
        }
        let unit = match self.unit_for(sp) {
            Ok(u) => u,
            Err(e) => return Ok(Err(e)),
        };
        let Some(sp) = sp else {
            return Ok(Err(wit::Error::Invalid(CLOSED.into())));
        };
        if !unit.tx.alive() {
            return Ok(Err(ended_tx()));
        }
        match unit
            .tx
            .raw(deadline, &savepoint_sql(sp, SavepointOp::Release))
            .await
        {
            Ok(()) => {
                if let Some(at) = unit.open.iter().position(|&n| n == sp) {
                    unit.open.truncate(at);
                }
                Ok(Ok(()))
            }
            Err(e) => {
                // An earlier statement failed inside it (PostgreSQL then refuses the
                // release): undo it, as a failed COMMIT would.
                let _ = unit.rollback_to(sp, deadline).await;
                self.call.drop_effects_from(sp);
                Ok(Err(wit::Error::Failed(format!(
                    "the transaction could not commit and was rolled back: {}",
                    crate::capabilities::error_text(&e)
                ))))
            }
        }
    }

    async fn rollback(
        &mut self,
        this: Resource<TxHandle>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let sp = self.handle_sp(&this)?;
        self.table.get_mut(&this).map_err(wasmtime::Error::from)?.sp = None;
        Ok(self.undo(sp).await)
    }

    async fn drop(&mut self, rep: Resource<TxHandle>) -> wasmtime::Result<()> {
        // Dropping an open transaction rolls it back.
        let handle = self.table.delete(rep)?;
        if handle.sp.is_some() {
            let _ = self.undo(handle.sp).await;
        }
        Ok(())
    }
}

impl View<'_, ()> {
    /// Rolls back the savepoint `sp` (and any opened inside it) and drops the events
    /// published since it began.
    async fn undo(&mut self, sp: Option<u32>) -> Result<(), wit::Error> {
        if sp.is_some() {
            *self.open_txs = self.open_txs.saturating_sub(1);
        }
        let deadline = self.call.deadline;
        let unit = self.unit_for(sp)?;
        let Some(sp) = sp else {
            return Err(wit::Error::Invalid(CLOSED.into()));
        };
        let out = unit.rollback_to(sp, deadline).await;
        self.call.drop_effects_from(sp);
        out
    }
}

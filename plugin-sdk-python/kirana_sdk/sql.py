"""The plugin's own database. Write SQL that runs on SQLite and PostgreSQL: ``$1``
parameters, ``TEXT`` ids and timestamps, ``BIGINT`` integers and money, ``BOOLEAN`` flags.

Parameters are Python values (``None``, ``bool``, ``int``, ``float``, ``str``,
``bytes``); rows come back as :class:`Row` dicts keyed by column name::

    row = sql.query_one("SELECT id, uses FROM coupons WHERE code = $1", code)
    with sql.transaction() as tx:          # a savepoint; commits when the block ends
        n = tx.execute("UPDATE coupons SET uses = uses + 1 WHERE id = $1 AND uses < $2", id, limit)
        if n == 0:
            tx.rollback()                  # or raise: an exception rolls back too
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from componentize_py_types import Err
from wit_world.imports import sql as wit

from .errors import CapError


def to_value(v: Any) -> Any:
    """A Python value as a WIT ``sql.value``."""
    if v is None:
        return wit.Value_Null()
    if isinstance(v, bool):
        return wit.Value_Boolean(v)
    if isinstance(v, int):
        if not -(2**63) <= v < 2**63:
            raise CapError("invalid", f"integer {v} does not fit 64 bits")
        return wit.Value_Int(v)
    if isinstance(v, float):
        return wit.Value_Float(v)
    if isinstance(v, str):
        return wit.Value_Text(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return wit.Value_Blob(bytes(v))
    raise CapError("invalid", f"a {type(v).__name__} cannot be a SQL parameter")


def from_value(v: Any) -> Any:
    if isinstance(v, wit.Value_Null):
        return None
    return v.value


class Row(dict):
    """One result row, keyed by column name. SQLite has no boolean type (a ``BOOLEAN``
    column reads back as 0/1), so read flags with :meth:`bool`."""

    def bool(self, column: str) -> Optional[bool]:
        v = self[column]
        return None if v is None else bool(v)

    def int(self, column: str) -> Optional[int]:
        v = self[column]
        if v is None or isinstance(v, int):
            return v
        return int(v)


class Rows:
    """A query's rows."""

    def __init__(self, row_set: Any):
        self.columns: list[str] = list(row_set.columns)
        self._rows = row_set.rows

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Row]:
        cols = self.columns
        for values in self._rows:
            yield Row(zip(cols, (from_value(v) for v in values)))

    def first(self) -> Optional[Row]:
        return next(iter(self), None)

    def scalar(self) -> Any:
        """The first column of the first row, e.g. of ``SELECT COUNT(*)``."""
        if not self._rows:
            raise CapError("invalid", "the query returned no row")
        return from_value(self._rows[0][0])


def _params(params: tuple) -> list:
    return [to_value(p) for p in params]


def dialect() -> str:
    """``"sqlite"`` or ``"postgres"``."""
    return "postgres" if wit.dialect() == wit.SqlDialect.POSTGRES else "sqlite"


def query(statement: str, *params: Any) -> Rows:
    try:
        return Rows(wit.query(statement, _params(params)))
    except Err as e:
        raise CapError.from_wit(e.value) from None


def query_one(statement: str, *params: Any) -> Optional[Row]:
    """The first row, if any."""
    return query(statement, *params).first()


def scalar(statement: str, *params: Any) -> Any:
    return query(statement, *params).scalar()


def execute(statement: str, *params: Any) -> int:
    """Runs a statement; returns the rows affected."""
    try:
        return wit.execute(statement, _params(params))
    except Err as e:
        raise CapError.from_wit(e.value) from None


def execute_batch(statements: list[str]) -> None:
    """Runs several statements in order (for migrations)."""
    for s in statements:
        execute(s)


class Transaction:
    """A savepoint in the call's transaction. As a context manager it commits when the
    block ends normally and rolls back when it raises; :meth:`rollback` (or
    :meth:`commit`) inside the block ends it early. Its work is durable once the call
    commits (an answer below 500, or ``on_event`` returning normally)."""

    def __init__(self) -> None:
        try:
            self._t: Any = wit.Transaction.begin()
        except Err as e:
            raise CapError.from_wit(e.value) from None

    def _live(self) -> Any:
        if self._t is None:
            raise CapError("invalid", "the transaction is already committed or rolled back")
        return self._t

    def query(self, statement: str, *params: Any) -> Rows:
        try:
            return Rows(self._live().query(statement, _params(params)))
        except Err as e:
            raise CapError.from_wit(e.value) from None

    def query_one(self, statement: str, *params: Any) -> Optional[Row]:
        return self.query(statement, *params).first()

    def scalar(self, statement: str, *params: Any) -> Any:
        return self.query(statement, *params).scalar()

    def execute(self, statement: str, *params: Any) -> int:
        try:
            return self._live().execute(statement, _params(params))
        except Err as e:
            raise CapError.from_wit(e.value) from None

    def _end(self, how: str) -> None:
        t = self._live()
        self._t = None
        try:
            getattr(t, how)()
        except Err as e:
            raise CapError.from_wit(e.value) from None
        finally:
            # Releases the resource handle now rather than at garbage collection.
            t.__exit__(None, None, None)

    def commit(self) -> None:
        self._end("commit")

    def rollback(self) -> None:
        self._end("rollback")

    @property
    def open(self) -> bool:
        return self._t is not None

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self._t is not None:
            if exc_type is None:
                self.commit()
            else:
                try:
                    self.rollback()
                except CapError:
                    pass  # the block's own exception is the one worth reporting
        return False


def transaction() -> Transaction:
    """Starts a transaction (a savepoint in the call's transaction)."""
    return Transaction()

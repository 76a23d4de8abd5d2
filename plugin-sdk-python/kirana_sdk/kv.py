"""A key-value store namespaced per plugin, with TTLs (seconds or ``timedelta``) and
atomic counters."""

from __future__ import annotations

import json
from typing import Any, Optional

from componentize_py_types import Err
from wit_world.imports import kv as wit

from ._time import Duration, to_ms
from .errors import CapError


def _call(f: Any, *args: Any) -> Any:
    try:
        return f(*args)
    except Err as e:
        raise CapError.from_wit(e.value) from None


def get(key: str) -> Optional[bytes]:
    return _call(wit.get, key)


def get_many(keys: list[str]) -> list[Optional[bytes]]:
    """``get`` of each key, in order, in one call (one round trip to a shared store);
    at most 1,024 keys."""
    return _call(wit.get_many, keys)


def set(key: str, value: bytes, ttl: Optional[Duration] = None) -> None:  # noqa: A001
    _call(wit.set, key, bytes(value), to_ms(ttl))


def delete(key: str) -> bool:
    """True when a value was removed."""
    return _call(wit.delete, key)


def incr(key: str, delta: int = 1, ttl: Optional[Duration] = None) -> int:
    """Adds ``delta`` (absent counts as 0); ``ttl`` applies when the key is created."""
    return _call(wit.incr, key, delta, to_ms(ttl))


def compare_and_swap(
    key: str, expected: Optional[bytes], new: Optional[bytes], ttl: Optional[Duration] = None
) -> bool:
    """Writes ``new`` (``None`` deletes) only if the current value is ``expected``
    (``None`` = absent); true when it wrote."""
    return _call(wit.compare_and_swap, key, expected, new, to_ms(ttl))


def incr_after_commit(key: str, delta: int = 1, ttl: Optional[Duration] = None) -> None:
    """``incr``, applied only once the call's writes have committed (before its answer
    leaves the host) and dropped when they roll back: for a version that readers of a
    cache compare against."""
    _call(wit.incr_after_commit, key, delta, to_ms(ttl))


def put_revision(key: str, revision: int, value: bytes, ttl: Optional[Duration] = None) -> bool:
    """Stores ``value`` tagged ``revision`` unless the key holds a newer revision, or the
    same one with a value (an empty ``value`` marks a revision whose value is not
    known); true when it wrote. For data whose every write bumps a revision number in
    its own transaction."""
    return _call(wit.put_revision, key, revision, value, to_ms(ttl))


def put_revision_after_commit(
    key: str, revision: int, value: bytes, ttl: Optional[Duration] = None
) -> None:
    """``put_revision``, applied only once the call's writes have committed and dropped
    when they roll back, like ``incr_after_commit``."""
    _call(wit.put_revision_after_commit, key, revision, value, to_ms(ttl))


def get_revision(key: str) -> Optional[tuple[int, bytes]]:
    """The revision and value of a key written by ``put_revision`` (the value is empty
    when that revision's value is not known), ``None`` when absent."""
    return _call(wit.get_revision, key)


def scan(prefix: str, limit: int = 100) -> list[tuple[str, bytes]]:
    """Live keys starting with ``prefix``, in key order, at most ``limit``."""
    return _call(wit.scan, prefix, limit)


def get_json(key: str) -> Any:
    """The value at ``key`` as JSON, ``None`` when absent."""
    raw = get(key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as e:
        raise CapError("invalid", f"kv value at {key} is not JSON: {e}") from None


def set_json(key: str, value: Any, ttl: Optional[Duration] = None) -> None:
    set(key, json.dumps(value, separators=(",", ":")).encode(), ttl)

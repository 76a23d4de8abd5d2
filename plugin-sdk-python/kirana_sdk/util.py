"""Time and ids, the same way in every plugin (and as the Rust SDK makes them)."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Optional


def now() -> datetime:
    """The current time in UTC (from the host's WASI clock)."""
    return datetime.now(timezone.utc)


def rfc3339(t: datetime) -> str:
    """``t`` as RFC 3339 in UTC with second precision, e.g. ``2026-11-22T10:00:00Z``."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339() -> str:
    return rfc3339(now())


def parse_rfc3339(s: str) -> Optional[datetime]:
    """An RFC 3339 date-time with a time zone, in UTC; ``None`` for anything else
    (a bare date or a time without a zone is ambiguous, so it is refused)."""
    if not isinstance(s, str) or len(s) < 20 or len(s) > 40 or s[10] not in "Tt ":
        return None
    text = s[:-1] + "+00:00" if s[-1] in "Zz" else s
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    return t.astimezone(timezone.utc)


def new_id(prefix: str) -> str:
    """A new opaque id, time-ordered: ``prefix_`` followed by a UUIDv7 in hex."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = rand >> 68 & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return f"{prefix}_{value:032x}"


def random_token() -> str:
    """A secret for links and one-time tokens: 64 hex characters (256 random bits)."""
    return os.urandom(32).hex()

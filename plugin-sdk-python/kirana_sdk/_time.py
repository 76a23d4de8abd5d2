"""Durations as the host takes them (milliseconds)."""

from __future__ import annotations

from datetime import timedelta
from typing import Optional, Union

Duration = Union[int, float, timedelta]


def to_ms(d: Optional[Duration]) -> Optional[int]:
    """Seconds (a number) or a ``timedelta`` as whole milliseconds, never negative."""
    if d is None:
        return None
    seconds = d.total_seconds() if isinstance(d, timedelta) else float(d)
    return max(0, min(int(seconds * 1000), 2**64 - 1))

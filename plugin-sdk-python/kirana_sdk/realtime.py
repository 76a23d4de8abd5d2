"""Live pushes to a user's open connections (server-sent events), cluster-wide. Not
part of the call's transaction: push from the ``on_event`` of the event that says the
change happened."""

from __future__ import annotations

import json
from typing import Any

from componentize_py_types import Err
from wit_world.imports import realtime as wit

from .errors import CapError


def push(user_id: str, event: str, data: Any) -> None:
    try:
        wit.push(user_id, event, json.dumps(data, separators=(",", ":")).encode())
    except Err as e:
        raise CapError.from_wit(e.value) from None

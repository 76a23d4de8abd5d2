"""Publishing events. They are written to the plugin's outbox in the call's
transaction, so they go out only when the call commits (an answer below 400, or
``on_event`` returning normally), and are delivered at least once to every subscriber."""

from __future__ import annotations

import json
from typing import Any

from componentize_py_types import Err
from wit_world.imports import events as wit

from ._time import Duration, to_ms
from .errors import CapError
from .http import parse_json


def _json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def publish(topic: str, payload: Any) -> str:
    """Publishes ``payload`` as JSON on ``topic`` (one the manifest lists); the event id."""
    try:
        return wit.publish(topic, _json(payload))
    except Err as e:
        raise CapError.from_wit(e.value) from None


def schedule(topic: str, payload: Any, delay: Duration) -> str:
    """Delivers ``payload`` on ``topic`` after ``delay`` (seconds or ``timedelta``);
    survives restarts. The event id."""
    try:
        return wit.schedule(topic, _json(payload), to_ms(delay) or 0)
    except Err as e:
        raise CapError.from_wit(e.value) from None


class Event:
    """An event delivered to ``Plugin.on_event``."""

    def __init__(self, id: str, topic: str, payload: bytes, attempt: int = 1, source: str = ""):  # noqa: A002
        self.id = id
        self.topic = topic
        self.payload = payload
        self.attempt = attempt
        self.source = source

    @classmethod
    def from_wit(cls, e: Any) -> "Event":
        return cls(e.id, e.topic, bytes(e.payload), e.attempt, e.source)

    def json(self) -> dict:
        """The payload as a JSON object; ``ValueError`` when it is not one."""
        value = parse_json(self.payload)
        if not isinstance(value, dict):
            raise ValueError(f"{self.topic} payload is not a JSON object")
        return value

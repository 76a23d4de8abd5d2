"""Calls into other plugins, in process, with the caller's identity and request id."""

from __future__ import annotations

import json
import re
from typing import Any, Optional

from componentize_py_types import Err
from wit_world.imports import services as wit
from wit_world.imports import types

from .errors import ApiError, CapError
from .http import parse_json

# A peer's error code passes on as it is when it is well formed (plugins define their
# own codes); anything else becomes ``internal``.
CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


class Reply:
    """Another plugin's answer."""

    def __init__(self, status: int, headers: list, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        try:
            return parse_json(self.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError.internal(f"a peer answered {self.status} with text that is not JSON: {e}") from None

    def into_error(self) -> ApiError:
        """The peer's error, passed on as it is (its status, code, message, details)."""
        try:
            err = parse_json(self.body).get("error") or {}
        except (ValueError, UnicodeDecodeError, AttributeError):
            err = {}
        code = err.get("code") if isinstance(err.get("code"), str) else ""
        message = err.get("message") if isinstance(err.get("message"), str) else "a peer service failed"
        details = err.get("details") if isinstance(err.get("details"), dict) else {}
        return ApiError(self.status, code if CODE.fullmatch(code) else "internal", message, details)


def call(
    plugin: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    query: str = "",
    headers: Optional[list[tuple[str, str]]] = None,
) -> Reply:
    """Runs ``method path`` of ``plugin`` with ``body`` as JSON (none when ``None``).
    Raises :class:`CapError` (``unavailable``, ``timeout``, ``denied``) when the call
    could not be made; a peer's error answer is a :class:`Reply` like any other."""
    hdrs = list(headers or [])
    raw = b""
    if body is not None:
        hdrs.append(("content-type", "application/json"))
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    request = types.OutgoingRequest(method=method.upper(), path=path, query=query, headers=hdrs, body=raw)
    try:
        r = wit.call(plugin, request)
    except Err as e:
        raise CapError.from_wit(e.value) from None
    return Reply(r.status, list(r.headers), bytes(r.body))


def get(plugin: str, path: str, query: str = "") -> Reply:
    return call(plugin, "GET", path, query=query)


def post(plugin: str, path: str, body: Any = None) -> Reply:
    return call(plugin, "POST", path, body if body is not None else {})

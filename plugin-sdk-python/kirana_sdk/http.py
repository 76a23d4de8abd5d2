"""Requests and responses as a handler sees them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl

from .errors import ApiError


@dataclass(frozen=True)
class Identity:
    """The caller as the host verified it (signature, expiry, session not revoked)."""

    user_id: str
    role: str
    session_id: str


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes) -> Any:
    """Strict JSON: ``NaN`` and ``Infinity`` are refused like any other non-JSON text."""
    return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)


class Request:
    """One request handed to a handler (from the gateway, or another plugin's
    ``services.call``)."""

    def __init__(
        self,
        method: str,
        path: str,
        route: str = "",
        params: Optional[dict[str, str]] = None,
        query: str = "",
        headers: Optional[dict[str, str]] = None,
        body: bytes = b"",
        caller: Optional[Identity] = None,
        request_id: str = "test",
    ):
        self.method = method
        self.path = path
        self.route = route or path
        self.params = dict(params or {})
        self.query_string = query
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.body = body
        self.caller = caller
        self.id = request_id
        self._query = parse_qsl(query, keep_blank_values=True)

    @classmethod
    def from_wit(cls, r: Any) -> "Request":
        caller = None
        if r.caller is not None:
            caller = Identity(r.caller.user_id, r.caller.role, r.caller.session_id)
        return cls(
            method=r.method,
            path=r.path,
            route=r.route,
            params=dict(r.params),
            query=r.query,
            headers=dict(r.headers),
            body=bytes(r.body),
            caller=caller,
            request_id=r.request_id,
        )

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())

    def user(self) -> Identity:
        """The caller, or ``401`` when there is none (the host already enforces this on
        routes that are not public)."""
        if self.caller is None:
            raise ApiError.unauthorized()
        return self.caller

    def has_role(self, role: str) -> bool:
        return self.caller is not None and self.caller.role == role

    def param(self, name: str, convert: Callable[[str], Any] = str) -> Any:
        """A path parameter, converted by ``convert``; a value that does not convert is a
        404 (the resource cannot exist), a missing one is a bug in the route."""
        if name not in self.params:
            raise ApiError.internal(f"route {self.route} has no parameter {name}")
        try:
            return convert(self.params[name])
        except (TypeError, ValueError):
            raise ApiError.not_found(name) from None

    def query(self, name: str) -> Optional[str]:
        """A decoded query parameter; the first one when repeated."""
        for k, v in self._query:
            if k == name:
                return v
        return None

    def query_int(self, name: str) -> Optional[int]:
        """An integer query parameter; ``400 validation_failed`` naming it when it is not
        one. Absent or empty is ``None``."""
        raw = self.query(name)
        if raw is None or raw == "":
            return None
        try:
            return int(raw, 10)
        except ValueError:
            raise ApiError.invalid_field(name, "must be an integer") from None

    def query_bool(self, name: str) -> Optional[bool]:
        """``true``/``false``; anything else is ``400 validation_failed``."""
        raw = self.query(name)
        if raw is None or raw == "":
            return None
        if raw in ("true", "false"):
            return raw == "true"
        raise ApiError.invalid_field(name, "must be true or false")

    def is_json(self) -> bool:
        """True when the body is declared JSON (``application/json``, parameters allowed,
        or any ``+json`` type)."""
        ct = self.header("content-type")
        if ct is None:
            return False
        essence = ct.split(";", 1)[0].strip().lower()
        return essence == "application/json" or essence.endswith("+json")

    def json(self) -> dict:
        """The body as a JSON object: ``415`` when it is not declared JSON, ``400
        invalid_json`` when it does not parse, ``400 validation_failed`` (field ``body``)
        when it is not an object. Read its fields with a :class:`~kirana_sdk.Validator`."""
        if not self.is_json():
            raise ApiError.unsupported_media_type()
        try:
            value = parse_json(self.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError.invalid_json(f"the body is not valid JSON: {e}") from None
        if not isinstance(value, dict):
            raise ApiError.invalid_field("body", "must be a JSON object")
        return value


@dataclass
class Response:
    """What a handler returns."""

    status: int
    body: bytes = b""
    headers: list = field(default_factory=list)

    @classmethod
    def json(cls, status: int, value: Any) -> "Response":
        body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        return cls(status, body, [("content-type", "application/json")])

    @classmethod
    def ok(cls, value: Any) -> "Response":
        """``200`` with a JSON body."""
        return cls.json(200, value)

    @classmethod
    def created(cls, value: Any) -> "Response":
        """``201`` with a JSON body."""
        return cls.json(201, value)

    @classmethod
    def accepted(cls, value: Any) -> "Response":
        return cls.json(202, value)

    @classmethod
    def no_content(cls) -> "Response":
        """``204`` with no body."""
        return cls(204)

    def with_header(self, name: str, value: str) -> "Response":
        self.headers.append((name, value))
        return self

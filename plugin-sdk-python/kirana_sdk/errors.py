"""The API error shape as a Python exception, and the host's capability errors."""

from __future__ import annotations

import json
from typing import Any, Iterable


class CapError(Exception):
    """Why a host capability call failed (the WIT ``types.error`` variant).

    ``kind`` is one of ``denied``, ``not_configured``, ``unavailable``, ``timeout``,
    ``invalid``, ``conflict``, ``failed``; ``message`` is the host's text.
    """

    KINDS = ("denied", "not_configured", "unavailable", "timeout", "invalid", "conflict", "failed")

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind.replace('_', ' ')}: {message}")
        self.kind = kind
        self.message = message

    @classmethod
    def from_wit(cls, error: Any) -> "CapError":
        """Maps a generated ``Error_*`` dataclass (``Error_NotConfigured`` → ``not_configured``)."""
        name = type(error).__name__
        raw = name[len("Error_"):] if name.startswith("Error_") else name
        kind = "".join("_" + c.lower() if c.isupper() else c for c in raw).lstrip("_")
        if kind not in cls.KINDS:
            kind = "failed"
        return cls(kind, str(getattr(error, "value", error)))


class ApiError(Exception):
    """An error a handler raises; rendered as
    ``{"error": {"code", "message", "details"}, "request_id"}`` with its status.

    The constructors cover the closed list of codes of the REST contract; a more specific
    situation goes in the message and details, never in a new code.
    """

    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details if details is not None else {}

    def with_details(self, details: dict) -> "ApiError":
        self.details = details
        return self

    # --- 400 ---
    @classmethod
    def invalid_json(cls, message: str) -> "ApiError":
        return cls(400, "invalid_json", message)

    @classmethod
    def validation(cls, fields: Iterable[dict]) -> "ApiError":
        """``400 validation_failed`` listing ``[{"field", "message"}]`` in ``details.fields``."""
        fields = [{"field": f["field"], "message": f["message"]} for f in fields]
        if len(fields) == 1:
            message = f"{fields[0]['field']}: {fields[0]['message']}"
        else:
            message = f"{len(fields)} fields are invalid"
        return cls(400, "validation_failed", message, {"fields": fields})

    @classmethod
    def invalid_field(cls, field: str, message: str) -> "ApiError":
        """``400 validation_failed`` for one field."""
        return cls.validation([{"field": field, "message": message}])

    # --- 401 / 403 / 404 ---
    @classmethod
    def unauthorized(cls, message: str = "a bearer token is required") -> "ApiError":
        return cls(401, "unauthorized", message)

    @classmethod
    def forbidden(cls, message: str) -> "ApiError":
        return cls(403, "forbidden", message)

    @classmethod
    def not_found(cls, what: str) -> "ApiError":
        """``404 not_found``; ``what`` names the missing thing (``"coupon"``)."""
        return cls(404, "not_found", f"{what} not found")

    # --- 409 ---
    @classmethod
    def conflict(cls, message: str) -> "ApiError":
        return cls(409, "conflict", message)

    @classmethod
    def already_exists(cls, message: str) -> "ApiError":
        return cls(409, "already_exists", message)

    # --- others ---
    @classmethod
    def unsupported_media_type(cls) -> "ApiError":
        return cls(415, "unsupported_media_type", "send the body as application/json")

    @classmethod
    def rate_limited(cls, message: str) -> "ApiError":
        return cls(429, "rate_limited", message)

    @classmethod
    def unavailable(cls, message: str) -> "ApiError":
        return cls(503, "plugin_unavailable", message)

    @classmethod
    def timeout(cls, message: str) -> "ApiError":
        return cls(504, "plugin_timeout", message)

    @classmethod
    def internal(cls, message: str) -> "ApiError":
        """``500 internal``. The message is logged, not shown: clients see a generic text."""
        from . import log

        log.error(message)
        return cls(500, "internal", "internal error")

    @classmethod
    def from_cap(cls, e: CapError) -> "ApiError":
        """A capability failure a handler did not handle itself: conflicts stay conflicts,
        an unavailable or slow peer is 503/504, anything else is an internal error."""
        if e.kind == "conflict":
            return cls.conflict(e.message)
        if e.kind == "unavailable":
            return cls.unavailable(e.message)
        if e.kind == "timeout":
            return cls.timeout(e.message)
        return cls.internal(f"capability failed: {e}")

    def body(self, request_id: str) -> bytes:
        return json.dumps(
            {
                "error": {"code": self.code, "message": self.message, "details": self.details},
                "request_id": request_id,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()

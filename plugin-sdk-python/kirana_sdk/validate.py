"""Collects every invalid field of a request before answering ``400 validation_failed``.

JSON bodies arrive as plain dicts; the typed readers (``string``, ``integer``,
``boolean``, ``timestamp``, ``choice``) take a field out of one, record a field error
when it is missing or has the wrong type, and return the value (``None`` when absent,
null or invalid)::

    body = req.json()
    v = Validator()
    name = v.string(body, "name", min_len=1, max_len=200)
    price = v.integer(body, "price", minimum=1)
    v.finish()                      # raises ApiError 400 listing every bad field
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Optional

from .errors import ApiError
from .util import parse_rfc3339

# JSON integers beyond this are refused: they do not fit a signed 64-bit SQL value
# with room for sums.
MAX_INT = 2**53


class Validator:
    def __init__(self) -> None:
        self.fields: list[dict] = []

    def check(self, ok: bool, field: str, message: str) -> "Validator":
        """Records ``message`` for ``field`` unless ``ok``."""
        if not ok:
            self.fields.append({"field": field, "message": message})
        return self

    def push(self, field: str, message: str) -> "Validator":
        return self.check(False, field, message)

    def has(self, field: str) -> bool:
        """True when ``field`` already has an error."""
        return any(f["field"] == field for f in self.fields)

    def length(self, field: str, value: str, min_len: int, max_len: int) -> "Validator":
        """Length in characters within ``min_len..=max_len`` (after trimming)."""
        n = len(value.strip())
        return self.check(min_len <= n <= max_len, field, f"must be {min_len} to {max_len} characters")

    def range(self, field: str, value: Any, minimum: Any, maximum: Any) -> "Validator":
        return self.check(minimum <= value <= maximum, field, f"must be between {minimum} and {maximum}")

    def email(self, field: str, value: str) -> "Validator":
        return self.check(is_email(value), field, "must be a valid email address")

    def phone(self, field: str, value: str) -> "Validator":
        return self.check(is_e164(value), field, "must be an E.164 phone number like +919876543210")

    def is_empty(self) -> bool:
        return not self.fields

    def finish(self) -> None:
        """Raises ``400 validation_failed`` listing the fields when anything was recorded."""
        if self.fields:
            fields, self.fields = self.fields, []
            raise ApiError.validation(fields)

    # --- typed readers of a JSON object ---

    def _present(self, obj: dict, field: str, required: bool, nullable: bool) -> tuple[bool, Any]:
        if field not in obj:
            if required:
                self.push(field, "is required")
            return False, None
        value = obj[field]
        if value is None:
            if not nullable:
                self.push(field, "is required" if required else "must not be null")
            return False, None
        return True, value

    def string(
        self,
        obj: dict,
        field: str,
        *,
        required: bool = True,
        nullable: bool = False,
        min_len: Optional[int] = None,
        max_len: Optional[int] = None,
        strip: bool = True,
    ) -> Optional[str]:
        present, value = self._present(obj, field, required, nullable)
        if not present:
            return None
        if not isinstance(value, str):
            self.push(field, "must be a string")
            return None
        if strip:
            value = value.strip()
        lo = 0 if min_len is None else min_len
        if (min_len is not None and len(value) < lo) or (max_len is not None and len(value) > max_len):
            if max_len is None:
                self.push(field, f"must be at least {lo} characters")
            else:
                self.push(field, f"must be {lo} to {max_len} characters")
            return None
        return value

    def integer(
        self,
        obj: dict,
        field: str,
        *,
        required: bool = True,
        nullable: bool = False,
        minimum: Optional[int] = None,
        maximum: Optional[int] = None,
    ) -> Optional[int]:
        """A JSON integer (``10.5``, ``"100"`` and ``true`` are refused)."""
        present, value = self._present(obj, field, required, nullable)
        if not present:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.push(field, "must be an integer")
            return None
        lo = -MAX_INT if minimum is None else minimum
        hi = MAX_INT if maximum is None else maximum
        if not lo <= value <= hi:
            if maximum is None:
                self.push(field, f"must be an integer ≥ {lo}")
            else:
                self.push(field, f"must be an integer from {lo} to {hi}")
            return None
        return value

    def boolean(self, obj: dict, field: str, *, required: bool = True) -> Optional[bool]:
        present, value = self._present(obj, field, required, False)
        if not present:
            return None
        if not isinstance(value, bool):
            self.push(field, "must be true or false")
            return None
        return value

    def choice(self, obj: dict, field: str, choices: Iterable[str], *, required: bool = True) -> Optional[str]:
        choices = list(choices)
        present, value = self._present(obj, field, required, False)
        if not present:
            return None
        if not isinstance(value, str) or value not in choices:
            self.push(field, f"must be one of {', '.join(choices)}")
            return None
        return value

    def timestamp(
        self, obj: dict, field: str, *, required: bool = True, nullable: bool = False
    ) -> Optional[datetime]:
        """An RFC 3339 timestamp with a time zone (``2026-01-31T18:30:00Z``), in UTC."""
        present, value = self._present(obj, field, required, nullable)
        if not present:
            return None
        parsed = parse_rfc3339(value) if isinstance(value, str) else None
        if parsed is None:
            self.push(field, "must be an RFC 3339 timestamp with a time zone, like 2026-01-31T18:30:00Z")
        return parsed


def is_email(s: str) -> bool:
    s = s.strip()
    if "@" not in s or len(s) > 254 or any(c.isspace() for c in s):
        return False
    local, domain = s.split("@", 1)
    return bool(local) and "@" not in domain and "." in domain and not domain.startswith(".") and not domain.endswith(".")


def is_e164(s: str) -> bool:
    if not s.startswith("+"):
        return False
    d = s[1:]
    return 8 <= len(d) <= 15 and d.isascii() and d.isdigit() and not d.startswith("0")

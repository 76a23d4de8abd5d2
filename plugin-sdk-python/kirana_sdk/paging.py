"""``?page=&page_size=`` and the ``{items, page, page_size, total}`` envelope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ApiError
from .http import Request

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True)
class Paging:
    """Validated paging: page ≥ 1, page_size 1..100 (defaults 1 and 20). Out-of-range
    or non-integer values are ``400 validation_failed``, never clamped."""

    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @classmethod
    def from_request(cls, req: Request) -> "Paging":
        fields = []

        def read(name: str, default: int, maximum: int | None) -> int:
            raw = req.query(name)
            if raw is None:
                return default
            n = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 10 else 0
            if n >= 1 and (maximum is None or n <= maximum):
                return n
            message = "must be an integer ≥ 1" if maximum is None else f"must be an integer from 1 to {maximum}"
            fields.append({"field": name, "message": message})
            return default

        page = read("page", 1, 2**31 - 1)
        page_size = read("page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        if fields:
            raise ApiError.validation(fields)
        return cls(page, page_size)

    @property
    def offset(self) -> int:
        """Rows to skip, for ``LIMIT $n OFFSET $m``."""
        return (self.page - 1) * self.page_size

    @property
    def limit(self) -> int:
        return self.page_size

    def envelope(self, items: list, total: int) -> dict[str, Any]:
        """A page of a list: ``{items, page, page_size, total}``."""
        return {"items": items, "page": self.page, "page_size": self.page_size, "total": total}

"""The plugin's own section of ``kirana.toml`` (after ``KIRANA_<PLUGIN>_<KEY>``
environment overrides)."""

from __future__ import annotations

from typing import Optional, TypeVar

from wit_world.imports import config as wit

T = TypeVar("T", int, float, bool, str)


def get(key: str) -> Optional[str]:
    """The value as text (numbers and booleans rendered), ``None`` when unset."""
    return wit.get(key)


def get_or(key: str, default: T) -> T:
    """The setting parsed as the type of ``default``; ``default`` when unset or when it
    does not parse (logged)."""
    raw = get(key)
    if raw is None:
        return default
    try:
        if isinstance(default, bool):
            if raw not in ("true", "false"):
                raise ValueError(raw)
            return raw == "true"  # type: ignore[return-value]
        return type(default)(raw)
    except ValueError:
        from . import log

        log.warn(f"config {key}={raw!r} does not parse; using the default {default!r}")
        return default


def public_url() -> Optional[str]:
    """The address shoppers reach the shop at (no trailing slash), for absolute links:
    the host's ``public_url``, or in development the address it listens on; ``None`` on a
    production host that has not set one."""
    return wit.get("kirana.public_url")


def all() -> dict[str, str]:  # noqa: A001
    return dict(wit.get_all())

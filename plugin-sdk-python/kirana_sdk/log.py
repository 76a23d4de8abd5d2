"""Structured logs; the host tags them with plugin, version and request id."""

from __future__ import annotations

from wit_world.imports import log as wit


def log(level: str, message: str, **fields: object) -> None:
    lvl = getattr(wit.Level, level.upper(), wit.Level.INFO)
    wit.log(lvl, message, [(k, str(v)) for k, v in fields.items()])


def debug(message: str, **fields: object) -> None:
    log("debug", message, **fields)


def info(message: str, **fields: object) -> None:
    log("info", message, **fields)


def warn(message: str, **fields: object) -> None:
    log("warn", message, **fields)


def error(message: str, **fields: object) -> None:
    log("error", message, **fields)

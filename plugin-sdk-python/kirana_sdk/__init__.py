"""``kirana_sdk``: what a Kirana plugin written in Python imports.

A plugin is a ``wasm32-wasip2`` component built by componentize-py against the
``kirana:platform/plugin`` world (``wit/platform.wit``). This package hides the
generated bindings behind plain Python, mirroring the Rust ``kirana-sdk``: a
:class:`Router` whose routes double as the manifest, :class:`Request` /
:class:`Response`, an :class:`ApiError` rendering the API error shape, a
:class:`Validator` and :class:`Paging`, and thin wrappers over the host capabilities
(``sql``, ``kv``, ``events``, ``services``, ``config``, ``log``, ``identity``,
``realtime``, ``mail``).
"""

from . import config, events, identity, kv, log, mail, realtime, services, sql
from .errors import ApiError, CapError
from .events import Event
from .http import Identity, Request, Response
from .paging import Paging
from .plugin import Capabilities, Limits, Plugin, export
from .router import Access, Router
from .util import new_id, now, now_rfc3339, parse_rfc3339, random_token, rfc3339
from .validate import Validator

__all__ = [
    "Access",
    "ApiError",
    "CapError",
    "Capabilities",
    "Event",
    "Identity",
    "Limits",
    "Paging",
    "Plugin",
    "Request",
    "Response",
    "Router",
    "Validator",
    "config",
    "events",
    "export",
    "identity",
    "kv",
    "log",
    "mail",
    "new_id",
    "now",
    "now_rfc3339",
    "parse_rfc3339",
    "random_token",
    "realtime",
    "rfc3339",
    "services",
    "sql",
]

"""What a plugin implements, and the glue that turns it into the component's exports
(``describe``, ``migrate``, ``handle``, ``on-event``)."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any, Optional

from componentize_py_types import Err
from wit_world.imports import types

from . import log
from .errors import ApiError, CapError
from .events import Event
from .http import Request, Response
from .router import Router


@dataclass(frozen=True)
class Capabilities:
    """What the plugin asks the operator for: ``sql``, ``kv``, the topics it
    ``publish``-es (its own, by name), the plugins it ``call``-s, ``identity``,
    ``realtime``, ``mail``."""

    sql: bool = False
    kv: bool = False
    publish: tuple = ()
    call: tuple = ()
    identity: bool = False
    realtime: bool = False
    mail: bool = False


@dataclass(frozen=True)
class Limits:
    """Limits to ask for; ``None`` takes the host's default, which also caps them."""

    memory_mb: Optional[int] = None
    timeout_ms: Optional[int] = None


class Plugin:
    """Subclass it, set the class attributes and override what you need::

        class Hello(Plugin):
            name = "hello"
            version = "0.1.0"
            router = router                      # a kirana_sdk.Router
            capabilities = Capabilities(kv=True)

        WitWorld = export(Hello)                 # the component's exports

    The module is imported when the component is built (componentize-py snapshots the
    initialised interpreter), so nothing at import time may call the host.
    """

    name: str = ""
    version: str = "0.1.0"
    router: Router = Router()
    capabilities: Capabilities = Capabilities()
    subscriptions: tuple = ()
    limits: Limits = Limits()

    def migrate(self, from_version: Optional[str]) -> None:
        """Brings the schema forward from ``from_version`` (``None`` on a fresh install).
        Runs every time a version goes live, including every start, so it must be
        idempotent. Raising keeps the previous version live."""

    def on_event(self, event: Event) -> None:
        """Handles one event of ``subscriptions``; raising makes the bus retry it with
        backoff (then dead-letter it)."""
        raise RuntimeError(f"{self.name} does not handle {event.topic}")


def manifest(plugin: Plugin) -> Any:
    caps = plugin.capabilities
    return types.Manifest(
        name=plugin.name,
        version=plugin.version,
        routes=plugin.router.to_wit(types),
        subscriptions=list(plugin.subscriptions),
        capabilities=types.Capabilities(
            sql=caps.sql,
            kv=caps.kv,
            publish=list(caps.publish),
            call=list(caps.call),
            identity=caps.identity,
            realtime=caps.realtime,
            mail=caps.mail,
        ),
        limits=types.Limits(memory_mb=plugin.limits.memory_mb, timeout_ms=plugin.limits.timeout_ms),
    )


def _error_response(e: ApiError, request_id: str) -> Response:
    return Response(e.status, e.body(request_id), [("content-type", "application/json")])


def dispatch(plugin: Plugin, req: Request) -> Response:
    """Runs the route's handler; every failure becomes an answer in the API error shape
    (an unexpected exception is logged with its traceback and answered 500, which rolls
    the call's writes back)."""
    try:
        found = plugin.router.find(req.method, req.route, req.path)
        if found is None:
            raise ApiError.not_found("route")
        route, params = found
        for k, v in params.items():
            req.params.setdefault(k, v)
        result = route.handler(req)
        if isinstance(result, Response):
            return result
        return Response.ok(result)
    except ApiError as e:
        return _error_response(e, req.id)
    except CapError as e:
        return _error_response(ApiError.from_cap(e), req.id)
    except Exception as e:  # noqa: BLE001 - the answer must keep the API shape
        log.error(
            f"{req.method} {req.route} raised {type(e).__name__}: {e}",
            traceback="".join(traceback.format_exception(e))[-4000:],
        )
        return _error_response(ApiError(500, "internal", "internal error"), req.id)


def _text(e: BaseException) -> str:
    if isinstance(e, ApiError):
        return f"{e.status} {e.code}: {e.message}"
    return f"{type(e).__name__}: {e}"


def export(plugin_class: type) -> type:
    """The ``WitWorld`` class componentize-py looks for in the app module."""
    import wit_world

    plugin: Plugin = plugin_class()
    if not plugin.name:
        raise ValueError(f"{plugin_class.__name__} has no name")

    class WitWorld(wit_world.WitWorld):
        def describe(self) -> Any:
            return manifest(plugin)

        def migrate(self, from_version: Optional[str]) -> None:
            try:
                plugin.migrate(from_version)
            except Exception as e:  # noqa: BLE001 - the host keeps the previous version
                raise Err(f"migration failed: {_text(e)}") from None

        def handle(self, request: Any) -> Any:
            response = dispatch(plugin, Request.from_wit(request))
            return types.Response(status=response.status, headers=list(response.headers), body=response.body)

        def on_event(self, event: Any) -> None:
            try:
                plugin.on_event(Event.from_wit(event))
            except Exception as e:  # noqa: BLE001 - an Err is retried with backoff
                raise Err(_text(e)) from None

    return WitWorld

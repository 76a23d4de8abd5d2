"""Routes: the manifest's route list and the dispatch table in one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from .http import Request, Response

Handler = Callable[[Request], Union[Response, dict, list]]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Access:
    """Who may call a route; the host enforces it before any plugin code runs.

    ``Access.PUBLIC``, ``Access.AUTHENTICATED``, ``Access.roles("customer", "admin")``,
    and ``Access.INTERNAL`` for routes only other plugins reach through
    ``services.call``. The shop's roles as values are ``kirana_shop.access``.
    """

    kind: str
    role_list: tuple = ()

    @classmethod
    def roles(cls, *roles: str) -> "Access":
        return cls("roles", tuple(roles))


Access.PUBLIC = Access("public")
Access.AUTHENTICATED = Access("authenticated")
Access.INTERNAL = Access("internal")


@dataclass
class Route:
    method: str
    path: str
    access: Access
    handler: Handler
    summary: Optional[str] = None
    request_schema: Optional[dict] = None
    response_schema: Optional[dict] = None

    def match(self, path: str) -> Optional[dict]:
        """The parameters when the concrete ``path`` fits this pattern, else ``None``."""
        want = self.path.strip("/").split("/")
        got = path.strip("/").split("/")
        if len(want) != len(got):
            return None
        params = {}
        for w, g in zip(want, got):
            if w.startswith("{") and w.endswith("}"):
                if g == "":
                    return None
                params[w[1:-1]] = g
            elif w != g:
                return None
        return params


class Router:
    """Routes declared with decorators::

        router = Router()

        @router.get("/api/v1/hello", Access.PUBLIC, summary="Greets the caller")
        def greet(req: Request) -> Response:
            return Response.ok({"message": "Namaste"})

    A handler returns a :class:`Response` (or a dict/list, answered as 200 JSON) or
    raises :class:`~kirana_sdk.ApiError`.
    """

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        access: Access,
        *,
        summary: Optional[str] = None,
        request_schema: Optional[dict] = None,
        response_schema: Optional[dict] = None,
    ) -> Callable[[Handler], Handler]:
        method = method.upper()
        if method not in METHODS:
            raise ValueError(f"{method} is not one of {', '.join(METHODS)}")
        if not path.startswith("/"):
            raise ValueError(f"route {path!r} must start with /")
        if any(r.method == method and r.path == path for r in self.routes):
            raise ValueError(f"{method} {path} is declared twice")

        def register(handler: Handler) -> Handler:
            self.routes.append(
                Route(method, path, access, handler, summary, request_schema, response_schema)
            )
            return handler

        return register

    def get(self, path: str, access: Access, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, access, **kw)

    def post(self, path: str, access: Access, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, access, **kw)

    def put(self, path: str, access: Access, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, access, **kw)

    def patch(self, path: str, access: Access, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, access, **kw)

    def delete(self, path: str, access: Access, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, access, **kw)

    def find(self, method: str, route: str, path: str = "") -> Optional[tuple[Route, dict]]:
        """The route for a method and the pattern the host matched; without a pattern
        (a hand-made request in a unit test) the concrete path is matched instead."""
        for r in self.routes:
            if r.method == method and r.path == route:
                return r, {}
        for r in self.routes:
            if r.method == method:
                params = r.match(path or route)
                if params is not None:
                    return r, params
        return None

    def to_wit(self, types: Any) -> list:
        """The routes as the WIT ``route`` records of the manifest."""
        out = []
        for r in self.routes:
            if r.access.kind == "public":
                access = types.Access_Public()
            elif r.access.kind == "authenticated":
                access = types.Access_Authenticated()
            elif r.access.kind == "internal":
                access = types.Access_Internal()
            else:
                access = types.Access_Roles(list(r.access.role_list))
            out.append(
                types.Route(
                    method=r.method,
                    path=r.path,
                    access=access,
                    summary=r.summary,
                    request_schema=None if r.request_schema is None else json.dumps(r.request_schema),
                    response_schema=None if r.response_schema is None else json.dumps(r.response_schema),
                )
            )
        return out

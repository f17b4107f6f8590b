"""The API route table and the OpenAPI 3.1 document built from it (served at /api/openapi.json)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway import __version__
from gateway.httpd.context import Body

ApiHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class ApiRoute:
    method: str
    path: str
    handler: ApiHandler
    summary: str
    body: type[Body] | None = None
    auth: str = "login"  # "none", "login", "enrolling", "admin"
    fresh: bool = False  # needs a recent factor (may answer 401 reauth_required)


class RouteTable:
    """Collects API routes with their description, then adds them to an aiohttp router."""

    def __init__(self) -> None:
        self.routes: list[ApiRoute] = []

    def add(
        self,
        method: str,
        path: str,
        summary: str,
        *,
        body: type[Body] | None = None,
        auth: str = "login",
        fresh: bool = False,
    ) -> Callable[[ApiHandler], ApiHandler]:
        def deco(fn: ApiHandler) -> ApiHandler:
            self.routes.append(ApiRoute(method, path, fn, summary, body, auth, fresh))
            return fn

        return deco

    def install(self, app: web.Application) -> None:
        for r in self.routes:
            app.router.add_route(r.method, r.path, r.handler)


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "stable error code"},
        "message": {"type": "string"},
        "factors": {"type": "array", "items": {"type": "string", "enum": ["passkey", "totp"]}},
        "max_age_s": {"type": "integer"},
        "retry_after_s": {"type": "integer"},
    },
}


def build_openapi(tables: list[RouteTable]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for table in tables:
        for r in table.routes:
            op: dict[str, Any] = {
                "summary": r.summary,
                "operationId": r.handler.__name__,
                "responses": {
                    "200": {"description": "success (JSON)"},
                    "default": {
                        "description": "error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                },
            }
            if r.auth != "none":
                op["security"] = [{"cookie": []}]
            if r.method in ("POST", "PATCH", "PUT", "DELETE"):
                op["parameters"] = [
                    {"name": "X-CSRF-Token", "in": "header", "required": True, "schema": {"type": "string"}}
                ]
            if r.fresh:
                op["description"] = "Needs a factor presented recently; otherwise 401 reauth_required."
            if r.body is not None:
                name = r.body.__name__
                schemas[name] = r.body.model_json_schema(ref_template="#/components/schemas/{model}")
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
                }
            paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "rcgate gateway API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"cookie": {"type": "apiKey", "in": "cookie", "name": "rcg_session"}},
        },
    }

"""Walk the application's route table (FastAPI nests included routers lazily)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts


@dataclass(frozen=True)
class RouteInfo:
    path: str
    methods: frozenset[str]
    name: str
    route: APIRoute


def iter_api_routes(app: FastAPI) -> Iterator[RouteInfo]:
    """Every APIRoute with its full path (prefixes of included routers applied)."""
    for ctx in iter_route_contexts(app.routes):
        route, path = ctx.route, ctx.path
        if isinstance(route, APIRoute) and path is not None:  # an APIRoute always has a path
            yield RouteInfo(path=path, methods=frozenset(route.methods or ()), name=route.name, route=route)


def dependency_calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from dependency_calls(dep)

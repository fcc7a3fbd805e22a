"""Every dependency of every route runs on the event loop: FastAPI hands a plain function dependency to the
threadpool and back before the endpoint runs, one thread hand-off more per request (kit/http.py:
``get_api``). An endpoint's work goes to the threadpool once, from ``Api.read``/``Api.write``."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from milepost.app import create_app
from milepost.kit.db import Database
from milepost.settings import Settings


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """The app's routes, through the routers included in it (FastAPI keeps an included router as one
    entry of the app's routes, the router itself as ``original_router``)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)


def plain_functions(dependant: Dependant) -> Iterator[str]:
    for dependency in dependant.dependencies:
        call = dependency.call
        if call is not None and not (
            inspect.iscoroutinefunction(call)
            or inspect.iscoroutinefunction(type(call).__call__)  # an instance: HTTPBearer
        ):
            yield getattr(call, "__qualname__", repr(call))
        yield from plain_functions(dependency)


def test_no_route_has_a_dependency_that_runs_in_the_threadpool() -> None:
    app = create_app(Settings(), database=Database("sqlite://"))
    routes = list(api_routes(app.routes))
    assert len(routes) > 100  # the API's operations and the web pages, not only the app's own few
    plain = {
        f"{sorted(route.methods or ())} {route.path}: {name}"
        for route in routes
        for name in plain_functions(route.dependant)
    }
    assert not plain, sorted(plain)

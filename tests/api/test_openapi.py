"""The OpenAPI document as a whole: valid, with the bearer scheme on exactly the operations that need a token,
the Idempotency-Key header on every POST, and operation ids that make good function names."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from openapi_spec_validator import validate

from milepost import api as api_module
from milepost.app import create_app
from milepost.kit.db import Database
from milepost.settings import Settings
from tests.api.conftest import PASSWORD, Client, assert_error

# Sign-up, sign-in, and Stripe's webhook (its signature is its authentication).
PUBLIC = {("post", "/v1/users"), ("post", "/v1/tokens"), ("post", "/v1/providers/stripe/events")}
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def app() -> Any:
    return create_app(Settings(), database=Database("sqlite://"))


@pytest.fixture(scope="module")
def document(app: Any) -> dict[str, Any]:
    return dict(app.openapi())


def api_routes() -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) of every operation, from the domain routers that milepost.api puts under /v1."""
    imported = [value for value in vars(api_module).values() if isinstance(value, APIRouter)]
    assert {id(router) for router in imported} == {id(router) for router in api_module.DOMAINS}
    return [
        (method.lower(), "/v1" + route.path, route)
        for router in api_module.DOMAINS
        for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods or ()
    ]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)  # raises with the first problem
    assert document["openapi"].startswith("3.1")
    assert len(operations(document)) >= 60


def test_the_bearer_scheme_is_on_every_operation_that_needs_a_token_and_no_other(
    document: dict[str, Any],
) -> None:
    assert document["components"]["securitySchemes"] == {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "opaque",
            "description": document["components"]["securitySchemes"]["bearer"]["description"],
        }
    }
    assert "POST /v1/tokens" in document["components"]["securitySchemes"]["bearer"]["description"]
    secured = {
        (method, path)
        for method, path, operation in operations(document)
        if operation.get("security") == [{"bearer": []}]
    }
    everything = {(method, path) for method, path, _ in operations(document)}
    assert everything - secured == PUBLIC
    # The document follows the dependency (PublicApiDep or ApiDep); the behaviour follows ``auth=False`` in
    # the endpoint: they agree for every route.
    routes = api_routes()
    assert {(method, path) for method, path, _ in routes} == everything
    for method, path, route in routes:
        anonymous = "auth=False" in inspect.getsource(route.endpoint)
        assert anonymous == ((method, path) in PUBLIC), path


def test_every_secured_operation_without_a_body_refuses_a_call_without_a_token(
    document: dict[str, Any], base_url: str
) -> None:
    anonymous = Client(base_url)
    tried = 0
    for method, path, operation in operations(document):
        if (method, path) in PUBLIC or operation.get("requestBody", {}).get("required"):
            continue  # a required body is validated (422) before the endpoint asks for the token
        concrete = path.replace("{", "").replace("}", "")  # /v1/milestones/milestone_id: no such id
        response = anonymous.request(method.upper(), concrete)
        assert_error(response, 401, "authentication", "missing_token")
        assert response.headers["www-authenticate"] == "Bearer"
        tried += 1
    assert tried >= 40


def test_idempotency_key_is_an_optional_header_on_every_post(document: dict[str, Any]) -> None:
    posts = 0
    for method, path, operation in operations(document):
        declared = [
            parameter
            for parameter in operation.get("parameters", [])
            if parameter["name"] == "Idempotency-Key"
        ]
        if method != "post":
            assert declared == [], (method, path)
            continue
        posts += 1
        assert len(declared) == 1, path
        (parameter,) = declared
        assert parameter["in"] == "header" and parameter["required"] is False
        assert parameter["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}
        if path == "/v1/tokens":
            assert "never replayed" in parameter["description"]
        else:
            assert "24 hours" in parameter["description"]
            assert "idempotency_key_reused" in parameter["description"]
    assert posts >= 35


def test_what_the_header_says_is_what_it_does(sign_up: Any, base_url: str) -> None:
    alice = sign_up("alice")
    key = {"Idempotency-Key": "deposit-1"}
    first = alice.post("/v1/deposits", {"amount": 1_000, "currency": "USD"}, headers=key)
    again = alice.post("/v1/deposits", {"amount": 1_000, "currency": "USD"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = alice.post("/v1/deposits", {"amount": 2_000, "currency": "USD"}, headers=key)
    assert_error(other, 422, "validation", "idempotency_key_reused", param="Idempotency-Key")
    assert_error(
        alice.post(
            "/v1/deposits", {"amount": 1, "currency": "USD"}, headers={"Idempotency-Key": ""}
        ),
        422,
        "validation",
        param="Idempotency-Key",
    )
    assert alice.ok("GET", "/v1/balances")["data"][0]["available"] == 1_000

    # Sign-in accepts a key but never replays: each answer is a new token.
    anonymous = Client(base_url)
    credentials = {"email": alice.user["email"], "password": PASSWORD}
    tokens = [
        anonymous.post("/v1/tokens", credentials, headers={"Idempotency-Key": "sign-in"}).json()
        for _ in range(2)
    ]
    assert tokens[0]["token"] != tokens[1]["token"]


def test_operation_ids_are_the_endpoint_names_and_unique(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    by_operation = {
        (method, path): operation["operationId"] for method, path, operation in operations(document)
    }
    for method, path, route in api_routes():
        assert by_operation[(method, path)] == route.name
    assert {"sign_up", "create_deposit", "fund", "approve"} <= set(ids)


def test_the_served_document_is_the_processed_one_and_built_once(app: Any, sign_up: Any) -> None:
    assert app.openapi() is app.openapi()
    served = sign_up("reader").ok("GET", "/openapi.json")
    assert any(
        p["name"] == "Idempotency-Key"
        for p in served["paths"]["/v1/deposits"]["post"]["parameters"]
    )
    assert served["paths"]["/v1/me"]["get"]["security"] == [{"bearer": []}]

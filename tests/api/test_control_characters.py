"""Text that both databases can store: a NUL (or another control character) anywhere in a request's text
is refused with 422 naming where it is, before any endpoint runs, on PostgreSQL (which cannot store NUL)
as on SQLite; never a 500.

The main test walks the app's own OpenAPI document, so an endpoint added later is covered without anyone
remembering to: a NUL in every string field of every JSON body, and in every path and query parameter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from milepost.kit.db import Database
from milepost.users.models import User
from tests.api.conftest import Client, assert_error
from tests.web.conftest import csrf_from

NUL = "x\u0000y"
PERCENT_NUL = "x%00y"


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def string_fields(
    document: dict[str, Any], schema: dict[str, Any], prefix: str = "", depth: int = 0
) -> Iterator[tuple[str, list[str | int]]]:
    """(param as the error names it, path into the body) of every string the body schema allows,
    through nested objects and the first item of arrays."""
    schema = _resolve(document, schema)
    if depth > 6:
        return
    for option in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        yield from string_fields(document, option, prefix, depth + 1)
    kind = schema.get("type")
    if kind == "string" and schema.get("format") != "binary":
        yield prefix, []
    elif kind == "array" and "items" in schema:
        for param, path in string_fields(document, schema["items"], f"{prefix}[0]", depth + 1):
            yield param, [0, *path]
    elif kind == "object" or "properties" in schema:
        for name, field in schema.get("properties", {}).items():
            where = f"{prefix}.{name}" if prefix else name
            for param, path in string_fields(document, field, where, depth + 1):
                yield param, [name, *path]


def body_with(path: list[str | int], value: str) -> Any:
    """A JSON body holding ``value`` at ``path`` and nothing else: the check comes before the rest of
    the body is validated, so nothing else is needed for it to answer."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    inner = body_with(rest, value)
    return [inner] if isinstance(head, int) else {head: inner}


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def fill_path(path: str, target: str | None, value: str) -> str:
    out = path
    for part in path.split("{")[1:]:
        name = part.split("}")[0]
        out = out.replace("{" + name + "}", value if name == target else "x")
    return out


def test_a_nul_anywhere_in_any_operation_is_422_naming_it(sign_up: Any, db: Database) -> None:
    alice = sign_up("alice")
    document = alice.ok("GET", "/openapi.json")
    checked = {"body": 0, "path": 0, "query": 0}
    failures: list[str] = []

    def expect(response: httpx.Response, param: str, what: str) -> None:
        if response.status_code >= 500 or response.status_code != 422:
            failures.append(f"{what}: {response.status_code} {response.text[:200]}")
            return
        error = response.json()["error"]
        if (error["code"], error["param"]) != ("control_character", param):
            failures.append(f"{what}: {error}")

    for method, path, operation in operations(document):
        parameters = operation.get("parameters", [])
        for parameter in parameters:
            name = parameter["name"]
            if parameter["in"] == "path":
                url = fill_path(path, name, PERCENT_NUL)
                expect(alice.request(method, url), name, f"{method} {path} path {name}")
                checked["path"] += 1
            elif parameter["in"] == "query":
                url = fill_path(path, None, "")
                response = alice.request(method, url, params={name: NUL})
                expect(response, name, f"{method} {path} query {name}")
                checked["query"] += 1
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            schema = content["application/json"]["schema"]
            for param, field_path in string_fields(document, schema):
                url = fill_path(path, None, "x")
                response = alice.request(method, url, json=body_with(field_path, NUL))
                expect(response, param, f"{method} {path} body {param}")
                checked["body"] += 1
    assert failures == []
    # The walk really reached the places the bug was found in.
    assert checked["body"] >= 40 and checked["path"] >= 40 and checked["query"] >= 5, checked
    assert alice.ok("GET", "/v1/projects")["data"] == []


def test_sign_in_with_a_nul_in_the_email_is_422_not_500(base_url: str, db: Database) -> None:
    """The report's reproduction: on PostgreSQL this was a psycopg DataError and a 500, anonymously."""
    anonymous = Client(base_url)
    response = anonymous.post("/v1/tokens", {"email": "x\u0000@y", "password": "whatever"})
    error = assert_error(response, 422, "validation", "control_character", "email")
    assert "U+0000" in error["message"]
    signed_up = anonymous.post(
        "/v1/users", {"email": "a@example.com", "name": "A\u0000", "password": "long enough pw"}
    )
    assert_error(signed_up, 422, "validation", "control_character", "name")
    with db.read_only() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0
    missing = anonymous.get("/v1/milestones/ms_%00x")
    assert_error(missing, 422, "validation", "control_character", "milestone_id")
    cursor = anonymous.get("/v1/milestones", params={"starting_after": "ms_\u0000"})
    assert_error(cursor, 422, "validation", "control_character", "starting_after")


@pytest.mark.parametrize(
    "character",
    ["\u0001", "\u0008", "\u000b", "\u000c", "\u001b", "\u001f", "\u007f", "\u0085", "\u009f"],
)
def test_other_control_characters_are_refused(sign_up: Any, character: str) -> None:
    alice = sign_up("alice")
    refused = alice.post("/v1/projects", {"title": f"Site{character}", "currency": "USD"})
    assert_error(refused, 422, "validation", "control_character", "title")


def test_lone_surrogates_are_refused_and_tabs_and_newlines_kept(sign_up: Any) -> None:
    alice = sign_up("alice")
    raw = b'{"title": "Site \\ud800", "currency": "USD"}'
    refused = alice.post("/v1/projects", content=raw, headers={"Content-Type": "application/json"})
    assert_error(refused, 422, "validation", "control_character", "title")
    description = "Line one\n\tLine two\r\nLine three, with ünïcödé and emoji \U0001f680"
    project = alice.ok(
        "POST", "/v1/projects", {"title": "Site", "currency": "USD", "description": description}
    )
    assert project["description"] == description
    # Keys are text too: an unknown key with a NUL is refused for the NUL, not stored anywhere.
    keyed = alice.post("/v1/projects", {"title": "Site", "currency": "USD", "no\u0000te": "x"})
    assert_error(keyed, 422, "validation", "control_character")


def test_a_web_form_with_a_nul_is_a_422_page_and_changes_nothing(
    base_url: str, db: Database
) -> None:
    http = httpx.Client(base_url=base_url, timeout=60)
    token = csrf_from(http.get("/signup").text)
    response = http.post(
        "/signup",
        data={
            "email": "nul@example.com",
            "name": "Nul\u0000Name",
            "password": "correct horse battery",
            "csrf_token": token,
        },
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "control character" in response.text and "Nothing was changed" in response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert "milepost_session" not in http.cookies
    with db.read_only() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0
    # A page's path parameter too.
    page = http.get("/milestones/ms_%00x", headers={"Accept": "text/html"})
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    # JSON bodies of the API keep their JSON error.
    api = http.post(
        "/v1/tokens",
        content=json.dumps({"email": "\u0000"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert api.json()["error"]["code"] == "control_character"

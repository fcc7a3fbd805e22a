"""What an integrator checks in /openapi.json before generating a client from it: every operation says
what it does and which errors it can answer (in the one ``Error`` shape, 500 and 503 included), money is
described as minor units, closed sets of values are enums or patterns, create and update bodies require
what they really require, dates have a format, and documents have their real content types. The wire
behaviour behind those annotations is unchanged: the last tests send the values the document now rules
out and get exactly the errors they got before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from milepost.kit.db import Database
from milepost.milestones.state import MilestoneStatus
from milepost.settings import Settings
from milepost.webhooks.events import EVENT_TYPES
from tests.api.conftest import LiveServer, assert_error

ERROR_REF = "#/components/schemas/Error"
METHODS = {"get", "post", "put", "patch", "delete"}
# Fields that hold money, wherever they appear (requests and responses).
MONEY_FIELDS = {
    "amount",
    "available",
    "escrow_outgoing",
    "escrow_incoming",
    "funded_amount",
    "released_amount",
    "refunded_amount",
    "escrow_balance",
    "fee_amount",
    "late_fee_amount",
    "to_freelancer",
    "to_client",
    "amount_released",
    "platform_fee",
    "net_to_freelancer",
    "refunded_to_client",
}
STATUS_FIELDS = {"status", "status_before", "milestone_status", "from_status", "to_status"}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The document as a live server serves it."""
    folder: Path = tmp_path_factory.mktemp("openapi")
    database = Database(f"sqlite:///{folder / 'milepost.db'}")
    settings = Settings(providers="sandbox,manual", files_dir=str(folder / "files"))
    try:
        with LiveServer(database, settings) as url:
            response = httpx.get(f"{url}/openapi.json", timeout=30)
            assert response.status_code == 200
            yield response.json()
    finally:
        database.dispose()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def schema_of(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def variants(field: dict[str, Any]) -> list[dict[str, Any]]:
    """A property's schema, or each non-null alternative of a nullable one."""
    if "anyOf" in field:
        return [choice for choice in field["anyOf"] if choice.get("type") != "null"]
    return [field]


def body_schema(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation = document["paths"][path][method.lower()]
    content = operation["requestBody"]["content"]["application/json"]["schema"]
    choices = variants(content)  # an optional body is nullable
    ref = choices[0]["$ref"]
    return schema_of(document, ref.rsplit("/", 1)[1])


def test_every_operation_has_a_summary_and_a_description(document: dict[str, Any]) -> None:
    found = list(operations(document))
    assert len(found) >= 70
    missing = [
        f"{method} {path}"
        for method, path, operation in found
        if not operation.get("summary", "").strip()
        or len(operation.get("description", "").strip()) < 40
        or operation["description"].strip() == operation["summary"].strip()
    ]
    assert missing == []
    # Real summaries, not FastAPI's from the function name ("Sign Up", "Create Deposit").
    assert document["paths"]["/v1/deposits"]["post"]["summary"] == "Deposit money"
    assert (
        "into escrow"
        in document["paths"]["/v1/milestones/{milestone_id}/fund"]["post"]["description"]
    )


def test_every_operation_documents_its_errors_in_the_error_shape(document: dict[str, Any]) -> None:
    error = schema_of(document, "Error")
    assert error["required"] == ["error"]
    detail = schema_of(document, "ErrorDetail")
    assert set(detail["properties"]) == {"type", "code", "message", "param"}
    # FastAPI's own 422 body has another shape than the API's errors: it must not be documented.
    assert "HTTPValidationError" not in document["components"]["schemas"]
    status_sets = set()
    for method, path, operation in operations(document):
        responses = operation["responses"]
        errors = {int(status) for status in responses if int(status) >= 400}
        status_sets.add(frozenset(errors))
        where = f"{method} {path}"
        assert {500, 503} <= errors, where
        for status in errors:
            content = responses[str(status)]["content"]
            assert content["application/json"]["schema"] == {"$ref": ERROR_REF}, (where, status)
        if "{" in path:
            assert {404, 422} <= errors, where  # no such object; a control character in the id
        if path not in ("/v1/users", "/v1/tokens", "/v1/providers/stripe/events"):
            assert 401 in errors, where
        if method != "GET":
            # A concurrent request or a running idempotency key; the commit's outcome may be unknown.
            assert 409 in errors, where
            assert "outcome_unknown" in responses["500"]["description"], where
        else:
            assert "outcome_unknown" not in responses["500"]["description"], where
        if "requestBody" in operation:
            assert {400, 413, 422} <= errors, where
    # Not the same list everywhere.
    assert len(status_sets) >= 8


def test_errors_are_specific_to_what_an_operation_can_do(document: dict[str, Any]) -> None:
    def errors(method: str, path: str) -> set[int]:
        responses = document["paths"][path][method.lower()]["responses"]
        return {int(status) for status in responses if int(status) >= 400}

    short_of_money = {
        ("POST", "/v1/payouts"),
        ("POST", "/v1/milestones/{milestone_id}/fund"),
        ("POST", "/v1/milestones/{milestone_id}/release"),
        ("POST", "/v1/projects/{project_id}/bonuses"),
    }
    for method, path, _operation in operations(document):
        assert (402 in errors(method, path)) == ((method, path) in short_of_money), (method, path)
    assert 429 in errors("POST", "/v1/tokens")
    assert 429 not in errors("GET", "/v1/me")
    for staff_only in (
        ("POST", "/v1/deposits/{deposit_id}/confirm"),
        ("POST", "/v1/payouts/{payout_id}/mark-paid"),
        ("POST", "/v1/disputes/{dispute_id}/resolve"),
        ("GET", "/v1/ledger/verify"),
    ):
        assert 403 in errors(*staff_only)
    assert 403 not in errors("POST", "/v1/deposits")
    assert errors("GET", "/v1/me") == {401, 500, 503}
    assert 413 in errors("POST", "/v1/files")


def test_amounts_say_they_are_minor_units_with_examples(document: dict[str, Any]) -> None:
    checked = 0
    for name, schema in document["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            if field not in MONEY_FIELDS:
                continue
            checked += 1
            where = f"{name}.{field}"
            description = prop.get("description", "")
            assert "minor units" in description, where
            # One example per kind of currency: two decimals, none, three.
            for example in ("$15,000.00", "JPY", "KWD 1,500.000"):
                assert example in description, where
            assert 1500000 in prop.get("examples", []), where
            assert all(choice["type"] == "integer" for choice in variants(prop)), where
            if name.endswith("In") or name in (
                "MilestoneCreate",
                "MilestoneUpdate",
                "MoneyMovement",
            ):
                assert prop["maximum"] == 10**12, where
                assert prop["minimum"] in (0, 1), where
    assert checked >= 30
    assert schema_of(document, "MoneyMovement")["properties"]["amount"]["minimum"] == 1
    assert schema_of(document, "ResolveIn")["properties"]["to_client"]["minimum"] == 0


def test_statuses_providers_currencies_and_event_types_are_closed_sets(
    document: dict[str, Any],
) -> None:
    statuses = 0
    for name, schema in document["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            where = f"{name}.{field}"
            if field in STATUS_FIELDS or field == "provider":
                statuses += 1
                assert all(choice.get("enum") for choice in variants(prop)), where
            if field == "currency":
                assert all(choice.get("pattern") == "^[A-Z]{3}$" for choice in variants(prop)), (
                    where
                )
                assert "ISO 4217" in variants(prop)[0]["description"], where
    assert statuses >= 15

    def enum(schema: str, field: str) -> list[str]:
        values: list[str] = variants(schema_of(document, schema)["properties"][field])[0]["enum"]
        return values

    assert enum("MilestoneOut", "status") == [str(status) for status in MilestoneStatus]
    assert set(enum("DepositOut", "status")) == {"pending", "succeeded", "rejected", "reversed"}
    assert set(enum("PayoutOut", "status")) == {"pending", "paid", "failed"}
    assert set(enum("ProjectOut", "status")) == {"open", "awarded"}
    assert set(enum("DisputeOut", "status")) == {"open", "withdrawn", "resolved"}
    assert set(enum("MoneyMovement", "provider")) == {"manual", "sandbox", "stripe"}
    events = schema_of(document, "EndpointIn")["properties"]["events"]
    assert variants(events)[0]["items"]["enum"] == list(EVENT_TYPES)
    assert schema_of(document, "EndpointOut")["properties"]["events"]["items"]["enum"] == list(
        EVENT_TYPES
    )
    # The milestone list's status filter takes the same values.
    parameters = document["paths"]["/v1/milestones"]["get"]["parameters"]
    status = next(parameter for parameter in parameters if parameter["name"] == "status")
    assert variants(status["schema"])[0]["enum"] == [str(value) for value in MilestoneStatus]


def test_create_and_update_bodies_require_what_they_really_require(
    document: dict[str, Any],
) -> None:
    create = body_schema(document, "POST", "/v1/projects/{project_id}/milestones")
    update = body_schema(document, "PATCH", "/v1/milestones/{milestone_id}")
    assert create["title"] == "MilestoneCreate"
    assert update["title"] == "MilestoneUpdate"
    assert set(create["required"]) == {"title", "amount"}
    assert create["properties"]["title"]["type"] == "string"  # required, and not null
    assert create["properties"]["amount"]["type"] == "integer"
    assert "default" not in create["properties"]["amount"]
    assert set(create["properties"]) == set(update["properties"])
    # Every PATCH body: all optional, but for /v1/me, whose one setting is the body (without it, 422).
    for method, path, _operation in operations(document):
        if method == "PATCH" and path != "/v1/me":
            assert not body_schema(document, method, path).get("required"), path
    # POST bodies whose fields the service requires say so.
    assert body_schema(document, "POST", "/v1/deposits/{deposit_id}/reject")["required"] == [
        "reason"
    ]
    assert body_schema(document, "POST", "/v1/payout-destinations")["required"] == ["holder_name"]
    assert set(body_schema(document, "POST", "/v1/deposits")["required"]) == {"amount", "currency"}
    assert set(body_schema(document, "POST", "/v1/disputes/{dispute_id}/resolve")["required"]) == {
        "to_freelancer",
        "to_client",
    }


def test_input_dates_have_the_date_format(document: dict[str, Any]) -> None:
    for schema in ("MilestoneCreate", "MilestoneUpdate", "ProposedMilestone"):
        properties = schema_of(document, schema)["properties"]
        for field in ("due_date", "fund_by"):
            if field in properties:
                assert variants(properties[field])[0]["format"] == "date", (schema, field)
    for path in ("/v1/ledger/entries", "/v1/ledger/statement.csv"):
        parameters = document["paths"][path]["get"]["parameters"]
        for parameter in parameters:
            if parameter["name"] in ("from", "to"):
                assert variants(parameter["schema"])[0]["format"] == "date", path


def test_receipts_and_statements_have_their_real_content_types(document: dict[str, Any]) -> None:
    receipt = document["paths"]["/v1/receipts/{receipt_id}"]["get"]["responses"]["200"]["content"]
    # JSON first, with its schema: a generated client reads the first content type it knows.
    assert list(receipt) == ["application/json", "text/html", "application/pdf"]
    assert receipt["application/json"]["schema"] == {"$ref": "#/components/schemas/ReceiptOut"}
    assert receipt["text/html"]["schema"]["type"] == "string"
    assert receipt["application/pdf"]["schema"] == {"type": "string", "format": "binary"}
    pdf = document["paths"]["/v1/receipts/{receipt_id}.pdf"]["get"]["responses"]["200"]["content"]
    assert list(pdf) == ["application/pdf"]
    statement = document["paths"]["/v1/ledger/statement.csv"]["get"]["responses"]["200"]
    assert statement["content"] == {"text/csv": {"schema": {"type": "string"}}}
    entries = document["paths"]["/v1/ledger/entries"]["get"]["responses"]["200"]["content"]
    assert entries["text/csv"] == {"schema": {"type": "string"}}
    download = document["paths"]["/v1/files/{file_id}"]["get"]["responses"]["200"]["content"]
    assert download["application/octet-stream"]["schema"]["format"] == "binary"


# --- the wire is unchanged behind the annotations -------------------------------------------------------


def test_values_the_document_rules_out_keep_their_errors(sign_up: Any) -> None:
    alice, bob = sign_up("alice"), sign_up("bob")
    for currency in ("usd", "XAU", "QQQ", "US"):
        refused = alice.post("/v1/deposits", {"amount": 1_000, "currency": currency})
        assert_error(refused, 422, "validation", "invalid_currency", "currency")
    refused = alice.post("/v1/deposits", {"amount": 1_000, "currency": "USD", "provider": "paypal"})
    assert_error(refused, 422, "validation", "unknown_provider", "provider")
    for amount in (0, -5, 10**12 + 1):
        refused = alice.post("/v1/deposits", {"amount": amount, "currency": "USD"})
        assert_error(refused, 422, "validation", "invalid_amount", "amount")
    assert_error(alice.get("/v1/milestones", params={"status": "lost"}), 400, "invalid_request")
    refused = alice.post("/v1/webhook-endpoints", {"url": "https://a.example", "events": ["x"]})
    assert_error(refused, 422, "validation", "unknown_event_type", "events[0]")

    project = alice.ok("POST", "/v1/projects", {"title": "Site", "currency": "USD"})
    milestones = f"/v1/projects/{project['id']}/milestones"
    # Required in the document, still checked by the service after the project's access: a stranger
    # gets 404 for the project before anything about the body, the client 422 `missing`.
    assert_error(bob.post(milestones, {"amount": 1_000}), 404, "not_found")
    assert_error(alice.post(milestones, {"amount": 1_000}), 422, "validation", "missing", "title")
    assert_error(
        alice.post(milestones, {"title": "Design", "amount": None}),
        422,
        "validation",
        "missing",
        "amount",
    )
    for bad in ("2026-13-01", "tomorrow", "01/02/2026"):
        refused = alice.post(milestones, {"title": "Design", "amount": 1_000, "due_date": bad})
        assert_error(refused, 422, "validation", "invalid_value", "due_date")
    draft = alice.ok("POST", milestones, {"title": "Design", "amount": 1_000})
    assert draft["status"] == "draft"
    changed = alice.ok("PATCH", f"/v1/milestones/{draft['id']}", {"due_date": "2026-06-30"})
    assert changed["due_date"] == "2026-06-30"

    staff = sign_up("staff", staff=True)
    pending = alice.ok(
        "POST", "/v1/deposits", {"amount": 5_000, "currency": "USD", "provider": "manual"}
    )
    refused = staff.post(f"/v1/deposits/{pending['id']}/reject", {})
    assert_error(refused, 422, "validation", param="reason")


def test_the_csv_statement_operation_answers_csv(sign_up: Any) -> None:
    alice = sign_up("alice")
    alice.ok("POST", "/v1/deposits", {"amount": 1_500_000, "currency": "USD"})
    response = alice.get("/v1/ledger/statement.csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "1500000" in response.text
    # The same statement as the list's format=csv.
    assert alice.get("/v1/ledger/entries", params={"format": "csv"}).text == response.text
    assert_error(
        alice.get("/v1/ledger/statement.csv", params={"from": "2026-02-01", "to": "2026-01-01"}),
        400,
        "invalid_request",
        param="from",
    )
    anonymous = httpx.get(str(alice.http.base_url).rstrip("/") + "/v1/ledger/statement.csv")
    assert_error(anonymous, 401, "authentication")

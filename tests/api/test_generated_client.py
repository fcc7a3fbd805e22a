"""A Python client generated from the live /openapi.json with openapi-python-client runs the whole story of a
milestone through generated code only: sign-up, tokens, project, a $15,000.00 milestone, a sandbox deposit
with an idempotency key passed as a parameter, fund, submit, approve, balances, a JSON receipt and a CSV
statement. What a generated client cannot do, an integrator cannot either."""

from __future__ import annotations

import csv
import hashlib
import importlib
import io
import json
import subprocess
import sys
import typing
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from milepost.settings import Settings
from tests.api.conftest import PASSWORD

PACKAGE = "milepost_client"
MILESTONE_AMOUNT = 1_500_000  # $15,000.00 in cents: amounts are minor units


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The test server's: sandbox deposits on (money from nothing, for the story), a 10 % fee."""
    return Settings(fee_bps=1000, providers="sandbox,manual", files_dir=str(tmp_path / "files"))


@pytest.fixture(scope="session")
def generate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[bytes], ModuleType]]:
    """generate(document) -> the client package generated from that OpenAPI document; generated once per
    session for each distinct document (every test server serves the same one)."""
    root = tmp_path_factory.mktemp("generated-clients")
    packages: dict[str, ModuleType] = {}

    def make(document: bytes) -> ModuleType:
        digest = hashlib.sha256(document).hexdigest()[:12]
        if digest in packages:
            return packages[digest]
        package = f"{PACKAGE}_{digest}"
        folder = root / digest
        folder.mkdir()
        (folder / "openapi.json").write_bytes(document)
        # No post hooks: they would run ruff over the generated code, which costs time and adds nothing.
        (folder / "config.yml").write_text(
            f"project_name_override: milepost-client\npackage_name_override: {package}\n"
            "post_hooks: []\n"
            # The generator has no reader of its own for PDF: it is told to hand PDF back as bytes.
            "content_type_overrides:\n  application/pdf: application/octet-stream\n"
        )
        command = [sys.executable, "-m", "openapi_python_client", "generate"]
        command += ["--path", str(folder / "openapi.json"), "--config", str(folder / "config.yml")]
        command += ["--meta", "none", "--output-path", str(folder / package)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        # The generator warns about parts of the document it could not turn into code: there must be none.
        assert "Warning" not in output, output
        sys.path.insert(0, str(folder))
        packages[digest] = importlib.import_module(package)
        return packages[digest]

    yield make
    for folder in [entry for entry in sys.path if entry.startswith(str(root))]:
        sys.path.remove(folder)
    for name in [name for name in sys.modules if name.startswith(PACKAGE + "_")]:
        del sys.modules[name]


class Generated:
    """Calls generated operations by tag and operation id (``api.wallets.create_deposit``). A body is given
    as a dict and built by the operation's own generated model (``Model.from_dict``), so that the test does
    not depend on what the models are called."""

    def __init__(self, package: ModuleType, base_url: str) -> None:
        self.package = package
        self.base_url = base_url

    def operation(self, tag: str, operation_id: str) -> Any:
        return importlib.import_module(f"{self.package.__name__}.api.{tag}.{operation_id}")

    def anonymous(self) -> Any:
        return self.package.Client(base_url=self.base_url, raise_on_unexpected_status=True)

    def signed_in(self, token: str) -> Any:
        return self.package.AuthenticatedClient(
            base_url=self.base_url, token=token, raise_on_unexpected_status=True
        )

    def call(
        self, client: Any, tag: str, operation_id: str, *, status: int | None = None, **kwargs: Any
    ) -> Any:
        """Run the operation; insist on a success (or on ``status``) and return the parsed response."""
        response = self.detailed(client, tag, operation_id, **kwargs)
        expected = {status} if status is not None else {200, 201, 204}
        assert response.status_code in expected, (
            operation_id,
            response.status_code,
            response.content,
        )
        return response.parsed

    def detailed(self, client: Any, tag: str, operation_id: str, **kwargs: Any) -> Any:
        module = self.operation(tag, operation_id)
        if isinstance(kwargs.get("body"), dict):
            model = typing.get_type_hints(module.sync_detailed)["body"]
            kwargs["body"] = model.from_dict(kwargs["body"])
        return module.sync_detailed(client=client, **kwargs)


def value(field: Any) -> Any:
    """A generated field's plain value (an enum member's value, if the document declares an enum)."""
    return getattr(field, "value", field)


def test_the_milestone_story_through_a_generated_client(
    generate: Callable[[bytes], ModuleType], base_url: str
) -> None:
    document = httpx.get(f"{base_url}/openapi.json", timeout=30)
    assert document.status_code == 200
    api = Generated(generate(document.content), base_url)
    anonymous = api.anonymous()

    def person(name: str) -> tuple[Any, Any]:
        email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "name": name.title(), "password": PASSWORD}
        user = api.call(anonymous, "users", "sign_up", body=body, status=201)
        assert user.email == email
        issued = api.call(
            anonymous, "users", "sign_in", body={"email": email, "password": PASSWORD}, status=201
        )
        assert issued.user.id == user.id and issued.token
        return user, api.signed_in(issued.token)

    client_user, client = person("client")
    freelancer_user, freelancer = person("freelancer")
    assert api.call(client, "users", "me").id == client_user.id

    project = api.call(
        client,
        "projects",
        "create_project",
        body={"title": "Shop rebuild", "currency": "USD", "freelancer_id": freelancer_user.id},
        status=201,
    )
    milestone = api.call(
        client,
        "projects",
        "create_milestone",
        project_id=project.id,
        body={
            "title": "Checkout",
            "amount": MILESTONE_AMOUNT,
            "acceptance_criteria": ["Card payments work end to end"],
        },
        status=201,
    )
    assert milestone.amount == MILESTONE_AMOUNT and value(milestone.status) == "draft"

    # A sandbox deposit with an idempotency key passed as the operation's parameter: sent twice, done once.
    key = str(uuid.uuid4())
    deposit = {"amount": MILESTONE_AMOUNT, "currency": "USD", "provider": "sandbox"}
    first = api.detailed(client, "wallets", "create_deposit", body=deposit, idempotency_key=key)
    again = api.detailed(client, "wallets", "create_deposit", body=deposit, idempotency_key=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.parsed.id == first.parsed.id and value(first.parsed.status) == "succeeded"
    # The key belongs to that call only: the next POSTs, with no key or a different body, are not refused
    # as a reused key.
    top_up = api.call(
        client,
        "wallets",
        "create_deposit",
        body={"amount": 10_000, "currency": "USD", "provider": "sandbox"},
        status=201,
    )
    assert top_up.id != first.parsed.id

    funded = api.call(client, "milestones", "fund", milestone_id=milestone.id)
    assert value(funded.status) == "funded" and funded.escrow_balance == MILESTONE_AMOUNT
    submission = api.call(
        freelancer,
        "milestones",
        "submit",
        milestone_id=milestone.id,
        body={
            "note": "Checkout is live on staging.",
            "evidence": [{"type": "link", "url": "https://staging.example.com/checkout"}],
        },
        status=201,
    )
    assert submission.id
    approved = api.call(client, "milestones", "approve", milestone_id=milestone.id)
    assert value(approved.status) == "released"
    assert approved.released_amount == MILESTONE_AMOUNT

    def available(who: Any) -> dict[str, int]:
        listed = api.call(who, "wallets", "balances")
        return {value(row.currency): row.available for row in listed.data}

    assert available(client) == {"USD": 10_000}
    assert available(freelancer) == {"USD": MILESTONE_AMOUNT - approved.fee_amount}
    assert approved.fee_amount == MILESTONE_AMOUNT // 10  # the test server's 10 % fee

    # A JSON receipt, parsed by the generated model; and the CSV statement, which the generated client
    # hands back as text.
    receipts = api.call(client, "receipts", "list_receipts", milestone_id=milestone.id)
    assert len(receipts.data) == 1
    receipt_id = receipts.data[0].id
    format_json = typing.get_type_hints(api.operation("receipts", "get_receipt").sync_detailed)[
        "format_"
    ]
    fetched = api.detailed(
        client,
        "receipts",
        "get_receipt",
        receipt_id=receipt_id,
        format_=_member(format_json, "json"),
    )
    assert fetched.status_code == 200
    assert fetched.headers["content-type"].startswith("application/json")
    assert fetched.parsed.id == receipt_id and fetched.parsed.milestone_id == milestone.id
    pdf = api.detailed(client, "receipts", "get_receipt_pdf", receipt_id=receipt_id)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")

    statement = api.detailed(freelancer, "ledger", "csv_statement")
    assert statement.status_code == 200
    assert statement.headers["content-type"].startswith("text/csv")
    assert isinstance(statement.parsed, str)
    rows = list(csv.DictReader(io.StringIO(statement.parsed)))
    assert rows, statement.parsed
    assert any(milestone.id in json.dumps(row) for row in rows), statement.parsed


def _member(annotation: Any, wanted: str) -> Any:
    """The generated enum's member for ``wanted`` (the parameter is ``Enum | Unset``)."""
    for option in typing.get_args(annotation) or (annotation,):
        members = getattr(option, "__members__", None)
        if members:
            return next(member for member in members.values() if member.value == wanted)
    return wanted

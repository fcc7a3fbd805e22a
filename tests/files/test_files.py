"""Uploads and downloads over HTTP: types decided from the bytes, limits, storage, who may download."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from milepost.kit.db import Database
from milepost.milestones import service as milestones
from milepost.settings import Settings
from milepost.users.models import User
from tests.api.conftest import Client
from tests.files.conftest import UPLOAD_LIMIT
from tests.world import World


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return buffer.getvalue()


SAMPLES: dict[str, tuple[str, bytes]] = {
    "application/pdf": ("report.pdf", b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"),
    "image/png": (
        "shot.png",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
        + b"\x00" * 32,
    ),
    "image/jpeg": ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + b"\x00" * 32),
    "image/gif": ("anim.gif", b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 16),
    "image/webp": ("pic.webp", b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32),
    "application/zip": ("source.zip", _zip()),
    "text/plain": ("notes.md", "# Delivery notes\nAll done, café included.\n".encode()),
}


def upload(
    client: Client, name: str, data: bytes, content_type: str = "application/octet-stream"
) -> Any:
    return client.request("POST", "/v1/files", files={"file": (name, data, content_type)})


def user(db: Database, client: Client) -> User:
    with db.read_only() as session:
        found = session.get(User, client.id)
        assert found is not None
        return found


@pytest.mark.parametrize("content_type", sorted(SAMPLES))
def test_each_allowed_type_uploads_and_downloads(sign_up: Any, content_type: str) -> None:
    alice = sign_up("alice")
    name, data = SAMPLES[content_type]
    # The client's header is ignored: the type comes from the bytes.
    response = upload(alice, name, data, "application/x-anything")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("file_")
    assert body["object"] == "file"
    assert body["content_type"] == content_type
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["size"] == len(data)
    assert body["filename"] == name

    download = alice.get(f"/v1/files/{body['id']}")
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["content-type"].split(";")[0] == content_type
    assert download.headers["content-disposition"].startswith(f'attachment; filename="{name}"')
    assert download.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "data",
    [
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64,  # Windows executable
        b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64,  # Linux executable
        b"\x1f\x8b\x08\x00" + b"\x00" * 32,  # gzip: a known type, not on the list
        b"\x00\x01\x02\x03\xfe\xff" * 10,  # unknown binary
        b"caf\xe9 is not UTF-8\n",  # Latin-1 text
    ],
    ids=["exe", "elf", "gzip", "binary", "latin1"],
)
def test_disguised_or_unknown_types_are_refused(sign_up: Any, data: bytes) -> None:
    alice = sign_up("alice")
    response = upload(alice, "invoice.pdf", data, "application/pdf")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_file_type"
    assert error["param"] == "file"
    assert alice.get("/v1/files/file_00000000000000000000000000").status_code == 404


def test_size_limits_and_empty_files(sign_up: Any, settings: Settings) -> None:
    alice = sign_up("alice")
    at_limit = b"a" * UPLOAD_LIMIT
    assert upload(alice, "big.txt", at_limit).status_code == 201

    over = upload(alice, "big.txt", at_limit + b"a")
    assert over.status_code == 413, over.text
    assert over.json()["error"]["code"] == "file_too_large"
    assert "limit" in over.json()["error"]["message"]

    # Far over: refused by the body limit before it is even read.
    huge = upload(alice, "huge.txt", b"a" * (UPLOAD_LIMIT + 128 * 1024))
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "body_too_large"

    empty = upload(alice, "empty.txt", b"")
    assert empty.status_code == 422
    assert empty.json()["error"]["code"] == "empty_file"

    missing = alice.request("POST", "/v1/files", files={"other": ("a.txt", b"hi", "text/plain")})
    assert missing.status_code == 422
    assert missing.json()["error"]["param"] == "file"
    # Nothing half-written is left behind.
    assert list((Path(settings.files_dir) / "tmp").iterdir()) == []


def test_same_bytes_are_stored_once(sign_up: Any, settings: Settings) -> None:
    alice, bob = sign_up("alice"), sign_up("bob")
    data = b"the same delivery notes\n"
    first = upload(alice, "a.txt", data).json()
    second = upload(bob, "b.txt", data).json()
    assert first["id"] != second["id"]
    assert first["sha256"] == second["sha256"]
    sha = first["sha256"]
    blobs = [path for path in Path(settings.files_dir).rglob("*") if path.is_file()]
    assert blobs == [Path(settings.files_dir) / sha[:2] / sha[2:4] / sha]
    assert blobs[0].read_bytes() == data


def test_filename_is_cleaned_and_safely_quoted(sign_up: Any) -> None:
    alice = sign_up("alice")
    # Built by hand: HTTP clients escape quotes in names, an attacker's client need not.
    raw_name = '../../etc/"évil"\\x.txt'
    body = (
        b"--boundary\r\n"
        + f'Content-Disposition: form-data; name="file"; filename="{raw_name}"\r\n'.encode()
        + b"Content-Type: text/plain\r\n\r\nhello\n\r\n--boundary--\r\n"
    )
    response = alice.request(
        "POST",
        "/v1/files",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=boundary"},
    )
    assert response.status_code == 201, response.text
    stored = response.json()
    assert "/" not in stored["filename"] and "\\" not in stored["filename"]
    disposition = alice.get(f"/v1/files/{stored['id']}").headers["content-disposition"]
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and '"' not in fallback
    assert disposition.endswith("filename*=UTF-8''" + quote(stored["filename"], safe=""))


def test_download_is_for_the_uploader_then_the_milestone_parties(
    sign_up: Any, db: Database
) -> None:
    world = World(db)
    client, freelancer = sign_up("client"), sign_up("freelancer")
    outsider, staff = sign_up("outsider"), sign_up("staff", staff=True)
    world.deposit(user(db, client), 500_000)
    project = world.project(user(db, client), user(db, freelancer))
    milestone = world.milestone(user(db, client), project, 100_000)
    world.act(user(db, client), milestones.fund, milestone.id)

    name, data = SAMPLES["application/pdf"]
    file_id = upload(freelancer, name, data).json()["id"]
    for someone in (client, outsider, staff):
        response = someone.get(f"/v1/files/{file_id}")
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"

    world.act(
        user(db, freelancer),
        milestones.submit,
        milestone.id,
        note="Done",
        evidence=[{"type": "file", "file_id": file_id}, {"type": "file", "file_id": file_id}],
    )
    for someone in (freelancer, client, staff):
        response = someone.get(f"/v1/files/{file_id}")
        assert response.status_code == 200
        assert response.content == data
    assert outsider.get(f"/v1/files/{file_id}").status_code == 404


def test_evidence_must_name_a_file_the_freelancer_uploaded(sign_up: Any, db: Database) -> None:
    from milepost.kit.errors import ValidationFailed

    world = World(db)
    client, freelancer = sign_up("client"), sign_up("freelancer")
    world.deposit(user(db, client), 500_000)
    project = world.project(user(db, client), user(db, freelancer))
    milestone = world.milestone(user(db, client), project, 100_000)
    world.act(user(db, client), milestones.fund, milestone.id)
    clients_file = upload(client, "spec.txt", b"the spec\n").json()["id"]
    own_file = upload(freelancer, "work.txt", b"the work\n").json()["id"]

    for bad in (clients_file, "file_00000000000000000000000000"):
        with pytest.raises(ValidationFailed) as refused:
            world.act(
                user(db, freelancer),
                milestones.submit,
                milestone.id,
                evidence=[
                    {"type": "file", "file_id": own_file},
                    {"type": "file", "file_id": bad},
                ],
            )
        assert refused.value.param == "evidence[1].file_id"
        assert refused.value.code == "unknown_file"
    assert world.get(milestone.id).status == "funded"
    # The client's own upload is still theirs alone: the refused submission linked nothing.
    assert freelancer.get(f"/v1/files/{clients_file}").status_code == 404


def test_upload_needs_a_token(base_url: str) -> None:
    response = Client(base_url).request(
        "POST", "/v1/files", files={"file": ("a.txt", b"hi", "text/plain")}
    )
    assert response.status_code == 401


def test_a_file_attached_in_a_dispute_is_for_its_parties_and_staff(
    sign_up: Any, db: Database
) -> None:
    world = World(db)
    client, freelancer = sign_up("client"), sign_up("freelancer")
    outsider, staff = sign_up("outsider"), sign_up("staff", staff=True)
    world.deposit(user(db, client), 500_000)
    project = world.project(user(db, client), user(db, freelancer))
    milestone = world.milestone(user(db, client), project, 100_000)
    world.act(user(db, client), milestones.fund, milestone.id)
    dispute = client.ok("POST", f"/v1/milestones/{milestone.id}/disputes", {"reason": "Late"})
    did = dispute["id"]
    assert (dispute["awaiting_response_from"], dispute["overdue"]) == ("freelancer", False)

    name, data = SAMPLES["application/pdf"]
    file_id = upload(client, name, data).json()["id"]
    assert freelancer.get(f"/v1/files/{file_id}").status_code == 404
    attachment = {"type": "file", "file_id": file_id}
    message = client.ok(
        "POST",
        f"/v1/disputes/{did}/messages",
        {"body": "The contract", "attachments": [attachment]},
    )
    assert (message["author_role"], message["attachments"]) == ("client", [attachment])
    for someone in (freelancer, staff):
        response = someone.get(f"/v1/files/{file_id}")
        assert response.status_code == 200 and response.content == data
    assert outsider.get(f"/v1/files/{file_id}").status_code == 404

    queue = staff.ok("GET", "/v1/staff/disputes?awaiting_answer=true&currency=USD")["data"]
    assert [item["id"] for item in queue] == [did]
    assert freelancer.get("/v1/staff/disputes").status_code == 403

    freelancer.ok("POST", f"/v1/disputes/{did}/messages", {"body": "It was on time"})
    assert freelancer.ok("GET", f"/v1/disputes/{did}")["awaiting_response_from"] is None
    assert staff.ok("GET", "/v1/staff/disputes?awaiting_answer=true")["data"] == []
    said = staff.ok("GET", f"/v1/disputes/{did}/messages")["data"]
    assert [(item["author_role"], item["body"]) for item in said] == [
        ("client", "The contract"),
        ("freelancer", "It was on time"),
    ]

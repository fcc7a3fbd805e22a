"""Files sent with a form (a delivery, a message in a dispute): staged into storage before the form's
unit of work, as the API's upload is, then made the signed-in user's files inside it, and the evidence
items that name them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import UploadFile

from milepost.files import service as files
from milepost.kit.context import Context
from milepost.settings import Settings


@dataclass(frozen=True)
class Upload:
    """A file a form carried, already staged (see ``files.service.stage``)."""

    blob: files.StagedBlob
    filename: str | None


def stage_all(settings: Settings, sent: Sequence[UploadFile] | None) -> list[Upload]:
    """Stage every file the form sent; an empty file input still sends a part, without a file name."""
    return [
        Upload(files.stage(settings, upload.file), upload.filename)
        for upload in sent or []
        if upload.filename
    ]


def links_and_files(ctx: Context, links: str, uploads: Sequence[Upload]) -> list[dict[str, str]]:
    """The evidence items of a form's links (one per line) and uploads, each upload now a file of the
    actor's (in the caller's unit of work: a refused form leaves no file rows behind)."""
    items = [{"type": "link", "url": line.strip()} for line in links.splitlines() if line.strip()]
    for upload in uploads:
        stored = files.create_file(ctx, upload.blob, filename=upload.filename)
        items.append({"type": "file", "file_id": stored.id})
    return items

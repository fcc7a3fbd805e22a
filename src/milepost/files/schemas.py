from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from milepost.files.models import StoredFile


class FileOut(BaseModel):
    id: str
    object: Literal["file"] = "file"
    sha256: str
    size: int
    content_type: str
    filename: str
    created_at: datetime

    @classmethod
    def of(cls, stored: StoredFile) -> FileOut:
        return cls(
            id=stored.id,
            sha256=stored.sha256,
            size=stored.size,
            content_type=stored.content_type,
            filename=stored.filename,
            created_at=stored.created_at,
        )

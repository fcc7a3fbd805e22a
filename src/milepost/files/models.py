from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from milepost.kit.db import Base, UTCDateTime


class StoredFile(Base):
    """One upload. The bytes live on disk under ``files_dir``, addressed by their SHA-256, so the same
    bytes uploaded twice (by anyone) are stored once; each upload still gets its own row and owner."""

    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    # Decided from the bytes, never from the name or the client's header.
    content_type: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SubmissionFile(Base):
    """A submission's evidence uses this file: its milestone's parties may download it."""

    __tablename__ = "submission_files"

    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), primary_key=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id"), primary_key=True, index=True)


class DisputeMessageFile(Base):
    """A dispute message attaches this file: the milestone's parties and staff may download it."""

    __tablename__ = "dispute_message_files"

    message_id: Mapped[str] = mapped_column(ForeignKey("dispute_messages.id"), primary_key=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id"), primary_key=True, index=True)

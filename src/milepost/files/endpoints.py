"""Uploading evidence files and downloading them."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from milepost.files import service
from milepost.files.models import StoredFile
from milepost.files.schemas import FileOut
from milepost.kit.context import Context
from milepost.kit.errors import InvalidRequest, ValidationFailed
from milepost.kit.http import ApiDep
from milepost.kit.schemas import error_responses

router = APIRouter(tags=["files"])

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.post(
    "/files",
    status_code=201,
    response_model=FileOut,
    openapi_extra=_UPLOAD_BODY,
    summary="Upload an evidence file",
    responses=error_responses(400, 401, 409, 413, 422, write=True),
)
async def upload_file(request: Request, api: ApiDep) -> Response:
    """Upload one file (multipart/form-data, field `file`) to use as evidence in a delivery
    (`{"type": "file", "file_id"}`). Its type is read from its bytes: a type not on the allow-list is 422
    `unsupported_file_type`, a file over the size limit (MILEPOST_MAX_UPLOAD_BYTES, 25 MiB by default)
    413. Any signed-in user; no money moves."""
    # The raw body is read first: Api.write fingerprints it for idempotency, and the form is then parsed
    # from that same (cached) body. BodyLimitMiddleware has already capped its size.
    await request.body()
    # Authenticate before the form is parsed or anything is written to storage.
    await run_in_threadpool(api.read, lambda ctx: ctx.require_actor(), lambda _: None)
    try:
        form = await request.form(max_files=1, max_fields=10)
    except Exception as error:  # malformed multipart, or too many parts
        raise InvalidRequest(
            "Send the file as multipart/form-data in a field named file.", code="malformed_upload"
        ) from error
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationFailed(
                "Send the file as multipart/form-data in a field named file.",
                code="missing",
                param="file",
            )
        blob = await run_in_threadpool(service.stage, api.settings, upload.file)
        return await api.write(
            lambda ctx: service.create_file(ctx, blob, filename=upload.filename),
            FileOut.of,
            status=201,
        )
    finally:
        await form.close()


@router.get(
    "/files/{file_id}",
    response_class=Response,
    summary="Download a file",
    responses={
        200: {
            "description": "The file's bytes, with the content type detected at upload (sent as an "
            "attachment).",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        **error_responses(401, 404, 422),
    },
)
def download_file(file_id: str, api: ApiDep) -> Response:
    """The bytes of a file, for its uploader and for the parties to a milestone whose delivery uses it;
    anyone else gets 404."""

    def find(ctx: Context) -> tuple[StoredFile, Any]:
        stored = service.get_for_download(ctx, file_id)
        return stored, service.open_blob(ctx, stored)

    def send(found: tuple[StoredFile, Any]) -> Response:
        stored, path = found
        return FileResponse(
            path,
            media_type=stored.content_type,
            headers={
                "Content-Disposition": content_disposition(stored.filename),
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, no-store",
            },
        )

    return api.read(find, send)


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name (quotes and backslashes replaced) and the exact name
    percent-encoded as ``filename*`` (RFC 6266 / RFC 5987)."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback or 'file'}\"; filename*=UTF-8''{quote(filename, safe='')}"

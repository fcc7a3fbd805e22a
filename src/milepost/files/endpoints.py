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


@router.post("/files", status_code=201, response_model=FileOut, openapi_extra=_UPLOAD_BODY)
async def upload_file(request: Request, api: ApiDep) -> Response:
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
    responses={
        200: {"description": "The file's bytes.", "content": {"application/octet-stream": {}}}
    },
)
def download_file(file_id: str, api: ApiDep) -> Response:
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

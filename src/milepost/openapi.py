"""What the OpenAPI document says about the API as a whole, in one place.

Per-operation parts (summaries, request and response schemas, error responses) live with their endpoints.
Three things hold for every operation alike and are set here:

- operation ids are the endpoint functions' names (``create_deposit``, not FastAPI's
  ``create_deposit_v1_deposits_post``): they become the function names of generated clients;
- the bearer security scheme: declared by the dependency that reads the token (``kit.http.BEARER``, a
  dependency of ``ApiDep``), so FastAPI lists it on exactly the operations that need a signed-in user, and on
  none of those that take ``PublicApiDep`` (sign-up, sign-in);
- the ``Idempotency-Key`` header, declared on every POST under /v1 (``kit/idempotency.py`` honours it).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from milepost.kit.idempotency import KEY_LIFETIME, MAX_KEY_LENGTH

IDEMPOTENCY_KEY = "Idempotency-Key"
_KEY_HOURS = int(KEY_LIFETIME.total_seconds() // 3600)

IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": IDEMPOTENCY_KEY,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    "example": "7f1c2e9a-3b64-4d0e-9a51-1c7d2f0b8e43",
    "description": (
        "Makes the request safe to retry. Send a new random key (a UUID) for each operation meant to "
        f"happen once, and the same key when retrying it. For {_KEY_HOURS} hours, per user: the same key "
        "with the same body answers the first response again (with `Idempotent-Replayed: true`) and "
        "does nothing twice; with a different body, 422 `idempotency_key_reused`; while the first "
        "request is still running, 409 `idempotency_key_in_flight`. After a 500 or a 503, retry with "
        "the same key: it answers what was done, or runs the request if nothing was. "
        f"1 to {MAX_KEY_LENGTH} characters."
    ),
}

# POSTs that accept the header but never replay, because their response holds a secret shown once.
_NOT_REPLAYED = {
    "/v1/tokens": (
        "Accepted, but never replayed: the response holds a new token, which Milepost keeps only "
        "hashed, so it cannot answer it twice. Every successful sign-in issues a new token."
    ),
}


def operation_id(route: APIRoute) -> str:
    """The endpoint function's name, unique across the API (a test checks it)."""
    return route.name


def install(app: FastAPI) -> None:
    """Serve the post-processed document as ``app.openapi()`` (and so at /openapi.json and in /docs).

    FastAPI builds the document once and keeps it until the routes change; the post-processing below runs
    once per document it builds.
    """
    processed: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        document = FastAPI.openapi(app)
        if not processed or processed[0] is not document:
            _declare_idempotency_key(document)
            processed[:] = [document]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _declare_idempotency_key(document: dict[str, Any]) -> None:
    for path, operations in document.get("paths", {}).items():
        operation = operations.get("post")
        if operation is None or not (path == "/v1" or path.startswith("/v1/")):
            continue
        parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
        if any(p.get("name", "").lower() == IDEMPOTENCY_KEY.lower() for p in parameters):
            continue  # declared already (this runs once per document, but need not)
        parameter = dict(IDEMPOTENCY_KEY_PARAMETER)
        if path in _NOT_REPLAYED:
            parameter["description"] = _NOT_REPLAYED[path]
        parameters.append(parameter)

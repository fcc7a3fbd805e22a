"""Sign-up, sign-in (tokens), sign-out, and who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from milepost.auth import service as auth
from milepost.kit.context import Context
from milepost.kit.http import ApiDep, PublicApiDep
from milepost.kit.schemas import ListOf, error_responses
from milepost.users import service
from milepost.users.schemas import MeUpdate, SignIn, SignUp, TokenInfo, TokenOut, UserOut

router = APIRouter(tags=["users"])


@router.post(
    "/users",
    status_code=201,
    response_model=UserOut,
    summary="Sign up",
    responses=error_responses(400, 401, 409, 413, 422, write=True),
)
async def sign_up(body: SignUp, api: PublicApiDep) -> Response:
    """Create an account; anyone may call it, no token needed. The password has at least 10 characters;
    an e-mail already in use is 422. No money moves. Then get a token from `POST /v1/tokens`."""

    def create(ctx: Context) -> UserOut:
        return UserOut.of(
            service.create_user(
                ctx.session,
                email=body.email,
                name=body.name,
                password=body.password,
                time_zone=body.time_zone,
            )
        )

    return await api.write(create, lambda user: user, status=201, auth=False)


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenOut,
    summary="Sign in (get a bearer token)",
    responses=error_responses(400, 401, 409, 413, 422, 429, write=True),
)
async def sign_in(body: SignIn, request: Request, api: PublicApiDep) -> Response:
    """Exchange an e-mail and password for a bearer token, shown this once (send it as
    `Authorization: Bearer <token>`). Anyone may call it; a wrong password is 401, and repeated failures
    are 429 for a few minutes. An Idempotency-Key is accepted but not replayed: the token is stored only
    hashed, so a retry issues another one."""

    def issue(ctx: Context) -> TokenOut:
        token, user = auth.sign_in(
            ctx,
            email=body.email,
            password=body.password,
            address=api.client_address,
            label=body.label,
        )
        record = auth.token_record(ctx, token)
        assert record is not None  # just made, in this unit of work
        return TokenOut(
            id=record.id,
            token=token,
            label=record.label,
            created_at=record.created_at,
            expires_at=record.expires_at,
            user=UserOut.of(user),
        )

    # Never stored for replay: the response holds the new token, which is kept only hashed. A retried
    # sign-in simply issues another token.
    return await api.write(issue, lambda token: token, status=201, auth=False, idempotent=False)


@router.delete(
    "/tokens/current",
    status_code=204,
    summary="Sign out (revoke this token)",
    responses=error_responses(401, 409, 422, write=True),
)
async def sign_out(api: ApiDep) -> Response:
    """Revoke the token the request is sent with; any later use of it is 401."""
    token = api.token or ""
    return await api.write(lambda ctx: auth.revoke_token(ctx, token), None, status=204)


@router.get(
    "/tokens",
    response_model=ListOf[TokenInfo],
    summary="List my tokens and sessions",
    responses=error_responses(401),
)
def list_tokens(api: ApiDep) -> Response:
    """The caller's live API tokens and web sessions, newest first, with their labels and expiry; never
    their secrets. `current` marks the token the request was sent with."""
    return api.read(
        lambda ctx: auth.list_tokens(ctx, api.token),
        lambda listed: ListOf[TokenInfo](
            data=[TokenInfo.of(view) for view in listed[0]], has_more=listed[1]
        ),
    )


# Declared after /tokens/current, which is the caller's own token rather than an id.
@router.delete(
    "/tokens/{token_id}",
    status_code=204,
    summary="Revoke one of my tokens",
    responses=error_responses(401, 404, 409, 422, write=True),
)
async def revoke_token(token_id: str, api: ApiDep) -> Response:
    """Revoke one of the caller's tokens or web sessions (signing that device out); another user's id is
    404."""
    return await api.write(lambda ctx: auth.revoke_token_by_id(ctx, token_id), None, status=204)


@router.get("/me", response_model=UserOut, summary="Who am I", responses=error_responses(401))
def me(api: ApiDep) -> Response:
    """The signed-in user: id, e-mail, name, whether staff, time zone."""
    return api.read(lambda ctx: ctx.require_actor(), UserOut.of)


@router.patch(
    "/me",
    response_model=UserOut,
    summary="Change my settings",
    responses=error_responses(400, 401, 409, 413, 422, write=True),
)
async def update_me(body: MeUpdate, api: ApiDep) -> Response:
    """Change the signed-in user's own settings (today: the time zone, an IANA name; an unknown one is
    422)."""
    return await api.write(
        lambda ctx: service.set_time_zone(ctx.session, ctx.require_actor(), body.time_zone),
        UserOut.of,
    )

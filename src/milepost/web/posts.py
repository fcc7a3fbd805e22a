"""The one shape of every form's POST: check the form's CSRF token, make one service call from the typed
fields in one unit of work (``Web.act``), redirect when it is taken, and when the service refuses, render
the page again with the message by the form.

A page module declares its forms as a table of ``Post`` rows and registers them with ``register``. Each
row's endpoint is built with a real signature (its path parameters, its form fields and ``csrf_token``),
so FastAPI parses the form as for a hand-written endpoint, and the pages router's control-character check
runs before it as before every route. A form that carries files (``uploads``: the file input's name) has
them staged into storage before its unit of work, once its CSRF token and its user are known, and its call
gets them as ``uploads``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import Response

from milepost.kit.context import Context
from milepost.kit.errors import MilepostError, NotFound
from milepost.web.common import FormList, FormText
from milepost.web.confirm import FIELD, Confirm, Statement
from milepost.web.session import SignedOut, Web, WebDep
from milepost.web.uploads import Upload, stage_all

FormFiles = Annotated[list[UploadFile] | None, File()]

_PATH_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Posted:
    """What one form sent, for re-rendering its page when the service refuses it."""

    form: str  # the form's name on the page: where the refusal's message goes
    params: Mapping[str, str]  # the path's parameters
    typed: Mapping[str, Any]  # the form's fields as typed (a list for a list field)
    places: tuple[str, ...]  # the fields a message may stand by (else it is the form's as a whole)


Refusal = Callable[[Web, Posted, MilepostError], Response]


@dataclass(frozen=True)
class Post:
    """One form: where it posts, what it sends, the service call it makes, and what follows.

    ``call(ctx, *path parameters, **fields)`` runs in the unit of work. ``done`` is where the browser goes
    once it is taken: a path naming path parameters in braces, or a function of the call's result.
    ``refused`` renders the page again when the service refuses. ``form`` is the form's name on the page,
    naming path parameters in braces where every row of a list has its own form ("reject-{deposit_id}").
    """

    path: str
    call: Callable[..., object]
    done: str | Callable[[Any], str]
    refused: Refusal
    form: str = ""
    fields: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()  # fields sent once per row (a proposal's milestone titles)
    places: tuple[str, ...] | None = None  # where a message may stand; by default, by ``fields``
    hidden: tuple[type[Exception], ...] = (NotFound,)  # answered with the 404 page
    # Irreversible: the form is first answered with what it would do, to confirm (``web.confirm``).
    confirm: Confirm | None = None
    uploads: str | None = None  # the name of the form's file input, if it has one

    @property
    def params(self) -> list[str]:
        return _PATH_PARAMETER.findall(self.path)


def register(router: APIRouter, posts: Iterable[Post]) -> None:
    for post in posts:
        router.add_api_route(post.path, endpoint(post), methods=["POST"])


def endpoint(post: Post) -> Callable[..., Response]:
    """The endpoint of one form, with the signature FastAPI reads its parameters from."""

    def handle(web: Web, csrf_token: str = "", confirmed: str = "", **sent: Any) -> Response:
        path = {name: sent.pop(name) for name in post.params}
        sent_files = sent.pop(post.uploads) if post.uploads else None
        posted = Posted(
            form=post.form.format(**path),
            params=path,
            typed=sent,
            places=post.fields if post.places is None else post.places,
        )
        uploads: list[Upload] = []
        if post.uploads:
            staged = _stage(web, post, posted, csrf_token, sent_files)
            if isinstance(staged, Response):
                return staged
            uploads = staged

        def done(result: object) -> str:
            return post.done.format(**path) if isinstance(post.done, str) else post.done(result)

        def call(ctx: Context) -> object:
            if post.uploads:
                return post.call(ctx, *path.values(), uploads=uploads, **sent)
            return post.call(ctx, *path.values(), **sent)

        action: Callable[[Context], Any] = call
        rehearsed: Callable[[Statement], Response] | None = None
        if post.confirm is not None and not confirmed:
            # First only rehearsed: what the call did is said on the confirmation page.
            action = post.confirm.saying(call)

            def rehearsed(statement: Statement) -> Response:
                return _confirmation_page(web, statement, done(None), sent)

        elif post.confirm is not None:
            action = post.confirm.held_to(call, confirmed)

        return web.act(
            csrf_token,
            action,
            done=done,
            refused=lambda error: post.refused(web, posted, error),
            hidden=post.hidden,
            rehearsed=rehearsed,
            typed=sent,
        )

    handle.__signature__ = _signature(post)  # type: ignore[attr-defined]
    handle.__name__ = getattr(post.call, "__name__", "post")
    return handle


def _stage(
    web: Web, post: Post, posted: Posted, csrf_token: str, sent: list[UploadFile] | None
) -> list[Upload] | Response:
    """The form's files, staged into storage once its token is right and its user signed in (nothing
    is written for a forged or signed-out post); or the answer when they are not, or refused."""
    if not web.csrf_ok(csrf_token, signed_in=True):
        return web.forbidden(posted.typed)
    try:
        web.read(lambda ctx: ctx.require_actor())
        return stage_all(web.settings, sent)
    except SignedOut:
        return web.to_login()
    except MilepostError as error:
        return post.refused(web, posted, error)


def _signature(post: Post) -> inspect.Signature:
    """The endpoint's parameters, as FastAPI reads them: the path's, the form's fields, its token."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    return inspect.Signature(
        [
            inspect.Parameter("web", keyword, annotation=WebDep),
            *(inspect.Parameter(name, keyword, annotation=str) for name in post.params),
            *(
                inspect.Parameter(name, keyword, annotation=FormText, default="")
                for name in post.fields
            ),
            *(
                inspect.Parameter(name, keyword, annotation=FormList, default=[])
                for name in post.lists
            ),
            inspect.Parameter("csrf_token", keyword, annotation=FormText, default=""),
            *(
                [inspect.Parameter(FIELD, keyword, annotation=FormText, default="")]
                if post.confirm is not None
                else []
            ),
            *(
                [inspect.Parameter(post.uploads, keyword, annotation=FormFiles, default=None)]
                if post.uploads
                else []
            ),
        ],
        return_annotation=Response,
    )


def _confirmation_page(
    web: Web, statement: Statement, back: str, sent: Mapping[str, Any]
) -> Response:
    """What the form would do, with a form that sends the same fields again to do it, and a way back
    that changes nothing."""
    fields = [
        (name, value)
        for name, typed in sent.items()
        for value in (typed if isinstance(typed, list) else [typed])
    ]
    return web.render(
        "confirm.html",
        statement=statement,
        action=web.request.url.path,
        back=back,
        fields=fields,
        confirm_field=FIELD,
    )

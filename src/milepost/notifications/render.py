"""Notification text from Jinja2 templates: one template per kind (``templates/<kind>.txt``, with a
``title`` and a ``body`` block), a generic one for any other kind, and the e-mail wrappers.

The kind templates produce plain text (shown in the app and in the text part of the e-mail); the HTML part
of the e-mail is made from that text by ``email.html``, with autoescaping on. Money goes through the
``money`` filter, which formats minor units for the currency with Babel (``200000|money('USD')`` ->
``$2,000.00``; without an argument the context's ``currency``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import (
    ChainableUndefined,
    Environment,
    PackageLoader,
    Template,
    TemplateError,
    TemplateNotFound,
    pass_context,
)
from jinja2.runtime import Context as TemplateContext

from milepost.kit.time import local_day, local_time
from milepost.money import format_money

log = logging.getLogger("milepost.notifications")

GENERIC = "generic"


@dataclass(frozen=True)
class Message:
    title: str
    body: str


@pass_context
def _money(context: TemplateContext, value: object, currency: str | None = None) -> str:
    code = currency or context.get("currency")
    if isinstance(value, bool) or not isinstance(value, int) or not isinstance(code, str):
        return "" if value is None else str(value)
    try:
        return format_money(value, code)
    except Exception:  # an unknown currency must not stop a notification
        return f"{value} {code} (minor units)"


@pass_context
def _when(context: TemplateContext, moment: datetime | str | None) -> str:
    """An instant on the recipient's clock (``time_zone``: theirs; UTC for an address with no account)."""
    return local_time(moment, context.get("time_zone"))


@pass_context
def _day(context: TemplateContext, moment: datetime | None) -> str:
    return local_day(moment, context.get("time_zone"))


def _plural(count: object, singular: str, plural: str | None = None) -> str:
    word = singular if count == 1 else (plural or singular + "s")
    return f"{count} {word}"


@cache
def _environment(*, html: bool) -> Environment:
    environment = Environment(
        loader=PackageLoader("milepost.notifications", "templates"),
        autoescape=html,
        undefined=ChainableUndefined,  # a missing field renders as nothing, never raises
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        # Templates are package files, fixed while the process runs: not checked on disk (a stat
        # each) at every notification.
        auto_reload=False,
    )
    environment.filters["money"] = _money
    environment.filters["plural"] = _plural
    environment.filters["when"] = _when
    environment.filters["day"] = _day
    return environment


def _template(kind: str) -> Template:
    environment = _environment(html=False)
    if kind.replace("_", "").isalnum():
        try:
            return environment.get_template(f"{kind}.txt")
        except TemplateNotFound:
            pass
    return environment.get_template(f"{GENERIC}.txt")


def _block(template: Template, name: str, values: dict[str, Any]) -> str:
    render = template.blocks[name]
    return "".join(render(template.new_context(values))).strip()


def _squash(text: str) -> str:
    """Blank-line separated paragraphs, each on one line: templates may wrap their source lines."""
    paragraphs = [" ".join(part.split()) for part in text.split("\n\n")]
    return "\n\n".join(part for part in paragraphs if part)


def render_message(kind: str, values: dict[str, Any]) -> Message:
    """The title and body of a notification of ``kind``. A template that fails to render is logged and
    replaced by the generic one: a notification must never stop the change it reports."""
    template = _template(kind)
    try:
        title = " ".join(_block(template, "title", values).split())
        body = _squash(_block(template, "body", values))
    except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError):
        if template.name == f"{GENERIC}.txt":
            raise
        log.exception(
            "notification template failed; using the generic one", extra={"fields": {"kind": kind}}
        )
        return render_message(GENERIC, values)
    return Message(title=title[:300], body=body)


def render_email(message: Message, values: dict[str, Any]) -> tuple[str, str]:
    """(text, html) bodies of an e-mail carrying ``message``."""
    context = {**values, "title": message.title, "paragraphs": message.body.split("\n\n")}
    text = _environment(html=False).get_template("email.txt").render(context)
    html = _environment(html=True).get_template("email.html").render(context)
    return text.strip() + "\n", html

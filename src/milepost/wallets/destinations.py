"""Payout destinations: the bank accounts a user can be paid to by a ``manual`` payout.

Either an IBAN (checked with ``schwifty``: country, length, checksum and national format), with an
optional BIC, or a local account number with its routing number (ABA, sort code, ...). Every destination
names the account holder. The owner only ever sees a destination masked (``DE89 •••• •••• 3000``): the full
number is for staff, who send the money (the pending-payout views).
"""

from __future__ import annotations

import re
from typing import Any

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy import select

from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.errors import NotFound, ValidationFailed
from milepost.kit.ids import new_id
from milepost.kit.pagination import Page, paginate
from milepost.wallets.models import DestinationKind, PayoutDestination

MASK = "••••"
_SEPARATORS = re.compile(r"[\s\-./]")
_ACCOUNT_NUMBER = re.compile(r"^[0-9A-Z]{4,34}$")
_ROUTING_NUMBER = re.compile(r"^[0-9A-Z]{3,20}$")


def _compact(value: str) -> str:
    return _SEPARATORS.sub("", value).upper()


def _detail(error: Exception) -> str:
    """schwifty's reason ("Invalid checksum digits") to go inside a sentence."""
    text = str(error).rstrip(".")
    return text[:1].lower() + text[1:]


def _iban(value: Any) -> str:
    raw = validate.text(value, "iban", max_length=60)
    try:
        return str(IBAN(raw).compact)
    except SchwiftyException as error:
        raise ValidationFailed(
            f"That is not a valid IBAN ({_detail(error)}); check it against your bank's statement.",
            code="invalid_iban",
            param="iban",
        ) from None


def _bic(value: Any) -> str | None:
    raw = validate.text(value, "bic", max_length=20, required=False)
    if not raw:
        return None
    try:
        return str(BIC(_compact(raw)).compact)
    except SchwiftyException as error:
        raise ValidationFailed(
            f"That is not a valid BIC ({_detail(error)}).",
            code="invalid_bic",
            param="bic",
        ) from None


def _digits(value: Any, param: str, pattern: re.Pattern[str], what: str) -> str:
    compact = _compact(validate.text(value, param, max_length=60))
    if not pattern.match(compact):
        raise ValidationFailed(what, param=param)
    return compact


def add_destination(
    ctx: Context,
    *,
    holder_name: object,
    label: object = None,
    iban: object = None,
    bic: object = None,
    account_number: object = None,
    routing_number: object = None,
) -> PayoutDestination:
    """Keep a bank account for ``ctx``'s user: an IBAN (with an optional BIC), or an account number and a
    routing number; never both kinds in one."""
    user = ctx.require_actor()
    holder = validate.text(holder_name, "holder_name", max_length=200)
    name = validate.text(label, "label", max_length=100, required=False)
    has_iban = iban not in (None, "")
    has_local = account_number not in (None, "") or routing_number not in (None, "")
    if has_iban and has_local:
        raise ValidationFailed(
            "Give either an IBAN or an account number with its routing number, not both.",
            param="iban",
        )
    destination = PayoutDestination(
        id=new_id("pdst"), user_id=user.id, holder_name=holder, created_at=ctx.now
    )
    if has_iban:
        destination.kind = DestinationKind.IBAN
        destination.iban = _iban(iban)
        destination.bic = _bic(bic)
    elif has_local:
        if bic not in (None, ""):
            raise ValidationFailed("A BIC goes with an IBAN.", param="bic")
        destination.kind = DestinationKind.LOCAL
        destination.account_number = _digits(
            account_number,
            "account_number",
            _ACCOUNT_NUMBER,
            "The account number must be 4 to 34 letters or digits.",
        )
        destination.routing_number = _digits(
            routing_number,
            "routing_number",
            _ROUTING_NUMBER,
            "The routing number (ABA, sort code, ...) must be 3 to 20 letters or digits.",
        )
    else:
        raise ValidationFailed(
            "Give an IBAN, or an account number with its routing number.",
            code="missing",
            param="iban",
        )
    destination.label = name or default_label(destination)
    ctx.session.add(destination)
    ctx.session.flush()
    return destination


def default_label(destination: PayoutDestination) -> str:
    return f"Bank account {masked(destination)}"


def list_destinations(
    ctx: Context, *, limit: int = 20, starting_after: str | None = None
) -> Page[PayoutDestination]:
    """The caller's destinations (not the removed ones), newest first."""
    query = select(PayoutDestination).where(
        PayoutDestination.user_id == ctx.require_actor().id,
        PayoutDestination.removed_at.is_(None),
    )
    return paginate(
        ctx.session, query, PayoutDestination.id, limit=limit, starting_after=starting_after
    )


def own_destination(
    ctx: Context, destination_id: object, *, param: str = "id"
) -> PayoutDestination:
    """The caller's destination, not removed; anyone else's does not exist (NotFound)."""
    destination = (
        ctx.session.scalar(
            select(PayoutDestination).where(
                PayoutDestination.id == destination_id,
                PayoutDestination.user_id == ctx.require_actor().id,
                PayoutDestination.removed_at.is_(None),
            )
        )
        if isinstance(destination_id, str)
        else None
    )
    if destination is None:
        raise NotFound("No such payout destination.", param=param)
    return destination


def remove_destination(ctx: Context, destination_id: str) -> PayoutDestination:
    """Stop offering a destination for new payouts. A pending payout to it is still sent there."""
    destination = own_destination(ctx, destination_id)
    destination.removed_at = ctx.now
    return destination


def masked(destination: PayoutDestination) -> str:
    """What the owner sees: the country and check digits of an IBAN and the last four characters."""
    if destination.kind is DestinationKind.IBAN and destination.iban:
        return f"{destination.iban[:4]} {MASK} {MASK} {destination.iban[-4:]}"
    return f"{MASK} {(destination.account_number or '')[-4:]}"


def formatted_iban(destination: PayoutDestination) -> str | None:
    """The full IBAN in groups of four, as banks print it (for staff)."""
    if destination.iban is None:
        return None
    return " ".join(destination.iban[i : i + 4] for i in range(0, len(destination.iban), 4))

"""A receipt as an HTML page (Jinja2) and as a PDF (fpdf2, pure Python), with money in the currency's
format."""

from __future__ import annotations

import unicodedata
from functools import cache

from fpdf import FPDF
from jinja2 import Environment, PackageLoader, select_autoescape

from milepost.money import format_money, to_decimal
from milepost.receipts.service import Receipt

_KIND_TITLES = {
    "release": "Release of a milestone payment",
    "dispute_split": "Dispute settlement",
}


def title(receipt: Receipt) -> str:
    if receipt.entry_kind == "release" and receipt.partial:
        return "Partial release of a milestone payment"
    return _KIND_TITLES.get(receipt.entry_kind, "Payment")


def released_by(receipt: Receipt) -> str:
    if receipt.released_by_role == "system":
        return "Milepost, automatically (review period or release delay lapsed)"
    return f"{receipt.released_by_name} ({receipt.released_by_role})"


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("milepost.receipts", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    environment.filters["money"] = format_money
    return environment


def to_html(receipt: Receipt) -> str:
    template = _environment().get_template("receipt.html")
    return template.render(r=receipt, title=title(receipt), released_by=released_by(receipt))


# PDF -----------------------------------------------------------------------------------------------------

# fpdf2's built-in fonts cover Latin-1 only (a Unicode TTF font would have to be shipped with the package).


def _latin1(text: str) -> str:
    """``text`` in Latin-1: accents kept where Latin-1 has them, else dropped; anything else as '?'."""
    try:
        text.encode("latin-1")
        return text
    except UnicodeEncodeError:
        pass
    out = []
    for char in text:
        try:
            char.encode("latin-1")
            out.append(char)
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", char).encode("latin-1", "ignore").decode("latin-1")
            out.append(base or "?")
    return "".join(out)


def pdf_money(amount: int, currency: str) -> str:
    """The currency's format where Latin-1 can show it ($1,000.00), else the amount and the code
    (1,000.00 EUR)."""
    formatted = format_money(amount, currency)
    try:
        formatted.encode("latin-1")
        return formatted
    except UnicodeEncodeError:
        return f"{to_decimal(amount, currency):,} {currency}"


def to_pdf(receipt: Receipt, *, compress: bool = True) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_compression(compress)
    pdf.set_creation_date(receipt.created_at)  # the same receipt is the same file
    pdf.set_title(_latin1(f"Receipt {receipt.entry_id}"))
    pdf.set_author("Milepost")
    pdf.set_margins(18, 18, 18)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(width, 10, "Receipt", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.set_text_color(100)
    when = receipt.created_at.strftime("%Y-%m-%d %H:%M UTC")
    pdf.cell(width, 6, _latin1(f"{title(receipt)} - {when}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0)
    pdf.ln(4)

    label_width = 48

    def row(label: str, value: str, *, mono: bool = False, bold: bool = False) -> None:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(label_width, 7, label)
        pdf.set_font("Courier" if mono else "Helvetica", "B" if bold else "", 9 if mono else 10)
        pdf.multi_cell(width - label_width, 7, _latin1(value), new_x="LMARGIN", new_y="NEXT")

    def rule() -> None:
        pdf.ln(2)
        y = pdf.get_y()
        pdf.set_draw_color(200)
        pdf.line(pdf.l_margin, y, pdf.l_margin + width, y)
        pdf.ln(3)

    row("Project", f"{receipt.project_title} ({receipt.project_id})")
    row("Milestone", f"{receipt.milestone_title} ({receipt.milestone_id})")
    row("Client", f"{receipt.client.name} <{receipt.client.email}>")
    row("Freelancer", f"{receipt.freelancer.name} <{receipt.freelancer.email}>")
    row("Released by", released_by(receipt))
    rule()
    currency = receipt.currency
    row("Amount released", pdf_money(receipt.amount_released, currency))
    row("Platform fee", pdf_money(receipt.platform_fee, currency))
    row("Net to freelancer", pdf_money(receipt.net_to_freelancer, currency), bold=True)
    if receipt.refunded_to_client:
        row("Returned to client", pdf_money(receipt.refunded_to_client, currency))
    row("Currency", currency)
    rule()
    row("Journal entry", receipt.entry_id, mono=True)
    row("Entry hash", receipt.entry_hash, mono=True)
    row("Audit event", receipt.event_id or "-", mono=True)
    row("Event hash", receipt.event_hash or "-", mono=True)
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 8)
    pdf.set_text_color(100)
    pdf.multi_cell(
        width,
        4,
        "Amounts released are gross; the platform fee is taken from the freelancer's side. "
        "The hashes can be checked with 'milepost ledger verify'.",
    )
    return bytes(pdf.output())

"""A stand-in for Stripe's API on loopback: the few endpoints Milepost calls, spoken as Stripe speaks
them (form-encoded requests with bracketed keys, bearer secret keys, idempotency keys, JSON objects and
errors), and signed events made with the ``stripe`` library's own signing code.

Stripe is outside this system, so a scripted stand-in is the honest test double: the adapter under test
is the real ``stripe`` library talking real HTTP. The stand-in does not send events by itself; a test
asks for one (``paid``, ``expired``, ...) and posts it where Stripe would, so that it can also deliver
one twice, late, or not at all.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx
import stripe

SECRET_KEY = "sk_test_milepost_standin"
WEBHOOK_SECRET = "whsec_milepost_standin_secret"
# A Connect endpoint has a signing secret of its own.
CONNECT_WEBHOOK_SECRET = "whsec_milepost_standin_connect"


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``line_items[0][price_data][currency]=usd``) back into objects; lists
    come back as dicts keyed by index, which is all the stand-in needs."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


@dataclass
class StandIn:
    base_url: str = ""
    down: bool = False  # answer every request with Stripe's 500 api_error
    delay: float = 0.0  # seconds to wait before answering each request (a slow Stripe)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    disputes: dict[str, dict[str, Any]] = field(default_factory=dict)
    refuse_transfers: str | None = (
        None  # Stripe's message refusing every transfer (an invalid request)
    )
    requests: list[tuple[str, str, dict[str, Any], str | None]] = field(default_factory=list)
    _replies: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # The API ----------------------------------------------------------------------------------------

    def answer(
        self, method: str, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Any]:
        if self.down:
            return 500, _error("api_error", "An unknown error occurred (stand-in outage).")
        if headers.get("authorization") != f"Bearer {SECRET_KEY}":
            return 401, _error("invalid_request_error", "Invalid API Key provided.")
        if method == "POST" and path == "/v1/checkout/sessions":
            return 200, self._create_session(body)
        if method == "GET" and path.startswith("/v1/checkout/sessions/"):
            session = self.sessions.get(path.rsplit("/", 1)[1])
            return (
                (200, session)
                if session
                else (404, _error("invalid_request_error", "No such session"))
            )
        if method == "POST" and path == "/v1/accounts":
            return 200, self._create_account(body)
        if method == "POST" and path == "/v1/account_links":
            if body.get("account") not in self.accounts:
                raise _Refusal("invalid_request_error", "No such account.", "account")
            return 200, {
                "object": "account_link",
                "url": f"{self.base_url}/onboard/{body['account']}",
                "expires_at": int(time.time()) + 300,
            }
        if method == "POST" and path == "/v1/transfers":
            return 200, self._create_transfer(body)
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method} {path}).")

    def _create_account(self, body: dict[str, Any]) -> dict[str, Any]:
        account_id = f"acct_test_{next(self._ids):06d}"
        account = {
            "id": account_id,
            "object": "account",
            "type": body["type"],
            "email": body.get("email"),
            "metadata": body.get("metadata", {}),
            "payouts_enabled": False,
            "charges_enabled": False,
            "details_submitted": False,
        }
        self.accounts[account_id] = account
        return account

    def _create_transfer(self, body: dict[str, Any]) -> dict[str, Any]:
        account = self.accounts.get(body["destination"])
        if account is None:
            raise _Refusal("invalid_request_error", "No such destination account.", "destination")
        if self.refuse_transfers is not None:
            raise _Refusal("invalid_request_error", self.refuse_transfers, None)
        if not account["payouts_enabled"]:
            raise _Refusal(
                "invalid_request_error",
                "Your destination account needs to have at least one of the following capabilities "
                "enabled: transfers, crypto_transfers, legacy_payments",
                "destination",
            )
        transfer_id = f"tr_test_{next(self._ids):06d}"
        transfer = {
            "id": transfer_id,
            "object": "transfer",
            "amount": int(body["amount"]),
            "currency": body["currency"],
            "destination": body["destination"],
            "transfer_group": body.get("transfer_group"),
            "metadata": body.get("metadata", {}),
            "reversed": False,
        }
        self.transfers[transfer_id] = transfer
        return transfer

    def _create_session(self, body: dict[str, Any]) -> dict[str, Any]:
        line = body["line_items"]["0"]
        price = line["price_data"]
        if price["currency"] not in {"usd", "eur", "gbp", "jpy", "kwd", "isk", "idr", "twd"}:
            raise _Refusal(
                "invalid_request_error", f"Invalid currency: {price['currency']}.", "currency"
            )
        session_id = f"cs_test_{next(self._ids):06d}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": body["mode"],
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": int(price["unit_amount"]) * int(line["quantity"]),
            "currency": price["currency"],
            "client_reference_id": body.get("client_reference_id"),
            "metadata": body.get("metadata", {}),
            "payment_intent": None,
            "success_url": body["success_url"],
            "url": f"{self.base_url}/pay/{session_id}",
            "livemode": False,
        }
        self.sessions[session_id] = session
        return session

    # Events -----------------------------------------------------------------------------------------

    def event(
        self,
        kind: str,
        data: dict[str, Any],
        *,
        created: int | None = None,
        account: str | None = None,
    ) -> bytes:
        body: dict[str, Any] = {
            "id": f"evt_test_{next(self._ids):06d}",
            "object": "event",
            "api_version": "2025-01-27.acacia",
            "created": created or int(time.time()),
            "type": kind,
            "livemode": False,
            "pending_webhooks": 1,
            "data": {"object": data},
        }
        if account is not None:  # an event about a connected account (sent to a Connect endpoint)
            body["account"] = account
        return json.dumps(body).encode()

    def paid(self, session_id: str, *, kind: str = "checkout.session.completed") -> bytes:
        session = self.sessions[session_id]
        session.update(status="complete", payment_status="paid", payment_intent=f"pi_{session_id}")
        return self.event(kind, dict(session))

    def completed_unpaid(self, session_id: str) -> bytes:
        """A delayed method (a bank debit): the session completes, the money is not there yet."""
        session = self.sessions[session_id]
        session.update(
            status="complete", payment_status="unpaid", payment_intent=f"pi_{session_id}"
        )
        return self.event("checkout.session.completed", dict(session))

    def expired(self, session_id: str) -> bytes:
        session = self.sessions[session_id]
        session.update(status="expired", url=None)
        return self.event("checkout.session.expired", dict(session))

    def declined(self, session_id: str) -> bytes:
        """The card was declined on the payment page: Stripe says so about the PaymentIntent."""
        intent = {
            "id": f"pi_{session_id}",
            "object": "payment_intent",
            "status": "requires_payment_method",
            "metadata": self.sessions[session_id]["metadata"],
            "last_payment_error": {"code": "card_declined", "decline_code": "generic_decline"},
        }
        return self.event("payment_intent.payment_failed", intent)

    def disputed(
        self, session_id: str, *, amount: int | None = None, reason: str = "fraudulent"
    ) -> bytes:
        """The cardholder disputed the payment with their bank: Stripe takes the money back at once."""
        session = self.sessions[session_id]
        dispute = {
            "id": f"dp_test_{next(self._ids):06d}",
            "object": "dispute",
            "amount": session["amount_total"] if amount is None else amount,
            "currency": session["currency"],
            "charge": f"ch_{session_id}",
            "payment_intent": session["payment_intent"],
            "reason": reason,
            "status": "needs_response",
        }
        self.disputes[dispute["id"]] = dispute
        return self.event("charge.dispute.created", dispute)

    def dispute_closed(self, dispute_id: str, *, status: str = "won") -> bytes:
        """The card network decided the dispute: ``won`` gives the platform its money back."""
        dispute = self.disputes[dispute_id]
        dispute.update(status=status)
        return self.event("charge.dispute.closed", dict(dispute))

    def onboarded(self, account_id: str) -> bytes:
        """The freelancer finished Stripe's pages: the account can be paid (a Connect event)."""
        account = self.accounts[account_id]
        account.update(payouts_enabled=True, charges_enabled=True, details_submitted=True)
        return self.event("account.updated", dict(account), account=account_id)

    @staticmethod
    def signature(body: bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
        """Stripe-Signature as Stripe makes it, by the library's own code."""
        return str(stripe.WebhookSignature.generate_signature_header(body.decode(), secret, at))

    @staticmethod
    def deliver(
        milepost_url: str,
        body: bytes,
        signature: str | None = None,
        *,
        secret: str = WEBHOOK_SECRET,
    ) -> httpx.Response:
        """Post an event to Milepost's webhook endpoint, as Stripe would (signed unless told)."""
        header = StandIn.signature(body, secret=secret) if signature is None else signature
        return httpx.post(
            f"{milepost_url}/v1/providers/stripe/events",
            content=body,
            headers={"Stripe-Signature": header, "Content-Type": "application/json; charset=utf-8"},
            timeout=30,
        )


class _Refusal(Exception):
    def __init__(self, kind: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.body = _error(kind, message, param)


def _error(kind: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "param": param}}


@contextmanager
def running() -> Iterator[StandIn]:
    """The stand-in on a free loopback port, for the length of the block."""
    standin = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            body = unflatten(parse_qsl(raw, keep_blank_values=True))
            headers = {name.lower(): value for name, value in self.headers.items()}
            key = headers.get("idempotency-key")
            time.sleep(standin.delay)
            with standin._lock:
                standin.requests.append((method, self.path, body, key))
                if key is not None and key in standin._replies and not standin.down:
                    status, payload = standin._replies[key]
                else:
                    try:
                        status, answer = standin.answer(method, self.path, body, headers)
                    except _Refusal as refusal:
                        status, answer = 400, refusal.body
                    payload = json.dumps(answer).encode()
                    if key is not None and status < 500:
                        standin._replies[key] = (status, payload)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", f"req_{len(standin.requests)}")
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._reply("GET")

        def do_POST(self) -> None:
            self._reply("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    standin.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()

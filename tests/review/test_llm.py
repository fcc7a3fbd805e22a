"""The LLM reviewer against a real HTTP server on 127.0.0.1 that speaks the chat-completions protocol.

The server records every request and answers from a script the test sets: a JSON body (or raw text), a
status, a delay before answering, or a body trickled out slowly.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from milepost.review import llm
from milepost.review.llm import (
    PROMPT_CHARS,
    TEXT_CHARS,
    LlmItem,
    LlmReviewer,
    LlmVerdict,
    reviewer_from_settings,
)
from milepost.settings import Settings

KEY = "sk-test-0123456789"


@dataclass
class Reply:
    body: Any = None  # a dict or list is sent as JSON, a str as it is
    status: int = 200
    delay: float = 0.0  # seconds before the status line
    trickle: float = 0.0  # seconds between the body's bytes (after the headers)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def user(self) -> dict[str, Any]:
        """The user message, which lists the criteria and the evidence (as JSON)."""
        content = self.body["messages"][1]["content"]
        parsed: dict[str, Any] = json.loads(content)
        return parsed


@dataclass
class FakeLlm:
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    replies: deque[Reply] = field(default_factory=deque)

    def answer(self, *replies: Reply) -> None:
        self.replies.extend(replies)


def completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }


def answer(*entries: dict[str, Any]) -> Reply:
    return Reply(completion(json.dumps({"criteria": list(entries)})))


def entry(
    index: int, verdict: str, refs: list[str], quote: str = "", reason: str = ""
) -> dict[str, Any]:
    return {"index": index, "verdict": verdict, "refs": refs, "quote": quote, "reason": reason}


def _handler(fake: FakeLlm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            fake.requests.append(
                Request(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(data)
                )
            )
            reply = fake.replies.popleft() if fake.replies else Reply(status=503)
            body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            payload = body.encode()
            time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if reply.trickle:
                    for byte in payload:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(reply.trickle)
                else:
                    self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, as it should

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[FakeLlm]:
    fake = FakeLlm()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield fake
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    llm.answers.clear()
    yield
    llm.answers.clear()


CRITERIA = [
    "All 48,000 customer records imported into the new CRM",
    "An administrator guide is delivered as a PDF",
    "Two training sessions held for the support team",
]
ITEMS = [
    LlmItem("note", "note", "Import finished; the admin guide is attached. Training is next week."),
    LlmItem(
        "evidence[0]", "text", "Imported 48,000 of 48,000 customer records, verified by checksum."
    ),
    LlmItem("evidence[1]", "file", "CRM Administrator Guide v1 pdf"),
]


def reviewer(fake: FakeLlm, key: str | None = KEY, timeout: float = 5.0) -> LlmReviewer:
    return LlmReviewer(fake.url, "test-model", key, timeout)


def test_a_good_answer_gives_each_criterion_its_verdict(server: FakeLlm) -> None:
    server.answer(
        answer(
            entry(
                0, "met", ["evidence[0]"], "Imported 48,000 of 48,000 customer records", "All in."
            ),
            entry(1, "met", ["evidence[1]"], "CRM Administrator Guide v1 pdf", "The PDF is there."),
            entry(2, "unmet", [], "", "Training has not happened yet."),
        )
    )

    verdicts = reviewer(server).review(CRITERIA, ITEMS)

    assert verdicts == [
        LlmVerdict(
            "met", ("evidence[0]",), "Imported 48,000 of 48,000 customer records", "All in."
        ),
        LlmVerdict("met", ("evidence[1]",), "CRM Administrator Guide v1 pdf", "The PDF is there."),
        LlmVerdict("unmet", (), "", "Training has not happened yet."),
    ]


def test_the_request_carries_the_model_key_and_what_is_reviewed(server: FakeLlm) -> None:
    server.answer(answer(entry(0, "unmet", []), entry(1, "unmet", []), entry(2, "unmet", [])))

    LlmReviewer(server.url + "/", "test-model", KEY, 5.0).review(CRITERIA, ITEMS)

    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == "test-model"
    assert request.body["temperature"] == 0
    assert request.body["response_format"] == {"type": "json_object"}
    system, user = request.body["messages"]
    assert (system["role"], user["role"]) == ("system", "user")
    assert "unclear" in system["content"] and "refs" in system["content"]
    assert request.user["criteria"] == [
        {"index": index, "text": text} for index, text in enumerate(CRITERIA)
    ]
    assert request.user["evidence"] == [
        {"ref": item.ref, "kind": item.kind, "text": item.text} for item in ITEMS
    ]


def test_without_a_key_no_authorization_is_sent(server: FakeLlm) -> None:
    server.answer(answer(entry(0, "unmet", []), entry(1, "unmet", []), entry(2, "unmet", [])))

    verdicts = reviewer(server, key=None).review(CRITERIA, ITEMS)

    assert "authorization" not in server.requests[0].headers
    assert [v.verdict if v else None for v in verdicts] == ["unmet", "unmet", "unmet"]


def test_a_hallucinated_ref_makes_only_that_criterion_unusable(server: FakeLlm) -> None:
    server.answer(
        answer(
            entry(0, "met", ["evidence[0]"], "Imported 48,000 of 48,000"),
            entry(1, "met", ["evidence[1]", "evidence[7]"], "CRM Administrator Guide"),
            entry(2, "unclear", ["note"], "Training is next week."),
        )
    )

    verdicts = reviewer(server).review(CRITERIA, ITEMS)

    assert verdicts[1] is None
    assert verdicts[0] == LlmVerdict("met", ("evidence[0]",), "Imported 48,000 of 48,000", "")
    assert verdicts[2] == LlmVerdict("unclear", ("note",), "Training is next week.", "")


def test_met_or_unclear_citing_nothing_is_unusable_but_unmet_may_cite_nothing(
    server: FakeLlm,
) -> None:
    server.answer(answer(entry(0, "met", []), entry(1, "unclear", []), entry(2, "unmet", [])))

    verdicts = reviewer(server).review(CRITERIA, ITEMS)

    assert verdicts[:2] == [None, None]
    assert verdicts[2] == LlmVerdict("unmet", (), "", "")


def test_a_criterion_left_out_or_answered_wrongly_is_unusable(server: FakeLlm) -> None:
    server.answer(
        answer(
            entry(1, "met", ["evidence[1]"]),
            entry(2, "done", ["note"]),  # not one of the three verdicts
            entry(3, "met", ["evidence[0]"]),  # no criterion 3
        )
    )

    verdicts = reviewer(server).review(CRITERIA, ITEMS)

    assert verdicts == [None, LlmVerdict("met", ("evidence[1]",), "", ""), None]


def test_a_criterion_answered_twice_is_unusable(server: FakeLlm) -> None:
    server.answer(
        answer(
            entry(0, "met", ["evidence[0]"]),
            entry(0, "unmet", []),
            entry(1, "met", ["evidence[1]"]),
            entry(2, "unmet", []),
        )
    )

    verdicts = reviewer(server).review(CRITERIA, ITEMS)

    assert verdicts[0] is None
    assert verdicts[1] is not None and verdicts[2] is not None


def test_a_quote_that_is_not_in_the_cited_items_is_dropped(server: FakeLlm) -> None:
    server.answer(
        answer(
            entry(0, "met", ["evidence[0]"], "all records were migrated flawlessly"),
            entry(1, "met", ["evidence[1]"], "crm administrator   GUIDE"),  # case and spaces aside
            entry(2, "unmet", []),
        )
    )

    verdicts = reviewer(server).review(CRITERIA, ITEMS)

    assert verdicts[0] == LlmVerdict("met", ("evidence[0]",), "", "")
    assert verdicts[1] == LlmVerdict("met", ("evidence[1]",), "crm administrator   GUIDE", "")


def test_an_answer_in_a_json_fence_is_read(server: FakeLlm) -> None:
    content = json.dumps({"criteria": [entry(0, "met", ["evidence[0]"]), entry(1, "unmet", [])]})
    server.answer(Reply(completion(f"```json\n{content}\n```\n")))

    verdicts = reviewer(server).review(CRITERIA[:2], ITEMS)

    assert verdicts == [
        LlmVerdict("met", ("evidence[0]",), "", ""),
        LlmVerdict("unmet", (), "", ""),
    ]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(completion("The import is done, the guide too.")),  # not JSON
        Reply(completion(json.dumps({"verdicts": []}))),  # no "criteria"
        Reply(completion(json.dumps({"criteria": "met"}))),  # not a list
        Reply("<html>Bad gateway</html>"),  # not a chat completion
        Reply({"choices": []}),
        Reply({"error": {"message": "model not found"}}, status=404),
        Reply({"error": "boom"}, status=500),
    ],
    ids=["prose", "no-criteria", "criteria-not-a-list", "html", "no-choices", "404", "500"],
)
def test_an_unusable_response_gives_nothing_for_every_criterion(
    server: FakeLlm, reply: Reply
) -> None:
    server.answer(reply)

    assert reviewer(server).review(CRITERIA, ITEMS) == [None, None, None]
    assert len(server.requests) == 1


def test_a_failure_is_logged_without_the_key_or_the_evidence(
    server: FakeLlm, caplog: pytest.LogCaptureFixture
) -> None:
    server.answer(Reply({"error": "boom"}, status=500))

    with caplog.at_level(logging.WARNING, logger="milepost.review.llm"):
        reviewer(server).review(CRITERIA, ITEMS)

    [record] = caplog.records
    message = record.getMessage()
    assert "500" in message
    assert KEY not in message
    assert "checksum" not in message and "Administrator" not in message


def test_a_slow_server_gives_nothing_within_about_the_timeout(server: FakeLlm) -> None:
    server.answer(Reply(completion("{}"), delay=4.0))

    started = time.monotonic()
    verdicts = reviewer(server, timeout=0.3).review(CRITERIA, ITEMS)
    elapsed = time.monotonic() - started

    assert verdicts == [None, None, None]
    assert elapsed < 3.0


def test_a_body_trickled_out_is_abandoned_at_the_timeout(server: FakeLlm) -> None:
    # Every byte comes well within the timeout, but the whole body would take about 20 s.
    content = json.dumps({"criteria": [entry(0, "unmet", []), entry(1, "unmet", [])]})
    server.answer(Reply(completion(content), trickle=0.05))

    started = time.monotonic()
    verdicts = reviewer(server, timeout=0.5).review(CRITERIA[:2], ITEMS)
    elapsed = time.monotonic() - started

    assert verdicts == [None, None]
    assert elapsed < 3.0


def test_the_same_review_is_asked_once(server: FakeLlm) -> None:
    server.answer(
        answer(entry(0, "met", ["evidence[0]"]), entry(1, "unmet", []), entry(2, "unmet", []))
    )
    first = reviewer(server).review(CRITERIA, ITEMS)

    second = reviewer(server).review(CRITERIA, ITEMS)

    assert len(server.requests) == 1
    assert second == first
    assert first[0] == LlmVerdict("met", ("evidence[0]",), "", "")


def test_changed_evidence_is_asked_again(server: FakeLlm) -> None:
    server.answer(
        answer(entry(0, "unmet", []), entry(1, "unmet", []), entry(2, "unmet", [])),
        answer(entry(0, "unmet", []), entry(1, "unmet", []), entry(2, "met", ["evidence[2]"])),
    )
    reviewer(server).review(CRITERIA, ITEMS)

    revised = [*ITEMS, LlmItem("evidence[2]", "text", "Held both training sessions.")]
    verdicts = reviewer(server).review(CRITERIA, revised)

    assert len(server.requests) == 2
    assert verdicts[2] == LlmVerdict("met", ("evidence[2]",), "", "")


def test_after_a_timeout_the_next_view_asks_again(server: FakeLlm) -> None:
    good = answer(entry(0, "met", ["evidence[0]"]), entry(1, "unmet", []), entry(2, "unmet", []))
    server.answer(Reply(completion("{}"), delay=2.0), good)

    assert reviewer(server, timeout=0.3).review(CRITERIA, ITEMS) == [None, None, None]
    verdicts = reviewer(server, timeout=0.3).review(CRITERIA, ITEMS)

    assert len(server.requests) == 2
    assert verdicts[0] == LlmVerdict("met", ("evidence[0]",), "", "")


def test_after_a_server_error_the_next_view_asks_again(server: FakeLlm) -> None:
    good = answer(entry(0, "unmet", []), entry(1, "unmet", []), entry(2, "unmet", []))
    server.answer(Reply({"error": "overloaded"}, status=503), good)

    assert reviewer(server).review(CRITERIA, ITEMS) == [None, None, None]
    verdicts = reviewer(server).review(CRITERIA, ITEMS)

    assert len(server.requests) == 2
    assert [v.verdict if v else None for v in verdicts] == ["unmet", "unmet", "unmet"]


def test_nothing_listening_gives_nothing() -> None:
    closed = LlmReviewer("http://127.0.0.1:9/v1", "test-model", KEY, 2.0)  # the discard port

    assert closed.review(CRITERIA, ITEMS) == [None, None, None]


def test_long_texts_are_cut_and_the_prompt_is_bounded(server: FakeLlm) -> None:
    criteria = [f"criterion {index} " + "word " * 1_000 for index in range(50)]
    items = [
        LlmItem(f"evidence[{index}]", "text", f"item {index} " + 'a "quoted"\nline ' * 2_000)
        for index in range(50)
    ]
    server.answer(answer(*(entry(index, "unmet", []) for index in range(50))))

    verdicts = reviewer(server).review(criteria, items)

    [request] = server.requests
    system, user = (message["content"] for message in request.body["messages"])
    assert len(system) + len(user) <= PROMPT_CHARS
    sent = request.user
    assert [item["ref"] for item in sent["evidence"]] == [item.ref for item in items]
    texts = [c["text"] for c in sent["criteria"]] + [item["text"] for item in sent["evidence"]]
    assert all(0 < len(text) <= TEXT_CHARS for text in texts)
    assert sent["criteria"][7]["text"].startswith("criterion 7 word")
    assert verdicts == [LlmVerdict("unmet", (), "", "")] * 50


def test_a_short_prompt_is_sent_whole(server: FakeLlm) -> None:
    long_item = LlmItem("evidence[0]", "text", "x" * (TEXT_CHARS - 1))
    server.answer(answer(entry(0, "unmet", [])))

    reviewer(server).review(["one criterion"], [long_item])

    assert server.requests[0].user["evidence"][0]["text"] == long_item.text


def test_no_reviewer_unless_a_url_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MILEPOST_REVIEW_LLM_URL", raising=False)

    assert reviewer_from_settings(Settings()) is None
    assert reviewer_from_settings(Settings(review_llm_url="", review_llm_model="m")) is None


def test_the_configured_reviewer_uses_the_settings(server: FakeLlm) -> None:
    settings = Settings(
        review_llm_url=server.url,
        review_llm_model="test-model",
        review_llm_key=SecretStr(KEY),
        review_llm_timeout=5,
    )
    server.answer(answer(entry(0, "met", ["evidence[1]"])))

    configured = reviewer_from_settings(settings)

    assert configured is not None
    assert configured.review([CRITERIA[1]], ITEMS) == [LlmVerdict("met", ("evidence[1]",), "", "")]
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(configured)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"review_llm_url": "ftp://llm.example/v1", "review_llm_model": "m"}, "http(s)"),
        ({"review_llm_url": "127.0.0.1:11434/v1", "review_llm_model": "m"}, "http(s)"),
        ({"review_llm_url": "http://127.0.0.1:11434/v1"}, "MILEPOST_REVIEW_LLM_MODEL"),
        ({"review_llm_timeout": 0}, "greater than 0"),
        ({"review_llm_timeout": 121}, "less than or equal to 120"),
    ],
)
def test_settings_refuse_an_unusable_reviewer(values: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        Settings(**values)

"""Webhook hosts are read at registration the way the resolver will read them: every spelling of a
non-public address (decimal, hex, octal, short, IPv4-mapped, 6to4, NAT64) is refused with 422
``private_address``, a host that is no valid name with 422 ``invalid_url``, and nothing is stored. The same
rule refuses them again at delivery."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from milepost.kit.db import Database
from milepost.kit.errors import ValidationFailed
from milepost.kit.time import utcnow
from milepost.milestones import service as milestones
from milepost.settings import Settings
from milepost.webhooks import service as webhooks
from milepost.webhooks.addresses import address_refusal, named_private_host, parse_host
from milepost.webhooks.delivery import deliver_due
from milepost.webhooks.models import DeliveryStatus, WebhookEndpoint
from tests.api.conftest import assert_error
from tests.webhooks.conftest import Receiver
from tests.webhooks.test_webhooks import deliveries
from tests.world import World

# (url, the address the resolver reads it as)
NUMERIC_PRIVATE_URLS = [
    ("http://2130706433/hook", "127.0.0.1"),
    ("http://0x7f000001/hook", "127.0.0.1"),
    ("http://0X7F000001/hook", "127.0.0.1"),
    ("http://0177.0.0.1/hook", "127.0.0.1"),
    ("http://0177.0000.0000.0001/hook", "127.0.0.1"),
    ("http://127.1/hook", "127.0.0.1"),
    ("http://127.0.1/hook", "127.0.0.1"),
    ("http://0x7f.1/hook", "127.0.0.1"),
    ("http://127.0.0.1./hook", "127.0.0.1"),
    ("http://0/hook", "0.0.0.0"),
    ("http://0x0/hook", "0.0.0.0"),
    ("http://10.1/hook", "10.0.0.1"),
    ("http://167772161/hook", "10.0.0.1"),
    ("http://0xa9fea9fe/latest/meta-data", "169.254.169.254"),
    ("http://025177524776/latest/meta-data", "169.254.169.254"),
    ("http://0xc0.0xa8.0.1/hook", "192.168.0.1"),
    ("http://100.64.0.1/hook", "100.64.0.1"),  # carrier-grade NAT
    ("http://224.0.0.1/hook", "224.0.0.1"),  # multicast
    ("http://240.0.0.1/hook", "240.0.0.1"),  # reserved
    ("http://255.255.255.255/hook", "255.255.255.255"),
    ("http://[::1]/hook", "::1"),
    ("http://[::]/hook", "::"),
    ("http://[0:0:0:0:0:0:0:1]/hook", "::1"),
    ("http://[::ffff:127.0.0.1]/hook", "::ffff:127.0.0.1"),
    ("http://[::ffff:7f00:1]/hook", "::ffff:127.0.0.1"),
    ("http://[::ffff:10.0.0.1]/hook", "::ffff:10.0.0.1"),
    ("http://[::ffff:169.254.169.254]/hook", "::ffff:169.254.169.254"),
    ("http://[::127.0.0.1]/hook", "::127.0.0.1"),  # IPv4-compatible
    ("http://[2002:7f00:1::1]/hook", "2002:7f00:1::1"),  # 6to4 of 127.0.0.1
    ("http://[2002:a9fe:a9fe::]/hook", "2002:a9fe:a9fe::"),  # 6to4 of 169.254.169.254
    ("http://[64:ff9b::127.0.0.1]/hook", "64:ff9b::7f00:1"),  # NAT64 of 127.0.0.1
    ("http://[64:ff9b::a00:1]/hook", "64:ff9b::a00:1"),  # NAT64 of 10.0.0.1
    ("http://[fe80::1%25eth0]/hook", "fe80::1"),  # link-local with a zone id
    ("http://[fc00::1]/hook", "fc00::1"),  # unique local
    ("http://[ff02::1]/hook", "ff02::1"),  # multicast
    ("http://[2001:db8::1]/hook", "2001:db8::1"),  # documentation
]

INVALID_HOST_URLS = [
    "http://1.2.3.4.5/hook",  # all-numeric top label, and no address either
    "http://256.1.1.1/hook",
    "http://08.0.0.1/hook",  # 8 is no octal digit
    "http://0x/hook",
    "http://exa_mple..com/hook",  # an empty label
    "http://-example.com/hook",
    "http://example-.com/hook",
    "http://" + "a" * 64 + ".example.com/hook",
    "http://exa%20mple.com/hook",
]

PUBLIC_URLS = [
    "https://hooks.example.com/milepost",
    "https://HOOKS.Example.COM./milepost",
    "https://bücher.example/hook",
    "https://93.184.215.14/hook",
    "http://134744072/hook",  # 8.8.8.8 in decimal: public however it is written
    "http://0x08080808/hook",
    "http://[2606:4700:4700::1111]/hook",
    "http://[::ffff:8.8.8.8]/hook",  # IPv4-mapped public
    "http://[64:ff9b::808:808]/hook",  # NAT64 of 8.8.8.8
    "https://1.example.com/hook",
    "https://a1b2.c3/hook",
]


def endpoint_count(db: Database) -> int:
    with db.read_only() as session:
        return int(session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0)


@pytest.mark.parametrize(("url", "address"), NUMERIC_PRIVATE_URLS)
def test_every_spelling_of_a_private_address_is_refused_at_registration(
    world: World, db: Database, url: str, address: str
) -> None:
    user = world.user("owner")
    with pytest.raises(ValidationFailed) as refused:
        world.act(user, webhooks.create_endpoint, url=url)
    assert (refused.value.status, refused.value.code, refused.value.param) == (
        422,
        "private_address",
        "url",
    )
    assert "not a public address" in refused.value.message
    assert str(ipaddress.ip_address(address)) in refused.value.message
    assert endpoint_count(db) == 0


@pytest.mark.parametrize("url", INVALID_HOST_URLS)
def test_a_host_that_is_no_valid_name_is_refused(world: World, db: Database, url: str) -> None:
    user = world.user("owner")
    with pytest.raises(ValidationFailed) as refused:
        world.act(user, webhooks.create_endpoint, url=url)
    assert (refused.value.status, refused.value.code, refused.value.param) == (
        422,
        "invalid_url",
        "url",
    )
    assert refused.value.message.startswith("url must name a valid host")
    assert endpoint_count(db) == 0


def test_invalid_hosts_are_refused_even_where_private_networks_are_allowed(
    db: Database,
) -> None:
    world = World(db, Settings(providers="sandbox,manual", webhook_allow_private_networks=True))
    user = world.user("owner")
    with pytest.raises(ValidationFailed) as refused:
        world.act(user, webhooks.create_endpoint, url="http://1.2.3.4.5/hook")
    assert refused.value.code == "invalid_url"
    # ... while the private address itself is allowed there (a trusted deployment).
    endpoint = world.act(user, webhooks.create_endpoint, url="http://0x7f000001:8080/hook")
    assert endpoint.url == "http://0x7f000001:8080/hook"


@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_public_names_and_addresses_in_any_notation_are_accepted(world: World, url: str) -> None:
    user = world.user("owner")
    endpoint = world.act(user, webhooks.create_endpoint, url=url)
    assert endpoint.url == url


def test_hosts_are_read_as_the_resolver_reads_them() -> None:
    assert parse_host("2130706433").address == ipaddress.ip_address("127.0.0.1")
    assert parse_host("0177.0.0.1").address == ipaddress.ip_address("127.0.0.1")
    assert parse_host("[::ffff:127.0.0.1]").address == ipaddress.ip_address("::ffff:7f00:1")
    assert parse_host("Example.COM.").address is None
    assert parse_host("Example.COM.").name == "example.com"
    assert address_refusal(ipaddress.ip_address("8.8.8.8")) is None
    assert named_private_host("8.8.8.8") is None


# Over HTTP, with the default (private addresses refused) -------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(files_dir=str(tmp_path / "files"), run_worker=False)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://2130706433/hook", "private_address"),
        ("http://0x7f000001/hook", "private_address"),
        ("http://0177.0.0.1/hook", "private_address"),
        ("http://127.1/hook", "private_address"),
        ("http://[::ffff:127.0.0.1]/hook", "private_address"),
        ("http://1.2.3.4.5/hook", "invalid_url"),
    ],
)
def test_the_api_answers_422_and_stores_nothing(
    sign_up: Any, db: Database, url: str, code: str
) -> None:
    owner = sign_up("owner")
    response = owner.post("/v1/webhook-endpoints", {"url": url})
    assert_error(response, 422, "validation", code, "url")
    assert owner.ok("GET", "/v1/webhook-endpoints")["data"] == []
    assert endpoint_count(db) == 0


# At delivery, the same rule --------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1"])
def test_a_delivery_to_a_numeric_private_host_is_refused_unsent(
    db: Database, receiver: Receiver, spelling: str
) -> None:
    # Registered where private addresses are allowed, then delivered by a sender that refuses them: the
    # loopback receiver (which those spellings all reach) must get nothing.
    world = World(db, Settings(providers="sandbox,manual", webhook_allow_private_networks=True))
    client = world.user("client")
    port = receiver.server.server_address[1]
    world.act(client, webhooks.create_endpoint, url=f"http://{spelling}:{port}/client")
    freelancer = world.user("freelancer")
    world.deposit(client, 1_000_000)
    project = world.project(client, freelancer)
    milestone = world.milestone(client, project, 100_000)
    world.act(client, milestones.fund, milestone.id)

    outcomes = deliver_due(db, utcnow())
    assert outcomes and all(outcome.status_code is None for outcome in outcomes)
    for outcome in outcomes:
        assert outcome.error == (
            f"refused: {spelling} means 127.0.0.1, which is not a public address"
        )
    assert receiver.received == []
    assert {d.status for d in deliveries(db)} == {DeliveryStatus.PENDING}

"""Webhooks stay on the public internet unless the deployment allows private addresses."""

from __future__ import annotations

from typing import Any

import pytest

from milepost.kit.errors import ValidationFailed
from milepost.kit.time import utcnow
from milepost.webhooks import service as webhooks
from milepost.webhooks.addresses import named_private_host
from milepost.webhooks.delivery import deliver_due
from milepost.webhooks.models import DeliveryStatus
from tests.webhooks.conftest import Receiver
from tests.webhooks.test_webhooks import Parties, deliveries, register
from tests.world import World

PRIVATE_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "https://api.localhost/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://0.0.0.0/hook",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_by_default_a_url_naming_a_private_address_is_refused_and_nothing_is_created(
    world: World, url: str
) -> None:
    user = world.user("owner")
    before = world.snapshot()
    with pytest.raises(ValidationFailed) as refused:
        world.act(user, webhooks.create_endpoint, url=url)
    assert (refused.value.code, refused.value.param) == ("private_address", "url")
    assert "public address" in refused.value.message or "this machine" in refused.value.message
    assert world.snapshot() == before


def test_public_names_and_addresses_are_accepted(world: World) -> None:
    user = world.user("owner")
    for url in ("https://hooks.example.com/milepost", "https://93.184.215.14/hook"):
        endpoint = world.act(user, webhooks.create_endpoint, url=url)
        assert endpoint.url == url
    assert named_private_host("8.8.8.8") is None


@pytest.mark.parametrize("run_worker", [False])
def test_a_delivery_to_a_host_that_resolves_to_a_private_address_is_refused_unsent(
    sign_up: Any, db: Any, receiver: Receiver
) -> None:
    # Registered while private addresses were allowed (the test server allows them), then delivered by
    # a sender that does not allow them: the loopback receiver must get nothing.
    parties = Parties(db, sign_up)
    register(parties.client, receiver, "/client", ["milestone.funded"])
    parties.funded_milestone()

    outcomes = deliver_due(db, utcnow())
    assert len(outcomes) == 1
    assert outcomes[0].status_code is None
    assert outcomes[0].error is not None and outcomes[0].error.startswith("refused: ")
    assert "not a public address" in outcomes[0].error
    assert receiver.received == []
    (delivery,) = deliveries(db)
    assert delivery.status is DeliveryStatus.PENDING and delivery.attempts == 1  # retried later

"""The HTTP fixtures (a real server over the test's database, signed-in clients) for the records tests."""

from tests.api.conftest import base_url, settings, sign_up

__all__ = ["base_url", "settings", "sign_up"]

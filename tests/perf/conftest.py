"""The HTTP tests' live server and signed-in clients, for the performance tests too."""

from tests.api.conftest import base_url, settings, sign_up

__all__ = ["base_url", "settings", "sign_up"]

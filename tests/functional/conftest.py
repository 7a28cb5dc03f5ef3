"""Fixtures shared by the functional tests of the OpenID provider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dancu.bootstrap import Container
from tests.live import free_port, serve


@pytest.fixture
def provider(container: Container) -> Iterator[str]:
    """The app served over real HTTP on a free port, with its issuer set to that address."""
    port = free_port()
    container.settings.issuer = f"http://127.0.0.1:{port}"
    with serve(container, port) as base:
        yield base

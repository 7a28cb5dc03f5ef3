"""Fixtures of the registry's integration tests."""

from __future__ import annotations

import pytest

from dancu.registry.service import RegistryService
from tests.integration.registry.world import Place, build_world


@pytest.fixture
def world(registry: RegistryService) -> dict[str, Place]:
    """Three communes' people (``world.py``), registered by the ministry."""
    return build_world(registry)

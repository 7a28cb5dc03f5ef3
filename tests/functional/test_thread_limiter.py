"""Synchronous routes share a small thread limiter (``DANCU_THREADS``), not Starlette's 40."""

from __future__ import annotations

from anyio import to_thread
from fastapi.testclient import TestClient

from dancu.app import create_app
from dancu.bootstrap import Container
from dancu.core.settings import Settings


def _limiter_tokens() -> float:
    return to_thread.current_default_thread_limiter().total_tokens


def test_the_default_thread_limiter_takes_the_setting(container: Container) -> None:
    container.settings.threads = 3
    with TestClient(create_app(container)) as client:
        assert client.portal is not None
        assert client.portal.call(_limiter_tokens) == 3


def test_the_default_is_a_few_threads() -> None:
    assert 1 <= Settings().threads <= 4

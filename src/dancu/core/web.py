"""Web plumbing shared by every context's pages (to be filled: sessions, CSRF, i18n, login)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

router = APIRouter()


def install(app: FastAPI) -> None:
    """Add the page middleware to ``app``."""

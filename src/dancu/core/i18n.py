"""Translations. Message ids are English; ``core/locale/vi/LC_MESSAGES/messages.po`` holds the
Vietnamese catalog (the default language). Catalogs are read with Babel and compiled in memory
at start-up, so there is no build step and no compiled file to forget to regenerate."""

from __future__ import annotations

import contextvars
import io
from functools import cache
from importlib.resources import files

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = ("vi", "en")
DEFAULT_LOCALE = "vi"
current_locale: contextvars.ContextVar[str] = contextvars.ContextVar(
    "locale", default=DEFAULT_LOCALE
)


@cache
def translations(locale: str) -> NullTranslations:
    po = files("dancu.core") / "locale" / locale / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def gettext(message: str) -> str:
    return translations(current_locale.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_locale.get()).ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Mark a message for extraction without translating it here (it is translated where it
    is shown, e.g. a table of labels built at import time)."""
    return message


def pick_locale(requested: str | None, accept_language: str | None, default: str) -> str:
    """Choose the page language: explicit choice, then the browser's, then the default."""
    if requested in LOCALES:
        return requested
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LOCALES:
            return tag
    return default if default in LOCALES else DEFAULT_LOCALE

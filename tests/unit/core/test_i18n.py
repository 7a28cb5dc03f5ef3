"""The Vietnamese catalog is complete and pages speak the chosen language."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po

from dancu.core import i18n

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools"))
import messages


def test_every_message_is_translated_into_vietnamese() -> None:
    with messages.CATALOG.open("rb") as f:
        catalog = read_po(f, locale="vi")
    translated = {m.id: m.string for m in catalog if m.id}
    used = {m.id for m in messages.extract() if m.id}
    missing = sorted(str(m) for m in used if not translated.get(m))
    assert not missing, f"untranslated (run make messages, then translate): {missing[:10]}"
    for message_id, value in translated.items():
        if isinstance(message_id, str) and "%(" in message_id:
            assert isinstance(value, str) and "%(" in value, message_id


def test_locale_choice_order() -> None:
    assert i18n.pick_locale("en", "vi-VN,vi;q=0.9", "vi") == "en"
    assert i18n.pick_locale(None, "en-US,en;q=0.9", "vi") == "en"
    assert i18n.pick_locale(None, "fr-FR", "vi") == "vi"
    assert i18n.pick_locale("xx", None, "en") == "en"


def test_gettext_follows_the_current_locale() -> None:
    token = i18n.current_locale.set("vi")
    try:
        assert i18n.gettext("Search") == "Tra cứu"
        assert (
            i18n.ngettext("%(num)d person found", "%(num)d people found", 3) % {"num": 3}
            == "Tìm thấy 3 người"
        )
    finally:
        i18n.current_locale.reset(token)
    token = i18n.current_locale.set("en")
    try:
        assert i18n.gettext("Search") == "Search"
    finally:
        i18n.current_locale.reset(token)

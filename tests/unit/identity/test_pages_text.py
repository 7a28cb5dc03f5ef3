"""The citizen's pages in words (issue 13): every event the account history records has a
label (no "ward.registered" on a page), the consent screen's "remember my choice" starts
unticked (privacy by default) and times are labelled as Vietnam time."""

from __future__ import annotations

import re
from pathlib import Path

from dancu.core import i18n
from dancu.core.pages import register, templates
from dancu.identity.oidc.par import AuthRequest
from dancu.identity.web import WEB
from dancu.identity.web.account import EVENT_LABELS

register(WEB)  # its templates, as the site has them
IDENTITY = Path(__file__).resolve().parents[3] / "src" / "dancu" / "identity"


def test_every_account_event_has_a_label() -> None:
    kinds: set[str] = set()
    for source in IDENTITY.rglob("*.py"):  # the use cases too
        text = source.read_text()
        kinds |= set(re.findall(r'_event\(\s*session,\s*\w+,\s*"([a-z0-9_.]+)"', text))
        # Kinds built at run time ("correction.{outcome}") need at least one label each.
        for prefix in re.findall(r'_event\(\s*session,\s*\w+,\s*f"([a-z_]+)\.\{', text):
            assert any(k.startswith(prefix + ".") for k in EVENT_LABELS), prefix
    assert {"ward.registered", "registered.by_guardian", "login"} <= kinds
    assert kinds - EVENT_LABELS.keys() == set()


def _consent_page() -> str:
    auth = AuthRequest(
        client_id="svc",
        client_name="Dịch vụ thử",
        purpose="Xem thông tin",
        redirect_uri="https://svc.example/cb",
        scopes=["openid", "profile"],
        state="s",
        nonce="n",
        code_challenge="c" * 43,
        acr_values=[],
        claims={},
        prompt="",
        attributes=["name"],
    )
    return templates.get_template("identity/consent.html").render(
        auth=auth, labels=[], wards=[], csrf_token="t", locale="vi", path="/oidc/consent"
    )


def test_remember_my_choice_starts_unticked() -> None:
    token = i18n.current_locale.set("vi")
    try:
        tag = re.search(r'<input type="checkbox" id="f-remember"[^>]*>', _consent_page())
    finally:
        i18n.current_locale.reset(token)
    assert tag and "checked" not in tag[0]


def test_citizen_pages_label_times_as_vietnam_time() -> None:
    for name in ("account.html", "history.html", "devices.html"):
        text = (IDENTITY / "templates" / "identity" / name).read_text()
        assert "UTC" not in text and "Vietnam time" in text, name
        assert "strftime" not in text, name

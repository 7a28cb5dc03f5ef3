"""`make demo-oidc` works: the demo relying party (tools/demo_rp.py, built on Authlib, with
PAR, PKCE, private_key_jwt and DPoP) signs the demo citizen in through the provider and shows
what it received."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from tools.demo_rp import create_app as create_rp

from dancu.bootstrap import Container
from dancu.demo import DEMO_PASSCODE, ba_dinh_family, seed_identity
from tests.live import free_port, serve, serve_app


def test_demo_relying_party_signs_the_demo_citizen_in(container: Container) -> None:
    ba_dinh_family(container.registry)
    provider_port, rp_port = free_port(), free_port()
    rp_url = f"http://127.0.0.1:{rp_port}"
    container.settings.issuer = f"http://127.0.0.1:{provider_port}"
    citizen, _client = seed_identity(container, rp_url)
    assert seed_identity(container, rp_url)[0] == citizen  # idempotent
    config = Path(container.settings.data_dir) / "demo-rp.json"
    assert config.stat().st_mode & 0o077 == 0  # the private key is the owner's only
    with (
        serve(container, provider_port) as provider,
        serve_app(create_rp(provider, config, rp_url), rp_port),
        httpx.Client(follow_redirects=False) as browser,
    ):
        assert "Đăng nhập với dancu" in browser.get(rp_url).text
        step = browser.get(f"{rp_url}/login")  # PAR, then to the provider
        assert step.status_code == 303 and step.headers["location"].startswith(provider)
        step = browser.get(step.headers["location"])
        login = browser.get(provider + step.headers["location"])
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert csrf
        step = browser.post(
            f"{provider}/oidc/login",
            data={"personal_id": citizen, "passcode": DEMO_PASSCODE, "csrf_token": csrf[1]},
        )
        consent = browser.get(provider + step.headers["location"])
        assert "Dịch vụ mẫu (demo)" in consent.text
        step = browser.post(
            f"{provider}/oidc/consent",
            data={"decision": "allow", "remember": "yes", "csrf_token": csrf[1]},
        )
        assert step.headers["location"].startswith(f"{rp_url}/callback")
        page = browser.get(step.headers["location"])
    assert page.status_code == 200, page.text
    assert "Nguyễn Văn An" in page.text and citizen in page.text
    assert "urn:dancu:loa:high" in page.text
    # The token was DPoP-bound and the register's provenance came with the claims.
    assert "&quot;DPoP&quot;" in page.text and "vn_csdlqgdc" in page.text

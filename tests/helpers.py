"""Helpers shared by the test modules (plain functions, not fixtures): officers and their
sign-in over HTTP, the CSRF token of a form, a relying party registered with its public key
and the authorization request it starts, a citizen with an account, a refused call's error,
the identity service's subscriber to registry events, the citizen and birth
registrations the tests build, and a DuckDB connection with dancu's SQL functions."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import duckdb
import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey

from dancu.app import create_app
from dancu.bootstrap import Container
from dancu.core.access import Role
from dancu.core.errors import DancuError
from dancu.core.officers import create_officer
from dancu.core.outbox import LocalSubscriber
from dancu.demo import ba_dinh_family
from dancu.identity.clients import ClientRegistration
from dancu.reconcile.normalize import definitions
from dancu.registry import schemas as rs

# The officers' password in the web tests (long enough for create_officer).
PASSWORD = "correct horse battery"
# The officers most web tests sign in as: (username, full name, role, unit code).
BA_DINH_OFFICER = ("badinh", "Ba Đình", Role.COMMUNE, "00004")
HANOI_OFFICER = ("hanoi", "Hà Nội", Role.PROVINCE, "01")


def add_officers(container: Container, *officers: tuple[Any, ...]) -> None:
    """Create officers from ``(username, full name, role, unit code[, agency])`` rows, all
    with :data:`PASSWORD`."""
    with container.sessions() as session, session.begin():
        for username, name, role, unit, *agency in officers:
            create_officer(session, container.units, username, name, PASSWORD, role, unit, *agency)


@contextmanager
def web_client(container: Container) -> Iterator[TestClient]:
    """The app over ``container`` without a server, redirects left for the test to read."""
    with TestClient(create_app(container), follow_redirects=False) as client:
        yield client


def csrf(client: TestClient, path: str = "/login") -> str:
    """The CSRF token of the form on the page at ``path``."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found, path
    return found[1]


def officer_sign_in(
    client: TestClient, username: str, next_url: str | None = None, *, fresh: bool = False
) -> httpx.Response:
    """Sign an officer in through the login form (after dropping the cookies when ``fresh``);
    the answer is the redirect."""
    if fresh:
        client.cookies.clear()
    data = {"username": username, "password": PASSWORD, "csrf_token": csrf(client, "/login")}
    if next_url is not None:
        data["next"] = next_url
    r = client.post("/login", data=data)
    assert r.status_code == 303, r.text
    return r


def register_rp(
    container: Container,
    key: ECKey,
    client_id: str,
    redirect_uri: str,
    *,
    name: str = "Cổng Dịch vụ công quốc gia",
    purpose: str = "sign in to online public services",
    grant_types: tuple[str, ...] = ("authorization_code",),
    scopes: tuple[str, ...] = ("openid", "profile"),
    **more: Any,
) -> None:
    """Register a relying party that authenticates with ``key`` (its public half)."""
    container.clients.register(
        ClientRegistration(
            name=name,
            purpose=purpose,
            client_id=client_id,
            jwks={"keys": [key.as_dict(private=False)]},
            redirect_uris=[redirect_uri],
            grant_types=list(grant_types),  # type: ignore[arg-type]
            scopes=list(scopes),
            **more,
        )
    )


# The citizens' passcode in the tests, and a relying party's redirect address that is never
# contacted (the tests read the redirect).
PASSCODE = "482915"
CALLBACK = "http://127.0.0.1:9/callback"


def family_with_account(container: Container, level: int = 1) -> dict[str, str]:
    """The Ba Đình demo family, the father with an account (passcode :data:`PASSCODE`)."""
    family = ba_dinh_family(container.registry)
    container.identity.provision(family["father"], "0912345678", PASSCODE, level)
    return family


def identity_subscriber(container: Container, *kinds: str) -> LocalSubscriber:
    """The identity service's subscriber to registry events of ``kinds``, delivering at once
    (no grace period); the test calls ``deliver``."""
    return LocalSubscriber(
        container.sessions,
        "identity-test",
        kinds,
        container.identity.on_registry_event,
        grace=timedelta(0),
    )


# The PKCE verifier of the authorization requests the tests start by hand.
VERIFIER = "v" * 50


def authorize_query(
    client_id: str, redirect_uri: str, scope: str = "openid profile", state: str = "st"
) -> dict[str, str]:
    """The query of an authorization code request with PKCE (S256 over :data:`VERIFIER`)."""
    challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
    return {
        "client_id": client_id,
        "response_type": "code",
        "scope": scope,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": challenge.decode(),
        "code_challenge_method": "S256",
    }


def refused(call: Callable[[], object], code: str, field: str | None = None) -> DancuError:
    """Run ``call``, which must fail with a DancuError of ``code`` (naming ``field``)."""
    with pytest.raises(DancuError) as caught:
        call()
    assert caught.value.code == code, caught.value.message
    if field is not None:
        assert caught.value.field == field
    return caught.value


def resident(
    full_name: str,
    birth_date: date,
    sex: str,
    since: date,
    commune: str = "00004",
    **more: Any,
) -> rs.PersonRegistration:
    """A registration of someone born in and living in ``commune`` since ``since``."""
    more.setdefault("birth_commune_code", commune)
    return rs.PersonRegistration(
        full_name=full_name,
        birth_date=birth_date,
        sex=sex,  # type: ignore[arg-type]
        residence_commune_code=commune,
        residence_since=since,
        **more,
    )


def member(
    household: str | None,
    relationship: str,
    full_name: str,
    birth_date: date,
    sex: str,
    since: date,
    **more: Any,
) -> rs.PersonRegistration:
    """A :func:`resident` joining ``household`` as ``relationship`` (to its head)."""
    more.update(household_number=household, relationship=relationship)
    return resident(full_name, birth_date, sex, since, **more)


def birth(
    full_name: str, birth_date: date, mother: str, commune: str = "00004", **more: Any
) -> rs.BirthRegistration:
    """A registration of a boy born in ``commune`` to ``mother``."""
    return rs.BirthRegistration(
        full_name=full_name,
        birth_date=birth_date,
        sex="M",
        birth_commune_code=commune,
        mother_personal_id=mother,
        **more,
    )


def duckdb_with_functions() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with dancu's reconciliation SQL functions defined."""
    con = duckdb.connect()
    for statement in definitions("duckdb"):
        con.execute(statement)
    return con

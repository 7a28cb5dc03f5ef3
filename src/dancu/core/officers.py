"""Officer accounts: argon2id passwords, lockout after repeated failures, signed API tokens.

Argon2id parameters follow OWASP's password-storage minimum (m=19 MiB, t=2, p=1): about 20-40 ms
of one core here, slow for an attacker with a stolen hash, quick enough for interactive login.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.access import OfficerContext, Role
from dancu.core.errors import Forbidden, Invalid, Unauthorized
from dancu.core.models import Officer
from dancu.core.passwords import argon2id, verify
from dancu.core.timeutil import utcnow
from dancu.core.units import NEW, UnitDirectory

AGENCY_CODE = re.compile(r"[a-z0-9_-]{2,40}")
HASHER = argon2id()
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
# A dummy hash so a login for an unknown user costs the same time as one for a known user.
_DUMMY = HASHER.hash("dummy-password-for-timing")


class LoginFailed(Forbidden):
    code = "login-failed"


def create_officer(
    session: Session,
    units: UnitDirectory,
    username: str,
    full_name: str,
    password: str,
    role: Role,
    unit_code: str = "",
    agency: str = "",
) -> Officer:
    """Create an officer scoped to a 2025-scheme commune (commune officer) or province, or an
    agency officer of ``agency`` (a short code such as ``bhxh``)."""
    if len(password) < 10:
        raise Invalid("a password has at least 10 characters", "password")
    unit = None
    if role is Role.AGENCY:
        agency = agency.strip().lower()
        if not AGENCY_CODE.fullmatch(agency):
            raise Invalid("an agency code has 2-40 letters, digits, '-' or '_'", "agency")
    elif agency:
        raise Invalid("only an agency officer belongs to an agency", "agency")
    if role is Role.COMMUNE:
        unit = units.get(NEW, "commune", unit_code)
        if unit is None:
            raise Invalid(f"no commune {unit_code} in the current list", "unit")
    elif role is Role.PROVINCE:
        unit = units.get(NEW, "province", unit_code)
        if unit is None:
            raise Invalid(f"no province {unit_code} in the current list", "unit")
    if session.scalar(select(Officer.id).where(Officer.username == username)) is not None:
        raise Invalid("this user name is taken", "username")
    officer = Officer(
        username=username,
        full_name=full_name,
        password_hash=HASHER.hash(password),
        role=role.value,
        unit_id=unit.id if unit else None,
        agency=agency,
        active=True,
        failed_logins=0,
    )
    session.add(officer)
    session.flush()
    return officer


def context_for(officer: Officer, units: UnitDirectory) -> OfficerContext:
    role = Role(officer.role)
    if role is Role.AGENCY:
        return OfficerContext(officer.username, role, agency=officer.agency)
    unit = units.by_id.get(officer.unit_id or -1)
    if unit is None:
        return OfficerContext(officer.username, role)
    if unit.level == "province":
        return OfficerContext(officer.username, role, province_code=unit.code)
    return OfficerContext(
        officer.username, role, province_code=unit.province_code, commune_code=unit.code
    )


def authenticate(
    factory: sessionmaker[Session], units: UnitDirectory, username: str, password: str
) -> tuple[Officer, OfficerContext]:
    """Check a password; lock the account for 15 minutes after 5 failures in a row."""
    with factory() as session, session.begin():
        officer = session.scalars(
            select(Officer).where(Officer.username == username).with_for_update()
        ).first()
        if officer is None or not officer.active:
            verify(HASHER, _DUMMY, password)
            raise LoginFailed("wrong user name or password")
        now = utcnow()
        if officer.locked_until is not None and officer.locked_until > now:
            raise LoginFailed("too many failed attempts; try again later")
        if not verify(HASHER, officer.password_hash, password):
            officer.failed_logins += 1
            if officer.failed_logins >= MAX_FAILURES:
                officer.locked_until, officer.failed_logins = now + LOCKOUT, 0
            raise LoginFailed("wrong user name or password")
        officer.failed_logins, officer.locked_until = 0, None
        if HASHER.check_needs_rehash(officer.password_hash):
            officer.password_hash = HASHER.hash(password)
        return officer, context_for(officer, units)


class TokenSigner:
    """Bearer tokens for API clients acting as an officer: an HMAC-signed, expiring copy of
    the officer's scope, checked without a database round trip. Agency systems will use OIDC
    client credentials (identity context); this serves officers' tools and the benchmarks."""

    CACHE_SIZE = 4096

    def __init__(self, secret: str) -> None:
        self._s = URLSafeTimedSerializer(secret, salt="dancu.api-token")
        # Tokens already verified, with the moment they expire: a client sends the same token
        # with every request, and checking the signature each time is wasted work.
        self._verified: dict[tuple[str, int], tuple[OfficerContext, float]] = {}

    def issue(self, ctx: OfficerContext) -> str:
        return self._s.dumps(
            [ctx.username, ctx.role.value, ctx.province_code, ctx.commune_code, ctx.agency]
        )

    def verify(self, token: str, max_age_s: int = 8 * 3600) -> OfficerContext:
        known = self._verified.get((token, max_age_s))
        if known is not None and time.time() < known[1]:
            return known[0]
        try:
            (username, role, province, commune, *agency), signed = self._s.loads(
                token, max_age=max_age_s, return_timestamp=True
            )
        except SignatureExpired:
            raise LoginFailed("the token has expired") from None
        except BadSignature:
            raise LoginFailed("the token is not valid") from None
        ctx = OfficerContext(username, Role(role), province, commune, agency="".join(agency[:1]))
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()
        self._verified[(token, max_age_s)] = (ctx, signed.timestamp() + max_age_s)
        return ctx


def officer_from_token(
    tokens: TokenSigner, token: str | None, roles: frozenset[Role], refusal: str
) -> OfficerContext:
    """The officer a bearer token was issued to, when their role is one of ``roles``: the one
    check behind every officer API route and the register's fast path. No token, or an
    expired or forged one, proves nobody (401); a proven officer of another role is refused
    with ``refusal`` (403)."""
    if not token or not token.strip():
        raise Unauthorized("send an officer token: Authorization: Bearer <token>")
    try:
        ctx = tokens.verify(token.strip())
    except LoginFailed as exc:  # expired or forged: nobody is proven, so 401, not 403
        raise Unauthorized(exc.message) from None
    if ctx.role not in roles:
        raise Forbidden(refusal)
    return ctx

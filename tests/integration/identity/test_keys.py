"""The provider's own JWT serialisation (``KeyRing.sign``): what it signs verifies with a
maintained library (joserfc) against the published JWKS, header and claims intact, after a
rotation too. Both databases."""

from __future__ import annotations

from datetime import timedelta

from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy.orm import Session, sessionmaker

from dancu.identity.keys import KeyRing


def test_signed_tokens_verify_with_joserfc(session_factory: sessionmaker[Session]) -> None:
    keys = KeyRing(session_factory, "test-secret-key", timedelta(hours=1))
    claims = {"iss": "https://id.example", "sub": "s", "exp": 2_000_000_000, "n": "Nguyễn"}
    first = keys.sign(claims, typ="at+jwt")
    kid = keys.rotate()
    second = keys.sign(claims)
    published = KeySet.import_key_set(keys.jwks())  # type: ignore[arg-type]
    old = jwt.decode(first, published, algorithms=["ES256"])
    assert old.header == {"alg": "ES256", "kid": old.header["kid"], "typ": "at+jwt"}
    assert old.claims == claims and old.header["kid"] != kid
    new = jwt.decode(second, published, algorithms=["ES256"])
    assert new.header == {"alg": "ES256", "kid": kid} and new.claims == claims

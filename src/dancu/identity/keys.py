"""The provider's signing keys: created on first use, rotated on demand, published as a JWKS.

One key signs at a time (the newest not retired). ``rotate`` creates a new key and retires
the current one, which stays in the published JWKS until every token it signed has expired,
so relying parties that cache the JWKS never see a signature they cannot check. Private keys
are stored encrypted (PKCS#8 with a password derived from the server secret, which lives
outside the database). Each process caches the keys and reloads them every minute, so a
rotation by ``dancu identity keys rotate`` reaches running servers within that time.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256
from joserfc.jwk import ECKey, KeyParameters, KeySet
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.timeutil import utcnow
from dancu.identity.models import SigningKey

ALG = "ES256"
RELOAD_S = 60.0
_ES256 = ec.ECDSA(SHA256())


@dataclass(frozen=True)
class _Loaded:
    signing: ECKey
    public: dict[str, Any]  # the JWKS document
    at: float

    @property
    def raw(self) -> ec.EllipticCurvePrivateKey:
        key = self.signing.private_key
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key


class KeyRing:
    def __init__(
        self, factory: sessionmaker[Session], secret_key: str, longest_token: timedelta
    ) -> None:
        self.factory = factory
        self.longest_token = longest_token
        self._password = hashlib.sha256(b"dancu.signing-key:" + secret_key.encode()).hexdigest()
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    def signing_key(self) -> ECKey:
        """The private key to sign with now (created on first use)."""
        return self._current().signing

    def sign(self, claims: dict[str, Any], typ: str = "") -> str:
        """A JWT of ``claims`` signed now (compact JWS, RFC 7515 section 7.1, ES256: the raw
        ``r || s`` of RFC 7518 section 3.4), header ``alg``, ``kid`` and ``typ`` when given.
        Serialised here rather than by joserfc, which spends more on the encoding than the
        signature costs; tokens signed both ways verify alike (the tests decode them with
        joserfc)."""
        loaded = self._current()
        header = {"alg": ALG, "kid": loaded.signing.kid, **({"typ": typ} if typ else {})}
        signing_input = _b64(orjson.dumps(header)) + b"." + _b64(orjson.dumps(claims))
        r, s = decode_dss_signature(loaded.raw.sign(signing_input, _ES256))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return (signing_input + b"." + _b64(signature)).decode()

    def jwks(self) -> dict[str, Any]:
        """The public keys relying parties verify with: the signing key and retired keys
        whose tokens may still be valid."""
        return self._current().public

    def keyset(self) -> KeySet:
        return KeySet.import_key_set(self.jwks())  # type: ignore[arg-type]

    def rotate(self) -> str:
        """Start signing with a new key; the old one stays published until its tokens expire.
        Returns the new key's id."""
        now = utcnow()
        with self.factory() as session, session.begin():
            for old in session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
                old.retired_at, old.published_until = now, now + self.longest_token
            kid = self._create(session)
        self._loaded = None
        return kid

    def _current(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None and time.monotonic() - loaded.at < RELOAD_S:
            return loaded
        with self._lock:
            self._loaded = self._load()
            return self._loaded

    def _load(self) -> _Loaded:
        with self.factory() as session, session.begin():
            rows = self._published(session)
            if not rows or rows[0].retired_at is not None:
                self._create(session)  # the first key (or after every key was retired)
                rows = self._published(session)
            active = rows[0]
            signing = ECKey.import_key(active.private_pem, password=self._password)
            signing = ECKey.import_key(
                signing.as_dict(private=True), parameters=_params(active.kid)
            )
            return _Loaded(signing, {"keys": [r.public_jwk for r in rows]}, time.monotonic())

    @staticmethod
    def _published(session: Session) -> list[SigningKey]:
        """Keys in the JWKS, the signing key (newest not retired) first."""
        now = utcnow()
        return list(
            session.scalars(
                select(SigningKey)
                .where(or_(SigningKey.retired_at.is_(None), SigningKey.published_until > now))
                .order_by(SigningKey.retired_at.is_not(None), SigningKey.created_at.desc())
            )
        )

    def _create(self, session: Session) -> str:
        kid = f"{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
        key = ECKey.generate_key("P-256", parameters=_params(kid), private=True)
        session.add(
            SigningKey(
                kid=kid,
                alg=ALG,
                private_pem=key.as_pem(private=True, password=self._password),
                public_jwk=key.as_dict(private=False),
                created_at=utcnow(),
            )
        )
        session.flush()
        return kid


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _params(kid: str) -> KeyParameters:
    return {"kid": kid, "use": "sig", "alg": ALG}

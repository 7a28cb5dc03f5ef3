"""DPoP: sender-constrained access tokens (RFC 9449).

A client proves possession of a key with every request: a short JWT (``typ`` ``dpop+jwt``)
signed with that key, carrying the key itself (``jwk``), the request's method (``htm``) and
URL (``htu``), the time (``iat``), a unique ``jti`` and, with a token, the token's hash
(``ath``). Tokens issued with a proof are bound to the key's thumbprint (``cnf.jkt``) and are
useless to anyone who steals them without the key.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key

from dancu.identity.oidc.digests import s256
from dancu.identity.oidc.tokens import OAuthError, ReplayStore

PROOF_ALGS = ["ES256", "ES384", "PS256", "RS256", "EdDSA"]
WINDOW_S = 300  # proofs older or newer than this are refused
KEY_CACHE = 4096  # public keys of proofs kept imported


def replay_key(thumbprint: str) -> str:
    """Where a proof's ``jti`` is recorded: per key, beside client assertions (client ids
    have no colon)."""
    return f"dpop:{thumbprint[:60]}"


def refused_binding(what: str, proved: str) -> str:
    """Why a code or refresh token bound to a DPoP key (RFC 9449 sections 5 and 10) is
    refused: a proof of another key, or none (which would have given a bearer token)."""
    if proved:
        return f"the {what} is bound to another DPoP key"
    return f"the {what} is bound to a DPoP key: send a DPoP proof of that key"


class DPoPVerifier:
    def __init__(self, replay: ReplayStore) -> None:
        self.replay = replay
        # Public keys as proofs carry them, imported, with their thumbprints: a client
        # proves the same key request after request.
        self._keys: dict[bytes, tuple[Key, str]] = {}

    def verify(self, proof: str, method: str, url: str, access_token: str | None = None) -> str:
        """Check a proof for this request; returns the thumbprint of the key it proves."""
        thumbprint, jti, expires = self.check(proof, method, url, access_token)
        if not self.replay.first_use(replay_key(thumbprint), jti, expires):
            raise OAuthError("invalid_dpop_proof", "the DPoP proof was already used")
        return thumbprint

    def check(
        self, proof: str, method: str, url: str, access_token: str | None = None
    ) -> tuple[str, str, datetime]:
        """Everything ``verify`` checks but the single use of the proof's ``jti``: the key's
        thumbprint, the ``jti`` and until when it must be remembered (the caller's replay
        store decides the rest, as ``fast_token`` does)."""
        error = "invalid_dpop_proof"
        try:
            header = jws.extract_compact(proof.encode()).headers()
        except (JoseError, ValueError, TypeError):
            raise OAuthError(error, "the DPoP proof is not a JWT") from None
        if not isinstance(header, dict) or header.get("typ") != "dpop+jwt":
            raise OAuthError(error, "the DPoP proof must have typ dpop+jwt")
        if header.get("alg") not in PROOF_ALGS:
            raise OAuthError(error, "the DPoP proof must be signed with an asymmetric key")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise OAuthError(error, "the DPoP proof carries no public key (jwk)")
        key, thumbprint = self._key(jwk)
        try:
            claims: dict[str, Any] = jwt.decode(proof, key, algorithms=PROOF_ALGS).claims
        except (JoseError, ValueError):
            raise OAuthError(error, "the DPoP proof's signature does not verify") from None
        if claims.get("htm") != method:
            raise OAuthError(error, "the DPoP proof is for another HTTP method (htm)")
        if claims.get("htu") != url:
            raise OAuthError(error, "the DPoP proof is for another URL (htu)")
        iat = claims.get("iat")
        if not isinstance(iat, int | float) or abs(time.time() - iat) > WINDOW_S:
            raise OAuthError(error, "the DPoP proof is too old or from the future (iat)")
        if access_token is not None and claims.get("ath") != s256(access_token):
            raise OAuthError(error, "the DPoP proof is not for this access token (ath)")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 8 <= len(jti) <= 120:
            raise OAuthError(error, "the DPoP proof needs a jti")
        return thumbprint, jti, datetime.fromtimestamp(iat + WINDOW_S, UTC)

    def _key(self, jwk: dict[str, Any]) -> tuple[Key, str]:
        """The proof's public key and its thumbprint (RFC 7638), imported once per key."""
        try:
            name = orjson.dumps(jwk, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # not JSON as parsed (cannot happen): no cache
            name = b""
        cached = self._keys.get(name) if name else None
        if cached is not None:
            return cached
        try:
            key = JWKRegistry.import_key(jwk)
        except (JoseError, ValueError, TypeError, KeyError):
            raise OAuthError(
                "invalid_dpop_proof", "the DPoP proof carries no usable public key"
            ) from None
        if key.is_private:
            raise OAuthError("invalid_dpop_proof", "the DPoP proof's key must be a public key")
        found = (key, key.thumbprint())
        if name:
            if len(self._keys) >= KEY_CACHE:
                self._keys.clear()  # a bound, not an LRU: keys are few, and cheap to import
            self._keys[name] = found
        return found

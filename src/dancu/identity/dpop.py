"""DPoP: sender-constrained access tokens (RFC 9449).

A client proves possession of a key with every request: a short JWT (``typ`` ``dpop+jwt``)
signed with that key, carrying the key itself (``jwk``), the request's method (``htm``) and
URL (``htu``), the time (``iat``), a unique ``jti`` and, with a token, the token's hash
(``ath``). Tokens issued with a proof are bound to the key's thumbprint (``cnf.jkt``) and are
useless to anyone who steals them without the key.
"""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

from dancu.identity.tokens import OAuthError, ReplayStore

PROOF_ALGS = ["ES256", "ES384", "PS256", "RS256", "EdDSA"]
WINDOW_S = 300  # proofs older or newer than this are refused


def token_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class DPoPVerifier:
    def __init__(self, replay: ReplayStore) -> None:
        self.replay = replay

    def verify(self, proof: str, method: str, url: str, access_token: str | None = None) -> str:
        """Check a proof for this request; returns the thumbprint of the key it proves."""
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
        try:
            key = JWKRegistry.import_key(jwk)
        except (JoseError, ValueError, TypeError, KeyError):
            raise OAuthError(error, "the DPoP proof carries no usable public key") from None
        if key.is_private:
            raise OAuthError(error, "the DPoP proof's key must be a public key")
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
        if access_token is not None and claims.get("ath") != token_hash(access_token):
            raise OAuthError(error, "the DPoP proof is not for this access token (ath)")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 8 <= len(jti) <= 120:
            raise OAuthError(error, "the DPoP proof needs a jti")
        thumbprint = key.thumbprint()
        expires = datetime.fromtimestamp(iat + WINDOW_S, UTC)
        if not self.replay.first_use(f"dpop:{thumbprint[:60]}", jti, expires):
            raise OAuthError(error, "the DPoP proof was already used")
        return thumbprint

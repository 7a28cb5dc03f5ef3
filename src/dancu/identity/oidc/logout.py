"""RP-Initiated Logout 1.0: where to send the browser after the citizen signs out."""

from __future__ import annotations

from urllib.parse import urlencode

from joserfc import jwt
from joserfc.errors import JoseError

from dancu.core.errors import NotFound
from dancu.identity.clients import ClientRegistry
from dancu.identity.keys import ALG, KeyRing


def logout_target(
    keys: KeyRing,
    clients: ClientRegistry,
    id_token_hint: str,
    post_logout_redirect_uri: str,
    state: str,
) -> str | None:
    """Only a URI the client registered, and only when the hint is an ID token this provider
    signed for that client (expired ones included)."""
    if not id_token_hint or not post_logout_redirect_uri:
        return None
    try:
        claims = jwt.decode(id_token_hint, keys.keyset(), algorithms=[ALG]).claims
        client = clients.get(str(claims.get("aud", "")))
    except (JoseError, ValueError, NotFound):
        return None
    if post_logout_redirect_uri not in client.post_logout_redirect_uris:
        return None
    query = urlencode({"state": state}) if state else ""
    return f"{post_logout_redirect_uri}{'?' + query if query else ''}"

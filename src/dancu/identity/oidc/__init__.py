"""The OpenID provider (OpenID Connect Core 1.0, with PAR, PKCE, DPoP), one module per step.

``authorizer.Authorizer`` is what the pages and endpoints call; it hands each step to its
module: ``par`` (the authorization request, pushed or given in full), ``consents`` (the
citizen's standing consents), ``codes`` (authorization codes: their issue and exchange, the
ID token), ``refresh`` (rotating refresh tokens), ``userinfo`` (with ``release``: what is
read from the register and audited) and ``logout``. ``tokens`` is the token endpoint (client
authentication, client credentials), ``dpop`` the proofs of possession; ``fast_token`` and
``fast_code`` answer the busiest grants on the event loop (decisions 0004 and 0008), with
``code_grant`` what both paths of the code exchange share.
"""

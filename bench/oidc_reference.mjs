// The reference OpenID provider for bench_token.py: panva's oidc-provider (OpenID Certified),
// configured like dancu for the benchmarked grant: client_credentials with private_key_jwt
// (ES256 client assertions, jti replay detection on — oidc-provider's default), ES256-signed
// JWT access tokens (RFC 9068 via resource indicators), 10-minute lifetime.
//
//   BENCH_PORT=… BENCH_WORKERS=1|2 BENCH_ISSUER=… BENCH_CLIENT_JWKS='{"keys":[…]}'
//   BENCH_SIGNING_JWK='{…private EC P-256…}' node bench/oidc_reference.mjs
import cluster from 'node:cluster';
import Provider from 'oidc-provider';

const port = Number(process.env.BENCH_PORT);
const workers = Number(process.env.BENCH_WORKERS || 1);

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i += 1) cluster.fork();
} else {
  const provider = new Provider(process.env.BENCH_ISSUER, {
    clients: [{
      client_id: 'bench',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      jwks: JSON.parse(process.env.BENCH_CLIENT_JWKS),
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'registry.lookup',
      id_token_signed_response_alg: 'ES256',
    }],
    jwks: { keys: [JSON.parse(process.env.BENCH_SIGNING_JWK)] },
    scopes: ['registry.lookup'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:dancu:api',
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'registry.lookup',
          accessTokenFormat: 'jwt',
          accessTokenTTL: 600,
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  provider.listen(port);
}

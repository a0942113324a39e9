// A real OpenID provider (panva/oidc-provider) dressed up as a Keycloak realm, for the test suite.
//
//   node oidc_provider.mjs '{"clients": [...], "accessTokenTTL": 3, ...}'
//
// It binds 127.0.0.1 on a free port (or "port" from the config), then prints ONE line of JSON to
// stdout: {"issuer": "http://127.0.0.1:PORT/realms/astravue", "port": PORT}. The Python fixture
// (tests/oidc.py) waits for that line. Everything else goes to stderr.
//
// What makes it look like Keycloak (realm "astravue"):
// - issuer http://127.0.0.1:PORT/realms/astravue, endpoints under /protocol/openid-connect/...
//   (auth, token, revoke, logout, certs, userinfo, token/introspect);
// - JWT access tokens (RS256) with a short TTL, verifiable from the JWKS ("certs");
// - a refresh token on every code exchange (Keycloak does not require offline_access), rotated on
//   every use ("Revoke Refresh Token" on): reusing a spent one is invalid_grant and kills the grant;
// - token responses carry Keycloak's `refresh_expires_in` (0 for offline tokens);
// - confidential clients with PKCE (S256) required.
//
// Test-only control routes (outside the realm): GET /_test/stats returns counters of token
// requests per grant type and of errors; POST /_test/reset clears them (and the delays);
// POST /_test/delay?before=MS&after=MS holds every token request MS milliseconds before the
// provider sees it and/or holds its answer MS milliseconds after the provider has issued (and
// rotated) the tokens: a slow network on either side of the rotation.

import http from 'node:http';
import { once } from 'node:events';

import Provider from 'oidc-provider';

const PREFIX = '/realms/astravue';
const config = JSON.parse(process.argv[2] || '{}');
const accessTokenTTL = config.accessTokenTTL ?? 300;
const refreshTokenTTL = config.refreshTokenTTL ?? 3600;
const audience = config.audience ?? 'account';
const RESOURCE = 'urn:astravue:api';

// Every test user logs in with any password; the login name is the account id.
const accounts = new Map();
function account(id) {
  if (!accounts.has(id)) {
    accounts.set(id, {
      accountId: id,
      async claims() {
        return {
          sub: id,
          preferred_username: id,
          // A login that is an email address is that address (the sandbox maps it to a seeded user).
          email: id.includes('@') ? id : `${id}@example.test`,
          email_verified: true,
          name: `Test ${id}`,
        };
      },
    });
  }
  return accounts.get(id);
}

const stats = { grants: {}, errors: {}, revocations: 0 };
const delay = { before: 0, after: 0 };
function count(bucket, key) {
  bucket[key] = (bucket[key] || 0) + 1;
}

const server = http.createServer();
server.listen(config.port ?? 0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}${PREFIX}`;

const provider = new Provider(issuer, {
  clients: config.clients ?? [],
  clientDefaults: {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  },
  routes: {
    authorization: '/protocol/openid-connect/auth',
    token: '/protocol/openid-connect/token',
    revocation: '/protocol/openid-connect/revoke',
    end_session: '/protocol/openid-connect/logout',
    jwks: '/protocol/openid-connect/certs',
    userinfo: '/protocol/openid-connect/userinfo',
    introspection: '/protocol/openid-connect/token/introspect',
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  // Keycloak puts the profile claims in every ID token of its default client scopes.
  claims: {
    openid: ['sub', 'preferred_username', 'email', 'email_verified', 'name'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  conformIdTokenClaims: false,
  findAccount: (ctx, id) => account(id),
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'openid offline_access profile email',
        audience,
        accessTokenTTL,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => true,
  expiresWithSession: async () => false,
  extraTokenClaims: async (ctx, token) => ({ azp: token.clientId, preferred_username: token.accountId }),
  ttl: {
    AccessToken: accessTokenTTL,
    AuthorizationCode: 60,
    IdToken: accessTokenTTL,
    Interaction: 600,
    Session: 3600,
    Grant: 86400,
    // An offline_access login has no fixed expiry in Keycloak; give it a long life here.
    RefreshToken: (ctx, token) => (token.scopes.has('offline_access') ? 30 * 86400 : refreshTokenTTL),
  },
  // Random, test-only cookie keys: no state survives the process.
  cookies: { keys: [crypto.randomUUID()] },
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
});
provider.proxy = false;

provider.on('grant.success', (ctx) => count(stats.grants, ctx.oidc.params.grant_type));
provider.on('grant.error', (ctx, err) => count(stats.errors, err.error || String(err)));
provider.on('grant.revoked', () => { stats.revocations += 1; });
provider.on('server_error', (ctx, err) => console.error('server_error', err));

// Keycloak's token response adds refresh_expires_in (seconds; 0 for offline tokens).
provider.use(async (ctx, next) => {
  await next();
  if (ctx.oidc?.route === 'token' && ctx.status === 200 && ctx.body?.refresh_token) {
    const offline = (ctx.body.scope || '').split(' ').includes('offline_access');
    ctx.body.refresh_expires_in = offline ? 0 : refreshTokenTTL;
  }
});

const handle = provider.callback();
server.on('request', (req, res) => {
  if (req.url === '/_test/stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(stats));
    return;
  }
  if (req.url === '/_test/reset' && req.method === 'POST') {
    stats.grants = {};
    stats.errors = {};
    stats.revocations = 0;
    delay.before = 0;
    delay.after = 0;
    res.end('{}');
    return;
  }
  if (req.url.startsWith('/_test/delay?') && req.method === 'POST') {
    const query = new URL(req.url, issuer).searchParams;
    delay.before = Number(query.get('before') || 0);
    delay.after = Number(query.get('after') || 0);
    res.end(JSON.stringify(delay));
    return;
  }
  if (req.method === 'POST' && req.url === `${PREFIX}/protocol/openid-connect/token`) {
    const { before, after } = delay;
    if (after) {
      // koa writes status and headers with the body, in res.end: holding end holds the answer.
      const end = res.end.bind(res);
      res.end = (...args) => {
        setTimeout(() => end(...args), after);
        return res;
      };
    }
    if (before) {
      setTimeout(() => route(req, res), before);
      return;
    }
  }
  route(req, res);
});

function route(req, res) {
  if (req.url === PREFIX || req.url.startsWith(`${PREFIX}/`)) {
    // Mount the provider under the realm path: oidc-provider derives its mount path from
    // originalUrl minus url.
    req.originalUrl = req.url;
    req.url = req.url.slice(PREFIX.length) || '/';
    handle(req, res);
    return;
  }
  res.statusCode = 404;
  res.end('not found');
}

process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
// Stop cleanly when the test runner closes our stdin or sends SIGTERM.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

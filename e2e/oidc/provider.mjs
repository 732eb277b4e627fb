// A real OpenID provider for Palisade's tests: npm `oidc-provider` on 127.0.0.1 and a free port,
// with one user per role group and its built-in development login pages (any password works for
// the users below; unknown users are refused).
//
// Environment: OIDC_CLIENT_SECRET (required), OIDC_REDIRECT_URI (Palisade's callback, required),
// OIDC_POST_LOGOUT_URI (optional), OIDC_GROUPS_FILE (optional: a JSON object of user → groups,
// read at every sign-in, so a test can move a user out of their groups). Prints one JSON line `{"issuer": "http://127.0.0.1:PORT"}` on
// stdout once it listens; stop it with SIGTERM.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const USERS = {
  viewer: ['palisade-viewers'],
  author: ['palisade-authors'],
  approver: ['palisade-approvers'],
  admin: ['palisade-admins'],
  outsider: ['somewhere-else'],
};

// A user's groups now: the groups file's entry when it has one, else the fixed list.
function groupsOf(id) {
  const file = process.env.OIDC_GROUPS_FILE;
  if (file) {
    try {
      const groups = JSON.parse(readFileSync(file, 'utf8'))[id];
      if (Array.isArray(groups)) return groups;
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
  }
  return USERS[id];
}

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'palisade',
    client_secret: required('OIDC_CLIENT_SECRET'),
    redirect_uris: [required('OIDC_REDIRECT_URI')],
    post_logout_redirect_uris: process.env.OIDC_POST_LOGOUT_URI ? [process.env.OIDC_POST_LOGOUT_URI] : [],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username', 'groups'],
    email: ['email'],
  },
  // Profile claims (and the groups) in the ID token itself, not only from userinfo.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  async findAccount(_ctx, id) {
    if (!USERS[id]) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          name: `Test ${id}`,
          preferred_username: id,
          email: `${id}@example.test`,
          groups: groupsOf(id),
        };
      },
    };
  },
  cookies: { keys: [Math.random().toString(36).slice(2)] },
});
provider.on('server_error', (_ctx, err) => process.stderr.write(`oidc-provider: ${err}\n`));

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));

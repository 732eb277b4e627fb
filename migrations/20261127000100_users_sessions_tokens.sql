-- People who sign in, their browser sessions, their API tokens, and the one-time secret of the
-- local bootstrap admin. Portable across SQLite and PostgreSQL: text ids, BIGINT milliseconds,
-- flags as BIGINT 0/1, NULL for "not yet" times.

-- One row per person: (issuer, subject) from the OIDC provider, or ('local', 'admin') for the
-- bootstrap admin. The role is refreshed from the group claims at every sign-in.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    issuer        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    email         TEXT NOT NULL DEFAULT '',
    role          TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    last_login_ms BIGINT NOT NULL DEFAULT 0,
    disabled      BIGINT NOT NULL DEFAULT 0,
    UNIQUE (issuer, subject)
);

-- Browser sessions. `id` is the SHA-256 of the cookie's session id (hex), so the table never holds a
-- usable cookie. `user_id` is NULL until sign-in (the session then only carries OIDC state).
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT,
    data         TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL,
    revoked_ms   BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

-- API tokens: `pal_<id>_<secret>`; only the SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL,
    last_used_ms BIGINT,
    revoked_ms   BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- The local admin's one-time secret, printed at start; only its SHA-256 is kept, and it works once.
CREATE TABLE bootstrap_secrets (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    used_ms     BIGINT
);

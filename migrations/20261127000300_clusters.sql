-- Clusters Palisade pushes policies to. Credentials are sealed (AES-256-GCM) with a key that lives
-- outside the database (secrets.key_file or PALISADE__SECRETS__KEY); this table never holds them
-- in the clear. Labels and capabilities are JSON objects.
CREATE TABLE clusters (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    environment     TEXT NOT NULL,
    labels          TEXT NOT NULL DEFAULT '{}',
    api_url         TEXT NOT NULL,
    credential_kind TEXT NOT NULL,
    credentials     TEXT NOT NULL,
    disabled        BIGINT NOT NULL DEFAULT 0,
    reconcile       BIGINT NOT NULL DEFAULT 0,
    health          TEXT NOT NULL DEFAULT 'unknown',
    k8s_version     TEXT NOT NULL DEFAULT '',
    capabilities    TEXT NOT NULL DEFAULT '{}',
    last_error      TEXT NOT NULL DEFAULT '',
    last_checked_ms BIGINT NOT NULL DEFAULT 0,
    created_ms      BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    updated_ms      BIGINT NOT NULL
);

CREATE INDEX clusters_environment ON clusters (environment);

-- Violations: what the clusters report back (their apiservers' audit webhook), what Palisade's own
-- scan of cluster objects finds, and what PolicyReports and Gatekeeper's constraint status say.

-- Each cluster posts audit events with its own token; only the SHA-256 of the secret is kept.
ALTER TABLE clusters ADD COLUMN ingest_token_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE clusters ADD COLUMN ingest_token_ms BIGINT NOT NULL DEFAULT 0;
-- Until when a server holds the cluster's next timed scan, so replicas do not scan it twice.
ALTER TABLE clusters ADD COLUMN scan_due_ms BIGINT NOT NULL DEFAULT 0;

-- One row per distinct violation: the same policy, resource, action and source on one cluster is
-- one row whose count and last-seen time grow. `id` is a digest of those fields, so an upsert needs
-- no second unique index.
CREATE TABLE violations (
    id          TEXT PRIMARY KEY,
    cluster_id  TEXT NOT NULL,
    -- The Palisade policy when the reported name is one Palisade deployed there; empty otherwise.
    policy_id   TEXT NOT NULL,
    -- The name the engine reported: a ValidatingAdmissionPolicy, a Constraint, `pod-security:<level>`,
    -- or an admission webhook.
    policy      TEXT NOT NULL,
    -- e.g. `apps/deployments`, `pods`
    resource    TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    uid         TEXT NOT NULL,
    -- audit | warn | deny
    action      TEXT NOT NULL,
    -- audit (the apiserver's audit webhook) | scan | report (PolicyReport, Gatekeeper status)
    source      TEXT NOT NULL,
    message     TEXT NOT NULL,
    first_ms    BIGINT NOT NULL,
    last_ms     BIGINT NOT NULL,
    count       BIGINT NOT NULL,
    -- 0 while open; when a scan or report no longer finds it, the time it stopped.
    resolved_ms BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX violations_last ON violations (last_ms, id);
CREATE INDEX violations_cluster ON violations (cluster_id, last_ms);
CREATE INDEX violations_policy ON violations (policy, last_ms);
CREATE INDEX violations_policy_id ON violations (policy_id, cluster_id, last_ms);
CREATE INDEX violations_namespace ON violations (namespace, last_ms);

-- Hourly counts per cluster, policy and action, for the charts and the promotion evidence: one
-- small row per hour instead of a scan over every violation.
CREATE TABLE violation_counts (
    bucket_ms  BIGINT NOT NULL,
    cluster_id TEXT NOT NULL,
    policy_id  TEXT NOT NULL,
    policy     TEXT NOT NULL,
    action     TEXT NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (bucket_ms, cluster_id, policy, action)
);

CREATE INDEX violation_counts_policy ON violation_counts (policy_id, bucket_ms);

-- The same counts per day, for the explorer's charts: a fortnight of a large fleet stays small.
CREATE TABLE violation_days (
    day_ms     BIGINT NOT NULL,
    cluster_id TEXT NOT NULL,
    policy     TEXT NOT NULL,
    action     TEXT NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (day_ms, cluster_id, policy, action)
);

-- Audit IDs already counted, so that a batch the apiserver sends again counts once. Only events
-- that produced a violation are kept; rows older than the retention are swept.
CREATE TABLE ingested_events (
    audit_id   TEXT PRIMARY KEY,
    cluster_id TEXT NOT NULL,
    at_ms      BIGINT NOT NULL
);

CREATE INDEX ingested_events_at ON ingested_events (at_ms);

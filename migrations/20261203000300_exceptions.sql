-- Exceptions: a policy left out for a namespace, a label selector or one named resource, with a
-- justification and an expiry, approved by someone other than the requester. Rendered into each
-- engine's own exclusion at the next rollout and honoured by local tests and scans.

CREATE TABLE policy_exceptions (
    id             TEXT PRIMARY KEY,
    policy_id      TEXT NOT NULL REFERENCES policies (id),
    -- namespaces | selector | resource
    scope_kind     TEXT NOT NULL,
    -- namespaces: JSON array of namespace names; empty otherwise.
    namespaces     TEXT NOT NULL,
    -- selector: JSON object of label key -> value (all must match); empty otherwise.
    labels         TEXT NOT NULL,
    -- resource: the object's kind, namespace (empty when cluster-scoped) and name.
    resource_kind  TEXT NOT NULL,
    resource_ns    TEXT NOT NULL,
    resource_name  TEXT NOT NULL,
    justification  TEXT NOT NULL,
    ticket         TEXT NOT NULL,
    expires_ms     BIGINT NOT NULL,
    -- requested | approved | rejected | revoked | expired (expired: recorded by the sweep; reads
    -- also derive it from expires_ms)
    state          TEXT NOT NULL,
    requester_id   TEXT NOT NULL,
    requester_name TEXT NOT NULL,
    decider_id     TEXT NOT NULL DEFAULT '',
    decider_name   TEXT NOT NULL DEFAULT '',
    decision_comment TEXT NOT NULL DEFAULT '',
    decided_ms     BIGINT NOT NULL DEFAULT 0,
    created_ms     BIGINT NOT NULL,
    updated_ms     BIGINT NOT NULL
);

CREATE INDEX policy_exceptions_policy ON policy_exceptions (policy_id, state, expires_ms);

-- The exceptions a rollout rendered, fixed when it was proposed (JSON array of exclusions), so the
-- executor applies exactly what the approvers saw.
CREATE TABLE rollout_exclusions (
    rollout_id TEXT PRIMARY KEY REFERENCES rollouts (id),
    exclusions TEXT NOT NULL
);

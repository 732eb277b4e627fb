-- Rollouts: a policy version moved to a mode on clusters, wave by wave, behind approvals. The state
-- lives here, not in memory, so a server killed mid-rollout resumes where it stopped, and replicas
-- sharing a PostgreSQL database claim each step once (a compare-and-set on the step's claim).

CREATE TABLE rollouts (
    id             TEXT PRIMARY KEY,
    -- apply | rollback | remove
    kind           TEXT NOT NULL,
    -- The rollout a rollback or removal undoes; empty for an apply.
    parent_id      TEXT NOT NULL,
    policy_id      TEXT NOT NULL REFERENCES policies (id),
    -- The policy version rolled out (0 for a removal).
    version        BIGINT NOT NULL,
    -- audit | warn | enforce
    mode           TEXT NOT NULL,
    -- JSON array of namespace names (Pod Security policies label these).
    namespaces     TEXT NOT NULL,
    -- pending_approval | applying | paused | applied | failed | rejected | aborted | rolled_back
    state          TEXT NOT NULL,
    -- The wave being approved, applied or soaked.
    current_wave   BIGINT NOT NULL,
    proposer_id    TEXT NOT NULL,
    proposer_name  TEXT NOT NULL,
    note           TEXT NOT NULL,
    created_ms     BIGINT NOT NULL,
    updated_ms     BIGINT NOT NULL
);

CREATE INDEX rollouts_state ON rollouts (state);
CREATE INDEX rollouts_policy ON rollouts (policy_id, created_ms);

CREATE TABLE rollout_waves (
    rollout_id          TEXT NOT NULL REFERENCES rollouts (id),
    position            BIGINT NOT NULL,
    name                TEXT NOT NULL,
    -- JSON: {"environment": "prod" | null, "labels": {...}}
    selector            TEXT NOT NULL,
    approvals_required  BIGINT NOT NULL,
    soak_secs           BIGINT NOT NULL,
    -- At most this many new violations during the soak (NULL: no threshold).
    violation_threshold BIGINT,
    -- waiting | approval | applying | soaking | done | failed | skipped
    state               TEXT NOT NULL,
    started_ms          BIGINT NOT NULL DEFAULT 0,
    finished_ms         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (rollout_id, position)
);

CREATE TABLE rollout_decisions (
    rollout_id TEXT NOT NULL REFERENCES rollouts (id),
    wave       BIGINT NOT NULL,
    user_id    TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    -- approve | reject
    decision   TEXT NOT NULL,
    comment    TEXT NOT NULL,
    at_ms      BIGINT NOT NULL,
    PRIMARY KEY (rollout_id, wave, user_id)
);

-- One cluster of one wave. A worker claims a step by writing its own claim token where the step is
-- pending (or its lease ran out); only the holder of the token may finish it.
CREATE TABLE rollout_steps (
    id           TEXT PRIMARY KEY,
    rollout_id   TEXT NOT NULL REFERENCES rollouts (id),
    wave         BIGINT NOT NULL,
    cluster_id   TEXT NOT NULL,
    cluster_name TEXT NOT NULL,
    -- pending | running | applied | failed | skipped
    state        TEXT NOT NULL,
    claim        TEXT NOT NULL DEFAULT '',
    lease_ms     BIGINT NOT NULL DEFAULT 0,
    -- Claims so far (a claim after a crash is the next attempt).
    attempts     BIGINT NOT NULL DEFAULT 0,
    -- Times the manifests were actually sent to the cluster.
    applies      BIGINT NOT NULL DEFAULT 0,
    -- What happened last, in the apiserver's own words when it refused.
    message      TEXT NOT NULL DEFAULT '',
    -- For rollback and removal steps: JSON {"apply": [...], "delete": [...]} fixed at proposal.
    plan         TEXT NOT NULL DEFAULT '',
    -- The deployment this step replaced (JSON, or empty when there was none), for rollback.
    previous     TEXT NOT NULL DEFAULT '',
    started_ms   BIGINT NOT NULL DEFAULT 0,
    finished_ms  BIGINT NOT NULL DEFAULT 0,
    UNIQUE (rollout_id, cluster_id)
);

CREATE INDEX rollout_steps_state ON rollout_steps (state, rollout_id, wave);

-- The desired state per cluster and policy: what Palisade last applied there, and whether the live
-- objects still match it.
CREATE TABLE deployments (
    cluster_id   TEXT NOT NULL,
    policy_id    TEXT NOT NULL,
    version      BIGINT NOT NULL,
    mode         TEXT NOT NULL,
    -- JSON array of the objects applied (as sent).
    manifests    TEXT NOT NULL,
    rollout_id   TEXT NOT NULL,
    applied_ms   BIGINT NOT NULL,
    -- unknown | in_sync | drifted
    drift        TEXT NOT NULL DEFAULT 'unknown',
    drift_detail TEXT NOT NULL DEFAULT '',
    checked_ms   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (cluster_id, policy_id)
);

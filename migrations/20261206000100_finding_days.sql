-- Open findings per cluster, counted by the day each was last seen: what the compliance page reads
-- instead of every open violation. A cluster's rows are recomputed from `violations` when its
-- `written` count has moved past `computed` (every write of violations moves it), so they are
-- never more than one recomputation behind and never drift.
CREATE TABLE finding_days (
    cluster_id TEXT NOT NULL,
    day_ms     BIGINT NOT NULL,
    policy_id  TEXT NOT NULL,
    policy     TEXT NOT NULL,
    message    TEXT NOT NULL,
    open       BIGINT NOT NULL
);

CREATE INDEX finding_days_cluster ON finding_days (cluster_id, day_ms);
CREATE INDEX finding_days_day ON finding_days (day_ms);

CREATE TABLE finding_clusters (
    cluster_id TEXT PRIMARY KEY,
    written    BIGINT NOT NULL,
    computed   BIGINT NOT NULL
);

-- Violations stored before this table existed: their clusters start out of date.
INSERT INTO finding_clusters (cluster_id, written, computed)
SELECT DISTINCT cluster_id, 1, 0 FROM violations;

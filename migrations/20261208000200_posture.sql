-- Posture on day one: every built-in library entry (both Pod Security levels among them) judged
-- against a cluster's inventory, read-only, before anything is deployed there. One report per
-- cluster, replaced by each assessment; the compliance page reads it as "assessed, not enforced".
CREATE TABLE posture_assessments (
    cluster_id  TEXT PRIMARY KEY,
    assessed_ms BIGINT NOT NULL,
    -- The report as JSON (`posture::Assessment`), decoded strictly.
    report      TEXT NOT NULL
);

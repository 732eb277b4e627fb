-- When each cluster first and last reported (an accepted audit batch or a complete scan). Evidence
-- for a rollout claims "no violations" only over the time a cluster was reporting; a cluster that
-- never reported is "no evidence", not "clean".
ALTER TABLE clusters ADD COLUMN reporting_since_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clusters ADD COLUMN reported_ms BIGINT NOT NULL DEFAULT 0;

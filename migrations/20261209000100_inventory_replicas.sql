-- The replicas keeping inventories, each renewing its row while it runs: how many there are is
-- what a replica divides the clusters by, so one that just started gets its share even before
-- it holds any cluster.
CREATE TABLE inventory_replicas (
    holder   TEXT PRIMARY KEY,
    until_ms BIGINT NOT NULL
);

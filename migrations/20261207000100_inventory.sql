-- Palisade's copy of the objects policies can match, per cluster (the inventory): kept by a list
-- and then a watch of each kind, by the one replica that holds the cluster's lease. Impact
-- previews and readiness read it; nothing else writes it.
CREATE TABLE inventory_objects (
    cluster_id TEXT NOT NULL,
    uid        TEXT NOT NULL,
    kind       TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    -- The object as the cluster holds it, without managedFields and the last-applied annotation.
    object     TEXT NOT NULL,
    -- When a list or a change last named it: a complete list forgets what it did not name.
    seen_ms    BIGINT NOT NULL,
    PRIMARY KEY (cluster_id, uid)
);

CREATE INDEX inventory_objects_kind ON inventory_objects (cluster_id, kind, seen_ms);

-- How complete each kind's copy is: when its last full list finished, when a change last
-- arrived, how many objects it holds, why it cannot be read (empty when it can) and, when the
-- cluster refused, the RBAC rule Palisade's credentials lack.
CREATE TABLE inventory_kinds (
    cluster_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    objects    BIGINT NOT NULL,
    listed_ms  BIGINT NOT NULL,
    changed_ms BIGINT NOT NULL,
    error      TEXT NOT NULL,
    needs      TEXT NOT NULL,
    PRIMARY KEY (cluster_id, kind)
);

-- Which replica keeps each cluster's inventory, until when: it renews the lease while it runs;
-- another replica takes over a cluster whose lease has run out.
CREATE TABLE inventory_leases (
    cluster_id TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    until_ms   BIGINT NOT NULL
);

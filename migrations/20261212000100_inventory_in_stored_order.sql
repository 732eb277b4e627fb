-- A cluster's inventory is read page by page in the order SQLite stores it (by rowid), so that
-- the objects of a page sit side by side in the table: an index on the cluster alone is, on
-- SQLite, an index on (cluster, rowid). PostgreSQL reads the inventory by uid through the
-- primary key and does not use this index.
CREATE INDEX inventory_objects_cluster ON inventory_objects (cluster_id);

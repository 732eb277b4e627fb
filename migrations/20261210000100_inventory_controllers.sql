-- Each object's controller (the owner reference it marks as controller; all empty when none),
-- so an impact can name the workload a Pod belongs to without reading the Pod's text.
ALTER TABLE inventory_objects ADD COLUMN owner_uid TEXT NOT NULL DEFAULT '';
ALTER TABLE inventory_objects ADD COLUMN owner_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE inventory_objects ADD COLUMN owner_name TEXT NOT NULL DEFAULT '';

-- What was kept before has no controller recorded. The inventory is a copy of the clusters: it
-- is forgotten here, and the keeper lists every kind again when it starts (the Clusters page says
-- "still listing" until it has).
DELETE FROM inventory_objects;
DELETE FROM inventory_kinds;

-- The audit trail also keeps the actor's display name at the time and the client address
-- ("who, when, what, from where").
ALTER TABLE audit_entries ADD COLUMN actor_name TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_entries ADD COLUMN remote_addr TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_entries_actor ON audit_entries (actor, at_ms);

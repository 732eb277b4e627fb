-- When a person signed in through single sign-on last had none of the mapped groups (0: they had
-- one). Until a sign-in with a mapped group clears it, their sessions and API tokens do nothing,
-- as when an admin disables them (`disabled`, which only an admin sets and clears).
ALTER TABLE users ADD COLUMN groups_lost_ms BIGINT NOT NULL DEFAULT 0;

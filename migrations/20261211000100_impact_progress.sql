-- How far each running impact has got, per person and the key their browser chose: the replica
-- computing it writes it a few times a second, so any replica can answer the browser's question.
-- A row whose computing replica stopped writing is ignored once `until_ms` has passed.
CREATE TABLE impact_progress (
    user_id      TEXT NOT NULL,
    progress_key TEXT NOT NULL,
    done         BIGINT NOT NULL,
    total        BIGINT NOT NULL,
    until_ms     BIGINT NOT NULL,
    PRIMARY KEY (user_id, progress_key)
);

-- Notifications waiting to be delivered to the webhook (Slack-compatible JSON): a transactional
-- outbox. A notice is written in the same transaction as what it announces, so it is sent if and
-- only if that happened; a worker claims due notices (a claim token with a lease, so replicas send
-- each once) and retries with backoff.
CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    -- approval_requested | rollout_failed | deny_spike
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    text       TEXT NOT NULL,
    -- A path in Palisade, e.g. /rollouts/<id>; empty when none.
    link       TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    next_ms    BIGINT NOT NULL,
    sent_ms    BIGINT NOT NULL DEFAULT 0,
    -- Given up on (too many attempts, or no webhook configured).
    failed_ms  BIGINT NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    claim      TEXT NOT NULL DEFAULT '',
    lease_ms   BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX notifications_due ON notifications (sent_ms, failed_ms, next_ms);

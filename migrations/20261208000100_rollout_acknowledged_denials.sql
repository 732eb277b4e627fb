-- How many workloads an `enforce` rollout would deny when it was proposed, as its proposer
-- acknowledged (NULL: not an enforce rollout, or proposed before impact was known).
ALTER TABLE rollouts ADD COLUMN acknowledged_denials BIGINT;

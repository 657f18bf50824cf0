-- The schema change: both columns become jsonb. ALTER ... TYPE rewrites each
-- table under an ACCESS EXCLUSIVE lock; on the big production table that
-- takes longer than the default statement_timeout, so this migration sets its
-- own. `snapguard rehearse` shows how long the lock is held.
-- snapguard:statement-timeout 30m
ALTER TABLE accounts ALTER COLUMN settings DROP DEFAULT;
ALTER TABLE accounts ALTER COLUMN settings TYPE jsonb USING settings::jsonb;
ALTER TABLE accounts ALTER COLUMN settings SET DEFAULT '{}';
ALTER TABLE events ALTER COLUMN payload TYPE jsonb USING payload::jsonb;

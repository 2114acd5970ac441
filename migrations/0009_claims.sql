-- Leases of background work, so that several obole processes sharing one database never
-- work on the same thing at once: the reconciliation sweep claims the attempts and refunds
-- it asks a gateway about (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: a guarded UPDATE),
-- and the claim lasts until claimed_until (UTC text, as every timestamp).
ALTER TABLE payments ADD COLUMN claimed_until TEXT;
ALTER TABLE payments ADD COLUMN claimed_by TEXT;
ALTER TABLE refunds ADD COLUMN claimed_until TEXT;
ALTER TABLE refunds ADD COLUMN claimed_by TEXT;

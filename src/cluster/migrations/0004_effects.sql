-- A request's other effects in the cluster.
--
-- A quarantined request is a request_entries row of kind 'Q', keyed by its quarantine reference.
-- An operator's release or delete, through any instance, takes the row for itself until
-- `claimed_until` (a minute: an instance that dies mid-release leaves it to the next one), then
-- deletes it once the request's final effects are durable.
ALTER TABLE request_entries ADD COLUMN claimed_until timestamptz;

-- Quarantine references are unique across instances: each instance start takes the next
-- number here, and hands out references from that number times 2^32 on.
CREATE SEQUENCE reference_blocks;

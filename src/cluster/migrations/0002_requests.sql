-- The request log's entries and the instances that own them.
--
-- Every instance, with the last time it said it was alive (a heartbeat every second). An
-- instance not seen for the lease (10 s) is taken for gone: a live one claims its entries.
CREATE TABLE instances (
    name      text PRIMARY KEY,
    last_seen timestamptz NOT NULL DEFAULT now()
);

-- The effects of accepted requests still open (a command waiting for its answer, a held
-- request waiting for its time), written in the transaction of their request's anti-replay
-- mark. Stored by kind, generically: `kind` is the request log's one-byte tag of the entry's
-- kind, `bytes` the record the kind's own store reads, so a new kind needs no schema change.
-- `key` is the entry's request (its RequestID); settling deletes the row.
CREATE TABLE request_entries (
    kind       text NOT NULL,
    key        text NOT NULL,
    owner      text NOT NULL,
    bytes      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key)
);
CREATE INDEX request_entries_owner ON request_entries (owner);

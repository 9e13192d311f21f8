-- Anomaly detection's counts, shared by every instance.
--
-- One row per instance, counted key (User, role, Service Reference Variant) and minute: how
-- many requests that instance counted for the key in the minute, added to in the request log's
-- batch transaction that commits their decisions (so a count is durable with its request, and
-- costs the batch one statement, not a round trip per request). Rows are per instance, so two
-- instances never write the same row; within an instance one writer has each User's requests,
-- so a row is only ever written by one transaction at a time.
--
-- `xid` is the transaction that wrote the row last: an instance reads the rows the others
-- wrote since its last look as those whose `xid` is at least the oldest transaction still
-- running at that look (`pg_snapshot_xmin`), so no commit is missed however the writers'
-- transactions interleave, and the row's `n` (a total, not an increment) is taken as the
-- difference from what it last saw. Rows older than the longest window (a day, and the hour it
-- started in) are deleted.
CREATE TABLE anomaly_counts (
    instance text NOT NULL,
    user_id  text NOT NULL,
    role     text NOT NULL,
    srv      text NOT NULL,
    minute   bigint NOT NULL,
    n        bigint NOT NULL,
    xid      xid8 NOT NULL,
    PRIMARY KEY (instance, user_id, role, srv, minute)
);
CREATE INDEX anomaly_counts_xid ON anomaly_counts (xid);
CREATE INDEX anomaly_counts_minute ON anomaly_counts (minute);

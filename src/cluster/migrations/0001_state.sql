-- The registers as cluster init loads them (the CSV files' columns, as text: the gateway parses
-- them with its own loaders when an instance takes a snapshot), the change log that follows them,
-- the DCC Alerts each change still owes, and the anti-replay high-water marks.

CREATE TABLE users (
    ord          bigserial PRIMARY KEY,
    user_id      text NOT NULL UNIQUE,
    party_id     text NOT NULL,
    party_name   text,
    roles        text NOT NULL,
    status       text NOT NULL,
    response_url text
);

CREATE TABLE devices (
    ord          bigserial PRIMARY KEY,
    device_id    text NOT NULL UNIQUE,
    device_type  text NOT NULL,
    status       text NOT NULL,
    mpxn         text,
    chf_id       text,
    csp_region   text NOT NULL,
    manufacturer text,
    model        text
);

CREATE TABLE registrations (
    ord            bigserial PRIMARY KEY,
    mpxn           text NOT NULL,
    role           text NOT NULL,
    user_id        text NOT NULL,
    effective_from text NOT NULL,
    effective_to   text
);

-- Users' certificates: 'xml_signing' (OU=87) and 'digital_signing' (critical commands), PEM.
CREATE TABLE user_certificates (
    ord    bigserial PRIMARY KEY,
    kind   text NOT NULL CHECK (kind IN ('xml_signing', 'digital_signing')),
    origin text NOT NULL,
    pem    text NOT NULL
);

-- Every batch of live changes, numbered without gaps in commit order (writers hold the
-- change-log lock while they append); 'registry' batches are registry::Change lists,
-- 'users' batches register::UserChange lists (JSON, as the embedded journals hold them).
CREATE TABLE change_log (
    seq     bigint PRIMARY KEY,
    at      bigint NOT NULL,
    kind    text NOT NULL CHECK (kind IN ('registry', 'users')),
    changes jsonb NOT NULL,
    origin  text NOT NULL
);

-- The DCC Alerts a registry batch calls for, owed until they are in an outbox: written in the
-- batch's own transaction, marked done once the alerts are out.
CREATE TABLE change_alerts (
    seq     bigint PRIMARY KEY REFERENCES change_log (seq),
    done_at timestamptz
);
CREATE INDEX change_alerts_owed ON change_alerts (seq) WHERE done_at IS NULL;

-- Each originator's last accepted counter, accepted at most once across all instances.
CREATE TABLE replay_marks (
    originator      text PRIMARY KEY,
    counter         bigint NOT NULL,
    pre_command_for text
);

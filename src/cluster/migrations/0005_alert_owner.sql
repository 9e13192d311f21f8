-- Who owes a change batch's DCC Alerts now: NULL while the instance that wrote the batch does
-- (the change log's `origin`); a live instance's name once it claimed them from a gone one.
ALTER TABLE change_alerts ADD COLUMN owner text;

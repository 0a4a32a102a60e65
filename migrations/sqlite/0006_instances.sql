-- Several instances on one database (PostgreSQL), and deliveries claimed before they go out.
--
-- * `leadership`: one row. `term` grows by one each time an instance becomes the active one;
--   the active instance's write transactions check it (PostgreSQL), so that an instance that
--   lost its lock without noticing yet cannot write once another took over. `holder` is the
--   active instance (instances.id), `since` when it became active.
-- * `instances`: every `essbot run` that opened this database, with its role and a heartbeat,
--   for `essbot status`. With SQLite there is only ever one (the file lock).
-- * `alert_delivery.claimed_by` / `claimed_at`: set, in the database, before an alert goes
--   out on a channel, cleared with its outcome. A claim is honoured for a few times the
--   channel's timeout; one left by an instance that died mid-send is then sent again (see
--   src/alerts/mod.rs, "exactly once").

CREATE TABLE leadership (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    term    INTEGER NOT NULL,
    holder  TEXT,
    since   TEXT
);
INSERT INTO leadership (id, term) VALUES (1, 0);

CREATE TABLE instances (
    id            TEXT NOT NULL PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    version       TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('active', 'standby', 'stopped')),
    started_at    TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL
);

ALTER TABLE alert_delivery ADD COLUMN claimed_by TEXT;
ALTER TABLE alert_delivery ADD COLUMN claimed_at TEXT;

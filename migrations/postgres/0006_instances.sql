-- Several instances on one database: mirrors migrations/sqlite/0006_instances.sql (see there).

CREATE TABLE leadership (
    id      BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    term    BIGINT NOT NULL,
    holder  TEXT COLLATE "C",
    since   TEXT COLLATE "C"
);
INSERT INTO leadership (id, term) VALUES (1, 0);

CREATE TABLE instances (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           BIGINT NOT NULL,
    version       TEXT NOT NULL,
    role          TEXT COLLATE "C" NOT NULL CHECK (role IN ('active', 'standby', 'stopped')),
    started_at    TEXT COLLATE "C" NOT NULL,
    heartbeat_at  TEXT COLLATE "C" NOT NULL
);

ALTER TABLE alert_delivery ADD COLUMN claimed_by TEXT COLLATE "C";
ALTER TABLE alert_delivery ADD COLUMN claimed_at TEXT COLLATE "C";

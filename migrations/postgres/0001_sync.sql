-- essbot store, first migration (PostgreSQL): mirrors migrations/sqlite/0001_sync.sql, same
-- version, same tables, same columns, same meaning. See that file for what each column holds.
--
-- Differences from the SQLite migration, all of them spelling:
-- * Integers are BIGINT (SQLite's INTEGER is 64-bit already).
-- * Surrogate keys are `BIGINT GENERATED ALWAYS AS IDENTITY` (SQLite: a rowid alias).
-- * Timestamps, keys and enumerations are `TEXT COLLATE "C"`: compared byte by byte as SQLite
--   compares TEXT, whatever the database's default collation, so that text order stays time
--   order for the fixed-width UTC timestamps.

CREATE TABLE dossiers (
    number                                  BIGINT NOT NULL PRIMARY KEY,
    demarche                                BIGINT NOT NULL,
    graphql_id                              TEXT,
    state                                   TEXT COLLATE "C",
    date_depot                              TEXT COLLATE "C",
    date_derniere_modification              TEXT COLLATE "C",
    date_derniere_modification_champs       TEXT COLLATE "C",
    date_derniere_modification_annotations  TEXT COLLATE "C",
    date_passage_en_instruction             TEXT COLLATE "C",
    date_traitement                         TEXT COLLATE "C",
    raw_json                                TEXT,
    content_hash                            TEXT COLLATE "C",
    champs_changed_at                       TEXT COLLATE "C",
    first_seen                              TEXT COLLATE "C" NOT NULL,
    last_synced                             TEXT COLLATE "C" NOT NULL,
    full_pass_seen                          BIGINT NOT NULL DEFAULT 0,
    deletion                                TEXT COLLATE "C" CHECK (deletion IN
        ('deleted', 'pending_deleted', 'disappeared')),
    deletion_reason                         TEXT,
    deleted_at                              TEXT COLLATE "C",
    check_requested_at                      TEXT COLLATE "C"
);
CREATE INDEX dossiers_by_demarche ON dossiers (demarche, deletion);
CREATE INDEX dossiers_to_check ON dossiers (demarche, check_requested_at);

CREATE TABLE dossier_history (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number       BIGINT NOT NULL REFERENCES dossiers (number),
    demarche     BIGINT NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL,
    from_state   TEXT COLLATE "C",
    to_state     TEXT COLLATE "C",
    at           TEXT COLLATE "C" NOT NULL,
    observed_at  TEXT COLLATE "C" NOT NULL
);
CREATE INDEX dossier_history_by_number ON dossier_history (number, id);

CREATE TABLE decode_errors (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    demarche     BIGINT NOT NULL,
    dossier_key  TEXT COLLATE "C" NOT NULL,
    number       BIGINT,
    field_path   TEXT COLLATE "C" NOT NULL,
    message      TEXT NOT NULL,
    raw_json     TEXT,
    first_seen   TEXT COLLATE "C" NOT NULL,
    last_seen    TEXT COLLATE "C" NOT NULL,
    occurrences  BIGINT NOT NULL DEFAULT 1,
    resolved_at  TEXT COLLATE "C",
    UNIQUE (demarche, dossier_key, field_path)
);
CREATE INDEX decode_errors_by_number ON decode_errors (number);

CREATE TABLE sync_state (
    demarche                   BIGINT NOT NULL PRIMARY KEY,
    watermark                  TEXT COLLATE "C",
    deleted_watermark          TEXT COLLATE "C",
    pending_deleted_watermark  TEXT COLLATE "C",
    pass_kind                  TEXT COLLATE "C" CHECK (pass_kind IN ('incremental', 'full')),
    pass_phase                 TEXT COLLATE "C"
        CHECK (pass_phase IN ('dossiers', 'deleted', 'pending_deleted')),
    pass_since                 TEXT COLLATE "C",
    pass_cursor                TEXT COLLATE "C",
    pass_started_at            TEXT COLLATE "C",
    full_pass_id               BIGINT NOT NULL DEFAULT 0,
    last_full_sync             TEXT COLLATE "C",
    last_success               TEXT COLLATE "C",
    last_error                 TEXT,
    last_error_at              TEXT COLLATE "C"
);

CREATE TABLE cycles (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at   TEXT COLLATE "C" NOT NULL,
    finished_at  TEXT COLLATE "C",
    outcome      TEXT COLLATE "C" NOT NULL DEFAULT 'running',
    error        TEXT,
    summary      TEXT
);

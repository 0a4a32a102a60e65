-- essbot store, first migration: the dossiers mirrored from DS, their history, decode errors,
-- the sync cursor of each démarche and the cycles run.
--
-- Conventions, shared with the PostgreSQL migrations that will mirror this folder (same versions,
-- same names):
-- * Timestamps are TEXT in UTC, RFC 3339 with six fractional digits and a `Z`
--   ('2026-07-12T08:30:00.000000Z'). The width is fixed, so text order is time order in both
--   backends. DS itself renders times at second precision (the fraction is then zero).
-- * Identifiers that DS hands out (dossier and démarche numbers) are 64-bit integers.
-- * Our own surrogate keys are `id INTEGER PRIMARY KEY` here (a rowid alias) and
--   `BIGINT GENERATED ALWAYS AS IDENTITY` in PostgreSQL; inserts read them with `RETURNING id`.
-- * Enumerations are TEXT spelled as in the code; only closed sets get a CHECK constraint, since
--   SQLite cannot alter one without rebuilding the table.
-- * Later tables (findings, outbox, events, alerts) come in new migrations and reference
--   `dossiers(number)`; nothing here is ever renamed.

-- One row per dossier ever seen (listed, or only known from a deletion record).
CREATE TABLE dossiers (
    number                                  INTEGER NOT NULL PRIMARY KEY,
    demarche                                INTEGER NOT NULL,
    -- GraphQL global id (base64 of `Dossier-<number>`), needed by mutations.
    graphql_id                              TEXT,
    -- DossierState as DS spells it (en_construction, en_instruction, accepte, refuse, sans_suite).
    state                                   TEXT,
    date_depot                              TEXT,
    date_derniere_modification              TEXT,
    date_derniere_modification_champs       TEXT,
    date_derniere_modification_annotations  TEXT,
    date_passage_en_instruction             TEXT,
    date_traitement                         TEXT,
    -- The dossier exactly as DS listed it last (JSON). NULL for a dossier only known as deleted.
    raw_json                                TEXT,
    -- SHA-256 of the applicant's content (champs and demandeur, volatile file URLs left out):
    -- our own annotation writes never move it.
    content_hash                            TEXT,
    -- DS's dateDerniereModificationChamps when the applicant's content last changed.
    champs_changed_at                       TEXT,
    first_seen                              TEXT NOT NULL,
    last_synced                             TEXT NOT NULL,
    -- Number of the last full reconciliation that listed this dossier (0: none yet).
    full_pass_seen                          INTEGER NOT NULL DEFAULT 0,
    -- NULL while DS lists the dossier.
    deletion                                TEXT CHECK (deletion IN
        ('deleted', 'pending_deleted', 'disappeared')),
    deletion_reason                         TEXT,
    deleted_at                              TEXT,
    -- Set when the dossier needs a (re)check, cleared by the pre-check once done: a check
    -- requested by a sync survives a crash before the pre-check ran.
    check_requested_at                      TEXT
);
CREATE INDEX dossiers_by_demarche ON dossiers (demarche, deletion);
CREATE INDEX dossiers_to_check ON dossiers (demarche, check_requested_at);

-- Append-only: what happened to each dossier, as observed by the sync.
CREATE TABLE dossier_history (
    id           INTEGER NOT NULL PRIMARY KEY,
    number       INTEGER NOT NULL REFERENCES dossiers (number),
    demarche     INTEGER NOT NULL,
    -- depose, state, champs, deleted, pending_deleted, disappeared, restored (store::HistoryKind);
    -- no CHECK, so that a later migration can add kinds without rebuilding the table.
    kind         TEXT NOT NULL,
    from_state   TEXT,
    to_state     TEXT,
    -- When it happened according to DS (or when we noticed, for `disappeared`).
    at           TEXT NOT NULL,
    observed_at  TEXT NOT NULL
);
CREATE INDEX dossier_history_by_number ON dossier_history (number, id);

-- Dossiers DS listed that could not be decoded: one row per dossier and field, kept after the
-- dossier decodes again (resolved_at) so that `essbot status` can tell what happened.
CREATE TABLE decode_errors (
    id           INTEGER NOT NULL PRIMARY KEY,
    demarche     INTEGER NOT NULL,
    -- The dossier number as text, or `id:<graphql id>` / `inconnu` when the number itself is
    -- unreadable: a portable UNIQUE key (NULLs are distinct in UNIQUE constraints).
    dossier_key  TEXT NOT NULL,
    number       INTEGER,
    field_path   TEXT NOT NULL,
    message      TEXT NOT NULL,
    raw_json     TEXT,
    first_seen   TEXT NOT NULL,
    last_seen    TEXT NOT NULL,
    occurrences  INTEGER NOT NULL DEFAULT 1,
    resolved_at  TEXT,
    UNIQUE (demarche, dossier_key, field_path)
);
CREATE INDEX decode_errors_by_number ON decode_errors (number);

-- Where the sync of each démarche stands. A pass (incremental or full) runs page by page; each
-- page's dossiers and the new cursor/watermarks are committed together, so a crash resumes at
-- the next page.
CREATE TABLE sync_state (
    demarche                   INTEGER NOT NULL PRIMARY KEY,
    -- Max dateDerniereModification committed: the next incremental pass's updatedSince.
    watermark                  TEXT,
    -- Max dateSupression committed, per deletion list: their deletedSince.
    deleted_watermark          TEXT,
    pending_deleted_watermark  TEXT,
    -- The pass in progress, if any.
    pass_kind                  TEXT CHECK (pass_kind IN ('incremental', 'full')),
    pass_phase                 TEXT CHECK (pass_phase IN ('dossiers', 'deleted', 'pending_deleted')),
    pass_since                 TEXT,
    pass_cursor                TEXT,
    pass_started_at            TEXT,
    -- Number of the last full reconciliation started (see dossiers.full_pass_seen).
    full_pass_id               INTEGER NOT NULL DEFAULT 0,
    last_full_sync             TEXT,
    last_success               TEXT,
    last_error                 TEXT,
    last_error_at              TEXT
);

-- One row per cycle (sync → pre-check → write back → milestones → alerts), for `essbot status`.
CREATE TABLE cycles (
    id           INTEGER NOT NULL PRIMARY KEY,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    -- running, ok, partial, failed, interrupted (store::CycleOutcome).
    outcome      TEXT NOT NULL DEFAULT 'running',
    error        TEXT,
    -- Free-form JSON counters of the cycle (dossiers synced, checked, written...).
    summary      TEXT
);

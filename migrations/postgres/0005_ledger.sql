-- The milestones ledger (PostgreSQL): mirrors migrations/sqlite/0005_ledger.sql. Append-only,
-- enforced by the database: SQLite's RAISE(ABORT) triggers become a trigger function that
-- raises, for UPDATE and DELETE row by row and for TRUNCATE (which SQLite does not have).

CREATE TABLE milestone_events (
    -- SQLite: INTEGER PRIMARY KEY AUTOINCREMENT (never reused); an identity never is either.
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project     BIGINT NOT NULL,
    slot        TEXT COLLATE "C" NOT NULL,
    kind        TEXT NOT NULL,
    effective   TEXT COLLATE "C" NOT NULL,
    source      TEXT COLLATE "C" NOT NULL CHECK (source IN ('ds', 'annotation', 'manual')),
    author      TEXT NOT NULL,
    recorded_at TEXT COLLATE "C" NOT NULL,
    reason      TEXT
);

CREATE INDEX milestone_events_project ON milestone_events (project, id);

CREATE FUNCTION milestone_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'milestone_events is append-only: record a correction instead';
    END IF;
    RAISE EXCEPTION 'milestone_events is append-only: record a retraction instead';
END;
$$;

CREATE TRIGGER milestone_events_no_update BEFORE UPDATE ON milestone_events
    FOR EACH ROW EXECUTE FUNCTION milestone_events_append_only();

CREATE TRIGGER milestone_events_no_delete BEFORE DELETE ON milestone_events
    FOR EACH ROW EXECUTE FUNCTION milestone_events_append_only();

CREATE TRIGGER milestone_events_no_truncate BEFORE TRUNCATE ON milestone_events
    FOR EACH STATEMENT EXECUTE FUNCTION milestone_events_append_only();

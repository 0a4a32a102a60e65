-- The milestones ledger: every dated fact of every ESS project, appended and never rewritten.
--
-- A correction is a new row for the same slot; the schedule takes, per slot, the row recorded
-- last. Rows come from DS (source 'ds'), from the suivi annotations staff fill ('annotation')
-- and from `essbot milestones record` ('manual'), each with its author, when essbot recorded
-- it (UTC, fixed-width RFC 3339 text, so that text order is time order) and why.
-- `kind` and `slot` are the JSON of milestones::EventKind and milestones::EventSlot; `slot` is
-- kept only to find the latest row of a slot without decoding every kind.

CREATE TABLE milestone_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The project: the number of its lettre d'intention dossier.
    project     INTEGER NOT NULL,
    slot        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    -- Civil date in Europe/Paris, YYYY-MM-DD.
    effective   TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('ds', 'annotation', 'manual')),
    author      TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    reason      TEXT
) STRICT;

CREATE INDEX milestone_events_project ON milestone_events (project, id);

-- Append-only, enforced by the database itself: an audit trail nobody can quietly edit.
CREATE TRIGGER milestone_events_no_update BEFORE UPDATE ON milestone_events
BEGIN
    SELECT RAISE(ABORT, 'milestone_events is append-only: record a correction instead');
END;

CREATE TRIGGER milestone_events_no_delete BEFORE DELETE ON milestone_events
BEGIN
    SELECT RAISE(ABORT, 'milestone_events is append-only: record a retraction instead');
END;

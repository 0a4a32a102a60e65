-- The pre-check: the last report of each dossier, and its findings per (dossier, rule) with when
-- each was first and last seen. Same conventions as 0001 (UTC RFC 3339 text timestamps).

-- One row per checked dossier: the report as written to DS, and what it was computed from.
CREATE TABLE checks (
    dossier      INTEGER NOT NULL PRIMARY KEY REFERENCES dossiers (number),
    demarche     INTEGER NOT NULL,
    -- SHA-256 of everything the report depends on: rulebook version, rules configuration,
    -- mapping, reference data, the other known projects, the dossier's content and state.
    -- The dossier is checked again only when it changes.
    check_key    TEXT NOT NULL,
    -- conforme, non_conforme, derogation_cpn
    verdict      TEXT NOT NULL,
    report_text  TEXT NOT NULL,
    report_json  TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    rulebook     TEXT NOT NULL,
    checked_at   TEXT NOT NULL
);
CREATE INDEX checks_by_demarche ON checks (demarche);

-- One row per (dossier, rule) ever raised. A rule that no longer fires keeps its row with
-- `resolved_at` set, so the history of a dossier's compliance stays readable.
CREATE TABLE findings (
    dossier      INTEGER NOT NULL REFERENCES dossiers (number),
    rule         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    -- JSON array of the rule's findings on this dossier (message and evidence).
    details      TEXT NOT NULL,
    first_seen   TEXT NOT NULL,
    last_seen    TEXT NOT NULL,
    resolved_at  TEXT,
    PRIMARY KEY (dossier, rule)
);

-- The descriptors of each watched démarche's active revision, as last fetched: the mapping is
-- resolved against them without asking DS every cycle (a quiet cycle costs one request per
-- démarche); they are fetched again at each full reconciliation and when a write reports an
-- unknown annotation.
CREATE TABLE demarche_descriptors (
    demarche     INTEGER NOT NULL PRIMARY KEY,
    descriptors  TEXT NOT NULL,
    fetched_at   TEXT NOT NULL
);

-- The pre-check (PostgreSQL): mirrors migrations/sqlite/0002_checks.sql.

CREATE TABLE checks (
    dossier      BIGINT NOT NULL PRIMARY KEY REFERENCES dossiers (number),
    demarche     BIGINT NOT NULL,
    check_key    TEXT COLLATE "C" NOT NULL,
    verdict      TEXT COLLATE "C" NOT NULL,
    report_text  TEXT NOT NULL,
    report_json  TEXT NOT NULL,
    fingerprint  TEXT COLLATE "C" NOT NULL,
    rulebook     TEXT COLLATE "C" NOT NULL,
    checked_at   TEXT COLLATE "C" NOT NULL
);
CREATE INDEX checks_by_demarche ON checks (demarche);

CREATE TABLE findings (
    dossier      BIGINT NOT NULL REFERENCES dossiers (number),
    rule         TEXT COLLATE "C" NOT NULL,
    severity     TEXT COLLATE "C" NOT NULL,
    details      TEXT NOT NULL,
    first_seen   TEXT COLLATE "C" NOT NULL,
    last_seen    TEXT COLLATE "C" NOT NULL,
    resolved_at  TEXT COLLATE "C",
    PRIMARY KEY (dossier, rule)
);

CREATE TABLE demarche_descriptors (
    demarche     BIGINT NOT NULL PRIMARY KEY,
    descriptors  TEXT NOT NULL,
    fetched_at   TEXT COLLATE "C" NOT NULL
);

-- Alert delivery ledger (PostgreSQL): mirrors migrations/sqlite/0004_alerts.sql (STRICT there;
-- PostgreSQL checks column types anyway).

CREATE TABLE alert_ledger (
    key          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    recipient    TEXT COLLATE "C" NOT NULL,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    dossier_url  TEXT,
    payload      TEXT NOT NULL,
    enqueued_at  TEXT COLLATE "C" NOT NULL,
    completed_at TEXT COLLATE "C"
);

CREATE INDEX alert_ledger_open ON alert_ledger (completed_at) WHERE completed_at IS NULL;

CREATE TABLE alert_delivery (
    alert_key       TEXT COLLATE "C" NOT NULL REFERENCES alert_ledger (key) ON DELETE CASCADE,
    channel         TEXT COLLATE "C" NOT NULL CHECK (channel IN ('email', 'webhook')),
    status          TEXT COLLATE "C" NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at TEXT COLLATE "C" NOT NULL,
    sent_at         TEXT COLLATE "C",
    PRIMARY KEY (alert_key, channel)
);

CREATE INDEX alert_delivery_due ON alert_delivery (status, next_attempt_at);

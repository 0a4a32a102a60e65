-- Alert delivery ledger: what must reach staff, and on which channel it already has.
--
-- An alert is stored once per key (project/milestone/kind, or digest/<role>/<date>); a second
-- enqueue of the same key is a no-op, which is what makes an alert "sent once" across cycles
-- and restarts. Each channel (email, webhook) has its own delivery row: a row becomes `sent`
-- only once that channel accepted the message, and failures only push `next_attempt_at` back.
-- Instants are UTC, written as fixed-width RFC 3339 text (YYYY-MM-DDTHH:MM:SS.ffffffZ) so that
-- comparing the text compares the instants.

CREATE TABLE alert_ledger (
    key          TEXT PRIMARY KEY NOT NULL,
    recipient    TEXT NOT NULL,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    dossier_url  TEXT,
    payload      TEXT NOT NULL,
    enqueued_at  TEXT NOT NULL,
    -- Set once every channel the alert was routed to has accepted it; a closed alert is never
    -- routed to a channel configured later.
    completed_at TEXT
) STRICT;

CREATE INDEX alert_ledger_open ON alert_ledger (completed_at) WHERE completed_at IS NULL;

CREATE TABLE alert_delivery (
    alert_key       TEXT NOT NULL REFERENCES alert_ledger (key) ON DELETE CASCADE,
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at TEXT NOT NULL,
    sent_at         TEXT,
    PRIMARY KEY (alert_key, channel)
) STRICT;

CREATE INDEX alert_delivery_due ON alert_delivery (status, next_attempt_at);

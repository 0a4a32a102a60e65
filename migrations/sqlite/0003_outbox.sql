-- The write-back outbox: every write essbot intends on a DS dossier (one annotation, one label
-- put or taken off, one message to the applicant) is recorded here BEFORE it is sent, under a
-- deterministic key (dossier, target, content hash), and its answer is recorded after.
-- Same conventions as 0001 (UTC RFC 3339 text timestamps, TEXT enumerations).
--
-- Lifecycle of a row: pending -> sending -> done | failed, or superseded when the intent for
-- that target changed before it was done. A row left `sending` (crash between the call and the
-- recording of its answer) is resolved at the next cycle by reading the dossier back from DS:
-- what is already there is marked done without being sent again.

CREATE TABLE outbox (
    id            INTEGER NOT NULL PRIMARY KEY,
    dossier       INTEGER NOT NULL REFERENCES dossiers (number),
    demarche      INTEGER NOT NULL,
    -- annotation:<key> (rapport, conforme, prochaine_echeance), label:<name>, unlabel:<name>,
    -- message.
    target        TEXT NOT NULL,
    -- SHA-256 of the target and of what is written there: the same intent has the same key.
    content_hash  TEXT NOT NULL,
    -- What is sent, as JSON (annotation id, input key and value; label id and name; body).
    payload       TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sending', 'done', 'failed', 'superseded')),
    -- Order of the intents of a dossier: the row with the highest value is the last one
    -- decided for its target (timestamps can tie).
    intent_seq    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    -- DS's refusal (payload errors) or the reason it could not be sent, in French.
    last_error    TEXT,
    -- What DS answered last, as JSON.
    answer        TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    sent_at       TEXT,
    done_at       TEXT,
    UNIQUE (dossier, target, content_hash)
);
CREATE INDEX outbox_by_status ON outbox (status);
CREATE INDEX outbox_by_dossier ON outbox (dossier, target, intent_seq);

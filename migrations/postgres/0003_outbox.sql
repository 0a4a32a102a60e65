-- The write-back outbox (PostgreSQL): mirrors migrations/sqlite/0003_outbox.sql.

CREATE TABLE outbox (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dossier       BIGINT NOT NULL REFERENCES dossiers (number),
    demarche      BIGINT NOT NULL,
    target        TEXT COLLATE "C" NOT NULL,
    content_hash  TEXT COLLATE "C" NOT NULL,
    payload       TEXT NOT NULL,
    status        TEXT COLLATE "C" NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sending', 'done', 'failed', 'superseded')),
    intent_seq    BIGINT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT,
    answer        TEXT,
    created_at    TEXT COLLATE "C" NOT NULL,
    updated_at    TEXT COLLATE "C" NOT NULL,
    sent_at       TEXT COLLATE "C",
    done_at       TEXT COLLATE "C",
    UNIQUE (dossier, target, content_hash)
);
CREATE INDEX outbox_by_status ON outbox (status);
CREATE INDEX outbox_by_dossier ON outbox (dossier, target, intent_seq);

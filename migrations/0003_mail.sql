-- Mail to send, written in the same transaction as what it tells; a worker sends it and
-- retries with backoff, so a failing SMTP server never loses a mail nor blocks a request.
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    dedup_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    recipient_id TEXT REFERENCES users (id),
    recipient_email TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);

-- Payment requests: a manager asks a member (or every member who owes) to pay, by a mail
-- carrying a personal link. Only the SHA-256 of the link's token is kept.
CREATE TABLE payment_requests (
    id TEXT PRIMARY KEY,
    member_id TEXT NOT NULL REFERENCES users (id),
    requested_by TEXT NOT NULL REFERENCES users (id),
    -- Names the form that sent it: sending the same form twice asks each member once.
    batch_key TEXT NOT NULL,
    -- What the member owed when the request was sent.
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    -- The gateway the manager chose; NULL: the member chooses.
    gateway TEXT,
    message TEXT,
    status TEXT NOT NULL CHECK (status IN ('sent', 'paid', 'cancelled', 'expired')),
    token_hash TEXT NOT NULL UNIQUE,
    -- The payment that settled it (through the link, or the member's basket).
    payment_id TEXT REFERENCES payments (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    paid_at TEXT,
    expires_at TEXT NOT NULL
);
CREATE UNIQUE INDEX payment_requests_batch_member ON payment_requests (batch_key, member_id);
CREATE INDEX payment_requests_status ON payment_requests (status, created_at);
CREATE INDEX payment_requests_member ON payment_requests (member_id, status);

-- The payment attempts started from a request's link (a member may try more than once).
CREATE TABLE payment_request_attempts (
    payment_id TEXT PRIMARY KEY REFERENCES payments (id),
    request_id TEXT NOT NULL REFERENCES payment_requests (id),
    created_at TEXT NOT NULL
);
CREATE INDEX payment_request_attempts_request ON payment_request_attempts (request_id, created_at);

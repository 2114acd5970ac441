-- Members management: contact details, a folded name for search and sorting, password
-- links (invitations and resets), throttling of reset requests, and CSV imports waiting for
-- confirmation.

ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE users ADD COLUMN address TEXT;
-- "last first", lower-cased and without accents, written by obole with the names
-- (accounts::name_key), so that search and sorting behave the same on SQLite and PostgreSQL.
ALTER TABLE users ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
UPDATE users SET name_key = LOWER(last_name || ' ' || first_name);
CREATE INDEX users_name_key ON users (name_key, id);

-- Links to set a password, mailed to the person. Only the SHA-256 of the token is kept;
-- a token is used once and expires.
CREATE TABLE password_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    purpose TEXT NOT NULL CHECK (purpose IN ('invitation', 'reset')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
CREATE INDEX password_tokens_user ON password_tokens (user_id, used_at);

-- Requests of a reset link, per address typed and per client address, for throttling.
CREATE TABLE password_requests (
    throttle_key TEXT NOT NULL,
    at_unix BIGINT NOT NULL
);
CREATE INDEX password_requests_key ON password_requests (throttle_key, at_unix);

-- An uploaded CSV file between its preview and its confirmation, keyed by a random id and
-- tied to the manager who uploaded it. status: 'pending' until imported once.
CREATE TABLE member_imports (
    id TEXT PRIMARY KEY,
    uploaded_by TEXT NOT NULL REFERENCES users (id),
    file_name TEXT NOT NULL,
    content TEXT NOT NULL,
    encoding TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'imported')),
    created_at TEXT NOT NULL,
    imported_at TEXT,
    imported_count BIGINT
);

-- Gateway settings an admin saved in the back office, over the configuration file and the
-- environment: offered to members or not, test mode, order, default, and the credentials as
-- one sealed blob (AES-256-GCM, base64 of nonce || ciphertext, the gateway id as associated
-- data) with the fingerprint of the key that sealed it. The key itself is never stored.
CREATE TABLE gateway_settings (
    gateway TEXT PRIMARY KEY,
    enabled BIGINT NOT NULL,
    test_mode BIGINT NOT NULL,
    position BIGINT NOT NULL,
    is_default BIGINT NOT NULL DEFAULT 0,
    credentials TEXT,
    key_id TEXT,
    revision BIGINT NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL,
    updated_by TEXT REFERENCES users (id)
);

-- The chart of accounts as data: charge categories and the income account each credits,
-- and the accounts receipts post to (gateway clearing, per gateway, and fees).
-- Basket lines keep storing a category's code; journal lines keep the account they were
-- posted to, so a change here affects new entries only.

CREATE TABLE categories (
    code TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    income_account TEXT NOT NULL,
    position BIGINT NOT NULL,
    active BIGINT NOT NULL DEFAULT 1
);

INSERT INTO categories (code, label, income_account, position, active) VALUES
    ('dues', 'Cotisation', '756', 1, 1),
    ('insurance', 'Assurance', '7068', 2, 1),
    ('outings', 'Sorties', '706', 3, 1),
    ('shirts', 'Tee-shirts', '707', 4, 1),
    ('other', 'Autres', '758', 5, 1);

-- Overrides of the configured accounts: 'fees', 'clearing' (every gateway) and
-- 'clearing:<gateway>' (one gateway). A missing row means the configuration's account.
CREATE TABLE account_settings (
    name TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX journal_entries_member ON journal_entries (member_id, entry_date);
CREATE INDEX journal_entries_payment ON journal_entries (payment_id);

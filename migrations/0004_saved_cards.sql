-- Saved cards: a member may agree, when paying, that the gateway keeps their card so that
-- later dues are charged without them. obole keeps only the gateway's references (customer,
-- payment method) and a label such as "Visa •••• 4242"; never card data.
CREATE TABLE saved_payment_methods (
    id TEXT PRIMARY KEY,
    member_id TEXT NOT NULL REFERENCES users (id),
    gateway TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    payment_method_id TEXT NOT NULL,
    label TEXT,
    -- The payment during which the member agreed, and when.
    consent_payment_id TEXT REFERENCES payments (id),
    consented_at TEXT NOT NULL,
    revoked BIGINT NOT NULL DEFAULT 0,
    revoked_at TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX saved_payment_methods_method ON saved_payment_methods (gateway, payment_method_id);
CREATE INDEX saved_payment_methods_member ON saved_payment_methods (member_id, revoked);

-- Payments whose member ticked "save my card" on the pay form.
CREATE TABLE card_save_requests (
    payment_id TEXT PRIMARY KEY REFERENCES payments (id),
    created_at TEXT NOT NULL
);

-- Off-session charges of a saved card (a manager's click or a due): one row per attempt.
CREATE TABLE off_session_charges (
    payment_id TEXT PRIMARY KEY REFERENCES payments (id),
    saved_method_id TEXT NOT NULL REFERENCES saved_payment_methods (id),
    -- NULL: charged automatically on a due date.
    requested_by TEXT REFERENCES users (id),
    outcome TEXT NOT NULL CHECK (outcome IN ('started', 'paid', 'pending', 'declined',
                                             'authentication_required', 'rejected', 'unknown')),
    detail TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- A charge may fall due on a date: members with a saved card are charged for it then.
ALTER TABLE basket_lines ADD COLUMN due_on TEXT;
CREATE INDEX basket_lines_due ON basket_lines (due_on);

-- Each due charge line is claimed once, by one runner of the job, whatever the races and
-- restarts: the primary key is the line. `payment_id` is set before the gateway is called;
-- NULL means nothing was owed any more (or it could not be charged), or the claim is being
-- set up ('claimed').
CREATE TABLE due_charge_claims (
    charge_line_id TEXT PRIMARY KEY REFERENCES basket_lines (id),
    member_id TEXT NOT NULL REFERENCES users (id),
    claim_id TEXT NOT NULL,
    payment_id TEXT REFERENCES payments (id),
    outcome TEXT NOT NULL CHECK (outcome IN ('claimed', 'charged', 'nothing_owed', 'not_charged')),
    created_at TEXT NOT NULL
);
CREATE INDEX due_charge_claims_claim ON due_charge_claims (claim_id);

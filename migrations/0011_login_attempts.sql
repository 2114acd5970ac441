-- A login attempt is written before its password is checked, so that guesses sent at the same
-- moment count against each other. `attempt` names the rows of one attempt: a successful login
-- removes its own, a failed one leaves them as the failure's record.
ALTER TABLE login_failures ADD COLUMN attempt TEXT;
CREATE INDEX login_failures_attempt ON login_failures (attempt);

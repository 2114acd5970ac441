-- The language a user chose for pages and mails (NULL: none chosen, French).
ALTER TABLE users ADD COLUMN locale TEXT;

-- Account deletion (DELETE /auth/account): the pending erasure of an account, worked through in
-- resumable steps (stripe → blobs → home → d1) by the request and then the housekeeping cron.
-- The row goes in the same transaction as the account itself (the last step), so nothing of the
-- account stays here once it is done. `anon_id` is the random id that replaces the account in
-- the accounting rows others' payouts depend on (revenue_events, payouts, plugins, reviews).
-- No foreign key: the row must outlive the account's email and password (scrubbed at once).
CREATE TABLE account_deletions (
    user_id      TEXT PRIMARY KEY,
    anon_id      TEXT NOT NULL,
    step         TEXT NOT NULL CHECK (step IN ('stripe', 'blobs', 'home', 'd1')),
    requested_at INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX account_deletions_by_age ON account_deletions (requested_at);

-- Operating the service (the admin console, `shared/src/admin.rs`): suspension and comped
-- tiers on the account, and the audit log of every administrator action.

-- Set while an administrator has the account suspended (every request, login and refresh is
-- refused); NULL otherwise.
ALTER TABLE users ADD COLUMN suspended_at INTEGER;
-- A tier granted by an administrator until `comp_until` (epoch ms, exclusive); the paid tier
-- applies again from then on. Both NULL, or both set.
ALTER TABLE users ADD COLUMN comp_tier TEXT CHECK (comp_tier IN ('pro', 'power', 'team'));
ALTER TABLE users ADD COLUMN comp_until INTEGER;

-- Who did what to whom, and when. `detail` holds the action's parameters (a comp's tier and
-- end, a review's decision), never a secret, token or password.
CREATE TABLE admin_audit (
    id        TEXT PRIMARY KEY,
    admin_id  TEXT NOT NULL,                          -- no foreign key: the log outlives accounts
    action    TEXT NOT NULL CHECK (action IN ('user_lookup', 'suspend', 'unsuspend', 'comp',
                                              'plugin_review')),
    target    TEXT,                                   -- a user id, a plugin id; NULL for none
    detail    TEXT,                                   -- JSON
    at        INTEGER NOT NULL
);
CREATE INDEX admin_audit_by_time ON admin_audit (at DESC, id);

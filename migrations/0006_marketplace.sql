-- Marketplace: plugins with reviewed versions, installations, ratings, purchases and payouts.
--
-- Replaces the first-draft marketplace tables of 0001, which no code ever wrote (so they are
-- empty): a plugin now has versions, each submitted with its manifest and package and reviewed
-- on its own, and the plugin shows its *live* version (the last approved one). Children are
-- dropped before their parents, so no foreign key is ever left dangling.
--
-- Counters (`install_count`, `rating_sum`, `rating_count`) are never incremented: every write
-- to installations or ratings recomputes them from their tables in the same transaction, so
-- they are exact under concurrency. Money is integer cents; periods are UTC months 'YYYY-MM'
-- (which sort chronologically as text).
DROP TABLE revenue_events;
DROP TABLE plugin_ratings;
DROP TABLE plugin_reviews;
DROP TABLE plugin_installations;
DROP TABLE plugins;

-- The developer's Stripe Connect account for payouts (the 0002 column under its final name).
-- Not unique: a developer naming someone else's account only pays that account, whereas a
-- unique index would let anyone lock the owner out of their own account by claiming it first.
DROP INDEX users_by_connect_account;
ALTER TABLE users RENAME COLUMN stripe_connect_account_id TO stripe_account_id;

-- One plugin. The live columns copy the live (approved) version's manifest for search and
-- sorting; they stay NULL until a version is approved. A plugin is `approved` exactly when it
-- has a live version; `rejected` when its only reviewed version was refused.
CREATE TABLE plugins (
    id              TEXT PRIMARY KEY,
    author_id       TEXT NOT NULL REFERENCES users (id),
    status          TEXT NOT NULL CHECK (status IN ('pending_review', 'approved', 'rejected')),
    live_version_id TEXT,                             -- plugin_versions.id of the live version
    name            TEXT,
    description     TEXT,
    category        TEXT,
    price_cents     INTEGER CHECK (price_cents >= 0),
    manifest        TEXT,                             -- live manifest as JSON
    install_count   INTEGER NOT NULL DEFAULT 0 CHECK (install_count >= 0),
    rating_sum      INTEGER NOT NULL DEFAULT 0 CHECK (rating_sum >= 0),
    rating_count    INTEGER NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    created_at      INTEGER NOT NULL,
    approved_at     INTEGER,                          -- approval of the live version
    updated_at      INTEGER NOT NULL,
    CHECK ((status = 'approved') = (live_version_id IS NOT NULL AND manifest IS NOT NULL))
);
CREATE INDEX plugins_catalog ON plugins (status, category);
CREATE INDEX plugins_by_author ON plugins (author_id);

-- Every submitted version, with the manifest that passed the checklist and its package in R2.
-- At most one version per plugin waits for review at a time.
CREATE TABLE plugin_versions (
    id               TEXT PRIMARY KEY,
    plugin_id        TEXT NOT NULL REFERENCES plugins (id),
    version          TEXT NOT NULL,                   -- semver, as in the manifest
    manifest         TEXT NOT NULL,                   -- JSON
    package_key      TEXT NOT NULL,
    package_checksum TEXT NOT NULL,                   -- lowercase hex SHA-256
    package_size     INTEGER NOT NULL CHECK (package_size >= 0),
    status           TEXT NOT NULL
                     CHECK (status IN ('pending_review', 'approved', 'rejected', 'superseded')),
    submitted_at     INTEGER NOT NULL,
    decided_at       INTEGER,
    UNIQUE (plugin_id, version)
);
CREATE UNIQUE INDEX plugin_versions_one_pending ON plugin_versions (plugin_id)
    WHERE status = 'pending_review';
CREATE INDEX plugin_versions_pending ON plugin_versions (status, submitted_at);

-- Every review decision, kept for audit. Recording it is what gates the decision: a version
-- is decided at most once.
CREATE TABLE plugin_reviews (
    id          TEXT PRIMARY KEY,
    plugin_id   TEXT NOT NULL REFERENCES plugins (id),
    version_id  TEXT NOT NULL REFERENCES plugin_versions (id),
    reviewer_id TEXT NOT NULL REFERENCES users (id),
    decision    TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    notes       TEXT NOT NULL,
    reviewed_at INTEGER NOT NULL
);
CREATE INDEX plugin_reviews_by_plugin ON plugin_reviews (plugin_id, reviewed_at);

-- Current installations, one per user and plugin.
CREATE TABLE plugin_installations (
    plugin_id    TEXT NOT NULL REFERENCES plugins (id),
    user_id      TEXT NOT NULL REFERENCES users (id),
    installed_at INTEGER NOT NULL,
    PRIMARY KEY (plugin_id, user_id)
);
CREATE INDEX plugin_installations_by_user ON plugin_installations (user_id);

-- Ratings of installed users, one per user and plugin (withdrawn on uninstall).
CREATE TABLE plugin_ratings (
    plugin_id  TEXT NOT NULL REFERENCES plugins (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    rating     INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (plugin_id, user_id)
);

-- One payout per developer and period: the row fixes the amount and the transfer's
-- idempotency key before the transfer, so retries send the same request.
CREATE TABLE payouts (
    id              TEXT PRIMARY KEY,
    developer_id    TEXT NOT NULL REFERENCES users (id),
    period          TEXT NOT NULL CHECK (period GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]'),
    amount_cents    INTEGER NOT NULL CHECK (amount_cents >= 0),
    destination     TEXT NOT NULL,                    -- Connect account (acct_…)
    idempotency_key TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'paid')),
    transfer_id     TEXT,                             -- tr_… once paid
    created_at      INTEGER NOT NULL,
    paid_at         INTEGER,
    UNIQUE (developer_id, period)
);

-- Paid installs: one purchase per buyer and plugin, split 70 % developer / 30 % platform.
-- `payout_id` links the event to the payout that paid its developer share.
CREATE TABLE revenue_events (
    id                    TEXT PRIMARY KEY,
    plugin_id             TEXT NOT NULL REFERENCES plugins (id),
    user_id               TEXT NOT NULL REFERENCES users (id),
    developer_id          TEXT NOT NULL REFERENCES users (id),
    amount_cents          INTEGER NOT NULL CHECK (amount_cents >= 0),
    developer_share_cents INTEGER NOT NULL CHECK (developer_share_cents >= 0),
    platform_share_cents  INTEGER NOT NULL CHECK (platform_share_cents >= 0),
    currency              TEXT NOT NULL,              -- ISO, lowercase
    stripe_payment_id     TEXT NOT NULL,
    period                TEXT NOT NULL               -- 'YYYY-MM' (UTC) of created_at
                          CHECK (period GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]'),
    payout_id             TEXT REFERENCES payouts (id),
    stripe_transfer_id    TEXT,
    created_at            INTEGER NOT NULL,
    UNIQUE (plugin_id, user_id),
    CHECK (developer_share_cents + platform_share_cents = amount_cents)
);
CREATE INDEX revenue_events_by_developer ON revenue_events (developer_id, period);

-- Adiuva Cloud API: the relational schema (auth, billing, storage metadata, marketplace).
-- No user content is stored here: blobs live client-encrypted in R2; this holds ids, sizes,
-- checksums and account data only. All timestamps are Unix epoch milliseconds; ids are UUIDs.

-- Accounts. `tier` is the source of truth for every gate.
CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    email              TEXT NOT NULL UNIQUE,          -- trimmed, lower-cased
    password_hash      TEXT NOT NULL,                 -- argon2id PHC string
    tier               TEXT NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'pro', 'power', 'team')),
    role               TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    stripe_customer_id TEXT UNIQUE,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

-- A login session: every rotation of its refresh token stays in one family, so reuse of a
-- rotated token can revoke them all at once.
CREATE TABLE refresh_families (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    revoke_reason TEXT CHECK (revoke_reason IN ('logout', 'logout_all', 'reuse'))
);
CREATE INDEX refresh_families_live_by_user ON refresh_families (user_id) WHERE revoked_at IS NULL;

-- Refresh tokens, stored only as SHA-256 hashes.
CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id  TEXT NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,                  -- lowercase hex SHA-256
    parent_id  TEXT REFERENCES refresh_tokens (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

-- Single-use WebSocket tickets (hashes only), ~30 s each.
CREATE TABLE ws_tickets (
    ticket_hash TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX ws_tickets_by_expiry ON ws_tickets (expires_at);

-- Stripe subscriptions. `last_event_created` orders webhook events so a late one never rolls
-- state back.
CREATE TABLE subscriptions (
    id                     TEXT PRIMARY KEY,
    user_id                TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    stripe_subscription_id TEXT NOT NULL UNIQUE,
    stripe_customer_id     TEXT,
    tier                   TEXT NOT NULL CHECK (tier IN ('pro', 'power', 'team')),
    status                 TEXT NOT NULL,             -- Stripe's: active, past_due, canceled, …
    seats                  INTEGER NOT NULL DEFAULT 1 CHECK (seats >= 1),
    current_period_end     INTEGER,
    cancel_at_period_end   INTEGER NOT NULL DEFAULT 0 CHECK (cancel_at_period_end IN (0, 1)),
    last_event_created     INTEGER NOT NULL DEFAULT 0,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
CREATE INDEX subscriptions_by_user ON subscriptions (user_id);

-- Stripe webhook events already processed (idempotency).
CREATE TABLE stripe_events (
    id           TEXT PRIMARY KEY,                    -- evt_…
    type         TEXT NOT NULL,
    created      INTEGER NOT NULL,                    -- the event's own timestamp (ms)
    processed_at INTEGER NOT NULL
);

-- Backups: metadata of client-encrypted blobs in R2.
CREATE TABLE backup_metadata (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    r2_key     TEXT NOT NULL UNIQUE,
    version    INTEGER NOT NULL,
    timestamp  INTEGER NOT NULL,                      -- the client's backup time
    checksum   TEXT NOT NULL,                         -- lowercase hex SHA-256
    size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
    created_at INTEGER NOT NULL
);
CREATE INDEX backup_metadata_by_user_time ON backup_metadata (user_id, created_at DESC);

-- Cloud records: metadata of client-encrypted blobs in R2. Deleted records stay as
-- tombstones (`deleted_at`) for 30 days so other devices sync the deletion.
CREATE TABLE storage_records (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    table_name TEXT NOT NULL,
    r2_key     TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
    version    INTEGER NOT NULL DEFAULT 1,            -- bumps on every write; feeds the ETag
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX storage_records_sync ON storage_records (user_id, updated_at, id);
CREATE INDEX storage_records_by_table ON storage_records (user_id, table_name, updated_at, id);
CREATE INDEX storage_records_tombstones ON storage_records (deleted_at) WHERE deleted_at IS NOT NULL;

-- Marketplace catalogue.
CREATE TABLE plugins (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL,
    version            TEXT NOT NULL,                 -- semver
    author_id          TEXT NOT NULL REFERENCES users (id),
    category           TEXT NOT NULL,
    permissions        TEXT NOT NULL DEFAULT '[]',    -- JSON array from the allowed set
    status             TEXT NOT NULL DEFAULT 'pending_review'
                       CHECK (status IN ('pending_review', 'approved', 'rejected')),
    price_cents        INTEGER NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
    r2_package_key     TEXT,
    package_checksum   TEXT,
    package_size_bytes INTEGER CHECK (package_size_bytes >= 0),
    install_count      INTEGER NOT NULL DEFAULT 0 CHECK (install_count >= 0),
    rating_sum         INTEGER NOT NULL DEFAULT 0,
    rating_count       INTEGER NOT NULL DEFAULT 0,
    avg_rating         REAL NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX plugins_listing ON plugins (status, category, avg_rating DESC);
CREATE INDEX plugins_by_installs ON plugins (status, install_count DESC);
CREATE INDEX plugins_by_newest ON plugins (status, created_at DESC);
CREATE INDEX plugins_by_author ON plugins (author_id);

CREATE TABLE plugin_installations (
    id           TEXT PRIMARY KEY,
    plugin_id    TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    installed_at INTEGER NOT NULL,
    UNIQUE (plugin_id, user_id)
);
CREATE INDEX plugin_installations_by_user ON plugin_installations (user_id);

-- Every review decision, kept for audit.
CREATE TABLE plugin_reviews (
    id          TEXT PRIMARY KEY,
    plugin_id   TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    reviewer_id TEXT NOT NULL REFERENCES users (id),
    decision    TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    notes       TEXT,
    reviewed_at INTEGER NOT NULL
);
CREATE INDEX plugin_reviews_by_plugin ON plugin_reviews (plugin_id, reviewed_at);

-- One rating per user per plugin.
CREATE TABLE plugin_ratings (
    plugin_id  TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rating     INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (plugin_id, user_id)
);

-- Paid installs: integer cents, 70 % developer / 30 % platform.
CREATE TABLE revenue_events (
    id                    TEXT PRIMARY KEY,
    plugin_id             TEXT NOT NULL REFERENCES plugins (id),
    user_id               TEXT NOT NULL REFERENCES users (id),
    amount_cents          INTEGER NOT NULL CHECK (amount_cents >= 0),
    developer_share_cents INTEGER NOT NULL CHECK (developer_share_cents >= 0),
    platform_share_cents  INTEGER NOT NULL CHECK (platform_share_cents >= 0),
    stripe_transfer_id    TEXT,
    created_at            INTEGER NOT NULL,
    CHECK (developer_share_cents + platform_share_cents = amount_cents)
);
CREATE INDEX revenue_events_by_plugin ON revenue_events (plugin_id, created_at);

-- Accounts people can trust: email verification, password reset, sessions with device names,
-- TOTP two-factor with recovery codes, and a security log. All timestamps are epoch ms.

-- When the address was proven (a verification link was followed); NULL until then. The admin
-- role of ADMIN_EMAILS takes effect only once this is set.
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;

-- Single-use tokens sent by email (verification 24 h, password reset 30 min) and the short
-- login step of two-factor accounts (5 min), stored only as SHA-256 hashes.
CREATE TABLE account_tokens (
    token_hash TEXT PRIMARY KEY,                     -- lowercase hex SHA-256
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password', 'mfa_login')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX account_tokens_by_user ON account_tokens (user_id, purpose);
CREATE INDEX account_tokens_by_expiry ON account_tokens (expires_at);

-- A session is a refresh-token family: the device it was opened from (X-Device-Name, at most
-- 64 characters) and when it was last refreshed.
ALTER TABLE refresh_families ADD COLUMN device_name TEXT;
ALTER TABLE refresh_families ADD COLUMN last_used_at INTEGER;

-- The security log of each account: what happened, when, from which device and network (the
-- client address truncated to /24 or /48). Never a password, code, token or full address.
CREATE TABLE security_events (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    device_name TEXT,
    network     TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX security_events_by_user ON security_events (user_id, created_at DESC);

-- TOTP two-factor: the secret sealed (XChaCha20-Poly1305 under a server key derived for this
-- purpose, bound to the user id), pending until confirmed with a code; the newest accepted
-- time step, so a code is never accepted twice.
CREATE TABLE user_mfa (
    user_id       TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret TEXT NOT NULL,                     -- base64(nonce ‖ ciphertext ‖ tag)
    enabled_at    INTEGER,                           -- NULL while pending
    last_step     INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

-- Recovery codes, stored only as SHA-256 of their normalised form; each works once.
CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   INTEGER,
    PRIMARY KEY (user_id, code_hash)
);

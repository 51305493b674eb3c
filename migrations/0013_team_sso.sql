-- Team single sign-on (OIDC, issue #21): a Team-tier team's identity provider, the email
-- domains it claims, the sign-ins in flight and the one-time codes that hand the app its
-- tokens. All timestamps are epoch ms.

-- One identity provider per team. The client secret is sealed (XChaCha20-Poly1305 under a
-- per-purpose server key, the team id as associated data); the endpoints come from the
-- issuer's discovery document, checked when the configuration was saved; `jwks` is the last
-- key set fetched (fetched again once on an unknown `kid`).
CREATE TABLE team_sso (
    team_id                TEXT PRIMARY KEY REFERENCES teams (id) ON DELETE CASCADE,
    issuer                 TEXT NOT NULL,
    client_id              TEXT NOT NULL,
    client_secret_sealed   TEXT NOT NULL,                 -- hex(nonce ‖ ciphertext ‖ tag)
    authorization_endpoint TEXT NOT NULL,
    token_endpoint         TEXT NOT NULL,
    jwks_uri               TEXT NOT NULL,
    jwks                   TEXT,
    required               INTEGER NOT NULL DEFAULT 0 CHECK (required IN (0, 1)),
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);

-- A domain belongs to at most one team.
CREATE TABLE team_sso_domains (
    domain  TEXT PRIMARY KEY,                      -- lower case, no trailing dot
    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE
);
CREATE INDEX team_sso_domains_by_team ON team_sso_domains (team_id);

-- A sign-in between /auth/sso/start and its callback: single use, 10 minutes. Only the
-- state's SHA-256 is stored; the nonce and the PKCE verifier never leave the server except
-- as the IdP must see them (the nonce, and the verifier at the code exchange).
CREATE TABLE sso_logins (
    state_hash TEXT PRIMARY KEY,                   -- lowercase hex SHA-256
    team_id    TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    nonce      TEXT NOT NULL,
    verifier   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sso_logins_by_expiry ON sso_logins (expires_at);

-- The callback's one-time code for POST /auth/sso/redeem: single use, 60 seconds.
CREATE TABLE sso_codes (
    code_hash  TEXT PRIMARY KEY,                   -- lowercase hex SHA-256
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX sso_codes_by_expiry ON sso_codes (expires_at);

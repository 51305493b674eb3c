-- Teams: a Team-tier subscription makes its buyer the owner of a team; members join by
-- invitation and have the Team tier in force while the team's subscription grants it.
-- Seats are the subscription's (`subscriptions.seats`, kept by Stripe's webhooks). All
-- timestamps are epoch ms.
--
-- For account deletion (migration 0010): every user reference here cascades. Deleting a
-- member deletes their `team_members` row (and invitations they created); deleting an owner
-- deletes the team with its members and invitations, so first collect the team's member ids
-- (`SELECT user_id FROM team_members WHERE team_id = …`) and push `SetAccount` to their homes
-- afterwards: they fall back to their own tier.

-- One team per owner; the subscription that pays for it (the newest Team subscription of
-- the owner).
CREATE TABLE teams (
    id                     TEXT PRIMARY KEY,
    owner_id               TEXT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    stripe_subscription_id TEXT NOT NULL UNIQUE,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);

-- Members, the owner included (the owner takes a seat). A user belongs to at most one team.
CREATE TABLE team_members (
    team_id   TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    role      TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE UNIQUE INDEX team_members_one_owner ON team_members (team_id) WHERE role = 'owner';

-- Invitations: single use, 7 days, the token stored only as SHA-256. `email` NULL: a link
-- invitation (any signed-in, verified account may use it once). An open invitation holds a
-- seat until it is used, deleted or expires.
CREATE TABLE team_invites (
    id         TEXT PRIMARY KEY,
    team_id    TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    email      TEXT,                                  -- normalised; NULL for a link
    role       TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    token_hash TEXT NOT NULL UNIQUE,                  -- lowercase hex SHA-256
    created_by TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    used_by    TEXT REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX team_invites_open ON team_invites (team_id, expires_at) WHERE used_at IS NULL;
CREATE UNIQUE INDEX team_invites_one_open_per_email ON team_invites (team_id, email)
    WHERE used_at IS NULL AND email IS NOT NULL;

-- Billing lifecycle: a past-due subscription keeps its tier until its period ends
-- (`tier_until`; NULL = no lapse), and plugin developers get a Stripe Connect account for
-- marketplace payouts.
ALTER TABLE users ADD COLUMN tier_until INTEGER;
ALTER TABLE users ADD COLUMN stripe_connect_account_id TEXT;
CREATE UNIQUE INDEX users_by_connect_account ON users (stripe_connect_account_id)
    WHERE stripe_connect_account_id IS NOT NULL;
CREATE INDEX subscriptions_by_user_recency ON subscriptions (user_id, last_event_created DESC);

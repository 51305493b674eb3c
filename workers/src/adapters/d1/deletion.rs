//! D1 side of account deletion ([`shared::accounts::deletion`]): the pending deletions and the
//! last step's transaction.
//!
//! The foreign keys that do not cascade from `users` are the marketplace's: installations and
//! ratings (deleted here, the counters recomputed first), plugins, purchases, payouts and
//! review decisions (moved to a placeholder account first, so the `users` row can go). The
//! placeholder row (`id` = the deletion's random `anon_id`, email `deleted:{anon_id}` — never a
//! valid address, so nobody can register or sign in as it —, password hash `!`, which verifies
//! nothing) is created only when such a row exists.

use async_trait::async_trait;
use serde::Deserialize;
use shared::accounts::deletion::{DeletionStore, PendingDeletion, Step};
use shared::domain::UserId;
use shared::ports::StoreError;

use super::{int, stmt, text, Db};
use crate::adapters::unavailable;

/// Deletions in D1.
pub struct D1DeletionStore(pub Db);

#[derive(Deserialize)]
struct Row {
    user_id: String,
    anon_id: String,
    step: String,
}

impl Row {
    fn into_pending(self) -> Result<PendingDeletion, StoreError> {
        let corrupt =
            |what: &str| StoreError::Unavailable(format!("corrupt account_deletions.{what}"));
        Ok(PendingDeletion {
            user: UserId::parse(&self.user_id).ok_or_else(|| corrupt("user_id"))?,
            anon: uuid::Uuid::try_parse(&self.anon_id).map_err(|_| corrupt("anon_id"))?,
            step: Step::parse(&self.step).ok_or_else(|| corrupt("step"))?,
        })
    }
}

/// Whether the account holds a row that others' accounting or audits depend on.
const HAS_KEPT_ROWS: &str = "(EXISTS (SELECT 1 FROM plugins WHERE author_id = ?1) \
     OR EXISTS (SELECT 1 FROM revenue_events WHERE user_id = ?1 OR developer_id = ?1) \
     OR EXISTS (SELECT 1 FROM payouts WHERE developer_id = ?1) \
     OR EXISTS (SELECT 1 FROM plugin_reviews WHERE reviewer_id = ?1))";

#[async_trait(?Send)]
impl DeletionStore for D1DeletionStore {
    async fn request(
        &self,
        user: UserId,
        anon: uuid::Uuid,
        now: i64,
    ) -> Result<PendingDeletion, StoreError> {
        let u = user.to_string();
        let record = stmt(
            &self.0,
            "INSERT INTO account_deletions (user_id, anon_id, step, requested_at, updated_at) \
             VALUES (?1, ?2, 'stripe', ?3, ?3) ON CONFLICT (user_id) DO NOTHING",
            &[text(&u), text(anon.to_string()), int(now)],
        )?;
        // The placeholder email carries the deletion's random id, never the account's; it is
        // not the anonymous row's `deleted:{anon_id}`, which the last step inserts while this
        // row still exists (emails are unique).
        let scrub = stmt(
            &self.0,
            "UPDATE users SET email = 'deleting:' || \
               (SELECT anon_id FROM account_deletions WHERE user_id = ?1), \
               password_hash = '!', updated_at = ?2 WHERE id = ?1",
            &[text(&u), int(now)],
        )?;
        let read = stmt(
            &self.0,
            "SELECT user_id, anon_id, step FROM account_deletions WHERE user_id = ?1",
            &[text(&u)],
        )?;
        let results = self
            .0
            .batch(vec![record, scrub, read])
            .await
            .map_err(|e| unavailable("recording an account deletion", &e))?;
        results
            .get(2)
            .ok_or_else(|| StoreError::Unavailable("no answer to the deletion read".into()))?
            .results::<Row>()
            .map_err(|e| unavailable("reading an account deletion", &e))?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Unavailable("the account deletion was not recorded".into()))?
            .into_pending()
    }

    async fn due(&self, limit: u32) -> Result<Vec<PendingDeletion>, StoreError> {
        stmt(
            &self.0,
            "SELECT user_id, anon_id, step FROM account_deletions \
             ORDER BY requested_at, user_id LIMIT ?1",
            &[int(i64::from(limit))],
        )?
        .all()
        .await
        .map_err(|e| unavailable("listing account deletions", &e))?
        .results::<Row>()
        .map_err(|e| unavailable("reading account deletions", &e))?
        .into_iter()
        .map(Row::into_pending)
        .collect()
    }

    async fn live_subscriptions(&self, user: UserId) -> Result<Vec<String>, StoreError> {
        #[derive(Deserialize)]
        struct Sub {
            stripe_subscription_id: String,
        }
        Ok(stmt(
            &self.0,
            "SELECT stripe_subscription_id FROM subscriptions \
             WHERE user_id = ?1 AND status NOT IN ('canceled', 'incomplete_expired')",
            &[text(user.to_string())],
        )?
        .all()
        .await
        .map_err(|e| unavailable("listing subscriptions", &e))?
        .results::<Sub>()
        .map_err(|e| unavailable("reading subscriptions", &e))?
        .into_iter()
        .map(|s| s.stripe_subscription_id)
        .collect())
    }

    async fn advance(&self, user: UserId, step: Step, now: i64) -> Result<(), StoreError> {
        stmt(
            &self.0,
            "UPDATE account_deletions SET step = ?2, updated_at = ?3 WHERE user_id = ?1",
            &[text(user.to_string()), text(step.as_str()), int(now)],
        )?
        .run()
        .await
        .map_err(|e| unavailable("recording a deletion step", &e))?;
        Ok(())
    }

    async fn erase(
        &self,
        user: UserId,
        anon: uuid::Uuid,
        now: i64,
    ) -> Result<Vec<UserId>, StoreError> {
        let u = text(user.to_string());
        // The members of the team the account owns lose its grant when it cascades away: read
        // before the transaction (a member joining in between is refreshed by the home's own
        // one-minute reload).
        let released = team_members_released(&self.0, user).await?;
        let a = text(anon.to_string());
        let t = int(now);
        let s = |sql: &str, args: &[wasm_bindgen::JsValue]| stmt(&self.0, sql, args);
        let statements = vec![
            // The placeholder the kept rows move to (only when there is one to keep).
            s(
                &format!(
                    "INSERT INTO users (id, email, password_hash, tier, role, created_at, \
                       updated_at) SELECT ?2, 'deleted:' || ?2, '!', 'free', 'user', ?3, ?3 \
                     WHERE {HAS_KEPT_ROWS} ON CONFLICT (id) DO NOTHING"
                ),
                &[u.clone(), a.clone(), t.clone()],
            )?,
            // Ratings and installations go; the plugins' counters are recomputed without them.
            s(
                "UPDATE plugins SET \
                   rating_sum = (SELECT COALESCE(SUM(rating), 0) FROM plugin_ratings r \
                     WHERE r.plugin_id = plugins.id AND r.user_id <> ?1), \
                   rating_count = (SELECT COUNT(*) FROM plugin_ratings r \
                     WHERE r.plugin_id = plugins.id AND r.user_id <> ?1), \
                   install_count = (SELECT COUNT(*) FROM plugin_installations i \
                     WHERE i.plugin_id = plugins.id AND i.user_id <> ?1), \
                   updated_at = ?2 \
                 WHERE id IN (SELECT plugin_id FROM plugin_ratings WHERE user_id = ?1 \
                   UNION SELECT plugin_id FROM plugin_installations WHERE user_id = ?1)",
                &[u.clone(), t.clone()],
            )?,
            s("DELETE FROM plugin_ratings WHERE user_id = ?1", std::slice::from_ref(&u))?,
            s(
                "DELETE FROM plugin_installations WHERE user_id = ?1",
                std::slice::from_ref(&u),
            )?,
            // The user's plugins are delisted: pending versions rejected, live ones superseded
            // (their packages are purged by the housekeeping after 30 days).
            s(
                "UPDATE plugin_versions SET \
                   status = CASE status WHEN 'pending_review' THEN 'rejected' ELSE 'superseded' END, \
                   decided_at = ?2 \
                 WHERE status IN ('pending_review', 'approved') \
                   AND plugin_id IN (SELECT id FROM plugins WHERE author_id = ?1)",
                &[u.clone(), t.clone()],
            )?,
            s(
                "UPDATE plugins SET status = 'rejected', live_version_id = NULL, manifest = NULL, \
                   author_id = ?2, updated_at = ?3 WHERE author_id = ?1",
                &[u.clone(), a.clone(), t.clone()],
            )?,
            // Accounting others depend on keeps its amounts under the random id.
            s(
                "UPDATE revenue_events SET user_id = ?2 WHERE user_id = ?1",
                &[u.clone(), a.clone()],
            )?,
            s(
                "UPDATE revenue_events SET developer_id = ?2 WHERE developer_id = ?1",
                &[u.clone(), a.clone()],
            )?,
            s(
                "UPDATE payouts SET developer_id = ?2 WHERE developer_id = ?1",
                &[u.clone(), a.clone()],
            )?,
            s(
                "UPDATE plugin_reviews SET reviewer_id = ?2 WHERE reviewer_id = ?1",
                &[u.clone(), a.clone()],
            )?,
            // The administrators' audit log (no foreign key: it outlives accounts) keeps what
            // was done, to the random id: the account as its target, or as the admin.
            s(
                "UPDATE admin_audit SET target = ?2 WHERE target = ?1",
                &[u.clone(), a.clone()],
            )?,
            s(
                "UPDATE admin_audit SET admin_id = ?2 WHERE admin_id = ?1",
                &[u.clone(), a.clone()],
            )?,
            // The team it owns goes with it (said outright, not left to the cascades): its
            // invitations and members, then the team; elsewhere, its membership and the
            // invitations it created.
            s(
                "DELETE FROM team_invites WHERE created_by = ?1 \
                   OR team_id IN (SELECT id FROM teams WHERE owner_id = ?1)",
                std::slice::from_ref(&u),
            )?,
            s(
                "DELETE FROM team_members WHERE user_id = ?1 \
                   OR team_id IN (SELECT id FROM teams WHERE owner_id = ?1)",
                std::slice::from_ref(&u),
            )?,
            s("DELETE FROM teams WHERE owner_id = ?1", std::slice::from_ref(&u))?,
            // The account; sessions, tokens, tickets, subscriptions, two-factor and the security
            // log cascade with it.
            s("DELETE FROM users WHERE id = ?1", std::slice::from_ref(&u))?,
            s(
                "DELETE FROM account_deletions WHERE user_id = ?1",
                std::slice::from_ref(&u),
            )?,
            // The walk over the homes must not keep the id as its cursor.
            s(
                "UPDATE housekeeping SET cursor = NULL WHERE job = 'homes' AND cursor = ?1",
                &[u],
            )?,
        ];
        self.0
            .batch(statements)
            .await
            .map_err(|e| unavailable("erasing an account", &e))?;
        Ok(released)
    }
}

/// The members other than `user` of the team `user` owns.
async fn team_members_released(db: &Db, user: UserId) -> Result<Vec<UserId>, StoreError> {
    #[derive(Deserialize)]
    struct Member {
        user_id: String,
    }
    let rows = stmt(
        db,
        "SELECT m.user_id FROM team_members m JOIN teams t ON t.id = m.team_id \
         WHERE t.owner_id = ?1 AND m.user_id <> ?1",
        &[text(user.to_string())],
    )?
    .all()
    .await
    .map_err(|e| unavailable("reading a deleted owner's team", &e))?
    .results::<Member>()
    .map_err(|e| unavailable("reading a deleted owner's team", &e))?;
    Ok(rows
        .iter()
        .filter_map(|m| UserId::parse(&m.user_id))
        .collect())
}

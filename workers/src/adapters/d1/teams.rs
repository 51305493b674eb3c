//! D1 adapter of teams: `teams`, `team_members`, `team_invites` (migration 0011), with seats
//! and status read from the team's row in `subscriptions`.
//!
//! The seat rule (members + open invitations ≤ seats) is one conditional statement each time
//! it could be broken — inserting an invitation, spending one — so D1's single writer makes it
//! exact under concurrency.

use async_trait::async_trait;
use serde::Deserialize;
use shared::domain::{Tier, UserId};
use shared::ports::{StoreError, TeamStore};
use shared::teams::{
    AcceptOutcome, InviteInsert, InviteRow, MemberRow, NewInvite, TeamRole, TeamRow,
};

use super::super::unavailable;
use super::{changes, int, is_unique_violation, opt_text, stmt, text, Db};

/// Teams in D1.
pub struct D1TeamStore(pub Db);

/// The team's subscription as a member's home needs it: its tier, status and period end.
pub(super) const TEAM_OF_USER: &str = "SELECT t.id, t.owner_id, t.stripe_subscription_id, \
       m.role, s.seats, s.tier, s.status, s.current_period_end, s.last_event_created \
     FROM team_members m JOIN teams t ON t.id = m.team_id \
     JOIN subscriptions s ON s.stripe_subscription_id = t.stripe_subscription_id \
     WHERE m.user_id = ?1";

/// What the team of user `u` (by the alias `u` of `users`) grants, as three columns
/// `team_tier`, `team_status`, `team_period_end` (all NULL outside a team), for
/// [`team_grant`]: the account loader and the admin lookup read them in their one statement.
pub(super) const TEAM_GRANT_COLUMNS: &str = "\
       (SELECT s.tier FROM team_members m JOIN teams t ON t.id = m.team_id JOIN subscriptions s \
         ON s.stripe_subscription_id = t.stripe_subscription_id WHERE m.user_id = u.id) \
         AS team_tier, \
       (SELECT s.status FROM team_members m JOIN teams t ON t.id = m.team_id JOIN subscriptions s \
         ON s.stripe_subscription_id = t.stripe_subscription_id WHERE m.user_id = u.id) \
         AS team_status, \
       (SELECT s.current_period_end FROM team_members m JOIN teams t ON t.id = m.team_id \
         JOIN subscriptions s ON s.stripe_subscription_id = t.stripe_subscription_id \
         WHERE m.user_id = u.id) AS team_period_end";

/// The grant of [`TEAM_GRANT_COLUMNS`] (the team subscription's lifecycle rule, as for a
/// subscriber: `shared::billing::model::grant`).
///
/// # Errors
/// A corrupt tier.
#[allow(clippy::cast_possible_truncation)]
pub(super) fn team_grant(
    tier: Option<&str>,
    status: Option<&str>,
    period_end: Option<f64>,
) -> Result<Option<shared::domain::TeamGrant>, StoreError> {
    let (Some(tier), Some(status)) = (tier, status) else {
        return Ok(None);
    };
    let tier =
        Tier::parse(tier).ok_or_else(|| StoreError::Unavailable("corrupt team tier".into()))?;
    let (tier, until) = shared::billing::model::grant(tier, status, period_end.map(|v| v as i64));
    Ok(Some(shared::domain::TeamGrant { tier, until }))
}

/// Seats of team `?T` (by the alias `t` of `teams`).
const SEATS_OF_T: &str = "(SELECT s.seats FROM subscriptions s \
     WHERE s.stripe_subscription_id = t.stripe_subscription_id)";

#[derive(Deserialize)]
pub(super) struct TeamOfUser {
    id: String,
    owner_id: String,
    stripe_subscription_id: String,
    role: String,
    seats: f64,
    tier: String,
    status: String,
    current_period_end: Option<f64>,
    last_event_created: f64,
}

impl TeamOfUser {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub(super) fn into_row(self) -> Result<(TeamRow, TeamRole), StoreError> {
        let corrupt = |what: &str| StoreError::Unavailable(format!("corrupt team row: {what}"));
        Ok((
            TeamRow {
                id: uuid::Uuid::try_parse(&self.id).map_err(|_| corrupt("id"))?,
                owner: UserId::parse(&self.owner_id).ok_or_else(|| corrupt("owner_id"))?,
                subscription: self.stripe_subscription_id,
                seats: self.seats.clamp(1.0, f64::from(u32::MAX)) as u32,
                tier: Tier::parse(&self.tier).ok_or_else(|| corrupt("tier"))?,
                status: self.status,
                current_period_end: self.current_period_end.map(|v| v as i64),
                last_event_created: self.last_event_created as i64,
            },
            TeamRole::parse(&self.role).ok_or_else(|| corrupt("role"))?,
        ))
    }
}

#[derive(Deserialize)]
struct MemberDbRow {
    user_id: String,
    email: String,
    role: String,
    joined_at: f64,
}

#[derive(Deserialize)]
struct InviteDbRow {
    id: String,
    team_id: String,
    email: Option<String>,
    role: String,
    created_at: f64,
    expires_at: f64,
    used_at: Option<f64>,
}

impl InviteDbRow {
    #[allow(clippy::cast_possible_truncation)]
    fn into_row(self) -> Result<InviteRow, StoreError> {
        let corrupt = |what: &str| StoreError::Unavailable(format!("corrupt invite row: {what}"));
        Ok(InviteRow {
            id: uuid::Uuid::try_parse(&self.id).map_err(|_| corrupt("id"))?,
            team_id: uuid::Uuid::try_parse(&self.team_id).map_err(|_| corrupt("team_id"))?,
            email: self.email,
            role: TeamRole::parse(&self.role).ok_or_else(|| corrupt("role"))?,
            created_at: self.created_at as i64,
            expires_at: self.expires_at as i64,
            used_at: self.used_at.map(|v| v as i64),
        })
    }
}

const INVITE_COLUMNS: &str = "id, team_id, email, role, created_at, expires_at, used_at";

#[derive(Deserialize)]
struct Id {
    user_id: String,
}

impl D1TeamStore {
    /// Every member of the team `user` owns or belongs to (`user` alone when in no team): the
    /// homes a billing change of that team must reach.
    ///
    /// # Errors
    /// D1 failures.
    pub async fn homes_of_team_of(&self, user: UserId) -> Result<Vec<UserId>, StoreError> {
        let rows = stmt(
            &self.0,
            "SELECT m.user_id FROM team_members m WHERE m.team_id IN \
               (SELECT id FROM teams WHERE owner_id = ?1 \
                UNION SELECT team_id FROM team_members WHERE user_id = ?1)",
            &[text(user.to_string())],
        )?
        .all()
        .await
        .map_err(|e| unavailable("reading team members", &e))?
        .results::<Id>()
        .map_err(|e| unavailable("reading team members", &e))?;
        let mut ids: Vec<UserId> = rows
            .iter()
            .filter_map(|r| UserId::parse(&r.user_id))
            .collect();
        if !ids.contains(&user) {
            ids.push(user);
        }
        Ok(ids)
    }
}

impl D1TeamStore {
    /// Whether team `team`'s subscription grants the Team tier at `now`.
    #[allow(clippy::cast_possible_truncation)]
    async fn is_live(&self, team: uuid::Uuid, now: i64) -> Result<bool, StoreError> {
        #[derive(Deserialize)]
        struct Sub {
            tier: String,
            status: String,
            current_period_end: Option<f64>,
        }
        let sub = stmt(
            &self.0,
            "SELECT s.tier, s.status, s.current_period_end FROM teams t JOIN subscriptions s \
               ON s.stripe_subscription_id = t.stripe_subscription_id WHERE t.id = ?1",
            &[text(team.to_string())],
        )?
        .first::<Sub>(None)
        .await
        .map_err(|e| unavailable("reading the team's subscription", &e))?;
        Ok(sub.is_some_and(|s| {
            let (tier, until) = shared::billing::model::grant(
                Tier::parse(&s.tier).unwrap_or(Tier::Free),
                &s.status,
                s.current_period_end.map(|v| v as i64),
            );
            tier == Tier::Team && until.is_none_or(|u| u > now)
        }))
    }
}

#[async_trait(?Send)]
impl TeamStore for D1TeamStore {
    async fn team_of(&self, user: UserId) -> Result<Option<(TeamRow, TeamRole)>, StoreError> {
        stmt(&self.0, TEAM_OF_USER, &[text(user.to_string())])?
            .first::<TeamOfUser>(None)
            .await
            .map_err(|e| unavailable("reading team", &e))?
            .map(TeamOfUser::into_row)
            .transpose()
    }

    #[allow(clippy::cast_possible_truncation)]
    async fn members(&self, team: uuid::Uuid) -> Result<Vec<MemberRow>, StoreError> {
        let rows = stmt(
            &self.0,
            "SELECT m.user_id, u.email, m.role, m.joined_at FROM team_members m \
             JOIN users u ON u.id = m.user_id WHERE m.team_id = ?1 \
             ORDER BY m.joined_at, m.user_id",
            &[text(team.to_string())],
        )?
        .all()
        .await
        .map_err(|e| unavailable("reading members", &e))?
        .results::<MemberDbRow>()
        .map_err(|e| unavailable("reading members", &e))?;
        rows.into_iter()
            .map(|r| {
                Ok(MemberRow {
                    user_id: UserId::parse(&r.user_id)
                        .ok_or_else(|| StoreError::Unavailable("corrupt member".into()))?,
                    email: r.email,
                    role: TeamRole::parse(&r.role)
                        .ok_or_else(|| StoreError::Unavailable("corrupt member role".into()))?,
                    joined_at: r.joined_at as i64,
                })
            })
            .collect()
    }

    async fn open_invites(&self, team: uuid::Uuid, now: i64) -> Result<Vec<InviteRow>, StoreError> {
        let sql = format!(
            "SELECT {INVITE_COLUMNS} FROM team_invites WHERE team_id = ?1 AND used_at IS NULL \
             AND expires_at > ?2 ORDER BY created_at, id"
        );
        stmt(&self.0, &sql, &[text(team.to_string()), int(now)])?
            .all()
            .await
            .map_err(|e| unavailable("reading invites", &e))?
            .results::<InviteDbRow>()
            .map_err(|e| unavailable("reading invites", &e))?
            .into_iter()
            .map(InviteDbRow::into_row)
            .collect()
    }

    async fn insert_invite(
        &self,
        invite: &NewInvite,
        now: i64,
    ) -> Result<InviteInsert, StoreError> {
        let r = &invite.row;
        let team = text(r.team_id.to_string());
        // Expired open invitations free their seats (and their address) first.
        let purge = stmt(
            &self.0,
            "DELETE FROM team_invites WHERE team_id = ?1 AND used_at IS NULL AND expires_at <= ?2",
            &[team.clone(), int(now)],
        )?;
        let insert = stmt(
            &self.0,
            &format!(
                "INSERT INTO team_invites (id, team_id, email, role, token_hash, created_by, \
                   created_at, expires_at) \
                 SELECT ?1, t.id, ?3, ?4, ?5, ?6, ?7, ?8 FROM teams t WHERE t.id = ?2 \
                   AND (SELECT COUNT(*) FROM team_members m WHERE m.team_id = t.id) \
                     + (SELECT COUNT(*) FROM team_invites i WHERE i.team_id = t.id \
                          AND i.used_at IS NULL AND i.expires_at > ?7) \
                     < {SEATS_OF_T}"
            ),
            &[
                text(r.id.to_string()),
                team,
                opt_text(r.email.as_deref()),
                text(r.role.as_str()),
                text(hex::encode(invite.token_hash)),
                text(invite.created_by.to_string()),
                int(r.created_at),
                int(r.expires_at),
            ],
        )?;
        match self.0.batch(vec![purge, insert]).await {
            Ok(results) => Ok(if results.get(1).map_or(0, changes) == 1 {
                InviteInsert::Inserted
            } else {
                InviteInsert::NoSeat
            }),
            Err(e) if is_unique_violation(&e) => Ok(InviteInsert::Duplicate),
            Err(e) => Err(unavailable("inserting invite", &e)),
        }
    }

    async fn invite_by_token(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<InviteRow>, StoreError> {
        let sql = format!("SELECT {INVITE_COLUMNS} FROM team_invites WHERE token_hash = ?1");
        stmt(&self.0, &sql, &[text(hex::encode(token_hash))])?
            .first::<InviteDbRow>(None)
            .await
            .map_err(|e| unavailable("reading invite", &e))?
            .map(InviteDbRow::into_row)
            .transpose()
    }

    async fn accept(
        &self,
        token_hash: &[u8; 32],
        user: UserId,
        now: i64,
    ) -> Result<AcceptOutcome, StoreError> {
        let hash = text(hex::encode(token_hash));
        let who = text(user.to_string());
        // Spent only while open and while the members leave a seat free…
        let spend = stmt(
            &self.0,
            &format!(
                "UPDATE team_invites SET used_at = ?2, used_by = ?3 \
                 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 \
                   AND (SELECT COUNT(*) FROM team_members m \
                          WHERE m.team_id = team_invites.team_id) \
                     < (SELECT {SEATS_OF_T} FROM teams t WHERE t.id = team_invites.team_id) \
                   AND EXISTS (SELECT 1 FROM teams t JOIN subscriptions s \
                          ON s.stripe_subscription_id = t.stripe_subscription_id \
                        WHERE t.id = team_invites.team_id AND s.tier = 'team' \
                          AND (s.status IN ('active', 'trialing') OR (s.status = 'past_due' \
                            AND (s.current_period_end IS NULL OR s.current_period_end > ?2))))"
            ),
            &[hash.clone(), int(now), who.clone()],
        )?;
        // …and the member row follows from the spent invitation, in the same transaction (a
        // user already in a team fails it on `team_members.user_id` and rolls back both).
        let join = stmt(
            &self.0,
            "INSERT INTO team_members (team_id, user_id, role, joined_at) \
             SELECT team_id, ?3, role, ?2 FROM team_invites \
             WHERE token_hash = ?1 AND used_by = ?3 AND used_at = ?2 RETURNING role",
            &[hash, int(now), who],
        )?;
        match self.0.batch(vec![spend, join]).await {
            Ok(results) => {
                if results.get(1).map_or(0, changes) == 1 {
                    #[derive(Deserialize)]
                    struct Role {
                        role: String,
                    }
                    let role = results[1]
                        .results::<Role>()
                        .ok()
                        .and_then(|r| r.into_iter().next())
                        .and_then(|r| TeamRole::parse(&r.role))
                        .unwrap_or(TeamRole::Member);
                    return Ok(AcceptOutcome::Joined(role));
                }
                // Not spent: closed meanwhile, the team's subscription ended, or no seat.
                let Some(invite) = self
                    .invite_by_token(token_hash)
                    .await?
                    .filter(|i| i.used_at.is_none() && i.expires_at > now)
                else {
                    return Ok(AcceptOutcome::NotOpen);
                };
                Ok(if self.is_live(invite.team_id, now).await? {
                    AcceptOutcome::NoSeat
                } else {
                    AcceptOutcome::Ended
                })
            }
            Err(e) if is_unique_violation(&e) => Ok(AcceptOutcome::AlreadyInTeam),
            Err(e) => Err(unavailable("accepting invite", &e)),
        }
    }

    async fn delete_invite(
        &self,
        team: uuid::Uuid,
        invite: uuid::Uuid,
    ) -> Result<bool, StoreError> {
        let r = stmt(
            &self.0,
            "DELETE FROM team_invites WHERE id = ?1 AND team_id = ?2 AND used_at IS NULL",
            &[text(invite.to_string()), text(team.to_string())],
        )?
        .run()
        .await
        .map_err(|e| unavailable("deleting invite", &e))?;
        Ok(changes(&r) == 1)
    }

    async fn remove_member(&self, team: uuid::Uuid, user: UserId) -> Result<bool, StoreError> {
        let r = stmt(
            &self.0,
            "DELETE FROM team_members WHERE team_id = ?1 AND user_id = ?2 AND role != 'owner'",
            &[text(team.to_string()), text(user.to_string())],
        )?
        .run()
        .await
        .map_err(|e| unavailable("removing member", &e))?;
        Ok(changes(&r) == 1)
    }

    async fn set_role(
        &self,
        team: uuid::Uuid,
        user: UserId,
        role: TeamRole,
    ) -> Result<bool, StoreError> {
        let r = stmt(
            &self.0,
            "UPDATE team_members SET role = ?3 WHERE team_id = ?1 AND user_id = ?2 \
               AND role != 'owner' AND ?3 != 'owner'",
            &[
                text(team.to_string()),
                text(user.to_string()),
                text(role.as_str()),
            ],
        )?
        .run()
        .await
        .map_err(|e| unavailable("setting role", &e))?;
        Ok(changes(&r) == 1)
    }
}

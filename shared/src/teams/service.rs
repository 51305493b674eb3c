//! The team service: the team view, invitations, members, roles and seats.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::{
    AcceptOutcome, InviteInsert, InviteRow, InviteTarget, MemberRow, NewInvite, TeamRole, TeamRow,
};
use crate::accounts::token_hash;
use crate::api::{
    InviteCreated, SeatsRequested, TeamInviteInfo, TeamJoined, TeamMemberInfo, TeamView,
};
use crate::domain::UserId;
use crate::error::{AppError, Upstream};
use crate::ports::{
    new_uuid, Clock, Mailer, OutgoingEmail, Payments, Random, SeatChange, TeamStore, UserStore,
};

/// How long an invitation stays open (ms): 7 days.
pub const INVITE_TTL_MS: i64 = 7 * 24 * 3_600_000;
/// The path of invitation links (`{base}/team-invite?token=…`); the app's page posts the token.
pub const INVITE_PATH: &str = "/team-invite";

/// The team service over its ports.
pub struct TeamService<'a> {
    /// Teams.
    pub store: &'a dyn TeamStore,
    /// Accounts (the accepting account's verified address).
    pub users: &'a dyn UserStore,
    /// Invitation mail.
    pub mailer: &'a dyn Mailer,
    /// Stripe (seat changes).
    pub payments: &'a dyn Payments,
    /// Time.
    pub clock: &'a dyn Clock,
    /// Tokens and ids.
    pub rng: &'a dyn Random,
    /// Where links point (`PUBLIC_BASE_URL`, else the request's origin).
    pub link_base: String,
}

fn invite_info(i: &InviteRow) -> TeamInviteInfo {
    TeamInviteInfo {
        id: i.id.to_string(),
        email: i.email.clone(),
        role: i.role,
        created_at: i.created_at,
        expires_at: i.expires_at,
    }
}

fn member_info(m: MemberRow) -> TeamMemberInfo {
    TeamMemberInfo {
        user_id: m.user_id.to_string(),
        email: m.email,
        role: m.role,
        joined_at: m.joined_at,
    }
}

fn invitation_mail(to: crate::domain::Email, url: &str) -> OutgoingEmail {
    OutgoingEmail {
        to,
        subject: "You are invited to an Adiuva team".to_owned(),
        text: format!(
            "You have been invited to join a team on Adiuva. Sign in with this address and \
             open this link within 7 days to accept:\n\n{url}\n\n\
             If you did not expect this, ignore this message."
        ),
        html: format!(
            "<p>You have been invited to join a team on Adiuva. Sign in with this address and \
             open this link within 7 days to accept:</p><p><a href=\"{url}\">{url}</a></p>\
             <p>If you did not expect this, ignore this message.</p>"
        ),
    }
}

impl TeamService<'_> {
    /// The caller's team and role, if `team_id` is it (404 otherwise, alike for another
    /// team's id and a missing one).
    async fn mine(&self, user: UserId, team_id: &str) -> Result<(TeamRow, TeamRole), AppError> {
        let (team, role) = self.store.team_of(user).await?.ok_or(AppError::NotFound)?;
        if uuid::Uuid::try_parse(team_id).ok() != Some(team.id) {
            return Err(AppError::NotFound);
        }
        Ok((team, role))
    }

    /// `GET /teams/current`.
    ///
    /// # Errors
    /// 404 for a user in no team.
    pub async fn current(&self, user: UserId) -> Result<TeamView, AppError> {
        let (team, role) = self.store.team_of(user).await?.ok_or(AppError::NotFound)?;
        let now = self.clock.now_ms();
        let members = self.store.members(team.id).await?;
        let invites = if role.manages() {
            self.store.open_invites(team.id, now).await?
        } else {
            Vec::new()
        };
        Ok(TeamView {
            id: team.id.to_string(),
            seats: team.seats,
            tier: if team.is_live(now) {
                crate::domain::Tier::Team
            } else {
                crate::domain::Tier::Free
            },
            role,
            members: members.into_iter().map(member_info).collect(),
            invites: invites.iter().map(invite_info).collect(),
        })
    }

    /// `POST /teams/{id}/invites`: stores the invitation (holding a seat), then mails an
    /// emailed one (a failed mail deletes it again). Answers the invitation and, for a link,
    /// its URL.
    ///
    /// # Errors
    /// 404 outside the team; 403 for a member, an admin inviting an admin, or an admin making
    /// a link; 409 when the subscription no longer grants the Team tier, the seats are full,
    /// the address is a member or already invited; 503 `email_not_configured`.
    pub async fn invite(
        &self,
        user: UserId,
        team_id: &str,
        target: InviteTarget,
        role: TeamRole,
    ) -> Result<InviteCreated, AppError> {
        let (team, my_role) = self.mine(user, team_id).await?;
        if !my_role.manages() {
            return Err(AppError::Forbidden("only the owner and admins invite"));
        }
        if my_role != TeamRole::Owner && (role == TeamRole::Admin || target == InviteTarget::Link) {
            return Err(AppError::Forbidden(
                "only the owner invites admins or creates links",
            ));
        }
        let now = self.clock.now_ms();
        if !team.is_live(now) {
            return Err(AppError::Conflict("the team's subscription has ended"));
        }
        let email = match &target {
            InviteTarget::Email(e) => {
                if !self.mailer.configured() {
                    return Err(AppError::EmailNotConfigured);
                }
                let members = self.store.members(team.id).await?;
                if members.iter().any(|m| m.email == e.as_str()) {
                    return Err(AppError::Conflict("that address is a member already"));
                }
                Some(e.clone())
            }
            InviteTarget::Link => None,
        };
        let mut bytes = [0u8; 32];
        self.rng.fill(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let row = InviteRow {
            id: new_uuid(self.rng),
            team_id: team.id,
            email: email.as_ref().map(|e| e.as_str().to_owned()),
            role,
            created_at: now,
            expires_at: now + INVITE_TTL_MS,
            used_at: None,
        };
        let invite = NewInvite {
            row: row.clone(),
            token_hash: token_hash(&token),
            created_by: user,
        };
        match self.store.insert_invite(&invite, now).await? {
            InviteInsert::Inserted => {}
            InviteInsert::NoSeat => {
                return Err(AppError::Conflict(
                    "every seat is taken by a member or an open invitation",
                ))
            }
            InviteInsert::Duplicate => {
                return Err(AppError::Conflict("that address has an open invitation"))
            }
        }
        let url = format!(
            "{}{INVITE_PATH}?token={token}",
            self.link_base.trim_end_matches('/')
        );
        tracing::info!(team = %team.id, invite = %row.id, by = %user, link = email.is_none(), "team invitation created");
        if let Some(to) = email {
            if let Err(e) = self.mailer.send(&invitation_mail(to, &url)).await {
                crate::accounts::log_send_failure(&e);
                self.store.delete_invite(team.id, row.id).await?;
                return Err(e.into_app_error(Upstream::Email));
            }
            return Ok(InviteCreated {
                invite: invite_info(&row),
                url: None,
            });
        }
        Ok(InviteCreated {
            invite: invite_info(&row),
            url: Some(url),
        })
    }

    /// `POST /teams/invites/accept`.
    ///
    /// # Errors
    /// 404 for an unknown, spent, expired or deleted invitation; 403 when the caller's address
    /// is unverified or not the invited one; 409 when the caller is in a team already, the
    /// seats are full or the team's subscription has ended.
    pub async fn accept(&self, user: UserId, token: &str) -> Result<TeamJoined, AppError> {
        let hash = token_hash(token);
        let now = self.clock.now_ms();
        let invite = self
            .store
            .invite_by_token(&hash)
            .await?
            .filter(|i| i.used_at.is_none() && i.expires_at > now)
            .ok_or(AppError::NotFound)?;
        let me = self
            .users
            .find_by_id(user)
            .await?
            .ok_or(AppError::Unauthorized)?;
        if me.email_verified_at.is_none() {
            return Err(AppError::Forbidden(
                "verify your email address before joining a team",
            ));
        }
        if invite
            .email
            .as_deref()
            .is_some_and(|e| e != me.email.as_str())
        {
            return Err(AppError::Forbidden(
                "this invitation is for another address",
            ));
        }
        if let Some((team, _)) = self.store.team_of(user).await? {
            if team.id == invite.team_id {
                return Err(AppError::Conflict("you are a member of this team already"));
            }
            return Err(AppError::Conflict("you are a member of another team"));
        }
        match self.store.accept(&hash, user, now).await? {
            AcceptOutcome::Joined(role) => {
                tracing::info!(team = %invite.team_id, invite = %invite.id, user_id = %user, "team invitation accepted");
                Ok(TeamJoined {
                    team_id: invite.team_id.to_string(),
                    role,
                })
            }
            AcceptOutcome::NotOpen => Err(AppError::NotFound),
            AcceptOutcome::NoSeat => Err(AppError::Conflict("every seat is taken")),
            AcceptOutcome::Ended => Err(AppError::Conflict("the team's subscription has ended")),
            AcceptOutcome::AlreadyInTeam => Err(AppError::Conflict("you are in a team already")),
        }
    }

    /// `DELETE /teams/{id}/invites/{invite_id}`.
    ///
    /// # Errors
    /// 404 outside the team or for no such open invitation; 403 for a member.
    pub async fn delete_invite(
        &self,
        user: UserId,
        team_id: &str,
        invite_id: &str,
    ) -> Result<(), AppError> {
        let (team, role) = self.mine(user, team_id).await?;
        if !role.manages() {
            return Err(AppError::Forbidden(
                "only the owner and admins delete invitations",
            ));
        }
        let id = uuid::Uuid::try_parse(invite_id).map_err(|_| AppError::NotFound)?;
        if self.store.delete_invite(team.id, id).await? {
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }

    /// `DELETE /teams/{id}/members/{user_id}`: removes a member (or the caller leaves).
    /// Returns the removed user, whose home must learn their tier at once.
    ///
    /// # Errors
    /// 404 outside the team or for a non-member; 403 for the owner (never removed) and for
    /// what the caller's role may not do.
    pub async fn remove_member(
        &self,
        user: UserId,
        team_id: &str,
        member: &str,
    ) -> Result<UserId, AppError> {
        let (team, my_role) = self.mine(user, team_id).await?;
        let target = UserId::parse(member).ok_or(AppError::NotFound)?;
        let members = self.store.members(team.id).await?;
        let their_role = members
            .iter()
            .find(|m| m.user_id == target)
            .map(|m| m.role)
            .ok_or(AppError::NotFound)?;
        if their_role == TeamRole::Owner {
            return Err(AppError::Forbidden("the owner cannot be removed"));
        }
        let allowed = target == user
            || my_role == TeamRole::Owner
            || (my_role == TeamRole::Admin && their_role == TeamRole::Member);
        if !allowed {
            return Err(AppError::Forbidden("your role cannot remove this member"));
        }
        if !self.store.remove_member(team.id, target).await? {
            return Err(AppError::NotFound);
        }
        tracing::info!(team = %team.id, user_id = %target, by = %user, "team member removed");
        Ok(target)
    }

    /// `PUT /teams/{id}/members/{user_id}` (the owner only).
    ///
    /// # Errors
    /// 404 outside the team or for a non-member; 403 for anyone but the owner and for the
    /// owner's own role.
    pub async fn set_role(
        &self,
        user: UserId,
        team_id: &str,
        member: &str,
        role: TeamRole,
    ) -> Result<TeamMemberInfo, AppError> {
        let (team, my_role) = self.mine(user, team_id).await?;
        let target = UserId::parse(member).ok_or(AppError::NotFound)?;
        if my_role != TeamRole::Owner {
            return Err(AppError::Forbidden("only the owner changes roles"));
        }
        if target == user {
            return Err(AppError::Forbidden("the owner's role does not change"));
        }
        if !self.store.set_role(team.id, target, role).await? {
            return Err(AppError::NotFound);
        }
        let m = self
            .store
            .members(team.id)
            .await?
            .into_iter()
            .find(|m| m.user_id == target)
            .ok_or(AppError::NotFound)?;
        Ok(member_info(m))
    }

    /// `PUT /teams/{id}/seats` (the owner only): one idempotent Stripe call; the seats change
    /// when Stripe's webhook confirms it.
    ///
    /// # Errors
    /// 404 outside the team; 403 for anyone but the owner; 409 below the members and open
    /// invitations, or when the subscription has ended; 502/503 when Stripe fails.
    pub async fn set_seats(
        &self,
        user: UserId,
        team_id: &str,
        seats: u32,
    ) -> Result<SeatsRequested, AppError> {
        let (team, role) = self.mine(user, team_id).await?;
        if role != TeamRole::Owner {
            return Err(AppError::Forbidden("only the owner changes seats"));
        }
        let now = self.clock.now_ms();
        if !team.is_live(now) {
            return Err(AppError::Conflict("the team's subscription has ended"));
        }
        let members = self.store.members(team.id).await?.len();
        let invites = self.store.open_invites(team.id, now).await?.len();
        let in_use = u32::try_from(members + invites).unwrap_or(u32::MAX);
        if seats < in_use {
            return Err(AppError::Conflict(
                "fewer seats than members and open invitations: remove some first",
            ));
        }
        let change = SeatChange {
            subscription_id: team.subscription.clone(),
            seats,
            idempotency_key: format!(
                "team-seats:{}:{}:{seats}",
                team.subscription, team.last_event_created
            ),
        };
        self.payments
            .update_seats(&change)
            .await
            .map_err(|e| e.into_app_error(Upstream::Payments))?;
        tracing::info!(team = %team.id, from = team.seats, to = seats, "seat change requested");
        Ok(SeatsRequested {
            seats: team.seats,
            requested: seats,
        })
    }
}

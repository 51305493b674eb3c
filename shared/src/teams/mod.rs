//! Teams: a Team-tier subscription makes its buyer the owner of a team whose members have the
//! Team tier in force while the subscription grants it.
//!
//! ## Rules
//! - Roles: one `owner` (the buyer; billing; never removed, never demoted), `admin`, `member`.
//!   The owner takes a seat. A user belongs to at most one team.
//! - Seats are the subscription's. **Members + open invitations ≤ seats**, enforced by the
//!   single conditional statement that inserts an invitation (and the one that spends it), so
//!   two racing invitations for the last seat let exactly one through.
//! - Invitations: 256-bit tokens stored only as SHA-256, single use, 7 days. An emailed one
//!   may be accepted only by a signed-in account whose *verified* address is the invited one;
//!   a link invitation (the owner only) by any signed-in account with a verified address.
//! - Who may do what: invite by email — owner, admin (admin invitations: owner only); link
//!   invitations, roles, seats — owner only; delete an invitation — owner, admin; remove a
//!   member — owner (anyone but themself), admin (members only), anyone (themself: leaving)
//!   except the owner. Another team's id answers 404 like a missing one.

mod service;
pub mod sso;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use service::{TeamService, INVITE_PATH, INVITE_TTL_MS};

use crate::domain::{Email, Tier, UserId};

/// A role in a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TeamRole {
    /// The buyer: billing, roles, seats, link invitations.
    Owner,
    /// Invites members, removes members.
    Admin,
    /// A member.
    Member,
}

impl TeamRole {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Owner => "owner",
            TeamRole::Admin => "admin",
            TeamRole::Member => "member",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [TeamRole::Owner, TeamRole::Admin, TeamRole::Member]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// Owner or admin.
    pub fn manages(self) -> bool {
        matches!(self, TeamRole::Owner | TeamRole::Admin)
    }
}

/// Whom an invitation is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteTarget {
    /// This address (the accepting account's verified email must be it).
    Email(Email),
    /// Anyone signed in with a verified address who holds the link.
    Link,
}

/// A team as stored, with its subscription's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRow {
    /// The team's id.
    pub id: uuid::Uuid,
    /// The owner.
    pub owner: UserId,
    /// The subscription paying for it (`sub_…`).
    pub subscription: String,
    /// The subscription's seats.
    pub seats: u32,
    /// The subscription's tier.
    pub tier: Tier,
    /// The subscription's Stripe status.
    pub status: String,
    /// The subscription's current period end (epoch ms).
    pub current_period_end: Option<i64>,
    /// `created` of the last event applied to the subscription (epoch ms).
    pub last_event_created: i64,
}

impl TeamRow {
    /// What the team's subscription grants its members (tier, lapse).
    pub fn grant(&self) -> (Tier, Option<i64>) {
        crate::billing::model::grant(self.tier, &self.status, self.current_period_end)
    }

    /// Whether the subscription grants the Team tier at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        let (tier, until) = self.grant();
        tier == Tier::Team && until.is_none_or(|u| u > now)
    }
}

/// A member as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The member.
    pub user_id: UserId,
    /// Their address.
    pub email: String,
    /// Their role.
    pub role: TeamRole,
    /// Joined (epoch ms).
    pub joined_at: i64,
}

/// An invitation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRow {
    /// Its id.
    pub id: uuid::Uuid,
    /// The team.
    pub team_id: uuid::Uuid,
    /// The invited address (`None`: a link).
    pub email: Option<String>,
    /// The role it grants.
    pub role: TeamRole,
    /// Created (epoch ms).
    pub created_at: i64,
    /// Expires (epoch ms).
    pub expires_at: i64,
    /// Spent (epoch ms).
    pub used_at: Option<i64>,
}

/// A new invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvite {
    /// Its row (unused).
    pub row: InviteRow,
    /// SHA-256 of its token.
    pub token_hash: [u8; 32],
    /// Who created it.
    pub created_by: UserId,
}

/// What inserting an invitation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteInsert {
    /// Stored: it holds a seat now.
    Inserted,
    /// Members + open invitations already fill the seats (or the team is gone).
    NoSeat,
    /// The address already has an open invitation to this team.
    Duplicate,
}

/// What accepting an invitation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// Joined with this role.
    Joined(TeamRole),
    /// The invitation is spent, expired or deleted.
    NotOpen,
    /// The members fill the seats.
    NoSeat,
    /// The team's subscription no longer grants the Team tier.
    Ended,
    /// The account is in a team already.
    AlreadyInTeam,
}

//! Team bodies (`/teams/...`).

use serde::{Deserialize, Serialize};

use crate::domain::{Email, Tier};
use crate::error::{AppError, FieldError};
use crate::teams::{InviteTarget, TeamRole};

/// `GET /teams/current`: the caller's team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamView {
    /// The team's id.
    pub id: String,
    /// Seats of the team's subscription (members plus open invitations never exceed them).
    pub seats: u32,
    /// The tier the team's subscription grants its members now (`team`, or `free` once it
    /// ended).
    pub tier: Tier,
    /// The caller's role.
    pub role: TeamRole,
    /// Every member, the owner included, oldest first.
    pub members: Vec<TeamMemberInfo>,
    /// Open invitations (shown to the owner and admins only; empty for members).
    pub invites: Vec<TeamInviteInfo>,
}

/// One member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamMemberInfo {
    /// The member's user id.
    pub user_id: String,
    /// The member's email address.
    pub email: String,
    /// The member's role.
    pub role: TeamRole,
    /// When the member joined (epoch ms).
    pub joined_at: i64,
}

/// One open invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamInviteInfo {
    /// The invitation's id.
    pub id: String,
    /// The invited address; `null` for a link invitation.
    pub email: Option<String>,
    /// The role it grants.
    pub role: TeamRole,
    /// Created (epoch ms).
    pub created_at: i64,
    /// Expires (epoch ms; 7 days after creation).
    pub expires_at: i64,
}

/// `POST /teams/{id}/invites`: an emailed invitation (`email`), or — the owner only — a
/// shareable link (`link: true`, no email). `role` is `member` (default) or `admin` (owner
/// only).
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    /// The address to invite.
    #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254, example = "grace@example.com"))]
    #[serde(default)]
    pub email: Option<String>,
    /// `true`: a link invitation bound to no address (the answer carries its URL).
    #[serde(default)]
    pub link: Option<bool>,
    /// The role granted on acceptance (`member` by default; never `owner`).
    #[serde(default)]
    pub role: Option<TeamRole>,
}

impl std::fmt::Debug for CreateInviteRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateInviteRequest")
            .field("link", &self.link)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl CreateInviteRequest {
    /// What to invite.
    ///
    /// # Errors
    /// 422 naming `email`, `link` or `role`.
    pub fn try_into_domain(self) -> Result<(InviteTarget, TeamRole), AppError> {
        let role = self.role.unwrap_or(TeamRole::Member);
        if role == TeamRole::Owner {
            return Err(AppError::field("role", "must be admin or member"));
        }
        let target = match (self.email, self.link) {
            (Some(e), None | Some(false)) => {
                InviteTarget::Email(Email::parse(&e).map_err(|f| AppError::Validation(vec![f]))?)
            }
            (None, Some(true)) => InviteTarget::Link,
            (Some(_), Some(true)) => {
                return Err(AppError::field("link", "a link invitation takes no email"))
            }
            (None, _) => return Err(AppError::field("email", "is required (or `link: true`)")),
        };
        Ok((target, role))
    }
}

/// `POST /teams/{id}/invites` → the invitation; `url` only for a link invitation (an emailed
/// one's token goes to the address only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InviteCreated {
    /// The invitation.
    pub invite: TeamInviteInfo,
    /// The shareable link (`{base}/team-invite?token=…`), for a link invitation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// `POST /teams/invites/accept`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteRequest {
    /// The invitation's token (from the emailed or shared link).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 512))]
    pub token: String,
}

impl AcceptInviteRequest {
    /// The token, if its length is plausible.
    ///
    /// # Errors
    /// 422 naming `token`.
    pub fn token(&self) -> Result<&str, AppError> {
        let n = self.token.chars().count();
        if n == 0 || n > crate::api::MAX_ACCOUNT_TOKEN_LEN {
            return Err(AppError::field("token", "must be 1 to 512 characters"));
        }
        Ok(&self.token)
    }
}

/// `POST /teams/invites/accept` → the team joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamJoined {
    /// The team's id.
    pub team_id: String,
    /// The role in it.
    pub role: TeamRole,
}

/// `PUT /teams/{id}/members/{user_id}`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetRoleRequest {
    /// `admin` or `member` (the owner's role never changes).
    pub role: TeamRole,
}

impl SetRoleRequest {
    /// The role.
    ///
    /// # Errors
    /// 422 naming `role` for `owner`.
    pub fn role(&self) -> Result<TeamRole, AppError> {
        if self.role == TeamRole::Owner {
            return Err(AppError::field("role", "must be admin or member"));
        }
        Ok(self.role)
    }
}

/// `PUT /teams/{id}/seats`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetSeatsRequest {
    /// The seats wanted (1–1000).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    #[serde(deserialize_with = "crate::input::integral_u32")]
    pub seats: u32,
}

impl SetSeatsRequest {
    /// The seats.
    ///
    /// # Errors
    /// 422 naming `seats` outside 1–1000.
    pub fn seats(&self) -> Result<u32, AppError> {
        if (1..=crate::billing::MAX_TEAM_SEATS).contains(&self.seats) {
            Ok(self.seats)
        } else {
            Err(AppError::Validation(vec![FieldError::new(
                "seats",
                "must be from 1 to 1000",
            )]))
        }
    }
}

/// `PUT /teams/{id}/seats` → 202: Stripe was asked; `seats` changes when its webhook confirms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeatsRequested {
    /// Seats in force now.
    pub seats: u32,
    /// Seats asked of Stripe.
    pub requested: u32,
}

/// `PUT /teams/{id}/sso`: the team's OIDC identity provider.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetSsoRequest {
    /// The issuer (`https://`; `http://` only on a dev deployment), as its discovery document
    /// names it.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "https://login.example.com", max_length = 512)
    )]
    pub issuer: String,
    /// Our client id at the identity provider (1–255 characters).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub client_id: String,
    /// Its client secret (1–1024 characters; stored encrypted, never returned).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 1024))]
    pub client_secret: String,
    /// The email domains whose users sign in through it (1–20, none claimed by another team).
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 20))]
    pub domains: Vec<String>,
    /// Whether password login is refused for these domains (the owner excepted). Default false.
    #[serde(default)]
    pub required: bool,
}

/// The team's SSO configuration (never the client secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SsoView {
    /// The team.
    pub team_id: String,
    /// The issuer.
    pub issuer: String,
    /// The client id.
    pub client_id: String,
    /// The claimed domains (lower case).
    pub domains: Vec<String>,
    /// Whether password login is refused for them.
    pub required: bool,
}

/// `GET /auth/sso/start` → where the app sends the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SsoStarted {
    /// The identity provider's authorization URL (code flow with PKCE S256, `state`, `nonce`).
    pub authorization_url: String,
}

/// `POST /auth/sso/redeem`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SsoRedeemRequest {
    /// The one-time code of the callback's redirect (60 s, single use).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub code: String,
}

//! Billing tiers and account roles.

use serde::{Deserialize, Serialize};

/// A billing tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Free.
    Free,
    /// Pro (15 €/month).
    Pro,
    /// Power (29 €/month).
    Power,
    /// Team (49 €/seat/month).
    Team,
}

impl Tier {
    /// Every tier, cheapest first.
    pub const ALL: [Tier; 4] = [Tier::Free, Tier::Pro, Tier::Power, Tier::Team];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Pro => "pro",
            Tier::Power => "power",
            Tier::Team => "team",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A tier granted by an administrator ("comped") until a time, whatever the account pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comp {
    /// The tier granted.
    pub tier: Tier,
    /// When the grant ends (epoch ms, exclusive); the paid tier applies again from then on.
    pub until: i64,
}

/// The tier a team's subscription grants its members, and when it lapses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamGrant {
    /// The tier the team's subscription grants now (`team`, or `free` once it ended).
    pub tier: Tier,
    /// When it lapses (a past-due subscription keeps it until its period ends), if it does.
    pub until: Option<i64>,
}

/// **The tier in force** at `now`: the one function every gate's, quota's and limit's tier
/// comes from (the user's home calls it on its copy of the account; [`super::User::effective_tier`]
/// for the paid part).
///
/// The best of three sources, each lapsing on its own:
/// - the paid tier, lapsing to free at `paid_until` (a past-due subscription keeps its tier
///   until its period ends);
/// - a comp in force (`now < until`), which raises it to the comped tier, never lowers it;
/// - the user's team's grant (a member of a Team-tier team has `team`), lapsing at its `until`.
pub fn tier_in_force(
    paid: Tier,
    paid_until: Option<i64>,
    comp: Option<Comp>,
    team: Option<TeamGrant>,
    now: i64,
) -> Tier {
    let lapse = |tier: Tier, until: Option<i64>| match until {
        Some(u) if u <= now => Tier::Free,
        _ => tier,
    };
    let paid = lapse(paid, paid_until);
    let comp = match comp {
        Some(c) if now < c.until => c.tier,
        _ => Tier::Free,
    };
    let team = team.map_or(Tier::Free, |t| lapse(t.tier, t.until));
    paid.max(comp).max(team)
}

/// An account's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An ordinary user.
    User,
    /// An administrator (plugin review).
    Admin,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comp_raises_the_tier_until_its_end_then_the_paid_tier_applies_again() {
        let comp = Some(Comp {
            tier: Tier::Power,
            until: 1_000,
        });
        assert_eq!(
            tier_in_force(Tier::Free, None, comp, None, 999),
            Tier::Power
        );
        assert_eq!(
            tier_in_force(Tier::Free, None, comp, None, 1_000),
            Tier::Free
        );
        assert_eq!(tier_in_force(Tier::Pro, None, comp, None, 1_500), Tier::Pro);
        // Never lower than what is paid.
        assert_eq!(tier_in_force(Tier::Team, None, comp, None, 10), Tier::Team);
        // A lapsed paid tier under a comp in force: the comp.
        assert_eq!(
            tier_in_force(Tier::Team, Some(5), comp, None, 10),
            Tier::Power
        );
        assert_eq!(
            tier_in_force(Tier::Team, Some(5), None, None, 10),
            Tier::Free
        );
        assert_eq!(
            tier_in_force(Tier::Team, Some(50), None, None, 10),
            Tier::Team
        );
    }

    #[test]
    fn a_team_grant_raises_the_tier_until_it_lapses_and_never_lowers_it() {
        let team = |until| {
            Some(TeamGrant {
                tier: Tier::Team,
                until,
            })
        };
        assert_eq!(
            tier_in_force(Tier::Free, None, None, team(None), 10),
            Tier::Team
        );
        assert_eq!(
            tier_in_force(Tier::Pro, None, None, team(Some(11)), 10),
            Tier::Team
        );
        assert_eq!(
            tier_in_force(Tier::Pro, None, None, team(Some(10)), 10),
            Tier::Pro
        );
        let ended = Some(TeamGrant {
            tier: Tier::Free,
            until: None,
        });
        assert_eq!(
            tier_in_force(Tier::Power, None, None, ended, 10),
            Tier::Power
        );
        let comp = Some(Comp {
            tier: Tier::Power,
            until: 100,
        });
        assert_eq!(
            tier_in_force(Tier::Free, None, comp, ended, 10),
            Tier::Power
        );
    }

    #[test]
    fn tiers_round_trip_through_their_wire_names() {
        for t in Tier::ALL {
            assert_eq!(Tier::parse(t.as_str()), Some(t));
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.as_str())
            );
        }
        assert_eq!(Tier::parse("enterprise"), None);
    }

    #[test]
    fn roles_round_trip_through_their_wire_names() {
        for r in [Role::User, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}

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

/// The tier in force at `now`: the one function every gate's tier comes from (the user's home
/// calls it on its copy of the account; [`super::User::effective_tier`] for the paid part).
///
/// The paid tier lapses to free at `paid_until` (a past-due subscription keeps its tier until
/// its period ends); a comp in force (`now < until`) raises it to the comped tier, never lowers
/// it (a comp below what the account pays changes nothing).
pub fn tier_in_force(paid: Tier, paid_until: Option<i64>, comp: Option<Comp>, now: i64) -> Tier {
    let paid = match paid_until {
        Some(until) if until <= now => Tier::Free,
        _ => paid,
    };
    match comp {
        Some(c) if now < c.until => paid.max(c.tier),
        _ => paid,
    }
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
        assert_eq!(tier_in_force(Tier::Free, None, comp, 999), Tier::Power);
        assert_eq!(tier_in_force(Tier::Free, None, comp, 1_000), Tier::Free);
        assert_eq!(tier_in_force(Tier::Pro, None, comp, 1_500), Tier::Pro);
        // Never lower than what is paid.
        assert_eq!(tier_in_force(Tier::Team, None, comp, 10), Tier::Team);
        // A lapsed paid tier under a comp in force: the comp.
        assert_eq!(tier_in_force(Tier::Team, Some(5), comp, 10), Tier::Power);
        assert_eq!(tier_in_force(Tier::Team, Some(5), None, 10), Tier::Free);
        assert_eq!(tier_in_force(Tier::Team, Some(50), None, 10), Tier::Team);
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

use super::*;
use crate::api::CreateInviteRequest;
use crate::home::ops::{AccountState, TeamGrant};

fn account(tier: Tier, until: Option<i64>, team: Option<TeamGrant>) -> AccountState {
    AccountState {
        email: "a@example.com".into(),
        role: crate::domain::Role::User,
        tier,
        tier_until: until,
        seats: 1,
        email_verified: true,
        suspended: false,
        comp: None,
        team,
    }
}

fn team(status: &str, end: Option<i64>) -> TeamRow {
    TeamRow {
        id: uuid::Uuid::nil(),
        owner: UserId(uuid::Uuid::nil()),
        subscription: "sub_1".into(),
        seats: 3,
        tier: Tier::Team,
        status: status.into(),
        current_period_end: end,
        last_event_created: 0,
    }
}

#[test]
fn the_tier_in_force_is_the_better_of_the_own_tier_and_the_team_grant() {
    let grant = |tier, until| Some(TeamGrant { tier, until });
    assert_eq!(
        account(Tier::Free, None, None).tier_in_force(10),
        Tier::Free
    );
    assert_eq!(
        account(Tier::Free, None, grant(Tier::Team, None)).tier_in_force(10),
        Tier::Team
    );
    assert_eq!(
        account(Tier::Pro, None, grant(Tier::Free, None)).tier_in_force(10),
        Tier::Pro,
        "an ended team returns the member to their own tier"
    );
    assert_eq!(
        account(Tier::Power, None, grant(Tier::Team, Some(10))).tier_in_force(10),
        Tier::Power,
        "a past-due team lapses at its period end"
    );
    assert_eq!(
        account(Tier::Team, Some(5), grant(Tier::Team, Some(20))).tier_in_force(10),
        Tier::Team
    );
    assert_eq!(
        account(Tier::Team, Some(5), None).tier_in_force(10),
        Tier::Free
    );
}

#[test]
fn a_team_is_live_while_its_subscription_grants_the_team_tier() {
    assert!(team("active", None).is_live(1));
    assert!(team("past_due", Some(100)).is_live(99));
    assert!(!team("past_due", Some(100)).is_live(100));
    for s in ["canceled", "unpaid", "incomplete"] {
        assert!(!team(s, None).is_live(1), "{s}");
    }
}

#[test]
fn roles_parse_by_their_wire_names_only() {
    for r in [TeamRole::Owner, TeamRole::Admin, TeamRole::Member] {
        assert_eq!(TeamRole::parse(r.as_str()), Some(r));
    }
    assert_eq!(TeamRole::parse("Owner"), None);
    assert!(TeamRole::Admin.manages() && !TeamRole::Member.manages());
}

fn invite(body: &str) -> Result<(InviteTarget, TeamRole), crate::AppError> {
    crate::input::parse_json::<CreateInviteRequest>(Some("application/json"), body.as_bytes())?
        .try_into_domain()
}

#[test]
fn an_invitation_names_an_address_or_is_a_link_and_never_grants_owner() {
    let (t, r) = invite(r#"{"email":"Grace@Example.com"}"#).unwrap();
    assert_eq!(
        t,
        InviteTarget::Email(crate::domain::Email::parse("grace@example.com").unwrap())
    );
    assert_eq!(r, TeamRole::Member);
    assert_eq!(
        invite(r#"{"link":true,"role":"admin"}"#).unwrap(),
        (InviteTarget::Link, TeamRole::Admin)
    );
    for bad in [
        "{}",
        r#"{"link":false}"#,
        r#"{"email":"a@example.com","link":true}"#,
        r#"{"email":"a@example.com","role":"owner"}"#,
        r#"{"email":"not an address"}"#,
        r#"{"email":"a@example.com","extra":1}"#,
    ] {
        assert!(invite(bad).is_err(), "{bad}");
    }
}

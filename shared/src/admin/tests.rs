use super::*;
use crate::domain::User;
use crate::testing::{FixedClock, InMemoryAdminStore, SeqRandom};

const NOW: i64 = 1_800_000_000_000;

struct World {
    store: InMemoryAdminStore,
    clock: FixedClock,
    rng: SeqRandom,
    admins: Vec<String>,
}

impl World {
    fn new() -> Self {
        Self {
            store: InMemoryAdminStore::default(),
            clock: FixedClock::at(NOW),
            rng: SeqRandom::new(7),
            admins: vec!["boss@example.com".into(), "late@example.com".into()],
        }
    }

    fn svc(&self) -> AdminService<'_> {
        AdminService {
            store: &self.store,
            clock: &self.clock,
            rng: &self.rng,
            admin_emails: &self.admins,
        }
    }

    fn user(&self, n: u8, email: &str, role: Role, verified: bool) -> UserId {
        let id = UserId(uuid::Uuid::from_u128(u128::from(n) + 1));
        let user = User {
            id,
            email: Email::parse(email).unwrap(),
            password_hash: String::new(),
            tier: Tier::Pro,
            tier_until: None,
            role,
            email_verified_at: verified.then_some(NOW - 10),
            created_at: NOW - 1_000,
            updated_at: NOW - 1_000,
            suspended_at: None,
        };
        self.store.users.borrow_mut().insert(
            id,
            AdminUserRow {
                user,
                comp: None,
                seats: 1,
                team: None,
                last_seen_at: Some(NOW - 5),
                sessions: 2,
            },
        );
        id
    }
}

fn comp(tier: &str, until: i64) -> CompRequest {
    CompRequest {
        tier: tier.into(),
        until,
    }
}

#[tokio::test]
async fn only_a_verified_listed_admin_passes_and_everyone_else_is_forbidden() {
    let w = World::new();
    let admin = w.user(1, "boss@example.com", Role::Admin, true);
    let user = w.user(2, "someone@example.com", Role::User, true);
    // Listed but unverified (and so never made admin).
    let unverified = w.user(3, "late@example.com", Role::User, false);
    // Admin once, no longer listed in ADMIN_EMAILS.
    let dropped = w.user(4, "former@example.com", Role::Admin, true);
    assert!(w.svc().authorize(admin).await.is_ok());
    for who in [user, unverified, dropped] {
        let e = w.svc().audit(who).await.unwrap_err();
        assert_eq!(e.code(), "forbidden", "{who}");
    }
    w.store
        .users
        .borrow_mut()
        .get_mut(&admin)
        .unwrap()
        .user
        .suspended_at = Some(NOW);
    assert_eq!(
        w.svc().authorize(admin).await.unwrap_err().code(),
        "account_suspended"
    );
}

#[tokio::test]
async fn suspending_records_who_did_it_and_keeps_the_first_time() {
    let w = World::new();
    let admin = w.user(1, "boss@example.com", Role::Admin, true);
    let user = w.user(2, "someone@example.com", Role::User, true);
    let v = w.svc().set_suspended(admin, user, true).await.unwrap();
    assert_eq!(v.suspended_at, Some(NOW));
    w.clock.advance(5_000);
    let v = w.svc().set_suspended(admin, user, true).await.unwrap();
    assert_eq!(
        v.suspended_at,
        Some(NOW),
        "a second suspension keeps the first time"
    );
    let v = w.svc().set_suspended(admin, user, false).await.unwrap();
    assert_eq!(v.suspended_at, None);
    let log = w.svc().audit(admin).await.unwrap().entries;
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["unsuspend", "suspend", "suspend"]);
    assert!(log.iter().all(
        |e| e.admin_id == admin.to_string() && e.target.as_deref() == Some(&*user.to_string())
    ));
}

#[tokio::test]
async fn an_admin_cannot_suspend_themselves_and_unknown_accounts_are_404() {
    let w = World::new();
    let admin = w.user(1, "boss@example.com", Role::Admin, true);
    let e = w.svc().set_suspended(admin, admin, true).await.unwrap_err();
    assert_eq!(e.code(), "conflict");
    let ghost = UserId(uuid::Uuid::from_u128(99));
    let e = w.svc().set_suspended(admin, ghost, true).await.unwrap_err();
    assert_eq!(e.code(), "not_found");
    assert!(
        w.store.entries.borrow().is_empty(),
        "nothing happened, nothing recorded"
    );
}

#[tokio::test]
async fn a_failed_change_records_nothing() {
    let w = World::new();
    let admin = w.user(1, "boss@example.com", Role::Admin, true);
    let user = w.user(2, "someone@example.com", Role::User, true);
    w.store.fail_writes.set(true);
    assert!(w.svc().set_suspended(admin, user, true).await.is_err());
    assert!(w.store.entries.borrow().is_empty());
    assert_eq!(w.store.users.borrow()[&user].user.suspended_at, None);
}

#[test]
fn a_comp_needs_a_paid_tier_and_an_end_within_366_days() {
    let day = 86_400_000;
    assert_eq!(
        parse_comp(&comp("power", NOW + day), NOW).unwrap(),
        Comp {
            tier: Tier::Power,
            until: NOW + day
        }
    );
    assert!(parse_comp(&comp("team", NOW + 366 * day), NOW).is_ok());
    let fields = |e: AppError| match e {
        AppError::Validation(f) => f.into_iter().map(|f| f.field).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        fields(parse_comp(&comp("free", NOW + day), NOW).unwrap_err()),
        ["tier"]
    );
    assert_eq!(
        fields(parse_comp(&comp("gold", NOW + day), NOW).unwrap_err()),
        ["tier"]
    );
    assert_eq!(
        fields(parse_comp(&comp("pro", NOW), NOW).unwrap_err()),
        ["until"]
    );
    assert_eq!(
        fields(parse_comp(&comp("pro", NOW + 366 * day + 1), NOW).unwrap_err()),
        ["until"]
    );
    assert_eq!(
        fields(parse_comp(&comp("x", -1), NOW).unwrap_err()),
        ["tier", "until"]
    );
}

#[tokio::test]
async fn a_comp_shows_as_the_tier_in_force_until_it_ends() {
    let w = World::new();
    let admin = w.user(1, "boss@example.com", Role::Admin, true);
    let user = w.user(2, "someone@example.com", Role::User, true);
    let v = w
        .svc()
        .comp(admin, user, &comp("team", NOW + 1_000))
        .await
        .unwrap();
    assert_eq!((v.tier, v.paid_tier), (Tier::Team, Tier::Pro));
    w.clock.advance(1_000);
    let found = w
        .svc()
        .lookup(admin, Some("SOMEONE@example.com"))
        .await
        .unwrap();
    assert_eq!(found.users[0].tier, Tier::Pro, "the paid tier again");
    assert_eq!(found.users[0].sessions, 2);
    let log = w.svc().audit(admin).await.unwrap().entries;
    assert_eq!(log[0].action, "user_lookup");
    assert_eq!(
        log[1].detail,
        Some(json!({"tier": "team", "until": NOW + 1_000}))
    );
}

#[tokio::test]
async fn a_lookup_needs_an_address_and_an_unknown_one_finds_nobody() {
    let w = World::new();
    let admin = w.user(1, "boss@example.com", Role::Admin, true);
    assert_eq!(
        w.svc().lookup(admin, None).await.unwrap_err().code(),
        "validation_failed"
    );
    let found = w
        .svc()
        .lookup(admin, Some("nobody@example.com"))
        .await
        .unwrap();
    assert!(found.users.is_empty());
}

#[test]
fn payouts_group_by_month_newest_first_and_a_month_is_paid_only_when_all_are() {
    let dev = UserId(uuid::Uuid::from_u128(5));
    let row = |period: &str, cents: u64, status: &str| PayoutRecord {
        developer: dev,
        period: period.into(),
        amount_cents: cents,
        status: status.into(),
        created_at: NOW,
        paid_at: (status == "paid").then_some(NOW),
    };
    let months = group_payouts(vec![
        row("2026-10", 100, "paid"),
        row("2026-11", 70, "paid"),
        row("2026-11", 30, "pending"),
    ]);
    assert_eq!(months.len(), 2);
    assert_eq!(
        (months[0].period.as_str(), months[0].status.as_str()),
        ("2026-11", "pending")
    );
    assert_eq!((months[0].total_cents, months[0].paid_cents), (100, 70));
    assert_eq!(
        (months[1].period.as_str(), months[1].status.as_str()),
        ("2026-10", "paid")
    );
}

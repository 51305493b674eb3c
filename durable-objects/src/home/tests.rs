//! The home's rules over a real (in-memory) SQLite: the same statements the object runs.

use shared::domain::{Comp, Role, TeamGrant, Tier, UserId};
use shared::home::ops::{
    AccountState, Admit, AssembleUpload, BackupFacts, BackupHistory, BeginUpload, CommitBackup,
    CommitPart, CommitRecord, CommitUpload, DeleteRecord, DeleteVectors, DropUpload, GetProfile,
    GetRecord, GetUsage, LatestBackup, ListRecords, RecordTarget, Release, ReserveBackup,
    ReservePart, ReserveRecord, RevokeSessions, SearchVectors, SetAccount, UploadOpened,
    UpsertVectors, VectorIn,
};
use shared::home::ops::{GetChatChoices, SetEnabledAgents};
use shared::home::{HomeOp, HomeRequest, WireError};
use shared::ports::VectorEntry;
use shared::testing::SeqRandom;

use super::sql::{NativeSqlite, Sql};
use super::{Effects, Home, HomeConfig, Memo, PURGE_TOMBSTONES_SQL, RESERVATION_TTL_MS};

const T0: i64 = 1_800_000_000_000;
/// Tests count quotas in kilobytes: pro has 5 000 bytes of each.
const GB: u64 = 1_000;

struct World {
    sql: NativeSqlite,
    /// The object's memory: [`World::restart`] forgets it, as a new life of the object would.
    memo: std::cell::RefCell<std::rc::Rc<Memo>>,
    rng: SeqRandom,
    user: UserId,
    cfg: HomeConfig,
}

impl World {
    fn new() -> Self {
        Self::with(true)
    }

    fn with(rate_limits: bool) -> Self {
        Self {
            sql: NativeSqlite::new(),
            memo: std::cell::RefCell::default(),
            rng: SeqRandom::new(9),
            user: UserId(uuid::Uuid::from_u128(42)),
            cfg: HomeConfig {
                bytes_per_gb: GB,
                rate_limits,
                access_ttl_ms: 900_000,
                tombstone_age_ms: shared::storage::TOMBSTONE_TTL_MS,
            },
        }
    }

    fn home<'a>(&'a self, memo: &'a Memo) -> Home<'a, NativeSqlite> {
        Home::open(&self.sql, memo, self.user, self.cfg, &self.rng).unwrap()
    }

    /// The object starts a new life: storage stays, memory goes.
    fn restart(&self) {
        *self.memo.borrow_mut() = std::rc::Rc::default();
    }

    /// A world whose user has `tier`.
    fn on(tier: Tier) -> Self {
        let w = Self::with(false);
        w.set_tier(tier, None);
        w
    }

    fn set_tier(&self, tier: Tier, until: Option<i64>) {
        self.call(
            T0,
            &SetAccount {
                account: Some(AccountState {
                    email: "ada@example.com".into(),
                    role: Role::User,
                    tier,
                    tier_until: until,
                    seats: 3,
                    email_verified: true,
                    suspended: false,
                    comp: None,
                    team: None,
                }),
            },
        )
        .unwrap();
    }

    /// Pushes a pro account with `suspended` and `comp` as an administrator set them.
    fn set_admin_state(&self, suspended: bool, comp: Option<Comp>) -> Effects {
        self.raw(
            T0,
            None,
            false,
            &SetAccount {
                account: Some(AccountState {
                    email: "ada@example.com".into(),
                    role: Role::User,
                    tier: Tier::Free,
                    tier_until: None,
                    seats: 1,
                    email_verified: true,
                    suspended,
                    comp,
                    team: None,
                }),
            },
        )
        .1
    }

    /// Pushes a free account whose team grants `team` (`None`: in no team).
    fn set_team(&self, now: i64, team: Option<TeamGrant>) {
        self.raw(
            now,
            None,
            false,
            &SetAccount {
                account: Some(AccountState {
                    email: "ada@example.com".into(),
                    role: Role::User,
                    tier: Tier::Free,
                    tier_until: None,
                    seats: 1,
                    email_verified: true,
                    suspended: false,
                    comp: None,
                    team,
                }),
            },
        )
        .0
        .unwrap();
    }

    fn raw<O: HomeOp>(
        &self,
        now: i64,
        sid: Option<uuid::Uuid>,
        admit: bool,
        op: &O,
    ) -> (Result<O::Answer, WireError>, Effects) {
        let req = HomeRequest {
            user: self.user,
            sid,
            admit,
            op: O::NAME.to_owned(),
            args: serde_json::to_value(op).unwrap(),
        };
        let memo = std::rc::Rc::clone(&self.memo.borrow());
        let (resp, effects) = self.home(&memo).handle(now, &req);
        let out = match (resp.ok, resp.error) {
            (Some(v), None) => Ok(serde_json::from_value(v).unwrap()),
            (None, Some(e)) => Err(e),
            other => panic!("an answer or an error, not {other:?}"),
        };
        (out, effects)
    }

    fn call<O: HomeOp>(&self, now: i64, op: &O) -> Result<O::Answer, WireError> {
        self.raw(now, None, false, op).0
    }

    fn create(&self, now: i64, table: &str, size: u64) -> Result<String, WireError> {
        let r = self.call(
            now,
            &ReserveRecord {
                target: RecordTarget::Create {
                    table: table.into(),
                },
                size,
                checksum: format!("{size:064x}"),
            },
        )?;
        let done = self.call(
            now,
            &CommitRecord {
                reservation: r.reservation,
            },
        )?;
        Ok(done.row.id)
    }

    fn used(&self) -> (u64, u64) {
        let u = self.call(T0, &GetUsage {}).unwrap();
        (u.cloud_storage.used_bytes, u.backup.used_bytes)
    }
}

fn code(r: Result<impl std::fmt::Debug, WireError>) -> String {
    r.expect_err("an error").code
}

#[test]
fn an_unknown_account_is_unauthorized_and_a_pushed_one_answers_with_its_tier() {
    let w = World::new();
    assert_eq!(code(w.call(T0, &Admit {})), "unauthorized");
    w.set_tier(Tier::Power, None);
    let p = w.call(T0, &GetProfile {}).unwrap();
    assert_eq!((p.email.as_str(), p.tier), ("ada@example.com", Tier::Power));
    assert!(
        p.email_verified,
        "the verification flag travels with the copy"
    );
    // A lapsed past-due tier is free; seats count for team only.
    w.set_tier(Tier::Team, Some(T0 + 10));
    let req = HomeRequest {
        user: w.user,
        sid: None,
        admit: false,
        op: Admit::NAME.into(),
        args: serde_json::json!({}),
    };
    let memo = Memo::default();
    let (resp, _) = w.home(&memo).handle(T0, &req);
    assert_eq!(resp.principal.unwrap().seats, 3);
    let (resp, _) = w.home(&memo).handle(T0 + 10, &req);
    let p = resp.principal.unwrap();
    assert_eq!((p.tier, p.seats), (Tier::Free, 1));
    // A deleted account is gone.
    w.call(T0, &SetAccount { account: None }).unwrap();
    assert_eq!(code(w.call(T0, &Admit {})), "unauthorized");
}

#[test]
fn a_suspended_account_is_refused_everything_and_its_sockets_close_once() {
    let w = World::with(false);
    assert!(!w.set_admin_state(false, None).suspended);
    assert!(w.call(T0, &Admit {}).is_ok());
    let effects = w.set_admin_state(true, None);
    assert!(effects.suspended, "the object closes every socket");
    assert_eq!(code(w.call(T0, &Admit {})), "account_suspended");
    assert_eq!(code(w.call(T0, &GetProfile {})), "account_suspended");
    assert_eq!(code(w.create(T0, "tasks", 10)), "account_suspended");
    // A new life of the object remembers it; a repeated push closes nothing more.
    w.restart();
    assert_eq!(code(w.call(T0, &Admit {})), "account_suspended");
    assert!(!w.set_admin_state(true, None).suspended);
    // Restored: everything answers again.
    assert!(!w.set_admin_state(false, None).suspended);
    assert!(w.call(T0, &Admit {}).is_ok());
}

#[test]
fn a_comp_is_the_tier_in_force_at_every_gate_until_it_ends() {
    let w = World::with(false);
    w.set_admin_state(
        false,
        Some(Comp {
            tier: Tier::Pro,
            until: T0 + 1_000,
        }),
    );
    assert_eq!(w.call(T0, &GetProfile {}).unwrap().tier, Tier::Pro);
    // The free tier has no cloud storage; the comp opens it.
    assert!(w.create(T0, "tasks", 10).is_ok());
    w.restart();
    assert_eq!(w.call(T0 + 999, &GetProfile {}).unwrap().tier, Tier::Pro);
    assert_eq!(w.call(T0 + 1_000, &GetProfile {}).unwrap().tier, Tier::Free);
    assert_eq!(code(w.create(T0 + 1_000, "tasks", 10)), "tier_required");
}

#[test]
fn a_team_grant_is_the_tier_in_force_with_200_a_minute_until_it_is_withdrawn_or_lapses() {
    let w = World::with(false);
    w.set_team(
        T0,
        Some(TeamGrant {
            tier: Tier::Team,
            until: Some(T0 + 10_000),
        }),
    );
    assert_eq!(w.call(T0, &GetProfile {}).unwrap().tier, Tier::Team);
    assert!(w.create(T0, "tasks", 10).is_ok(), "the Team row's storage");
    w.restart();
    assert_eq!(
        w.call(T0 + 1, &GetProfile {}).unwrap().tier,
        Tier::Team,
        "kept in SQLite"
    );
    let usage = w.call(T0 + 1, &GetUsage {}).unwrap();
    assert_eq!(usage.requests.limit, 200, "per member, whatever the seats");
    // A past-due team subscription lapses by itself at its period end.
    assert_eq!(
        w.call(T0 + 10_000, &GetProfile {}).unwrap().tier,
        Tier::Free
    );
    // Removed from the team: the own tier at once.
    w.set_team(
        T0 + 2,
        Some(TeamGrant {
            tier: Tier::Team,
            until: None,
        }),
    );
    assert_eq!(w.call(T0 + 2, &GetProfile {}).unwrap().tier, Tier::Team);
    w.set_team(T0 + 3, None);
    assert_eq!(w.call(T0 + 3, &GetProfile {}).unwrap().tier, Tier::Free);
    assert_eq!(code(w.create(T0 + 3, "tasks", 10)), "tier_required");
}

#[test]
fn a_free_user_is_admitted_exactly_twenty_times_a_minute() {
    let w = World::new();
    w.set_tier(Tier::Free, None);
    let mut allowed = 0;
    for _ in 0..25 {
        let (r, _) = w.raw(T0, None, true, &Admit {});
        match r {
            Ok(_) => allowed += 1,
            Err(e) => {
                assert_eq!((e.status, e.code.as_str()), (429, "rate_limited"));
                assert_eq!(e.headers, vec![("Retry-After".to_owned(), "3".to_owned())]);
            }
        }
    }
    assert_eq!(allowed, 20);
    // One unit comes back every three seconds.
    assert!(w.raw(T0 + 3_000, None, true, &Admit {}).0.is_ok());
    // An upgrade applies at once with its own allowance.
    w.set_tier(Tier::Pro, None);
    assert!(w.raw(T0 + 3_000, None, true, &Admit {}).0.is_ok());
}

#[test]
fn a_revoked_session_is_refused_and_its_sockets_are_closed_while_others_go_on() {
    let w = World::on(Tier::Pro);
    let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
    let (r, effects) = w.raw(T0, None, false, &RevokeSessions { sids: vec![a] });
    assert_eq!(r.unwrap().revoked, 1);
    assert_eq!(effects.close_sessions, vec![a]);
    assert_eq!(code(w.raw(T0, Some(a), true, &Admit {}).0), "unauthorized");
    assert!(w.raw(T0, Some(b), true, &Admit {}).0.is_ok());
    // Forgotten once no token of the session can still be alive.
    assert!(w.raw(T0 + 900_000, Some(a), true, &Admit {}).0.is_ok());
}

#[test]
fn a_new_life_of_the_object_answers_exactly_as_the_old_one_from_storage() {
    let w = World::new();
    w.set_tier(Tier::Free, None);
    let revoked = uuid::Uuid::from_u128(7);
    w.raw(
        T0,
        None,
        false,
        &RevokeSessions {
            sids: vec![revoked],
        },
    )
    .0
    .unwrap();
    for _ in 0..15 {
        assert!(w.raw(T0, None, true, &Admit {}).0.is_ok());
    }
    let r = w
        .call(
            T0,
            &ReserveRecord {
                target: RecordTarget::Create { table: "t".into() },
                size: 10,
                checksum: "0".repeat(64),
            },
        )
        .map(|r| r.reservation);
    // Free has no cloud storage: nothing reserved; the tier came from storage or memory alike.
    assert_eq!(code(r), "tier_required");
    w.restart();
    // The limiter goes on where it was (5 units left), the revocation holds, the tier is free.
    assert_eq!(
        code(w.raw(T0, Some(revoked), true, &Admit {}).0),
        "unauthorized"
    );
    let mut allowed = 0;
    for _ in 0..10 {
        if w.raw(T0, None, true, &Admit {}).0.is_ok() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5);
    let p = w.call(T0, &GetProfile {}).unwrap();
    assert_eq!(p.tier, Tier::Free);
    // A push after the restart is seen by the same life at once.
    w.set_tier(Tier::Pro, None);
    assert_eq!(w.call(T0, &GetProfile {}).unwrap().tier, Tier::Pro);
}

/// The stored limiter counter (ns), as the next life of the object will read it.
fn stored_tat(w: &World) -> Option<i64> {
    w.sql
        .one("SELECT CAST(tat AS TEXT) FROM limiter", &[])
        .unwrap()
        .map(|r| r.text(0).parse().unwrap())
}

#[test]
fn a_large_allowance_is_written_once_per_second_of_it_and_a_new_life_grants_less_than_that_again() {
    let w = World::new();
    // A team member: 200 a minute, one unit every 300 ms.
    w.set_tier(Tier::Team, None);
    let ms = 1_000_000;
    for _ in 0..3 {
        assert!(w.raw(T0, None, true, &Admit {}).0.is_ok());
    }
    // Three units are 0.9 s of the allowance: nothing written yet.
    assert_eq!(stored_tat(&w), None);
    assert!(w.raw(T0, None, true, &Admit {}).0.is_ok());
    assert_eq!(stored_tat(&w), Some((T0 + 1_200) * ms));
    for _ in 0..21 {
        assert!(w.raw(T0, None, true, &Admit {}).0.is_ok());
    }
    // 25 units taken, 24 of them written.
    assert_eq!(stored_tat(&w), Some((T0 + 7_200) * ms));
    w.restart();
    let mut allowed = 0;
    while w.raw(T0, None, true, &Admit {}).0.is_ok() {
        allowed += 1;
    }
    // Exactly: 175 left. The new life grants one again: under one second's worth (3.3).
    assert_eq!(allowed, 176);
}

#[test]
fn a_reservation_made_in_one_life_lapses_in_the_next() {
    let w = World::on(Tier::Pro);
    let big = ReserveRecord {
        target: RecordTarget::Create { table: "t".into() },
        size: 5_000,
        checksum: "0".repeat(64),
    };
    let first = w.call(T0, &big).unwrap();
    w.restart();
    assert_eq!(code(w.call(T0 + 1, &big)), "quota_exceeded");
    let later = T0 + RESERVATION_TTL_MS;
    let second = w.call(later, &big).unwrap();
    assert_eq!(
        code(w.call(
            later,
            &CommitRecord {
                reservation: first.reservation
            }
        )),
        "conflict"
    );
    assert!(w
        .call(
            later,
            &CommitRecord {
                reservation: second.reservation
            }
        )
        .is_ok());
}

#[test]
fn records_need_cloud_storage_and_round_trip_their_metadata() {
    let w = World::on(Tier::Free);
    assert_eq!(code(w.create(T0, "tasks", 10)), "tier_required");
    let w = World::on(Tier::Pro);
    let id = w.create(T0, "tasks", 100).unwrap();
    let row = w.call(T0, &GetRecord { id: id.clone() }).unwrap();
    assert_eq!(
        (row.table.as_str(), row.size_bytes, row.version),
        ("tasks", 100, 1)
    );
    assert!(row.r2_key.starts_with(&format!("{}/tasks/{id}", w.user)));
    assert_eq!(w.used().0, 100);
    assert_eq!(
        code(w.call(T0, &GetRecord { id: "nope".into() })),
        "not_found"
    );
}

#[test]
fn a_stale_if_match_is_412_at_reserve_and_at_commit() {
    let w = World::on(Tier::Pro);
    let id = w.create(T0, "notes", 10).unwrap();
    let etag = w.call(T0, &GetRecord { id: id.clone() }).unwrap().etag();
    let update = |if_match: Option<&str>, size: u64| ReserveRecord {
        target: RecordTarget::Update {
            id: id.clone(),
            if_match: if_match.map(str::to_owned),
        },
        size,
        checksum: format!("{size:064x}"),
    };
    assert_eq!(
        code(w.call(T0, &update(Some("\"9.abc\""), 5))),
        "precondition_failed"
    );
    // Two conditional writers of one version: the first commit wins, the second is 412.
    let a = w.call(T0, &update(Some(&etag), 20)).unwrap();
    let b = w.call(T0, &update(Some(&etag), 30)).unwrap();
    let done = w
        .call(
            T0 + 1,
            &CommitRecord {
                reservation: a.reservation,
            },
        )
        .unwrap();
    assert_eq!(done.row.version, 2);
    assert!(done.replaced_key.is_some());
    assert_eq!(
        code(w.call(
            T0 + 2,
            &CommitRecord {
                reservation: b.reservation
            }
        )),
        "precondition_failed"
    );
    assert_eq!(w.used().0, 20);
}

#[test]
fn without_if_match_the_last_write_wins_and_a_racing_delete_always_succeeds() {
    let w = World::on(Tier::Pro);
    let id = w.create(T0, "tasks", 10).unwrap();
    let reserve = |size: u64| ReserveRecord {
        target: RecordTarget::Update {
            id: id.clone(),
            if_match: None,
        },
        size,
        checksum: format!("{size:064x}"),
    };
    // An update and another update race: both commit, the later one is current.
    let a = w.call(T0, &reserve(20)).unwrap();
    let b = w.call(T0, &reserve(30)).unwrap();
    w.call(
        T0 + 1,
        &CommitRecord {
            reservation: a.reservation,
        },
    )
    .unwrap();
    let last = w
        .call(
            T0 + 2,
            &CommitRecord {
                reservation: b.reservation,
            },
        )
        .unwrap();
    assert_eq!((last.row.version, last.row.size_bytes), (3, 30));
    assert_eq!(w.used().0, 30);
    // An unconditional delete racing an update succeeds, and the update then finds the record
    // gone: a delete is never undone by a racing update.
    let c = w.call(T0 + 3, &reserve(40)).unwrap();
    let deleted = w
        .call(
            T0 + 4,
            &DeleteRecord {
                id: id.clone(),
                if_match: None,
            },
        )
        .unwrap();
    assert_eq!(deleted.key, last.row.r2_key);
    assert_eq!(w.used().0, 0);
    assert_eq!(
        code(w.call(
            T0 + 5,
            &CommitRecord {
                reservation: c.reservation
            }
        )),
        "not_found"
    );
    assert_eq!(w.used().0, 0);
    assert_eq!(code(w.call(T0, &GetRecord { id })), "not_found");
}

#[test]
fn concurrent_writes_at_the_quota_edge_never_exceed_it() {
    let w = World::on(Tier::Pro);
    let limit = 5 * GB;
    // Ten writers of 900 bytes reserve at once: only five fit in 5 000 bytes.
    let reserved: Vec<_> = (0..10)
        .map(|_| {
            w.call(
                T0,
                &ReserveRecord {
                    target: RecordTarget::Create { table: "t".into() },
                    size: 900,
                    checksum: "0".repeat(64),
                },
            )
        })
        .collect();
    let ok: Vec<_> = reserved.into_iter().filter_map(Result::ok).collect();
    assert_eq!(ok.len(), 5);
    for r in ok {
        w.call(
            T0,
            &CommitRecord {
                reservation: r.reservation,
            },
        )
        .unwrap();
    }
    let (used, _) = w.used();
    assert_eq!(used, 4_500);
    assert!(used <= limit);
    let e = w.create(T0, "t", 501).unwrap_err();
    assert_eq!(e.code, "quota_exceeded");
    assert_eq!(e.details.unwrap()["limit"], limit);
    w.create(T0, "t", 500).unwrap();
    assert_eq!(w.used().0, limit);
}

#[test]
fn a_released_or_lapsed_reservation_frees_its_bytes() {
    let w = World::on(Tier::Pro);
    let big = |size| ReserveRecord {
        target: RecordTarget::Create { table: "t".into() },
        size,
        checksum: "0".repeat(64),
    };
    let r = w.call(T0, &big(5_000)).unwrap();
    assert_eq!(code(w.call(T0, &big(1))), "quota_exceeded");
    w.call(
        T0,
        &Release {
            reservation: r.reservation,
        },
    )
    .unwrap();
    let r = w.call(T0, &big(5_000)).unwrap();
    // Past its lifetime the reservation is dropped: its commit must start over.
    let later = T0 + RESERVATION_TTL_MS;
    assert!(w.call(later, &big(1)).is_ok());
    assert_eq!(
        code(w.call(
            later,
            &CommitRecord {
                reservation: r.reservation
            }
        )),
        "conflict"
    );
    assert_eq!(w.used().0, 0);
}

#[test]
fn deletes_leave_tombstones_and_the_listing_pages_by_cursor() {
    let w = World::on(Tier::Pro);
    let ids: Vec<String> = (0..5)
        .map(|i| w.create(T0 + i, "tasks", 1).unwrap())
        .collect();
    w.create(T0 + 5, "notes", 1).unwrap();
    w.call(
        T0 + 10,
        &DeleteRecord {
            id: ids[1].clone(),
            if_match: None,
        },
    )
    .unwrap();
    let list = |after, table: Option<&str>| ListRecords {
        table: table.map(str::to_owned),
        updated_since: None,
        after,
        offset: 0,
        limit: 2,
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = w.call(T0 + 20, &list(after, Some("tasks"))).unwrap();
        seen.extend(page.items.iter().map(|m| (m.id.clone(), m.deleted)));
        match page.next {
            Some(c) => after = Some(shared::storage::Cursor::decode(&c).unwrap()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(
        seen.last().unwrap(),
        &(ids[1].clone(), true),
        "the tombstone is last"
    );
    // Tombstones are listed for 30 days.
    let month = T0 + 31 * 86_400_000;
    let page = w
        .call(
            month,
            &ListRecords {
                limit: 100,
                ..list(None, None)
            },
        )
        .unwrap();
    assert_eq!(page.items.len(), 5);
    assert!(page.items.iter().all(|m| !m.deleted));
}

#[test]
fn a_backup_prunes_only_when_committed_and_only_when_that_makes_room() {
    let w = World::on(Tier::Pro);
    let facts = |prune| BackupFacts {
        version: 1,
        timestamp: 7,
        checksum: "a".repeat(64),
        prune,
    };
    let backup = |now, size, prune| {
        let r = w.call(
            now,
            &ReserveBackup {
                size,
                timestamp: 7,
                prune,
            },
        )?;
        w.call(
            now,
            &CommitBackup {
                reservation: r.reservation,
                facts: facts(prune),
            },
        )
    };
    backup(T0, 3_000, false).unwrap();
    backup(T0 + 1, 1_500, false).unwrap();
    assert_eq!(code(backup(T0 + 2, 1_000, false)), "quota_exceeded");
    // A reservation whose upload then failed (released) prunes nothing.
    let r = w
        .call(
            T0 + 3,
            &ReserveBackup {
                size: 1_000,
                timestamp: 7,
                prune: true,
            },
        )
        .unwrap();
    w.call(
        T0 + 3,
        &Release {
            reservation: r.reservation,
        },
    )
    .unwrap();
    assert_eq!(w.call(T0, &BackupHistory {}).unwrap().len(), 2);
    // A verified one prunes the oldest, just enough.
    let done = backup(T0 + 4, 1_000, true).unwrap();
    assert_eq!(done.pruned_keys.len(), 1);
    let history = w.call(T0, &BackupHistory {}).unwrap();
    assert_eq!(
        history.iter().map(|b| b.size_bytes).collect::<Vec<_>>(),
        [1_000, 1_500]
    );
    assert_eq!(w.used().1, 2_500);
    assert_eq!(w.call(T0, &LatestBackup {}).unwrap().meta.id, done.meta.id);
    // Nothing can make room for more than the quota.
    assert_eq!(code(backup(T0 + 5, 5_001, true)), "quota_exceeded");
    assert_eq!(w.call(T0, &BackupHistory {}).unwrap().len(), 2);
}

fn upload(w: &World, now: i64) -> Result<String, WireError> {
    let slot = w.call(now, &BeginUpload {})?;
    w.call(
        now,
        &UploadOpened {
            upload: slot.id.clone(),
            r2_upload_id: format!("r2-{}", slot.id),
        },
    )?;
    Ok(slot.id)
}

fn part(w: &World, now: i64, upload: &str, number: u16, size: u64) -> Result<(), WireError> {
    let slot = w.call(
        now,
        &ReservePart {
            upload: upload.into(),
            number,
            size,
            checksum: "b".repeat(64),
        },
    )?;
    w.call(
        now,
        &CommitPart {
            reservation: slot.reservation,
            etag: format!("etag-{number}"),
        },
    )?;
    Ok(())
}

#[test]
fn at_most_four_uploads_are_open_and_their_parts_count_as_backup_bytes() {
    let w = World::on(Tier::Pro);
    let ids: Vec<String> = (0..4).map(|_| upload(&w, T0).unwrap()).collect();
    assert_eq!(code(upload(&w, T0)), "conflict");
    part(&w, T0, &ids[0], 1, 3_000).unwrap();
    part(&w, T0, &ids[1], 1, 2_000).unwrap();
    assert_eq!(w.used().1, 5_000);
    assert_eq!(code(part(&w, T0, &ids[2], 1, 1)), "quota_exceeded");
    // Replacing a part counts only its growth.
    part(&w, T0, &ids[1], 1, 2_000).unwrap();
    // Dropping an upload frees its parts and its slot.
    let dropped = w
        .call(
            T0,
            &DropUpload {
                upload: ids[1].clone(),
            },
        )
        .unwrap();
    assert_eq!(
        dropped.r2_upload_id.as_deref(),
        Some(format!("r2-{}", ids[1]).as_str())
    );
    assert_eq!(w.used().1, 3_000);
    upload(&w, T0).unwrap();
}

#[test]
fn a_downgraded_user_stores_no_more_parts() {
    let w = World::on(Tier::Pro);
    let id = upload(&w, T0).unwrap();
    part(&w, T0, &id, 1, 10).unwrap();
    w.set_tier(Tier::Free, None);
    assert_eq!(code(part(&w, T0, &id, 2, 10)), "tier_required");
    assert_eq!(code(upload(&w, T0)), "tier_required");
}

#[test]
fn a_complete_upload_becomes_a_backup_and_uneven_parts_are_refused() {
    let w = World::on(Tier::Team);
    let part_size = shared::backup::multipart::PART_SIZE;
    let id = upload(&w, T0).unwrap();
    part(&w, T0, &id, 1, part_size).unwrap();
    part(&w, T0, &id, 3, 5).unwrap();
    assert_eq!(
        code(w.call(T0, &AssembleUpload { upload: id.clone() })),
        "conflict"
    );
    part(&w, T0, &id, 2, part_size).unwrap();
    let assembly = w.call(T0, &AssembleUpload { upload: id.clone() }).unwrap();
    assert_eq!(assembly.parts.len(), 3);
    assert_eq!(assembly.size, 2 * part_size + 5);
    assert_eq!(
        code(part(&w, T0, &id, 4, 5)),
        "not_found",
        "no parts while assembling"
    );
    let done = w
        .call(
            T0,
            &CommitUpload {
                upload: id.clone(),
                facts: BackupFacts {
                    version: 2,
                    timestamp: 9,
                    checksum: "c".repeat(64),
                    prune: false,
                },
            },
        )
        .unwrap();
    assert_eq!(
        (done.meta.id.as_str(), done.meta.chunk_count),
        (id.as_str(), 3)
    );
    assert_eq!(w.used().1, 2 * part_size + 5, "counted once, as the backup");
    assert_eq!(code(w.call(T0, &DropUpload { upload: id })), "not_found");
}

#[test]
fn expired_uploads_are_handed_out_for_aborting_and_forgotten() {
    let w = World::on(Tier::Pro);
    let id = upload(&w, T0).unwrap();
    part(&w, T0, &id, 1, 100).unwrap();
    let memo = Memo::default();
    let home = w.home(&memo);
    assert_eq!(
        home.next_upload_expiry().unwrap(),
        Some(T0 + shared::backup::multipart::UPLOAD_TTL_MS)
    );
    let expired = home
        .expire_uploads(T0 + shared::backup::multipart::UPLOAD_TTL_MS)
        .unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(w.used().1, 0);
    assert_eq!(home.next_upload_expiry().unwrap(), None);
}

fn vectors(ids: &[&str], values: &[f32]) -> UpsertVectors {
    UpsertVectors {
        dims: u32::try_from(values.len()).unwrap(),
        items: ids
            .iter()
            .map(|id| VectorIn {
                id: (*id).to_owned(),
                size: 100,
                checksum: "d".repeat(64),
                entry: Some(VectorEntry {
                    id: (*id).to_owned(),
                    values: values.to_vec(),
                    blob: format!("blob-{id}"),
                }),
            })
            .collect(),
    }
}

#[test]
fn vectors_keep_one_dimension_count_towards_the_quota_and_are_found_best_first() {
    let w = World::on(Tier::Pro);
    w.call(T0, &vectors(&["a", "b"], &[1.0, 0.0])).unwrap();
    w.call(T0, &vectors(&["c"], &[0.0, 1.0])).unwrap();
    assert_eq!(w.used().0, 300);
    assert_eq!(
        code(w.call(T0, &vectors(&["x"], &[1.0, 0.0, 0.0]))),
        "validation_failed"
    );
    let found = w
        .call(
            T0,
            &SearchVectors {
                vector: vec![0.1, 0.9],
                top_k: 2,
                search: true,
            },
        )
        .unwrap();
    assert_eq!(found.dims, Some(2));
    let ids: Vec<&str> = found.matches.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["c", "a"]);
    assert_eq!(found.matches[0].blob, "blob-c");
    // Replacing counts the difference; deleting frees.
    w.call(T0, &vectors(&["a"], &[1.0, 0.0])).unwrap();
    assert_eq!(w.used().0, 300);
    w.call(
        T0,
        &DeleteVectors {
            ids: vec!["a".into(), "ghost".into()],
        },
    )
    .unwrap();
    assert_eq!(w.used().0, 200);
    let big: Vec<String> = (0..50).map(|i| format!("v{i}")).collect();
    let refs: Vec<&str> = big.iter().map(String::as_str).collect();
    assert_eq!(
        code(w.call(T0, &vectors(&refs, &[1.0, 0.0]))),
        "quota_exceeded"
    );
}

#[test]
fn usage_reports_bytes_limits_and_the_requests_left() {
    let w = World::new();
    w.set_tier(Tier::Pro, None);
    w.create(T0, "t", 123).unwrap();
    let (r, _) = w.raw(T0, None, true, &GetUsage {});
    let u = r.unwrap();
    assert_eq!(u.cloud_storage.used_bytes, 123);
    assert_eq!(u.cloud_storage.limit_bytes, Some(5 * GB));
    assert_eq!(u.backup.limit_bytes, Some(5 * GB));
    assert_eq!((u.requests.limit, u.requests.remaining), (60, 59));
    w.set_tier(Tier::Team, None);
    let u = w.call(T0, &GetUsage {}).unwrap();
    assert_eq!(u.cloud_storage.limit_bytes, None, "unlimited");
}

#[test]
fn committed_changes_are_announced_for_other_devices() {
    let w = World::on(Tier::Pro);
    let r = w
        .call(
            T0,
            &ReserveRecord {
                target: RecordTarget::Create { table: "t".into() },
                size: 1,
                checksum: "0".repeat(64),
            },
        )
        .unwrap();
    let (done, effects) = w.raw(
        T0,
        None,
        false,
        &CommitRecord {
            reservation: r.reservation,
        },
    );
    let row = done.unwrap().row;
    assert_eq!(effects.notices.len(), 1);
    let frame: serde_json::Value = serde_json::from_str(&effects.notices[0].frame()).unwrap();
    assert_eq!(frame["type"], "changed");
    assert_eq!(frame["kind"], "record");
    assert_eq!(frame["cursor"], format!("{}.{}", row.updated_at, row.id));
}

#[test]
fn housekeeping_purges_only_old_tombstones_a_bounded_number_at_a_time() {
    use shared::housekeeping::{Housekeep, Referenced};
    let w = World::on(Tier::Pro);
    let ids: Vec<String> = (0..4)
        .map(|i| w.create(T0 + i, "tasks", 1).unwrap())
        .collect();
    let keys: Vec<String> = ids
        .iter()
        .map(|id| {
            w.call(T0 + 5, &GetRecord { id: id.clone() })
                .unwrap()
                .r2_key
        })
        .collect();
    for (i, id) in ids.iter().take(3).enumerate() {
        let at = T0 + 10 + i64::try_from(i).unwrap() * 1_000;
        w.call(
            at,
            &DeleteRecord {
                id: id.clone(),
                if_match: None,
            },
        )
        .unwrap();
    }
    // Deleted at T0+10, T0+1010, T0+2010; the cut-off T0+2000 leaves the last one.
    let purge = |limit| Housekeep {
        tombstones_before: T0 + 2_000,
        limit,
    };
    assert_eq!(
        w.call(T0 + 3_000, &purge(1)).unwrap().tombstones,
        1,
        "bounded"
    );
    assert_eq!(w.call(T0 + 3_000, &purge(10)).unwrap().tombstones, 1);
    assert_eq!(
        w.call(T0 + 3_000, &purge(10)).unwrap().tombstones,
        0,
        "done"
    );
    let page = w
        .call(
            T0 + 3_000,
            &ListRecords {
                table: None,
                updated_since: None,
                after: None,
                offset: 0,
                limit: 100,
            },
        )
        .unwrap();
    let listed: Vec<(String, bool)> = page
        .items
        .iter()
        .map(|m| (m.id.clone(), m.deleted))
        .collect();
    assert_eq!(
        listed,
        vec![(ids[3].clone(), false), (ids[2].clone(), true)],
        "the live record and the young tombstone stay"
    );
    // Only the live record references its key; tombstones and strangers do not.
    let asked = Referenced {
        keys: vec![
            keys[3].clone(),
            keys[2].clone(),
            keys[0].clone(),
            "x/y".into(),
        ],
    };
    assert_eq!(
        w.call(T0 + 3_000, &asked).unwrap().keys,
        vec![keys[3].clone()]
    );
}

#[test]
fn a_home_purges_its_month_old_tombstones_by_itself_when_used() {
    let w = World::on(Tier::Pro);
    let id = w.create(T0, "tasks", 1).unwrap();
    let keep = w.create(T0, "tasks", 1).unwrap();
    w.call(
        T0 + 1,
        &DeleteRecord {
            id: id.clone(),
            if_match: None,
        },
    )
    .unwrap();
    w.restart();
    // Any call of a new life runs the home's housekeeping first.
    let month = T0 + 31 * 86_400_000;
    w.call(month, &GetUsage {}).unwrap();
    let gone = w.sql.exec("SELECT id FROM records", &[]).unwrap();
    let left: Vec<String> = gone.iter().map(|r| r.text(0)).collect();
    assert_eq!(left, vec![keep]);
}

#[test]
fn a_sync_position_older_than_a_deletion_no_longer_listed_is_told_to_reset() {
    use shared::housekeeping::Housekeep;
    // A device synced up to `position`; then a record was deleted.
    let world = |sweep_age: i64| {
        let mut w = World::on(Tier::Pro);
        w.cfg.tombstone_age_ms = sweep_age;
        let synced = w.create(T0, "tasks", 1).unwrap();
        let position = w
            .call(T0 + 1, &GetRecord { id: synced })
            .unwrap()
            .updated_at;
        let gone = w.create(T0 + 10, "tasks", 1).unwrap();
        w.call(
            T0 + 20,
            &DeleteRecord {
                id: gone,
                if_match: None,
            },
        )
        .unwrap();
        (w, position)
    };
    let since = |p: Option<i64>| ListRecords {
        table: None,
        updated_since: p,
        after: None,
        offset: 0,
        limit: 100,
    };
    let cursor = |u: i64| ListRecords {
        after: Some(shared::storage::Cursor { u, i: "0".into() }),
        ..since(None)
    };

    // The home's own sweep off: the tombstone stays in SQLite past the listing's 30 days.
    let (w, position) = world(i64::MAX / 4);
    let page = w.call(T0 + 30, &since(Some(position))).unwrap();
    assert!(
        page.items.iter().any(|m| m.deleted),
        "listed: nothing to reset"
    );
    assert!(!page.reset);
    let month = T0 + 31 * 86_400_000;
    let page = w.call(month, &since(Some(position))).unwrap();
    assert!(page.items.iter().all(|m| !m.deleted), "no longer listed");
    assert!(page.reset, "updated_since before the unlisted deletion");
    assert!(
        w.call(month, &cursor(position)).unwrap().reset,
        "a cursor too"
    );
    assert!(
        !w.call(month, &since(Some(T0 + 40))).unwrap().reset,
        "after it"
    );
    assert!(
        !w.call(month, &since(None)).unwrap().reset,
        "from the start"
    );
    assert!(!w.call(month, &since(Some(0))).unwrap().reset, "from zero");

    // Purged early (as the cron does with a shorter age): remembered after the row is gone,
    // across a new life of the object.
    let (w, position) = world(shared::storage::TOMBSTONE_TTL_MS);
    let purged = w
        .call(
            T0 + 40,
            &Housekeep {
                tombstones_before: T0 + 30,
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(purged.tombstones, 1);
    w.restart();
    assert!(w.call(T0 + 50, &since(Some(position))).unwrap().reset);
    assert!(w.call(T0 + 50, &cursor(position)).unwrap().reset);
    assert!(!w.call(T0 + 50, &since(Some(T0 + 40))).unwrap().reset);
    assert!(!w.call(T0 + 50, &since(None)).unwrap().reset);
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn the_enabled_agents_are_kept_across_lives_and_a_free_home_refuses_a_fourth() {
    let w = World::on(Tier::Free);
    assert_eq!(w.call(T0, &GetChatChoices {}).unwrap().agents, None);
    let three = names(&["task_agent", "checkpoint_agent", "note_agent"]);
    w.call(
        T0,
        &SetEnabledAgents {
            agents: three.clone(),
        },
    )
    .unwrap();
    w.restart();
    assert_eq!(
        w.call(T0, &GetChatChoices {}).unwrap().agents,
        Some(three.clone())
    );
    let four = names(&[
        "task_agent",
        "checkpoint_agent",
        "project_agent",
        "note_agent",
    ]);
    let refused = w
        .call(
            T0,
            &SetEnabledAgents {
                agents: four.clone(),
            },
        )
        .expect_err("a fourth agent on free");
    assert_eq!(
        (refused.status, refused.code.as_str()),
        (403, "tier_required")
    );
    assert_eq!(w.call(T0, &GetChatChoices {}).unwrap().agents, Some(three));
    assert_eq!(
        code(w.call(T0, &SetEnabledAgents { agents: Vec::new() })),
        "validation_failed"
    );
    // The same home on pro takes all four.
    w.set_tier(Tier::Pro, None);
    w.call(
        T0,
        &SetEnabledAgents {
            agents: four.clone(),
        },
    )
    .unwrap();
    assert_eq!(w.call(T0, &GetChatChoices {}).unwrap().agents, Some(four));
}

#[test]
fn the_installed_plugin_set_is_replaced_by_its_push_and_an_uninstall_leaves_the_agent_choice() {
    use shared::home::ops::{InstalledPlugin, SetInstalledPlugins};
    let w = World::on(Tier::Pro);
    assert!(w.call(T0, &GetChatChoices {}).unwrap().plugins.is_empty());
    let (a, b) = (uuid::Uuid::from_u128(0xa), uuid::Uuid::from_u128(0xb));
    let of = |plugin_id: uuid::Uuid| InstalledPlugin {
        plugin_id,
        version_id: uuid::Uuid::from_u128(plugin_id.as_u128() << 64),
    };
    let (pa, pb) = (of(a), of(b));
    w.call(
        T0,
        &SetInstalledPlugins {
            plugins: vec![pb, pa, pa],
        },
    )
    .unwrap();
    let mut sorted = vec![pa, pb];
    sorted.sort();
    w.restart();
    assert_eq!(w.call(T0, &GetChatChoices {}).unwrap().plugins, sorted);
    let chosen = names(&[
        "task_agent",
        &format!("plugin.{a}.helper"),
        &format!("plugin.{b}.x"),
    ]);
    w.call(T0, &SetEnabledAgents { agents: chosen }).unwrap();
    // Uninstalling `a`: its agent leaves the stored choice at once, the others stay.
    w.call(T0, &SetInstalledPlugins { plugins: vec![pb] })
        .unwrap();
    let now = w.call(T0, &GetChatChoices {}).unwrap();
    assert_eq!(now.plugins, vec![pb]);
    assert_eq!(
        now.agents,
        Some(names(&["task_agent", &format!("plugin.{b}.x")]))
    );
    // A choice of nothing but removed agents is no choice: the tier's default applies again.
    w.call(
        T0,
        &SetEnabledAgents {
            agents: vec![format!("plugin.{b}.x")],
        },
    )
    .unwrap();
    w.call(T0, &SetInstalledPlugins { plugins: vec![] })
        .unwrap();
    assert_eq!(w.call(T0, &GetChatChoices {}).unwrap().agents, None);
}

#[test]
fn a_batch_id_outlives_the_objects_memory_for_a_day_and_holds_nothing_else() {
    use shared::chat::orchestrator::batch::BATCH_ID_TTL_MS;
    let w = World::on(Tier::Free);
    {
        let memo = std::rc::Rc::clone(&w.memo.borrow());
        let home = w.home(&memo);
        home.remember_batch("b-1", 20, T0).unwrap();
        home.remember_batch("b-2", 3, T0 + 5).unwrap();
    }
    w.restart();
    let memo = std::rc::Rc::clone(&w.memo.borrow());
    let home = w.home(&memo);
    assert_eq!(home.known_batch("b-1", T0 + 10).unwrap(), Some((20, T0)));
    assert_eq!(home.known_batch("other", T0 + 10).unwrap(), None);
    let ids: Vec<String> = home
        .known_batches(T0 + 10)
        .unwrap()
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!(ids, ["b-2", "b-1"], "newest first");
    let columns = w
        .sql
        .exec("SELECT name FROM pragma_table_info('batch_ids')", &[])
        .unwrap();
    let names: Vec<String> = columns.iter().map(|r| r.text(0)).collect();
    assert_eq!(names, ["id", "total", "created_at"], "no content column");
    assert_eq!(home.known_batch("b-1", T0 + BATCH_ID_TTL_MS).unwrap(), None);
    assert_eq!(
        home.known_batches(T0 + 5 + BATCH_ID_TTL_MS).unwrap(),
        vec![]
    );
}

#[test]
fn tombstone_queries_read_the_tombstone_index_not_the_live_records() {
    let w = World::on(Tier::Pro);
    // The schema exists once the object has opened.
    w.create(T0, "t", 10).unwrap();
    for sql in [PURGE_TOMBSTONES_SQL, super::records::HIDDEN_TOMBSTONE_SQL] {
        let plan: Vec<String> = w
            .sql
            .exec(
                &format!("EXPLAIN QUERY PLAN {sql}"),
                &[0_i64.into(), 1_i64.into()],
            )
            .unwrap()
            .iter()
            .map(|r| r.text(3).clone())
            .collect();
        assert!(
            plan.iter().any(|d| d.contains("records_tombstones")),
            "{sql}: {plan:?}"
        );
        assert!(!plan.iter().any(|d| d == "SCAN records"), "{sql}: {plan:?}");
    }
}

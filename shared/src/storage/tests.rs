use proptest::prelude::*;

use super::*;
use crate::testing::{FixedClock, InMemoryBlobStore, InMemoryRecordStore, SeqRandom};

const T0: i64 = 1_800_000_000_000;
const U: UserId = UserId(uuid::Uuid::from_u128(1));
const OTHER: UserId = UserId(uuid::Uuid::from_u128(2));

struct World {
    records: InMemoryRecordStore,
    blobs: InMemoryBlobStore,
    clock: FixedClock,
    rng: SeqRandom,
}

impl World {
    fn new() -> Self {
        Self {
            records: InMemoryRecordStore::default(),
            blobs: InMemoryBlobStore::default(),
            clock: FixedClock::at(T0),
            rng: SeqRandom::new(9),
        }
    }

    fn svc(&self) -> RecordService<'_, InMemoryBlobStore> {
        RecordService {
            records: &self.records,
            blobs: &self.blobs,
            usage: &self.records,
            clock: &self.clock,
            rng: &self.rng,
        }
    }

    async fn create(&self, tier: Tier, bytes: &[u8]) -> Result<RecordRow, AppError> {
        self.svc()
            .create(
                U,
                tier,
                TableName::parse("tasks", "table").unwrap(),
                Checksum::of(bytes),
                Payload::Bytes(bytes.to_vec()),
            )
            .await
    }

    fn used(&self) -> u64 {
        self.records
            .rows
            .borrow()
            .iter()
            .filter(|r| r.deleted_at.is_none())
            .map(|r| r.size_bytes)
            .sum()
    }
}

#[test]
fn table_names_are_short_identifiers_not_paths() {
    for ok in ["tasks", "Notes_2", "a", "check-points"] {
        assert!(TableName::parse(ok, "table").is_ok(), "{ok}");
    }
    for bad in [
        "",
        "a/b",
        "..",
        "../x",
        "a b",
        "-x",
        "tab\u{0}",
        &"x".repeat(65),
        "é",
    ] {
        assert_eq!(
            TableName::parse(bad, "table").unwrap_err().field,
            "table",
            "{bad:?}"
        );
    }
}

#[test]
fn checksums_are_64_hex_characters_and_compare_exactly() {
    let c = Checksum::of(b"abc");
    assert_eq!(
        c.as_str(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        Checksum::parse(&c.as_str().to_uppercase(), "checksum").unwrap(),
        c
    );
    assert!(c.matches(b"abc"));
    assert!(!c.matches(b"abd"));
    for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63), &"a".repeat(65)] {
        assert!(Checksum::parse(bad, "checksum").is_err(), "{bad}");
    }
    assert_eq!(hex::encode(c.digest()), c.as_str());
}

#[test]
fn if_match_is_strong_and_if_none_match_is_weak() {
    let tag = etag(3, "ba7816bf8f01cfea414140de5dae2223");
    assert_eq!(tag, "\"3.ba7816bf8f01cfea\"");
    assert!(if_match_allows(None, &tag));
    assert!(if_match_allows(Some("*"), &tag));
    assert!(if_match_allows(Some(&format!("\"x\", {tag}")), &tag));
    assert!(!if_match_allows(Some("\"2.ba7816bf8f01cfea\""), &tag));
    assert!(!if_match_allows(Some(&format!("W/{tag}")), &tag));
    assert!(if_none_match_hits(Some(&format!("W/{tag}")), &tag));
    assert!(!if_none_match_hits(None, &tag));
}

proptest! {
    #[test]
    fn cursors_round_trip(u in 0i64..999_999_999_999_999, i in "[a-f0-9-]{1,36}") {
        let c = Cursor { u, i };
        prop_assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn foreign_cursors_are_refused_not_crashed(s in "\\PC{0,80}") {
        let _ = Cursor::decode(&s);
    }
}

#[tokio::test]
async fn a_free_user_has_no_cloud_storage() {
    let w = World::new();
    let e = w.create(Tier::Free, b"x").await.unwrap_err();
    assert_eq!(e.code(), "tier_required");
    assert!(w.blobs.objects.borrow().is_empty());
}

#[tokio::test]
async fn a_mismatched_checksum_stores_nothing() {
    let w = World::new();
    let e = w
        .svc()
        .create(
            U,
            Tier::Pro,
            TableName::parse("t", "table").unwrap(),
            Checksum::of(b"other"),
            Payload::Bytes(b"bytes".to_vec()),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "checksum_mismatch");
    assert!(w.blobs.objects.borrow().is_empty());
    assert!(w.records.rows.borrow().is_empty());
}

#[tokio::test]
async fn create_update_delete_keep_usage_exact_and_leave_no_orphans() {
    let w = World::new();
    let r = w.create(Tier::Pro, b"first").await.unwrap();
    assert_eq!(r.r2_key, format!("{U}/tasks/{}", r.id));
    assert_eq!(w.used(), 5);
    let r2 = w
        .svc()
        .update(
            U,
            Tier::Pro,
            &r.id,
            Some(&r.etag()),
            Checksum::of(b"second!"),
            Payload::Bytes(b"second!".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(r2.version, 2);
    assert_ne!(r2.etag(), r.etag());
    assert_eq!(w.used(), 7);
    assert_eq!(w.blobs.objects.borrow().len(), 1, "the old blob is gone");
    assert_eq!(w.blobs.objects.borrow()[&r2.r2_key], b"second!");
    w.svc().delete(U, &r.id, None).await.unwrap();
    assert_eq!(w.used(), 0);
    assert!(w.blobs.objects.borrow().is_empty());
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_changes_nothing() {
    let w = World::new();
    let r = w.create(Tier::Pro, b"v1").await.unwrap();
    let stale = r.etag();
    w.svc()
        .update(
            U,
            Tier::Pro,
            &r.id,
            None,
            Checksum::of(b"v2"),
            Payload::Bytes(b"v2".to_vec()),
        )
        .await
        .unwrap();
    let e = w
        .svc()
        .update(
            U,
            Tier::Pro,
            &r.id,
            Some(&stale),
            Checksum::of(b"v3"),
            Payload::Bytes(b"v3".to_vec()),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 412);
    assert_eq!(
        w.svc()
            .delete(U, &r.id, Some(&stale))
            .await
            .unwrap_err()
            .status(),
        412
    );
    let now = w.svc().get(U, &r.id).await.unwrap();
    assert_eq!(now.checksum, Checksum::of(b"v2").as_str());
    assert_eq!(w.blobs.objects.borrow().len(), 1);
}

#[tokio::test]
async fn racing_writers_of_one_version_never_touch_each_others_blobs() {
    let w = World::new();
    let r = w.create(Tier::Pro, b"v1").await.unwrap();
    // Two writers read version 1; the second commits first.
    let first = w
        .svc()
        .update(
            U,
            Tier::Pro,
            &r.id,
            Some(&r.etag()),
            Checksum::of(b"winner"),
            Payload::Bytes(b"winner".to_vec()),
        )
        .await
        .unwrap();
    let late = w
        .svc()
        .update(
            U,
            Tier::Pro,
            &r.id,
            Some(&r.etag()),
            Checksum::of(b"loser"),
            Payload::Bytes(b"loser".to_vec()),
        )
        .await
        .unwrap_err();
    assert_eq!(late.status(), 412);
    let objects = w.blobs.objects.borrow();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[&first.r2_key], b"winner");
}

#[tokio::test]
async fn a_failed_metadata_write_removes_the_new_blob() {
    let w = World::new();
    w.records.fail_next_insert.set(true);
    assert_eq!(w.create(Tier::Pro, b"x").await.unwrap_err().status(), 500);
    assert!(w.blobs.objects.borrow().is_empty(), "no orphan blob");
    w.blobs.fail_next_put.set(true);
    assert_eq!(w.create(Tier::Pro, b"x").await.unwrap_err().status(), 500);
    assert!(w.records.rows.borrow().is_empty(), "no row without a blob");
}

#[tokio::test]
async fn quotas_count_live_bytes_and_allow_replacing_in_place() {
    let w = World::new();
    // Pro has 5 GB; pretend 5 GB less 10 bytes are used.
    w.records.rows.borrow_mut().push(RecordRow {
        id: "big".into(),
        user_id: U,
        table: "t".into(),
        r2_key: "k".into(),
        checksum: "0".repeat(64),
        size_bytes: 5 * crate::tiers::GB - 10,
        version: 1,
        created_at: T0,
        updated_at: T0,
        deleted_at: None,
    });
    let small = w.create(Tier::Pro, &[0u8; 10]).await.unwrap();
    let e = w.create(Tier::Pro, b"1").await.unwrap_err();
    assert_eq!(e.code(), "quota_exceeded");
    // Replacing the 10 bytes with 10 other bytes fits: the old size is freed.
    w.svc()
        .update(
            U,
            Tier::Pro,
            &small.id,
            None,
            Checksum::of(&[1u8; 10]),
            Payload::Bytes(vec![1u8; 10]),
        )
        .await
        .unwrap();
    // Team is unlimited.
    assert!(w.create(Tier::Team, b"more").await.is_ok());
}

#[tokio::test]
async fn another_users_record_is_not_found_for_every_verb() {
    let w = World::new();
    let r = w.create(Tier::Pro, b"mine").await.unwrap();
    assert_eq!(w.svc().get(OTHER, &r.id).await.unwrap_err().status(), 404);
    let e = w
        .svc()
        .update(
            OTHER,
            Tier::Pro,
            &r.id,
            None,
            Checksum::of(b"x"),
            Payload::Bytes(b"x".to_vec()),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404);
    assert_eq!(
        w.svc()
            .delete(OTHER, &r.id, None)
            .await
            .unwrap_err()
            .status(),
        404
    );
    let (page, _) = w
        .svc()
        .list(
            OTHER,
            &ListQuery {
                table: None,
                updated_since: None,
                after: None,
                offset: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert!(page.is_empty());
}

#[tokio::test]
async fn listing_pages_by_cursor_and_shows_tombstones_for_thirty_days() {
    let w = World::new();
    let mut ids = Vec::new();
    for i in 0..5u8 {
        w.clock.advance(10);
        ids.push(w.create(Tier::Pro, &[i]).await.unwrap().id);
    }
    w.clock.advance(10);
    w.svc().delete(U, &ids[1], None).await.unwrap();
    let q = |after: Option<Cursor>| ListQuery {
        table: None,
        updated_since: None,
        after,
        offset: 0,
        limit: 2,
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = w.svc().list(U, &q(after)).await.unwrap();
        seen.extend(page);
        match next {
            Some(c) => after = Some(Cursor::decode(&c).unwrap()),
            None => break,
        }
    }
    let order: Vec<&str> = seen.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        order,
        vec![&ids[0], &ids[2], &ids[3], &ids[4], &ids[1]],
        "by update time"
    );
    assert!(
        seen.last().unwrap().deleted,
        "the deletion is listed last, as a tombstone"
    );
    // Since a point in time: only what changed after it.
    let since = seen[3].updated_at;
    let (page, _) = w
        .svc()
        .list(
            U,
            &ListQuery {
                table: None,
                updated_since: Some(since),
                after: None,
                offset: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    // Thirty days later the tombstone is no longer listed.
    w.clock.advance(TOMBSTONE_TTL_MS + 100);
    let (page, _) = w.svc().list(U, &q(None)).await.unwrap();
    assert!(page.iter().all(|m| !m.deleted));
}

#[tokio::test]
async fn oversized_records_are_413() {
    let w = World::new();
    let e = w
        .svc()
        .create(
            U,
            Tier::Team,
            TableName::parse("t", "table").unwrap(),
            Checksum::of(b""),
            Payload::Stream(Vec::new(), MAX_RECORD_BYTES + 1),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 413);
}

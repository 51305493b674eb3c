use std::cell::RefCell;

use super::*;
use crate::testing::{FixedClock, InMemoryBlobStore, SeqRandom};

const U: UserId = UserId(uuid::Uuid::from_u128(5));
const OTHER: UserId = UserId(uuid::Uuid::from_u128(6));

#[derive(Default)]
struct Rows(RefCell<Vec<BackupRow>>);

#[async_trait(?Send)]
impl BackupStore for Rows {
    async fn insert(&self, row: &BackupRow) -> Result<(), StoreError> {
        self.0.borrow_mut().push(row.clone());
        Ok(())
    }
    async fn list(&self, user: UserId) -> Result<Vec<BackupRow>, StoreError> {
        let mut v: Vec<_> = self
            .0
            .borrow()
            .iter()
            .filter(|b| b.user_id == user)
            .cloned()
            .collect();
        v.sort_by_key(|b| std::cmp::Reverse(b.meta.created_at));
        Ok(v)
    }
    async fn get(&self, user: UserId, id: &str) -> Result<Option<BackupRow>, StoreError> {
        Ok(self
            .0
            .borrow()
            .iter()
            .find(|b| b.user_id == user && b.meta.id == id)
            .cloned())
    }
    async fn delete(&self, user: UserId, id: &str) -> Result<bool, StoreError> {
        let mut rows = self.0.borrow_mut();
        let before = rows.len();
        rows.retain(|b| !(b.user_id == user && b.meta.id == id));
        Ok(rows.len() != before)
    }
}

struct World {
    rows: Rows,
    blobs: InMemoryBlobStore,
    clock: FixedClock,
    rng: SeqRandom,
}

impl World {
    fn new() -> Self {
        Self {
            rows: Rows::default(),
            blobs: InMemoryBlobStore::default(),
            clock: FixedClock::at(1_000),
            rng: SeqRandom::new(4),
        }
    }
    fn svc(&self) -> BackupService<'_, InMemoryBlobStore> {
        BackupService {
            backups: &self.rows,
            blobs: &self.blobs,
            clock: &self.clock,
            rng: &self.rng,
        }
    }
    fn headers(bytes: &[u8], prune: bool) -> BackupHeaders {
        BackupHeaders {
            version: 3,
            timestamp: 42,
            checksum: Checksum::of(bytes),
            prune_oldest: prune,
        }
    }
    async fn put(&self, tier: Tier, bytes: &[u8], prune: bool) -> Result<BackupMetadata, AppError> {
        self.clock.advance(10);
        self.svc()
            .put(
                U,
                tier,
                Self::headers(bytes, prune),
                Payload::Bytes(bytes.to_vec()),
            )
            .await
    }
    /// Pretends the user already stores `size` bytes of backups.
    fn existing(&self, id: &str, size: u64, created_at: i64) {
        self.rows.0.borrow_mut().push(BackupRow {
            user_id: U,
            r2_key: format!("k-{id}"),
            meta: BackupMetadata {
                id: id.into(),
                version: 1,
                timestamp: 1,
                checksum: "0".repeat(64),
                chunk_count: 1,
                size_bytes: size,
                created_at,
            },
        });
        self.blobs
            .objects
            .borrow_mut()
            .insert(format!("k-{id}"), Vec::new());
    }
}

#[test]
fn headers_are_parsed_and_every_bad_one_named() {
    let ok = BackupHeaders::parse(
        Some("2"),
        Some("1700000000000"),
        Some(&"a".repeat(64)),
        Some("oldest"),
    )
    .unwrap();
    assert!(ok.prune_oldest);
    let e = BackupHeaders::parse(Some("0"), Some("x"), None, Some("newest")).unwrap_err();
    let AppError::Validation(fields) = e else {
        panic!()
    };
    let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "X-Backup-Version",
            "X-Backup-Timestamp",
            "X-Backup-Checksum",
            "X-Backup-Prune"
        ]
    );
}

#[tokio::test]
async fn free_users_have_no_backups() {
    let w = World::new();
    assert_eq!(
        w.put(Tier::Free, b"db", false).await.unwrap_err().code(),
        "tier_required"
    );
}

#[tokio::test]
async fn backups_store_history_newest_first_and_delete() {
    let w = World::new();
    let a = w.put(Tier::Pro, b"first", false).await.unwrap();
    let b = w.put(Tier::Pro, b"second", false).await.unwrap();
    let h = w.svc().history(U).await.unwrap();
    assert_eq!(
        h.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        vec![b.id.clone(), a.id.clone()]
    );
    assert_eq!(w.svc().latest(U).await.unwrap().meta, b);
    let key = w.svc().latest(U).await.unwrap().r2_key;
    assert_eq!(key, format!("{U}/42/{}", b.id));
    assert_eq!(
        w.svc().delete(OTHER, &b.id).await.unwrap_err().status(),
        404
    );
    w.svc().delete(U, &b.id).await.unwrap();
    assert_eq!(w.svc().latest(U).await.unwrap().meta, a);
    assert_eq!(w.blobs.objects.borrow().len(), 1);
}

#[tokio::test]
async fn a_wrong_checksum_stores_nothing() {
    let w = World::new();
    let e = w
        .svc()
        .put(
            U,
            Tier::Pro,
            World::headers(b"other", false),
            Payload::Bytes(b"bytes".to_vec()),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "checksum_mismatch");
    assert!(w.rows.0.borrow().is_empty());
    assert!(w.blobs.objects.borrow().is_empty());
}

#[tokio::test]
async fn a_full_quota_refuses_unless_pruning_was_asked_for() {
    let w = World::new();
    w.existing("old", 3 * GB, 1);
    w.existing("newer", 2 * GB - 2, 2);
    let e = w.put(Tier::Pro, b"abc", false).await.unwrap_err();
    assert_eq!(e.code(), "quota_exceeded");
    assert_eq!(w.rows.0.borrow().len(), 2, "nothing pruned silently");
    let m = w.put(Tier::Pro, b"abc", true).await.unwrap();
    let ids: Vec<String> = w
        .svc()
        .history(U)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, vec![m.id, "newer".to_owned()], "only the oldest went");
    assert!(!w.blobs.objects.borrow().contains_key("k-old"));
}

#[tokio::test]
async fn exactly_full_fits_and_team_is_unlimited() {
    let w = World::new();
    w.existing("old", 5 * GB - 3, 1);
    assert!(w.put(Tier::Pro, b"abc", false).await.is_ok());
    assert!(w.put(Tier::Team, &[0u8; 1000], false).await.is_ok());
    let e = w
        .svc()
        .make_room(U, Tier::Power, 26 * GB, true)
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        "quota_exceeded",
        "a backup larger than the whole quota never fits"
    );
}

mod multipart {
    use super::*;
    use crate::backup::multipart::{PART_SIZE, UPLOAD_TTL_MS};
    use crate::testing::InMemoryUploadStore;

    /// Uploads `bytes` as part `n` with its correct checksum.
    async fn send_part(
        w: &World,
        up: &InMemoryUploadStore,
        id: &str,
        n: u16,
        bytes: &[u8],
    ) -> Result<crate::backup::multipart::PartStored, AppError> {
        w.svc()
            .upload_part(up, U, id, n, &Checksum::of(bytes), bytes.to_vec())
            .await
    }

    fn part(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| u8::try_from(i % 251).unwrap() ^ seed)
            .collect()
    }

    #[tokio::test]
    async fn three_parts_assemble_into_a_verified_backup() {
        let w = World::new();
        let up = InMemoryUploadStore::default();
        let started = w.svc().begin_upload(&up, U, Tier::Power).await.unwrap();
        assert_eq!(started.part_size, PART_SIZE);
        let size = usize::try_from(PART_SIZE).unwrap();
        let parts = [part(size, 1), part(size, 2), part(1234, 3)];
        // Out of order, and part 2 sent twice (the retry replaces it).
        for (n, p) in [
            (3u16, &parts[2]),
            (1, &parts[0]),
            (2, &parts[1]),
            (2, &parts[1]),
        ] {
            send_part(&w, &up, &started.upload_id, n, p).await.unwrap();
        }
        let whole: Vec<u8> = parts.concat();
        let meta = w
            .svc()
            .complete_upload(
                &up,
                U,
                Tier::Power,
                &started.upload_id,
                World::headers(&whole, false),
            )
            .await
            .unwrap();
        assert_eq!(meta.chunk_count, 3);
        assert_eq!(meta.size_bytes, whole.len() as u64);
        let latest = w.svc().latest(U).await.unwrap();
        assert_eq!(w.blobs.objects.borrow()[&latest.r2_key], whole);
        assert!(up.uploads.borrow().is_empty(), "the upload is closed");
    }

    #[tokio::test]
    async fn a_bad_part_or_a_bad_whole_is_refused() {
        let w = World::new();
        let up = InMemoryUploadStore::default();
        let s = w.svc().begin_upload(&up, U, Tier::Team).await.unwrap();
        let e = w
            .svc()
            .upload_part(&up, U, &s.upload_id, 1, &Checksum::of(b"x"), b"y".to_vec())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "checksum_mismatch");
        assert_eq!(
            w.svc()
                .upload_part(&up, U, &s.upload_id, 0, &Checksum::of(b"x"), b"x".to_vec())
                .await
                .unwrap_err()
                .status(),
            422
        );
        assert_eq!(
            w.svc()
                .upload_part(
                    &up,
                    OTHER,
                    &s.upload_id,
                    1,
                    &Checksum::of(b"x"),
                    b"x".to_vec()
                )
                .await
                .unwrap_err()
                .status(),
            404
        );
        send_part(&w, &up, &s.upload_id, 1, b"tiny").await.unwrap();
        let e = w
            .svc()
            .complete_upload(
                &up,
                U,
                Tier::Team,
                &s.upload_id,
                World::headers(b"other", false),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), "checksum_mismatch");
        assert!(w.rows.0.borrow().is_empty());
        assert!(
            w.blobs.objects.borrow().is_empty(),
            "the assembled object is deleted"
        );
    }

    #[tokio::test]
    async fn gaps_and_uneven_parts_are_refused_and_stale_uploads_cleaned() {
        let w = World::new();
        let up = InMemoryUploadStore::default();
        let s = w.svc().begin_upload(&up, U, Tier::Team).await.unwrap();
        for n in [1u16, 2] {
            send_part(&w, &up, &s.upload_id, n, b"ab").await.unwrap();
        }
        let e = w
            .svc()
            .complete_upload(
                &up,
                U,
                Tier::Team,
                &s.upload_id,
                World::headers(b"abab", false),
            )
            .await
            .unwrap_err();
        assert_eq!(e.status(), 409, "part 1 is smaller than the part size");
        assert_eq!(
            w.svc()
                .begin_upload(&up, U, Tier::Free)
                .await
                .unwrap_err()
                .code(),
            "tier_required"
        );
        w.clock.advance(UPLOAD_TTL_MS);
        assert_eq!(w.svc().clean_up_uploads(&up).await.unwrap(), 1);
        assert!(w.blobs.objects.borrow().is_empty(), "its parts are gone");
        assert_eq!(
            w.svc()
                .abort_upload(&up, U, &s.upload_id)
                .await
                .unwrap_err()
                .status(),
            404
        );
    }
}

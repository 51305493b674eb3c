//! The encrypted-embedding vector store's rules: what may be stored and searched, per user.
//!
//! Vectors are embeddings the client already encrypted (DCPE, see [`crate::dcpe`]) plus an
//! opaque client-encrypted payload. The index (Vectorize in production, the `VectorIndex`
//! Durable Object locally) holds them; D1 holds only ids, dimensions, sizes and checksums
//! ([`VectorMetaStore`]), which give each user one dimension and count towards the
//! `cloud_storage_gb` quota, as records do. Without `values`, an item's vector is derived from
//! the SHA-256 of its blob ([`derived_vector`]): 32 dimensions that only an identical blob
//! matches — exact-match search, not similarity.
//!
//! Bounds: 100 items per upsert or delete, 1–1536 dimensions, blobs up to 64 KiB, `top_k`
//! 1–100, ids of 1–128 `[A-Za-z0-9_.:-]`. An all-zero vector may be stored but has no
//! direction, so it never matches a search (and an all-zero query matches nothing).

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::api::{
    VectorDeleteRequest, VectorItem, VectorSearchRequest, VectorSearchResponse, VectorSearchResult,
    VectorUpsertRequest,
};
use crate::domain::{Tier, UserId};
use crate::error::{AppError, FieldError};
use crate::ports::{StoreError, VectorEntry, VectorIndex};
use crate::storage::Checksum;
use crate::tiers::TierManager;

/// Items per upsert or delete.
pub const MAX_BATCH: usize = 100;
/// Dimensions of an embedding.
pub const MAX_DIMS: usize = 1536;
/// Decoded blob bytes per item.
pub const MAX_BLOB_BYTES: usize = 64 * 1024;
/// Results per search.
pub const MAX_TOP_K: u32 = 100;
/// Results when `top_k` is absent.
pub const DEFAULT_TOP_K: u32 = 10;
/// Dimensions of a blob-derived vector.
pub const DERIVED_DIMS: usize = 32;

/// What D1 keeps of one vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorMeta {
    /// The vector's id.
    pub id: String,
    /// Its dimensions.
    pub dims: u32,
    /// Bytes it takes (blob plus 4 per dimension).
    pub size_bytes: u64,
    /// SHA-256 of its blob.
    pub checksum: String,
}

/// Vector metadata (D1 `vector_meta`).
#[async_trait(?Send)]
pub trait VectorMetaStore {
    /// The dimension of the user's vectors, if the user has any.
    async fn dims(&self, user: UserId) -> Result<Option<u32>, StoreError>;
    /// Sizes of those of `ids` the user has.
    async fn sizes(&self, user: UserId, ids: &[String]) -> Result<Vec<(String, u64)>, StoreError>;
    /// Inserts or replaces rows.
    async fn upsert(
        &self,
        user: UserId,
        rows: &[VectorMeta],
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Deletes rows (unknown ids ignored).
    async fn delete(&self, user: UserId, ids: &[String]) -> Result<(), StoreError>;
}

/// The plan's SHA-256-derived vector of `bytes`: each of the 32 digest bytes mapped to
/// `[-1, 1]`. Identical bytes give identical vectors (cosine 1); anything else is noise.
pub fn derived_vector(bytes: &[u8]) -> Vec<f32> {
    Sha256::digest(bytes)
        .iter()
        .map(|b| (f32::from(*b) - 127.5) / 127.5)
        .collect()
}

fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// The largest magnitude a value may have: what an `f32` holds (the contract says so, and
/// the check is made before narrowing, so the server and the schema agree on every number).
pub const MAX_ABS_VALUE: f64 = f32::MAX as f64;

/// Checks `values` and narrows them to `f32`.
fn check_values(values: &[f64], field: &str, errors: &mut Vec<FieldError>) -> Vec<f32> {
    if values.is_empty() || values.len() > MAX_DIMS {
        errors.push(FieldError::new(
            field,
            format!("must have 1 to {MAX_DIMS} numbers"),
        ));
    } else if values.iter().any(|v| v.is_nan() || v.abs() > MAX_ABS_VALUE) {
        errors.push(FieldError::new(
            field,
            format!("numbers must lie within ±{MAX_ABS_VALUE:e}"),
        ));
    }
    #[allow(clippy::cast_possible_truncation)]
    values.iter().map(|v| *v as f32).collect()
}

fn decode_blob(raw: &str, field: &str, errors: &mut Vec<FieldError>) -> Option<Vec<u8>> {
    match STANDARD.decode(raw) {
        Ok(b) if b.len() <= MAX_BLOB_BYTES => Some(b),
        Ok(_) => {
            errors.push(FieldError::new(
                field,
                format!("at most {MAX_BLOB_BYTES} bytes decoded"),
            ));
            None
        }
        Err(_) => {
            errors.push(FieldError::new(field, "must be standard base64"));
            None
        }
    }
}

/// An upsert checked item by item.
struct Prepared {
    entries: Vec<VectorEntry>,
    meta: Vec<VectorMeta>,
    dims: usize,
}

fn prepare(req: VectorUpsertRequest) -> Result<Prepared, AppError> {
    let mut errors = Vec::new();
    if req.vectors.is_empty() || req.vectors.len() > MAX_BATCH {
        return Err(AppError::field(
            "vectors",
            format!("must hold 1 to {MAX_BATCH} items"),
        ));
    }
    let mut entries = Vec::with_capacity(req.vectors.len());
    let mut meta = Vec::with_capacity(req.vectors.len());
    let mut dims: Option<usize> = None;
    let mut checksum_failed = false;
    for (
        i,
        VectorItem {
            id,
            values,
            blob,
            checksum,
        },
    ) in req.vectors.into_iter().enumerate()
    {
        let at = |f: &str| format!("vectors[{i}].{f}");
        if !valid_id(&id) {
            errors.push(FieldError::new(at("id"), "1 to 128 of [A-Za-z0-9_.:-]"));
        }
        if entries.iter().any(|e: &VectorEntry| e.id == id) {
            errors.push(FieldError::new(at("id"), "appears twice in the batch"));
        }
        let sum = Checksum::parse(&checksum, &at("checksum")).map_err(|e| errors.push(e));
        let bytes = decode_blob(&blob, &at("blob"), &mut errors);
        let before = errors.len();
        let values = values.map(|v| check_values(&v, &at("values"), &mut errors));
        let (Ok(sum), Some(bytes), true) = (sum, bytes, errors.len() == before) else {
            continue;
        };
        if !sum.matches(&bytes) {
            checksum_failed = true;
            continue;
        }
        let values = values.unwrap_or_else(|| derived_vector(&bytes));
        match dims {
            None => dims = Some(values.len()),
            Some(d) if d != values.len() => errors.push(FieldError::new(
                at("values"),
                format!("has {} dimensions; the batch has {d}", values.len()),
            )),
            Some(_) => {}
        }
        meta.push(VectorMeta {
            id: id.clone(),
            dims: u32::try_from(values.len()).unwrap_or(u32::MAX),
            size_bytes: bytes.len() as u64 + 4 * values.len() as u64,
            checksum: sum.as_str().to_owned(),
        });
        entries.push(VectorEntry { id, values, blob });
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    if checksum_failed {
        return Err(AppError::ChecksumMismatch);
    }
    Ok(Prepared {
        entries,
        meta,
        dims: dims.unwrap_or(0),
    })
}

/// The vector store for one request.
pub struct VectorService<'a> {
    /// The index.
    pub index: &'a dyn VectorIndex,
    /// Metadata (dimension, sizes).
    pub meta: &'a dyn VectorMetaStore,
    /// Tiers and usage.
    pub tiers: TierManager<'a>,
    /// Now, ms since the epoch.
    pub now_ms: i64,
}

impl std::fmt::Debug for VectorService<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorService").finish_non_exhaustive()
    }
}

impl VectorService<'_> {
    /// Stores the vectors (all or none): ids, blobs and checksums checked, one dimension per
    /// user, the cloud-storage quota enforced.
    ///
    /// # Errors
    /// 422 naming each bad item or a dimension mismatch, 400 `checksum_mismatch`, 403
    /// `tier_required` / `quota_exceeded`.
    pub async fn upsert(
        &self,
        user: UserId,
        tier: Tier,
        req: VectorUpsertRequest,
    ) -> Result<u64, AppError> {
        crate::tiers::check_feature(tier, crate::tiers::Feature::CloudStorage)?;
        let prepared = prepare(req)?;
        if let Some(existing) = self.meta.dims(user).await? {
            if existing as usize != prepared.dims {
                return Err(AppError::field(
                    "vectors[0].values",
                    format!(
                        "this index holds {existing}-dimension vectors, not {}; delete them \
                         first to change",
                        prepared.dims
                    ),
                ));
            }
        }
        let ids: Vec<String> = prepared.entries.iter().map(|e| e.id.clone()).collect();
        let replaced: u64 = self
            .meta
            .sizes(user, &ids)
            .await?
            .iter()
            .map(|(_, s)| s)
            .sum();
        let adding: u64 = prepared.meta.iter().map(|m| m.size_bytes).sum();
        self.tiers
            .enforce_quota(user, tier, adding.saturating_sub(replaced))
            .await?;
        let written = self.index.upsert(user, prepared.entries).await?;
        if let Err(e) = self.meta.upsert(user, &prepared.meta, self.now_ms).await {
            // Keep the index and the accounting in step: take the vectors back out.
            let _ = self.index.delete(user, &ids).await;
            return Err(e.into());
        }
        tracing::info!(%user, count = written, bytes = adding, "vectors stored");
        Ok(written)
    }

    /// The `top_k` vectors nearest the query, best first.
    ///
    /// # Errors
    /// 422 for a bad query (bad numbers or blob, `top_k` out of range, a dimension other than
    /// the index's); 403 `tier_required`.
    pub async fn search(
        &self,
        user: UserId,
        tier: Tier,
        req: VectorSearchRequest,
    ) -> Result<VectorSearchResponse, AppError> {
        crate::tiers::check_feature(tier, crate::tiers::Feature::CloudStorage)?;
        let mut errors = Vec::new();
        let (query, top_k) = match req {
            VectorSearchRequest::Vector(q) => (
                Some(check_values(&q.vector, "vector", &mut errors)),
                q.top_k,
            ),
            VectorSearchRequest::Blob(q) => (
                decode_blob(&q.query_blob, "query_blob", &mut errors).map(|b| derived_vector(&b)),
                q.top_k,
            ),
        };
        let top_k = top_k.unwrap_or(DEFAULT_TOP_K);
        if !(1..=MAX_TOP_K).contains(&top_k) {
            errors.push(FieldError::new("top_k", format!("from 1 to {MAX_TOP_K}")));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let query = query.unwrap_or_default();
        let Some(dims) = self.meta.dims(user).await? else {
            return Ok(VectorSearchResponse {
                results: Vec::new(),
            });
        };
        if dims as usize != query.len() {
            return Err(AppError::field(
                "vector",
                format!(
                    "this index holds {dims}-dimension vectors, not {}",
                    query.len()
                ),
            ));
        }
        let hits = self.index.query(user, &query, top_k).await?;
        Ok(VectorSearchResponse {
            results: hits
                .into_iter()
                .map(|m| VectorSearchResult {
                    id: m.id,
                    score: m.score,
                    blob: m.blob,
                })
                .collect(),
        })
    }

    /// Deletes vectors by id (unknown ids ignored).
    ///
    /// # Errors
    /// 422 for an empty or oversized batch.
    pub async fn delete(&self, user: UserId, req: VectorDeleteRequest) -> Result<(), AppError> {
        if req.ids.is_empty() || req.ids.len() > MAX_BATCH {
            return Err(AppError::field(
                "ids",
                format!("must hold 1 to {MAX_BATCH} ids"),
            ));
        }
        // A string that cannot be an id names nothing stored: like an unknown id, it is ignored.
        let ids: Vec<String> = req.ids.into_iter().filter(|id| valid_id(id)).collect();
        if ids.is_empty() {
            return Ok(());
        }
        self.index.delete(user, &ids).await?;
        self.meta.delete(user, &ids).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::testing::InMemoryVectorIndex;
    use crate::tiers::{TierInfo, TierStore};

    /// Metadata in a map; usage = the sum of its sizes plus `records` bytes.
    #[derive(Default)]
    struct Meta {
        rows: RefCell<HashMap<(UserId, String), VectorMeta>>,
        records: u64,
    }

    #[async_trait(?Send)]
    impl VectorMetaStore for Meta {
        async fn dims(&self, user: UserId) -> Result<Option<u32>, StoreError> {
            Ok(self
                .rows
                .borrow()
                .iter()
                .find(|((u, _), _)| *u == user)
                .map(|(_, m)| m.dims))
        }
        async fn sizes(
            &self,
            user: UserId,
            ids: &[String],
        ) -> Result<Vec<(String, u64)>, StoreError> {
            let rows = self.rows.borrow();
            Ok(ids
                .iter()
                .filter_map(|id| {
                    rows.get(&(user, id.clone()))
                        .map(|m| (id.clone(), m.size_bytes))
                })
                .collect())
        }
        async fn upsert(
            &self,
            user: UserId,
            rows: &[VectorMeta],
            _now_ms: i64,
        ) -> Result<(), StoreError> {
            for r in rows {
                self.rows
                    .borrow_mut()
                    .insert((user, r.id.clone()), r.clone());
            }
            Ok(())
        }
        async fn delete(&self, user: UserId, ids: &[String]) -> Result<(), StoreError> {
            for id in ids {
                self.rows.borrow_mut().remove(&(user, id.clone()));
            }
            Ok(())
        }
    }

    #[async_trait(?Send)]
    impl TierStore for Meta {
        async fn tier_info(&self, _user: UserId) -> Result<Option<TierInfo>, StoreError> {
            Ok(None)
        }
        async fn storage_used(&self, user: UserId) -> Result<u64, StoreError> {
            let vectors: u64 = self
                .rows
                .borrow()
                .iter()
                .filter(|((u, _), _)| *u == user)
                .map(|(_, m)| m.size_bytes)
                .sum();
            Ok(self.records + vectors)
        }
        async fn backup_used(&self, _user: UserId) -> Result<u64, StoreError> {
            Ok(0)
        }
    }

    fn user(n: u8) -> UserId {
        UserId(uuid::Uuid::from_bytes([n; 16]))
    }

    fn item(id: &str, values: Option<Vec<f32>>, blob: &[u8]) -> serde_json::Value {
        let mut v = json!({"id": id, "blob": STANDARD.encode(blob),
            "checksum": Checksum::of(blob).as_str()});
        if let Some(values) = values {
            v["values"] = json!(values);
        }
        v
    }

    #[allow(clippy::needless_pass_by_value)]
    fn upsert_req(items: Vec<serde_json::Value>) -> VectorUpsertRequest {
        serde_json::from_value(json!({ "vectors": items })).unwrap()
    }

    fn search_req(v: serde_json::Value) -> VectorSearchRequest {
        serde_json::from_value(v).unwrap()
    }

    fn svc<'a>(index: &'a InMemoryVectorIndex, meta: &'a Meta) -> VectorService<'a> {
        VectorService {
            index,
            meta,
            tiers: TierManager { store: meta },
            now_ms: 1,
        }
    }

    #[tokio::test]
    async fn vectors_are_stored_and_searched_best_first() {
        let (index, meta) = (InMemoryVectorIndex::default(), Meta::default());
        let s = svc(&index, &meta);
        let n = s
            .upsert(
                user(1),
                Tier::Pro,
                upsert_req(vec![
                    item("a", Some(vec![1.0, 0.0, 0.0]), b"A"),
                    item("b", Some(vec![0.7, 0.7, 0.0]), b"B"),
                    item("c", Some(vec![0.0, 0.0, 1.0]), b"C"),
                ]),
            )
            .await
            .unwrap();
        assert_eq!(n, 3);
        let r = s
            .search(
                user(1),
                Tier::Pro,
                search_req(json!({"vector": [0.9, 0.1, 0.0], "top_k": 2})),
            )
            .await
            .unwrap();
        let ids: Vec<&str> = r.results.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(r.results[0].blob, STANDARD.encode(b"A"));
        assert!(r.results[0].score > r.results[1].score);
    }

    #[tokio::test]
    async fn a_blob_without_values_is_found_only_by_the_same_blob() {
        let (index, meta) = (InMemoryVectorIndex::default(), Meta::default());
        let s = svc(&index, &meta);
        s.upsert(
            user(1),
            Tier::Pro,
            upsert_req(vec![
                item("x", None, b"secret-1"),
                item("y", None, b"secret-2"),
            ]),
        )
        .await
        .unwrap();
        let r = s
            .search(
                user(1),
                Tier::Pro,
                search_req(json!({"query_blob": STANDARD.encode(b"secret-2"), "top_k": 1})),
            )
            .await
            .unwrap();
        assert_eq!(r.results[0].id, "y");
        assert!((r.results[0].score - 1.0).abs() < 1e-5);
        assert_eq!(derived_vector(b"x").len(), DERIVED_DIMS);
    }

    #[tokio::test]
    async fn every_bad_item_is_named_and_nothing_is_stored() {
        let (index, meta) = (InMemoryVectorIndex::default(), Meta::default());
        let s = svc(&index, &meta);
        let mut bad_sum = item("ok", Some(vec![1.0]), b"x");
        bad_sum["checksum"] = json!("zz");
        let err = s
            .upsert(
                user(1),
                Tier::Pro,
                upsert_req(vec![
                    item("bad id!", Some(vec![1.0]), b"x"),
                    item("empty", Some(vec![]), b"x"),
                    bad_sum,
                    item("wide", Some(vec![1.0; MAX_DIMS + 1]), b"x"),
                ]),
            )
            .await
            .unwrap_err();
        let AppError::Validation(fields) = err else {
            panic!("422")
        };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "vectors[0].id",
                "vectors[1].values",
                "vectors[2].checksum",
                "vectors[3].values"
            ]
        );
        assert!(meta.rows.borrow().is_empty());
    }

    #[tokio::test]
    async fn a_checksum_that_does_not_match_the_blob_is_refused() {
        let (index, meta) = (InMemoryVectorIndex::default(), Meta::default());
        let mut it = item("a", Some(vec![1.0]), b"one");
        it["checksum"] = json!(Checksum::of(b"two").as_str());
        let err = svc(&index, &meta)
            .upsert(user(1), Tier::Pro, upsert_req(vec![it]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "checksum_mismatch");
        assert!(meta.rows.borrow().is_empty());
    }

    #[tokio::test]
    async fn one_user_keeps_one_dimension_until_the_vectors_are_deleted() {
        let (index, meta) = (InMemoryVectorIndex::default(), Meta::default());
        let s = svc(&index, &meta);
        s.upsert(
            user(1),
            Tier::Pro,
            upsert_req(vec![item("a", Some(vec![1.0, 2.0]), b"a")]),
        )
        .await
        .unwrap();
        let err = s
            .upsert(
                user(1),
                Tier::Pro,
                upsert_req(vec![item("b", Some(vec![1.0; 3]), b"b")]),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "validation_failed");
        let err = s
            .search(
                user(1),
                Tier::Pro,
                search_req(json!({"vector": [1.0, 2.0, 3.0]})),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "validation_failed");
        let mixed = s
            .upsert(
                user(2),
                Tier::Pro,
                upsert_req(vec![
                    item("a", Some(vec![1.0, 2.0]), b"a"),
                    item("b", Some(vec![1.0]), b"b"),
                ]),
            )
            .await
            .unwrap_err();
        assert_eq!(
            mixed.code(),
            "validation_failed",
            "one dimension per batch too"
        );
        s.delete(
            user(1),
            serde_json::from_value(json!({"ids": ["a"]})).unwrap(),
        )
        .await
        .unwrap();
        s.upsert(
            user(1),
            Tier::Pro,
            upsert_req(vec![item("b", Some(vec![1.0; 3]), b"b")]),
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn users_never_see_each_others_vectors() {
        let (index, meta) = (InMemoryVectorIndex::default(), Meta::default());
        let s = svc(&index, &meta);
        s.upsert(
            user(1),
            Tier::Pro,
            upsert_req(vec![item("a", Some(vec![1.0]), b"a")]),
        )
        .await
        .unwrap();
        let r = s
            .search(user(2), Tier::Pro, search_req(json!({"vector": [1.0]})))
            .await
            .unwrap();
        assert!(r.results.is_empty());
    }

    #[tokio::test]
    async fn free_users_are_refused_and_quotas_count_vectors_with_records() {
        let (index, meta) = (InMemoryVectorIndex::default(), Meta::default());
        let err = svc(&index, &meta)
            .upsert(user(1), Tier::Free, upsert_req(vec![item("a", None, b"a")]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "tier_required");
        let err = svc(&index, &meta)
            .search(user(1), Tier::Free, search_req(json!({"vector": [1.0]})))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "tier_required");
        let full = Meta {
            records: 5_000_000_000 - 10,
            ..Meta::default()
        };
        let err = svc(&index, &full)
            .upsert(
                user(1),
                Tier::Pro,
                upsert_req(vec![item("a", None, b"abc")]),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "quota_exceeded");
        assert!(full.rows.borrow().is_empty());
    }

    #[tokio::test]
    async fn search_and_delete_bounds_are_enforced() {
        let (index, meta) = (InMemoryVectorIndex::default(), Meta::default());
        let s = svc(&index, &meta);
        for bad in [
            json!({"vector": [1.0], "top_k": 0}),
            json!({"vector": [1.0], "top_k": 101}),
            json!({"vector": []}),
            json!({"query_blob": "%%%"}),
        ] {
            let err = s.search(user(1), Tier::Pro, search_req(bad.clone())).await;
            assert_eq!(err.unwrap_err().code(), "validation_failed", "{bad}");
        }
        for not_a_query in [
            json!({}),
            json!({"vector": [1.0], "query_blob": "YQ=="}),
            json!({"vector": null, "query_blob": "YQ=="}),
            json!({"vector": [1.0], "extra": 1}),
        ] {
            assert!(
                serde_json::from_value::<VectorSearchRequest>(not_a_query.clone()).is_err(),
                "{not_a_query}"
            );
        }
        let many: Vec<String> = (0..=MAX_BATCH).map(|i| format!("id{i}")).collect();
        for ids in [json!([]), json!(many)] {
            let err = s
                .delete(
                    user(1),
                    serde_json::from_value(json!({ "ids": ids })).unwrap(),
                )
                .await;
            assert_eq!(err.unwrap_err().code(), "validation_failed");
        }
        s.delete(
            user(1),
            serde_json::from_value(json!({"ids": ["ok", "", "not ok"]})).unwrap(),
        )
        .await
        .expect("strings that cannot be ids name nothing: ignored");
    }

    #[test]
    fn the_f32_bound_is_exact_at_the_last_digit() {
        // Found by schemathesis: the numbers next to the bound must land on the right side.
        let parse = |v: &str| -> Vec<f64> { serde_json::from_str(&format!("[{v}]")).unwrap() };
        let mut errors = Vec::new();
        check_values(&parse("3.4028234663852886e38"), "v", &mut errors);
        check_values(&parse("-3.4028234663852886e38"), "v", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        check_values(&parse("-3.402823466385289e38"), "v", &mut errors);
        check_values(&parse("3.402823466385289e38"), "v", &mut errors);
        assert_eq!(errors.len(), 2);
    }

    #[tokio::test]
    async fn an_all_zero_vector_is_accepted_and_scores_nothing() {
        let (index, meta) = (InMemoryVectorIndex::default(), Meta::default());
        let s = svc(&index, &meta);
        s.upsert(
            user(1),
            Tier::Pro,
            upsert_req(vec![item("z", Some(vec![0.0, 0.0]), b"z")]),
        )
        .await
        .unwrap();
        let r = s
            .search(
                user(1),
                Tier::Pro,
                search_req(json!({"vector": [0.0, 0.0]})),
            )
            .await
            .unwrap();
        assert!(r.results.iter().all(|h| h.score <= 0.0), "{r:?}");
    }
}

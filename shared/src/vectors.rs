//! The encrypted-embedding vector store's rules: what may be stored and searched, per user.
//!
//! Vectors are embeddings the client already encrypted (DCPE, see [`crate::dcpe`]) plus an
//! opaque client-encrypted payload. The index (Vectorize in production, the user's home
//! locally) holds them; the user's home holds ids, dimensions, sizes and checksums, which give
//! each user one dimension and count towards the `cloud_storage_gb` quota, as records do. Without `values`, an item's vector is derived from
//! the SHA-256 of its blob ([`derived_vector`]): 32 dimensions that only an identical blob
//! matches — exact-match search, not similarity.
//!
//! Bounds: 100 items per upsert or delete, 1–1536 dimensions, blobs up to 64 KiB, `top_k`
//! 1–100, ids of 1–128 `[A-Za-z0-9_.:-]`. An all-zero vector may be stored but has no
//! direction, so it never matches a search (and an all-zero query matches nothing).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::api::{
    VectorDeleteRequest, VectorItem, VectorSearchRequest, VectorSearchResponse, VectorSearchResult,
    VectorUpsertRequest,
};
use crate::domain::UserId;
use crate::error::{AppError, FieldError};
use crate::home::ops::{DeleteVectors, SearchVectors, UpsertVectors, VectorIn};
use crate::home::{self, HomePort};
use crate::ports::{VectorEntry, VectorIndex};
use crate::storage::Checksum;

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
    items: Vec<VectorIn>,
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
    let mut items: Vec<VectorIn> = Vec::with_capacity(req.vectors.len());
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
        if items.iter().any(|e| e.id == id) {
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
        items.push(VectorIn {
            id: id.clone(),
            size: bytes.len() as u64 + 4 * values.len() as u64,
            checksum: sum.as_str().to_owned(),
            entry: Some(VectorEntry { id, values, blob }),
        });
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    if checksum_failed {
        return Err(AppError::ChecksumMismatch);
    }
    Ok(Prepared {
        items,
        dims: dims.unwrap_or(0),
    })
}

/// The vector store for one request: the user's home (gate, dimension, quota, metadata) and
/// the index — the home itself (the local backend: one call does everything) or Vectorize.
pub struct VectorService<'a> {
    /// The user's home.
    pub home: &'a dyn HomePort,
    /// A separate index (Vectorize); `None` when the home is the index.
    pub index: Option<&'a dyn VectorIndex>,
    /// The user (the index's tenant).
    pub user: UserId,
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
    pub async fn upsert(&self, req: VectorUpsertRequest) -> Result<u64, AppError> {
        let prepared = prepare(req)?;
        let dims = u32::try_from(prepared.dims).unwrap_or(u32::MAX);
        let Some(index) = self.index else {
            let done = home::call(
                self.home,
                &UpsertVectors {
                    dims,
                    items: prepared.items,
                },
            )
            .await?;
            tracing::info!(count = done.upserted, "vectors stored");
            return Ok(done.upserted);
        };
        let mut entries = Vec::with_capacity(prepared.items.len());
        let mut items = prepared.items;
        for item in &mut items {
            entries.extend(item.entry.take());
        }
        let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
        home::call(self.home, &UpsertVectors { dims, items }).await?;
        match index.upsert(self.user, entries).await {
            Ok(n) => {
                tracing::info!(count = n, "vectors stored");
                Ok(n)
            }
            Err(e) => {
                // Keep the accounting in step with the index: take the metadata back out.
                let _ = home::call(self.home, &DeleteVectors { ids }).await;
                Err(e.into())
            }
        }
    }

    /// The `top_k` vectors nearest the query, best first.
    ///
    /// # Errors
    /// 422 for a bad query (bad numbers or blob, `top_k` out of range, a dimension other than
    /// the index's); 403 `tier_required`.
    pub async fn search(&self, req: VectorSearchRequest) -> Result<VectorSearchResponse, AppError> {
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
        let found = home::call(
            self.home,
            &SearchVectors {
                vector: query.clone(),
                top_k,
                search: self.index.is_none(),
            },
        )
        .await?;
        let hits = match (found.dims, self.index) {
            (None, _) => Vec::new(),
            (Some(_), None) => found.matches,
            (Some(_), Some(index)) => index.query(self.user, &query, top_k).await?,
        };
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
    pub async fn delete(&self, req: VectorDeleteRequest) -> Result<(), AppError> {
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
        if let Some(index) = self.index {
            index.delete(self.user, &ids).await?;
        }
        home::call(self.home, &DeleteVectors { ids }).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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

    #[test]
    fn every_bad_item_is_named_and_sizes_count_the_blob_and_the_values() {
        let Err(AppError::Validation(fields)) = prepare(upsert_req(vec![
            item("ok", Some(vec![1.0, 2.0]), b"a"),
            item("bad id!", Some(vec![1.0, 2.0]), b"b"),
            item("ok", None, b"c"),
            item("dims", Some(vec![1.0, 2.0, 3.0]), b"d"),
        ])) else {
            panic!("validation expected")
        };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "vectors[1].id",
                "vectors[2].id",
                "vectors[2].values",
                "vectors[3].values"
            ]
        );
        let ok = prepare(upsert_req(vec![item("v", Some(vec![1.0, 2.0]), b"abc")])).unwrap();
        assert_eq!((ok.dims, ok.items[0].size), (2, 3 + 8));
        let derived = prepare(upsert_req(vec![item("v", None, b"abc")])).unwrap();
        assert_eq!(derived.dims, DERIVED_DIMS);
        let mut wrong = item("v", None, b"abc");
        wrong["checksum"] = json!(Checksum::of(b"xyz").as_str());
        assert!(matches!(
            prepare(upsert_req(vec![wrong])),
            Err(AppError::ChecksumMismatch)
        ));
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
}

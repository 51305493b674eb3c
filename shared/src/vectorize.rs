//! The mapping between the [`VectorIndex`](crate::ports::VectorIndex) port and Cloudflare
//! Vectorize's Workers binding, platform-free so it is tested natively. The worker's adapter
//! only moves these values across the JS boundary (`serde_wasm_bindgen`) and to R2.
//!
//! Binding methods used (Vectorize V2, `@cloudflare/workers-types`): `upsert(vectors)` and
//! `deleteByIds(ids)` (both resolve to `{mutationId}`), `query(vector, {topK, returnValues,
//! returnMetadata, filter})` (resolves to `{count, matches: [{id, score, metadata?}]}`) and
//! `getByIds(ids)` (resolves to `[{id, values, metadata?}]`).
//!
//! One index serves every user:
//! - **Tenant isolation**: every vector carries metadata `user_id`, and every query filters on
//!   it (`filter: {user_id: "<uuid>"}`, an implicit `$eq`). Vectorize only filters on
//!   properties with a metadata index, which must exist *before* vectors are inserted:
//!   `wrangler vectorize create-metadata-index adiuva-vectors --property-name user_id --type string`.
//!   (Namespaces would isolate too, but stop at 50,000 per index.) Answers are checked again
//!   here: a match whose metadata names another user is dropped.
//! - **Ids**: Vectorize ids are global and at most 64 bytes, so a vector's id is
//!   `{user_id}:{id}` when that fits, else `{user_id}#{hash}` (27 characters of the unpadded
//!   base64url SHA-256 of the id, 162 bits). The user id is always 36 characters, so the
//!   character after it tells the two forms apart. The client's own id travels in metadata.
//! - **Dimensions**: an index has one dimension (created with
//!   `wrangler vectorize create adiuva-vectors --dimensions=1536 --metric=cosine`), while each
//!   user has their own (32 for blob-derived vectors, the embedding's size otherwise). Vectors
//!   are zero-padded to the index's dimension: padding changes neither dot products nor norms,
//!   so cosine similarity is exactly that of the unpadded vectors.
//! - **Payloads**: the client-encrypted blob rides in metadata when it is at most
//!   [`MAX_INLINE_BLOB_BYTES`] (metadata is capped at 10 KiB per vector); a larger one goes to
//!   R2 under `{user_id}/vectors/{id}` and metadata holds that key (`blob_key`).
//! - **Limits** ([documented](https://developers.cloudflare.com/vectorize/platform/limits/)):
//!   1536 dimensions, 64-byte ids, 10 KiB metadata, 1000 vectors per upsert from a Worker,
//!   `topK` ≤ 100 without metadata and ≤ 20 with `returnMetadata: "all"` (V2 indexes are
//!   reported to accept 50; 20 is the documented figure and holds for both). A query for more
//!   than 20 asks without metadata and then reads the matches' metadata with `getByIds`.
//! - Vectorize is eventually consistent: an upsert or delete is visible to queries a few
//!   seconds later, and its search is approximate. The `VectorIndex` Durable Object is exact
//!   and immediate.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::UserId;
use crate::ports::VectorEntry;

/// Most dimensions of a Vectorize index.
pub const MAX_DIMS: usize = 1536;
/// The index's dimension unless configured otherwise.
pub const DEFAULT_INDEX_DIMS: usize = MAX_DIMS;
/// Longest Vectorize id, in bytes.
pub const MAX_ID_BYTES: usize = 64;
/// Most metadata per vector, in bytes.
pub const MAX_METADATA_BYTES: usize = 10 * 1024;
/// Largest blob (its base64 text) kept in metadata; larger ones go to R2.
pub const MAX_INLINE_BLOB_BYTES: usize = 9 * 1024;
/// Most results of one query without metadata.
pub const MAX_TOP_K: u32 = 100;
/// Most results of one query with `returnMetadata: "all"`.
pub const MAX_TOP_K_WITH_METADATA: u32 = 20;
/// Most vectors in one `upsert` from a Worker (also used for `deleteByIds`).
pub const MAX_BATCH: usize = 1000;
/// Ids per `getByIds` call (its limit is not documented; kept at the metadata `topK` limit).
pub const GET_BY_IDS_BATCH: usize = 20;
/// The metadata property that names a vector's owner (needs a string metadata index).
pub const USER_ID_PROPERTY: &str = "user_id";

/// Why a request cannot be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VectorizeError {
    /// A vector does not fit the index.
    #[error("a vector of {got} dimensions does not fit an index of {index}")]
    TooManyDims {
        /// The vector's dimension.
        got: usize,
        /// The index's.
        index: usize,
    },
    /// A vector without values.
    #[error("a vector needs at least one value")]
    Empty,
}

/// What a vector's metadata holds. Every field defaults, so a foreign or damaged vector reads
/// as one that belongs to nobody (and is dropped) rather than failing the whole answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorMetadata {
    /// The owner (hyphenated UUID); the query filter's property.
    #[serde(default)]
    pub user_id: String,
    /// The client's id of the vector.
    #[serde(default)]
    pub id: String,
    /// The payload (base64), when small enough to ride along.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// The payload's R2 key, when it is stored there instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_key: Option<String>,
}

/// One vector for `upsert` (`VectorizeVector`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorizeVector {
    /// Global id ([`vector_id`]).
    pub id: String,
    /// Values, zero-padded to the index's dimension.
    pub values: Vec<f32>,
    /// Owner, client id and payload (or its R2 key).
    pub metadata: VectorMetadata,
}

/// How much metadata a query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReturnMetadata {
    /// None (allows `topK` up to 100).
    None,
    /// Only indexed properties.
    Indexed,
    /// All of it (`topK` up to 20).
    All,
}

/// The query's metadata filter: the owner equals this user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerFilter {
    /// The user's id (hyphenated).
    pub user_id: String,
}

/// The second argument of `query` (`VectorizeQueryOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryOptions {
    /// Results wanted.
    pub top_k: u32,
    /// Never: values are not needed (and would lower the `topK` limit).
    pub return_values: bool,
    /// `all` when the answer's metadata is used directly, else `none`.
    pub return_metadata: ReturnMetadata,
    /// Only this user's vectors.
    pub filter: OwnerFilter,
}

/// What `query` resolves to (`VectorizeMatches`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorizeMatches {
    /// Number of matches.
    #[serde(default)]
    pub count: u64,
    /// Best first.
    #[serde(default)]
    pub matches: Vec<VectorizeMatch>,
}

/// One match (`VectorizeMatch`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorizeMatch {
    /// Global id.
    pub id: String,
    /// Cosine similarity for a cosine index.
    pub score: f64,
    /// Present when asked for.
    #[serde(default)]
    pub metadata: Option<VectorMetadata>,
}

/// One element of what `getByIds` resolves to (its values are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredVector {
    /// Global id.
    pub id: String,
    /// Its metadata.
    #[serde(default)]
    pub metadata: Option<VectorMetadata>,
}

/// The Vectorize id of the user's vector `id` (see the module docs).
pub fn vector_id(user: UserId, id: &str) -> String {
    let user = user.to_string();
    if user.len() + 1 + id.len() <= MAX_ID_BYTES {
        return format!("{user}:{id}");
    }
    let hash = URL_SAFE_NO_PAD.encode(Sha256::digest(id.as_bytes()));
    let room = MAX_ID_BYTES - user.len() - 1;
    format!("{user}#{}", &hash[..room])
}

/// The R2 key of the payload of the user's vector `id` (in the `RECORDS` bucket).
pub fn blob_key(user: UserId, id: &str) -> String {
    format!("{user}/vectors/{id}")
}

/// `values` zero-padded to `dims`.
///
/// # Errors
/// Empty `values`, or more than `dims` of them.
pub fn pad(values: &[f32], dims: usize) -> Result<Vec<f32>, VectorizeError> {
    if values.is_empty() {
        return Err(VectorizeError::Empty);
    }
    if values.len() > dims {
        return Err(VectorizeError::TooManyDims {
            got: values.len(),
            index: dims,
        });
    }
    let mut out = Vec::with_capacity(dims);
    out.extend_from_slice(values);
    out.resize(dims, 0.0);
    Ok(out)
}

/// The steps of an upsert, in the order to run them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpsertPlan {
    /// First: payloads too large for metadata, `(R2 key, base64 text)`, so that no vector ever
    /// points at a missing object.
    pub r2_puts: Vec<(String, String)>,
    /// Then: the vectors, in batches of at most [`MAX_BATCH`].
    pub vectors: Vec<VectorizeVector>,
    /// Last: R2 keys of entries whose payload is now inline (an earlier, larger version may
    /// have left an object there; deleting a missing key is a no-op).
    pub r2_deletes: Vec<String>,
}

/// Maps entries to an [`UpsertPlan`] for an index of `dims` dimensions. When an id repeats,
/// the last entry wins.
///
/// # Errors
/// A vector does not fit the index.
pub fn plan_upsert(
    user: UserId,
    entries: Vec<VectorEntry>,
    dims: usize,
) -> Result<UpsertPlan, VectorizeError> {
    // Last one wins, keeping first-seen order.
    let mut unique: Vec<VectorEntry> = Vec::with_capacity(entries.len());
    let mut slots: HashMap<String, usize> = HashMap::with_capacity(entries.len());
    for e in entries {
        if let Some(&i) = slots.get(&e.id) {
            unique[i] = e;
        } else {
            slots.insert(e.id.clone(), unique.len());
            unique.push(e);
        }
    }
    let user_id = user.to_string();
    let mut plan = UpsertPlan::default();
    for e in unique {
        let values = pad(&e.values, dims)?;
        let key = blob_key(user, &e.id);
        let mut metadata = VectorMetadata {
            user_id: user_id.clone(),
            id: e.id.clone(),
            blob: Some(e.blob),
            blob_key: None,
        };
        if fits_inline(&metadata) {
            plan.r2_deletes.push(key);
        } else {
            let blob = metadata.blob.take().unwrap_or_default();
            metadata.blob_key = Some(key.clone());
            plan.r2_puts.push((key, blob));
        }
        plan.vectors.push(VectorizeVector {
            id: vector_id(user, &e.id),
            values,
            metadata,
        });
    }
    Ok(plan)
}

/// Whether metadata with its blob inline stays within the blob and metadata limits.
fn fits_inline(metadata: &VectorMetadata) -> bool {
    metadata
        .blob
        .as_ref()
        .is_some_and(|b| b.len() <= MAX_INLINE_BLOB_BYTES)
        && serde_json::to_vec(metadata).is_ok_and(|json| json.len() <= MAX_METADATA_BYTES)
}

/// A query to run.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPlan {
    /// The first argument of `query`: the vector, zero-padded.
    pub vector: Vec<f32>,
    /// The second.
    pub options: QueryOptions,
}

impl QueryPlan {
    /// Whether the matches come without metadata, to be read with `getByIds` (in batches of
    /// [`GET_BY_IDS_BATCH`]).
    pub fn needs_get_by_ids(&self) -> bool {
        self.options.return_metadata != ReturnMetadata::All
    }
}

/// Maps a search to a [`QueryPlan`]; `None` when nothing can match (`top_k` 0 or a zero
/// vector, which has no direction), so no call is needed. `top_k` is clamped to
/// [`MAX_TOP_K`].
///
/// # Errors
/// The vector does not fit the index.
pub fn plan_query(
    user: UserId,
    vector: &[f32],
    top_k: u32,
    dims: usize,
) -> Result<Option<QueryPlan>, VectorizeError> {
    let vector = pad(vector, dims)?;
    let top_k = top_k.min(MAX_TOP_K);
    if top_k == 0 || vector.iter().all(|v| *v == 0.0) {
        return Ok(None);
    }
    let return_metadata = if top_k <= MAX_TOP_K_WITH_METADATA {
        ReturnMetadata::All
    } else {
        ReturnMetadata::None
    };
    Ok(Some(QueryPlan {
        vector,
        options: QueryOptions {
            top_k,
            return_values: false,
            return_metadata,
            filter: OwnerFilter {
                user_id: user.to_string(),
            },
        },
    }))
}

/// Gives each match the metadata `getByIds` returned for its id.
pub fn attach_metadata(matches: &mut [VectorizeMatch], stored: Vec<StoredVector>) {
    let mut stored = stored;
    for m in matches.iter_mut() {
        if let Some(i) = stored.iter().position(|s| s.id == m.id) {
            m.metadata = stored.swap_remove(i).metadata;
        }
    }
}

/// Where a hit's payload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobSource {
    /// In the metadata.
    Inline(String),
    /// In R2 under this key.
    R2(String),
}

/// A match as the port answers it, its payload still to be fetched when in R2.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The client's id.
    pub id: String,
    /// Cosine similarity.
    pub score: f32,
    /// Its payload.
    pub blob: BlobSource,
}

/// The user's hits among `matches`, best first (equal scores by ascending id), at most
/// `top_k`. Matches of another user, without metadata or without a payload are dropped.
pub fn read_matches(user: UserId, matches: Vec<VectorizeMatch>, top_k: u32) -> Vec<Hit> {
    let user_id = user.to_string();
    let mut hits: Vec<Hit> = matches
        .into_iter()
        .filter_map(|m| {
            let meta = m.metadata?;
            if meta.user_id != user_id || meta.id.is_empty() || m.id != vector_id(user, &meta.id) {
                return None;
            }
            let blob = match (meta.blob, meta.blob_key) {
                (Some(b), _) => BlobSource::Inline(b),
                (None, Some(key)) if key == blob_key(user, &meta.id) => BlobSource::R2(key),
                _ => return None,
            };
            #[allow(clippy::cast_possible_truncation)]
            let score = m.score.clamp(-1.0, 1.0) as f32;
            score.is_finite().then_some(Hit {
                id: meta.id,
                score,
                blob,
            })
        })
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    hits.truncate(top_k.min(MAX_TOP_K) as usize);
    hits
}

/// The steps of a delete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeletePlan {
    /// First: these Vectorize ids (`deleteByIds`, in batches of at most [`MAX_BATCH`]).
    pub vector_ids: Vec<String>,
    /// Then: these R2 keys (missing ones are a no-op), so a vector never points at a deleted
    /// payload for longer than Vectorize takes to apply the delete.
    pub r2_keys: Vec<String>,
}

/// Maps ids to a [`DeletePlan`] (repeated ids once).
pub fn plan_delete(user: UserId, ids: &[String]) -> DeletePlan {
    let mut plan = DeletePlan::default();
    for id in ids {
        let vid = vector_id(user, id);
        if !plan.vector_ids.contains(&vid) {
            plan.vector_ids.push(vid);
            plan.r2_keys.push(blob_key(user, id));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn user() -> UserId {
        UserId::parse("0b7e3a8e-6a55-4c1e-9d27-2f1c8f5d6a01").unwrap()
    }

    fn other() -> UserId {
        UserId::parse("7f1d2c3b-0000-4000-8000-000000000002").unwrap()
    }

    fn entry(id: &str, values: &[f32], blob: &str) -> VectorEntry {
        VectorEntry {
            id: id.into(),
            values: values.to_vec(),
            blob: blob.into(),
        }
    }

    fn matched(user: UserId, id: &str, score: f64, blob: Option<&str>) -> VectorizeMatch {
        VectorizeMatch {
            id: vector_id(user, id),
            score,
            metadata: Some(VectorMetadata {
                user_id: user.to_string(),
                id: id.into(),
                blob: blob.map(str::to_owned),
                blob_key: None,
            }),
        }
    }

    #[test]
    fn short_ids_are_prefixed_with_the_user_and_long_ones_hashed_to_64_bytes() {
        let u = user();
        assert_eq!(
            vector_id(u, "doc-1"),
            "0b7e3a8e-6a55-4c1e-9d27-2f1c8f5d6a01:doc-1"
        );
        let fits = "x".repeat(MAX_ID_BYTES - 37);
        assert_eq!(vector_id(u, &fits), format!("{u}:{fits}"));
        let long = "y".repeat(MAX_ID_BYTES - 36);
        let hashed = vector_id(u, &long);
        assert_eq!(hashed.len(), MAX_ID_BYTES);
        assert!(hashed.starts_with(&format!("{u}#")));
        // Deterministic, distinct per id and per user.
        assert_eq!(hashed, vector_id(u, &long));
        assert_ne!(hashed, vector_id(u, &"y".repeat(MAX_ID_BYTES - 35)));
        assert_ne!(hashed[36..], vector_id(u, &"z".repeat(128))[36..]);
        assert_ne!(vector_id(u, &long), vector_id(other(), &long));
        assert!(vector_id(u, &"a".repeat(128)).len() <= MAX_ID_BYTES);
    }

    #[test]
    fn vectors_are_zero_padded_to_the_index_dimension() {
        assert_eq!(pad(&[1.0, 2.0], 4).unwrap(), [1.0, 2.0, 0.0, 0.0]);
        assert_eq!(pad(&[1.0; 3], 3).unwrap().len(), 3);
        assert_eq!(
            pad(&[1.0; 5], 4),
            Err(VectorizeError::TooManyDims { got: 5, index: 4 })
        );
        assert_eq!(pad(&[], 4), Err(VectorizeError::Empty));
    }

    #[test]
    fn an_upserted_vector_serialises_as_the_binding_expects() {
        let plan = plan_upsert(user(), vec![entry("a", &[0.5, -1.0], "YmxvYg==")], 3).unwrap();
        assert_eq!(
            serde_json::to_value(&plan.vectors).unwrap(),
            json!([{
                "id": "0b7e3a8e-6a55-4c1e-9d27-2f1c8f5d6a01:a",
                "values": [0.5, -1.0, 0.0],
                "metadata": {
                    "user_id": "0b7e3a8e-6a55-4c1e-9d27-2f1c8f5d6a01",
                    "id": "a",
                    "blob": "YmxvYg=="
                }
            }])
        );
        assert!(plan.r2_puts.is_empty());
        // A small payload may replace a large one kept in R2 earlier.
        assert_eq!(plan.r2_deletes, [blob_key(user(), "a")]);
    }

    #[test]
    fn large_payloads_go_to_r2_and_metadata_keeps_their_key() {
        let small = "s".repeat(MAX_INLINE_BLOB_BYTES);
        let large = "L".repeat(MAX_INLINE_BLOB_BYTES + 1);
        let plan = plan_upsert(
            user(),
            vec![
                entry("small", &[1.0], &small),
                entry("large", &[1.0], &large),
            ],
            4,
        )
        .unwrap();
        let key = format!("{}/vectors/large", user());
        assert_eq!(plan.r2_puts, [(key.clone(), large)]);
        assert_eq!(plan.r2_deletes, [blob_key(user(), "small")]);
        assert_eq!(
            plan.vectors[0].metadata.blob.as_deref(),
            Some(small.as_str())
        );
        let big = &plan.vectors[1].metadata;
        assert_eq!(
            (big.blob.as_ref(), big.blob_key.as_ref()),
            (None, Some(&key))
        );
        assert_eq!(
            serde_json::to_value(big).unwrap(),
            json!({"user_id": user().to_string(), "id": "large", "blob_key": key})
        );
        // The largest inline payload with the longest id stays within the metadata limit.
        let worst = plan_upsert(user(), vec![entry(&"i".repeat(128), &[1.0], &small)], 4)
            .unwrap()
            .vectors
            .remove(0)
            .metadata;
        assert!(worst.blob.is_some());
        assert!(serde_json::to_vec(&worst).unwrap().len() <= MAX_METADATA_BYTES);
    }

    #[test]
    fn a_repeated_id_in_one_upsert_keeps_the_last_entry() {
        let plan = plan_upsert(
            user(),
            vec![
                entry("a", &[1.0], &"L".repeat(MAX_INLINE_BLOB_BYTES + 1)),
                entry("b", &[1.0], "b"),
                entry("a", &[2.0], "small"),
            ],
            2,
        )
        .unwrap();
        assert_eq!(plan.vectors.len(), 2);
        assert_eq!(plan.vectors[0].values, [2.0, 0.0]);
        assert_eq!(plan.vectors[0].metadata.blob.as_deref(), Some("small"));
        assert!(plan.r2_puts.is_empty());
    }

    #[test]
    fn an_upsert_too_wide_for_the_index_is_refused() {
        assert_eq!(
            plan_upsert(user(), vec![entry("a", &[1.0; 5], "b")], 4),
            Err(VectorizeError::TooManyDims { got: 5, index: 4 })
        );
    }

    #[test]
    fn query_options_serialise_as_the_binding_expects() {
        let plan = plan_query(user(), &[1.0, 0.0], 5, 3).unwrap().unwrap();
        assert_eq!(plan.vector, [1.0, 0.0, 0.0]);
        assert_eq!(
            serde_json::to_value(&plan.options).unwrap(),
            json!({
                "topK": 5,
                "returnValues": false,
                "returnMetadata": "all",
                "filter": {"user_id": "0b7e3a8e-6a55-4c1e-9d27-2f1c8f5d6a01"}
            })
        );
        assert!(!plan.needs_get_by_ids());
    }

    #[test]
    fn queries_beyond_the_metadata_top_k_limit_read_metadata_separately() {
        let at_limit = plan_query(user(), &[1.0], MAX_TOP_K_WITH_METADATA, 2)
            .unwrap()
            .unwrap();
        assert_eq!(at_limit.options.return_metadata, ReturnMetadata::All);
        let beyond = plan_query(user(), &[1.0], MAX_TOP_K_WITH_METADATA + 1, 2)
            .unwrap()
            .unwrap();
        assert_eq!(beyond.options.return_metadata, ReturnMetadata::None);
        assert_eq!(
            serde_json::to_value(&beyond.options).unwrap()["returnMetadata"],
            "none"
        );
        assert!(beyond.needs_get_by_ids());
        let clamped = plan_query(user(), &[1.0], 5_000, 2).unwrap().unwrap();
        assert_eq!(clamped.options.top_k, MAX_TOP_K);
    }

    #[test]
    fn a_zero_query_or_zero_top_k_needs_no_call() {
        assert_eq!(plan_query(user(), &[0.0, 0.0], 5, 2), Ok(None));
        assert_eq!(plan_query(user(), &[1.0], 0, 2), Ok(None));
        assert!(plan_query(user(), &[1.0; 3], 5, 2).is_err());
    }

    #[test]
    fn documented_query_answers_deserialise() {
        let answer: VectorizeMatches = serde_json::from_value(json!({
            "count": 2,
            "matches": [
                {"id": vector_id(user(), "a"), "score": 0.75,
                 "metadata": {"user_id": user().to_string(), "id": "a", "blob": "QQ==", "extra": 1}},
                {"id": "foreign", "score": 0.5}
            ]
        }))
        .unwrap();
        assert_eq!(answer.matches.len(), 2);
        assert_eq!(answer.matches[1].metadata, None);
        let stored: Vec<StoredVector> = serde_json::from_value(json!([
            {"id": "x", "values": [0.1, 0.2], "metadata": {"id": "a"}, "namespace": null}
        ]))
        .unwrap();
        assert_eq!(stored[0].metadata.as_ref().unwrap().user_id, "");
    }

    #[test]
    fn matches_come_best_first_with_ties_by_id_and_at_most_top_k() {
        let u = user();
        let hits = read_matches(
            u,
            vec![
                matched(u, "c", 0.5, Some("C")),
                matched(u, "b", 0.9, Some("B")),
                matched(u, "a", 0.5, Some("A")),
                matched(u, "d", 0.1, Some("D")),
            ],
            3,
        );
        let got: Vec<_> = hits.iter().map(|h| (h.id.as_str(), h.score)).collect();
        assert_eq!(got, [("b", 0.9), ("a", 0.5), ("c", 0.5)]);
        assert_eq!(hits[1].blob, BlobSource::Inline("A".into()));
    }

    #[test]
    fn matches_of_another_user_or_without_a_payload_are_dropped() {
        let u = user();
        let mut stolen = matched(other(), "x", 0.99, Some("X"));
        // Even under this user's id prefix, another owner's metadata is not trusted.
        stolen.id = vector_id(u, "x");
        let mut forged_key = matched(u, "k", 0.8, None);
        forged_key.metadata.as_mut().unwrap().blob_key = Some(blob_key(other(), "k"));
        let hits = read_matches(
            u,
            vec![
                stolen,
                matched(other(), "y", 0.98, Some("Y")),
                VectorizeMatch {
                    id: vector_id(u, "bare"),
                    score: 0.97,
                    metadata: None,
                },
                matched(u, "empty", 0.96, None),
                forged_key,
                matched(u, "mine", 0.2, Some("M")),
            ],
            10,
        );
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].id, "mine");
    }

    #[test]
    fn r2_payloads_are_read_from_the_key_in_metadata() {
        let u = user();
        let mut m = matched(u, "big", 0.4, None);
        m.metadata.as_mut().unwrap().blob_key = Some(blob_key(u, "big"));
        let hits = read_matches(u, vec![m], 5);
        assert_eq!(hits[0].blob, BlobSource::R2(format!("{u}/vectors/big")));
    }

    #[test]
    fn metadata_from_get_by_ids_is_attached_to_its_match() {
        let u = user();
        let mut matches = vec![
            VectorizeMatch {
                id: vector_id(u, "a"),
                score: 0.3,
                metadata: None,
            },
            VectorizeMatch {
                id: vector_id(u, "b"),
                score: 0.6,
                metadata: None,
            },
        ];
        let stored = vec![
            StoredVector {
                id: vector_id(u, "b"),
                metadata: matched(u, "b", 0.0, Some("B")).metadata,
            },
            StoredVector {
                id: vector_id(u, "a"),
                metadata: matched(u, "a", 0.0, Some("A")).metadata,
            },
        ];
        attach_metadata(&mut matches, stored);
        let hits = read_matches(u, matches, 30);
        let got: Vec<_> = hits.iter().map(|h| (h.id.as_str(), &h.blob)).collect();
        assert_eq!(
            got,
            [
                ("b", &BlobSource::Inline("B".into())),
                ("a", &BlobSource::Inline("A".into()))
            ]
        );
    }

    #[test]
    fn deletes_name_each_vector_and_its_r2_key_once() {
        let u = user();
        let plan = plan_delete(u, &["a".into(), "b".into(), "a".into()]);
        assert_eq!(plan.vector_ids, [vector_id(u, "a"), vector_id(u, "b")]);
        assert_eq!(plan.r2_keys, [blob_key(u, "a"), blob_key(u, "b")]);
        assert_eq!(
            serde_json::to_value(&plan.vector_ids).unwrap(),
            json!([format!("{u}:a"), format!("{u}:b")])
        );
    }
}

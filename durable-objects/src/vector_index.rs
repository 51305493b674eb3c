//! Logic of the `VectorIndex` Durable Object: one user's vectors, searched exactly.
//!
//! Values are stored as little-endian `f32` bytes ([`encode_values`]); a query scores every
//! stored vector of the query's dimension in one pass ([`Scorer`]: `f32` inputs, `f64`
//! accumulation, cosine similarity), decoding each row in place without allocating, and keeps
//! the best `top_k` in a bounded heap ([`TopK`]). Only the winners' blobs are read afterwards.
//! Zero vectors (stored or queried) have no direction and never match. Nothing here logs: ids,
//! values and blobs are user content.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use shared::do_protocol::{
    VectorDelete, VectorDeleted, VectorQuery, VectorQueryAnswer, VectorStats, VectorUpsert,
    VectorUpserted,
};
use shared::ports::VectorMatch;
use shared::FieldError;

/// Most dimensions a vector may have (Vectorize's limit, so both backends accept the same).
pub const MAX_DIMS: usize = 1536;
/// Most results a query answers; larger requests are clamped.
pub const MAX_TOP_K: u32 = 100;
/// Most entries in one upsert message.
pub const MAX_UPSERT_ENTRIES: usize = 1000;
/// Most ids in one delete message.
pub const MAX_DELETE_IDS: usize = 1000;
/// Longest id, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest blob (base64 text), in bytes: room for the API's 64 KiB decoded payloads.
pub const MAX_BLOB_BYTES: usize = 128 * 1024;

/// Storage of one user's vectors (a SQLite table in the object).
pub trait VectorStore {
    /// The storage's failure.
    type Error;
    /// Inserts or replaces the vector `id`.
    fn put(&self, id: &str, dims: u32, vals: &[u8], blob: &str) -> Result<(), Self::Error>;
    /// Deletes the vector `id`; returns whether it existed.
    fn remove(&self, id: &str) -> Result<bool, Self::Error>;
    /// Calls `visit(id, dims, vals)` once for every stored vector, in any order.
    fn scan(&self, visit: &mut dyn FnMut(&str, u32, &[u8])) -> Result<(), Self::Error>;
    /// The blob of `id`, if stored.
    fn blob(&self, id: &str) -> Result<Option<String>, Self::Error>;
    /// How many vectors are stored, and the smallest and largest dimension among them.
    fn dims_summary(&self) -> Result<(u64, Option<u32>, Option<u32>), Self::Error>;
}

/// Why a message was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VectorError<E> {
    /// The message breaks a bound; nothing was written.
    Invalid(FieldError),
    /// The store failed.
    Store(E),
}

impl<E> From<E> for VectorError<E> {
    fn from(e: E) -> Self {
        Self::Store(e)
    }
}

/// The values as little-endian `f32` bytes (4 per value).
pub fn encode_values(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 4);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The values of [`encode_values`] bytes; `None` when the length is not a multiple of 4.
pub fn decode_values(bytes: &[u8]) -> Option<Vec<f32>> {
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// Cosine similarity against one query vector, over encoded rows.
#[derive(Debug, Clone)]
pub struct Scorer {
    query: Vec<f64>,
    norm: f64,
}

impl Scorer {
    /// A scorer for `query`; `None` for a zero (or non-finite) vector, which has no direction.
    pub fn new(query: &[f32]) -> Option<Self> {
        let query: Vec<f64> = query.iter().map(|&v| f64::from(v)).collect();
        let norm = query.iter().map(|v| v * v).sum::<f64>().sqrt();
        (norm > 0.0 && norm.is_finite()).then_some(Self { query, norm })
    }

    /// The query's dimension.
    pub fn dims(&self) -> usize {
        self.query.len()
    }

    /// The cosine similarity (−1 to 1) of the query and the encoded vector `vals`; `None` when
    /// the dimensions differ or `vals` is a zero vector.
    pub fn score(&self, vals: &[u8]) -> Option<f32> {
        if vals.len() != self.query.len() * 4 {
            return None;
        }
        let (mut dot, mut norm2) = (0.0f64, 0.0f64);
        for (q, c) in self.query.iter().zip(vals.chunks_exact(4)) {
            let v = f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            dot += q * v;
            norm2 += v * v;
        }
        if norm2 <= 0.0 || !norm2.is_finite() {
            return None;
        }
        let cos = dot / (self.norm * norm2.sqrt());
        // Rounding may step just outside [-1, 1]; `+ 0.0` turns -0.0 into 0.0 so that equal
        // scores compare equal.
        #[allow(clippy::cast_possible_truncation)]
        let score = (cos.clamp(-1.0, 1.0) + 0.0) as f32;
        score.is_finite().then_some(score)
    }
}

/// A scored id. Orders worst first (lower score, then larger id), so a [`BinaryHeap`] of them
/// keeps the worst kept candidate on top.
#[derive(Debug, Clone, PartialEq)]
struct Candidate {
    score: f32,
    id: String,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.id.cmp(&other.id))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The best `k` of a stream of scored ids: higher score first, equal scores by ascending id.
/// Memory is bounded by `k`; an id is copied only when it enters the top `k`, and then into the
/// evicted candidate's string when there is one.
#[derive(Debug)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
}

impl TopK {
    /// An empty selection of at most `k`.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k.min(1024) + 1),
        }
    }

    /// Considers `id` with `score`.
    pub fn offer(&mut self, score: f32, id: &str) {
        if self.heap.len() < self.k {
            self.heap.push(Candidate {
                score,
                id: id.to_owned(),
            });
            return;
        }
        let Some(mut worst) = self.heap.peek_mut() else {
            return; // k == 0
        };
        let better = match score.total_cmp(&worst.score) {
            Ordering::Greater => true,
            Ordering::Equal => id < worst.id.as_str(),
            Ordering::Less => false,
        };
        if better {
            worst.score = score;
            worst.id.clear();
            worst.id.push_str(id);
            // Dropping `worst` restores the heap order.
        }
    }

    /// The kept `(id, score)` pairs, best first.
    pub fn into_sorted(self) -> Vec<(String, f32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|c| (c.id, c.score))
            .collect()
    }
}

fn invalid<E>(field: impl Into<String>, message: impl Into<String>) -> VectorError<E> {
    VectorError::Invalid(FieldError::new(field, message))
}

fn check_vector<E>(field: &str, values: &[f32]) -> Result<(), VectorError<E>> {
    if values.is_empty() || values.len() > MAX_DIMS {
        return Err(invalid(
            field,
            format!("must have 1 to {MAX_DIMS} dimensions"),
        ));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(invalid(field, "must contain only finite numbers"));
    }
    Ok(())
}

fn check_id<E>(field: &str, id: &str) -> Result<(), VectorError<E>> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(invalid(field, format!("must be 1 to {MAX_ID_BYTES} bytes")));
    }
    Ok(())
}

/// Checks every bound of an upsert without writing anything.
///
/// # Errors
/// [`VectorError::Invalid`] naming the first offending field.
pub fn validate_upsert<E>(msg: &VectorUpsert) -> Result<(), VectorError<E>> {
    if msg.entries.len() > MAX_UPSERT_ENTRIES {
        return Err(invalid(
            "entries",
            format!("at most {MAX_UPSERT_ENTRIES} per message"),
        ));
    }
    for (i, e) in msg.entries.iter().enumerate() {
        check_id(&format!("entries[{i}].id"), &e.id)?;
        check_vector(&format!("entries[{i}].values"), &e.values)?;
        if e.blob.len() > MAX_BLOB_BYTES {
            return Err(invalid(
                format!("entries[{i}].blob"),
                format!("at most {MAX_BLOB_BYTES} bytes"),
            ));
        }
    }
    Ok(())
}

/// Writes every entry (after checking them all; the object's synchronous writes commit
/// together).
///
/// # Errors
/// A bound is broken (nothing written), or the store failed.
pub fn upsert<S: VectorStore>(
    store: &S,
    msg: &VectorUpsert,
) -> Result<VectorUpserted, VectorError<S::Error>> {
    validate_upsert(msg)?;
    for e in &msg.entries {
        // At most MAX_DIMS (checked above).
        #[allow(clippy::cast_possible_truncation)]
        let dims = e.values.len() as u32;
        store.put(&e.id, dims, &encode_values(&e.values), &e.blob)?;
    }
    Ok(VectorUpserted {
        upserted: msg.entries.len() as u64,
    })
}

/// The `top_k` (clamped to [`MAX_TOP_K`]) stored vectors closest to the query, best first,
/// equal scores by ascending id. Vectors of another dimension and zero vectors are skipped; a
/// zero query matches nothing.
///
/// # Errors
/// The query vector breaks a bound, or the store failed.
pub fn query<S: VectorStore>(
    store: &S,
    msg: &VectorQuery,
) -> Result<VectorQueryAnswer, VectorError<S::Error>> {
    check_vector("vector", &msg.vector)?;
    let k = msg.top_k.min(MAX_TOP_K) as usize;
    let Some(scorer) = Scorer::new(&msg.vector).filter(|_| k > 0) else {
        return Ok(VectorQueryAnswer {
            matches: Vec::new(),
        });
    };
    let top = search(store, &scorer, k)?;
    let mut matches = Vec::with_capacity(top.len());
    for (id, score) in top {
        // Always present: the object runs one event at a time, so nothing deleted it since
        // the scan. Skipped rather than failed should that ever change.
        if let Some(blob) = store.blob(&id)? {
            matches.push(VectorMatch { id, score, blob });
        }
    }
    Ok(VectorQueryAnswer { matches })
}

/// One pass over the store: the best `k` `(id, score)` pairs for `scorer`, best first.
///
/// # Errors
/// The store's failures.
pub fn search<S: VectorStore>(
    store: &S,
    scorer: &Scorer,
    k: usize,
) -> Result<Vec<(String, f32)>, S::Error> {
    let mut top = TopK::new(k);
    store.scan(&mut |id, _dims, vals| {
        if let Some(score) = scorer.score(vals) {
            top.offer(score, id);
        }
    })?;
    Ok(top.into_sorted())
}

/// Deletes entries by id; unknown ids are ignored.
///
/// # Errors
/// Too many ids, or the store failed.
pub fn delete<S: VectorStore>(
    store: &S,
    msg: &VectorDelete,
) -> Result<VectorDeleted, VectorError<S::Error>> {
    if msg.ids.len() > MAX_DELETE_IDS {
        return Err(invalid(
            "ids",
            format!("at most {MAX_DELETE_IDS} per message"),
        ));
    }
    let mut deleted = 0;
    for id in &msg.ids {
        if store.remove(id)? {
            deleted += 1;
        }
    }
    Ok(VectorDeleted { deleted })
}

/// How many vectors are stored and their dimension.
///
/// # Errors
/// The store's failures.
pub fn stats<S: VectorStore>(store: &S) -> Result<VectorStats, S::Error> {
    let (count, min, max) = store.dims_summary()?;
    let mixed_dims = min != max;
    Ok(VectorStats {
        count,
        dims: if mixed_dims { None } else { min },
        mixed_dims,
    })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use shared::ports::VectorEntry;

    use super::*;

    /// `(dims, vals, blob)`, as a row of the SQLite table.
    type Row = (u32, Vec<u8>, String);

    /// Rows in a map by id.
    #[derive(Default)]
    struct MapStore(RefCell<BTreeMap<String, Row>>);

    impl VectorStore for MapStore {
        type Error = std::convert::Infallible;
        fn put(&self, id: &str, dims: u32, vals: &[u8], blob: &str) -> Result<(), Self::Error> {
            self.0
                .borrow_mut()
                .insert(id.to_owned(), (dims, vals.to_vec(), blob.to_owned()));
            Ok(())
        }
        fn remove(&self, id: &str) -> Result<bool, Self::Error> {
            Ok(self.0.borrow_mut().remove(id).is_some())
        }
        fn scan(&self, visit: &mut dyn FnMut(&str, u32, &[u8])) -> Result<(), Self::Error> {
            // Reverse order, so nothing depends on the store answering sorted.
            for (id, (dims, vals, _)) in self.0.borrow().iter().rev() {
                visit(id, *dims, vals);
            }
            Ok(())
        }
        fn blob(&self, id: &str) -> Result<Option<String>, Self::Error> {
            Ok(self.0.borrow().get(id).map(|r| r.2.clone()))
        }
        fn dims_summary(&self) -> Result<(u64, Option<u32>, Option<u32>), Self::Error> {
            let rows = self.0.borrow();
            Ok((
                rows.len() as u64,
                rows.values().map(|r| r.0).min(),
                rows.values().map(|r| r.0).max(),
            ))
        }
    }

    fn entry(id: &str, values: &[f32]) -> VectorEntry {
        VectorEntry {
            id: id.into(),
            values: values.to_vec(),
            blob: format!("blob-{id}"),
        }
    }

    fn store_with(entries: &[VectorEntry]) -> MapStore {
        let s = MapStore::default();
        upsert(
            &s,
            &VectorUpsert {
                entries: entries.to_vec(),
            },
        )
        .unwrap();
        s
    }

    fn ask(s: &MapStore, vector: &[f32], top_k: u32) -> Vec<(String, f32)> {
        query(
            s,
            &VectorQuery {
                vector: vector.to_vec(),
                top_k,
            },
        )
        .unwrap()
        .matches
        .into_iter()
        .map(|m| (m.id, m.score))
        .collect()
    }

    fn ids(hits: &[(String, f32)]) -> Vec<&str> {
        hits.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// A deterministic pseudo-random vector (xorshift), values in [-1, 1).
    fn pseudo_random(seed: u64, dims: usize) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..dims)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                #[allow(clippy::cast_precision_loss)]
                let unit = (x >> 40) as f32 / (1u64 << 24) as f32;
                unit * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn results_come_best_first_by_cosine_similarity() {
        let s = store_with(&[
            entry("opposite", &[-1.0, 0.0]),
            entry("same", &[2.0, 0.0]),
            entry("diagonal", &[1.0, 1.0]),
            entry("orthogonal", &[0.0, 3.0]),
        ]);
        let hits = ask(&s, &[1.0, 0.0], 10);
        assert_eq!(ids(&hits), ["same", "diagonal", "orthogonal", "opposite"]);
        assert!((hits[0].1 - 1.0).abs() < 1e-6);
        assert!((hits[1].1 - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert!(hits[2].1.abs() < 1e-6);
        assert!((hits[3].1 + 1.0).abs() < 1e-6);
    }

    #[test]
    fn matches_carry_their_stored_blob() {
        let s = store_with(&[entry("a", &[1.0, 2.0])]);
        let answer = query(
            &s,
            &VectorQuery {
                vector: vec![1.0, 2.0],
                top_k: 1,
            },
        )
        .unwrap();
        assert_eq!(answer.matches[0].blob, "blob-a");
    }

    #[test]
    fn equal_scores_are_ordered_by_ascending_id() {
        // Scaled copies of one direction all score exactly 1.
        let s = store_with(&[
            entry("c", &[3.0, 3.0]),
            entry("a", &[1.0, 1.0]),
            entry("d", &[4.0, 4.0]),
            entry("b", &[2.0, 2.0]),
        ]);
        assert_eq!(ids(&ask(&s, &[1.0, 1.0], 10)), ["a", "b", "c", "d"]);
        // The cut keeps the smallest ids too.
        assert_eq!(ids(&ask(&s, &[1.0, 1.0], 2)), ["a", "b"]);
    }

    #[test]
    fn top_k_limits_the_results_and_is_clamped_to_the_maximum() {
        let entries: Vec<_> = (0..150)
            .map(|i| entry(&format!("v{i:03}"), &pseudo_random(i, 8)))
            .collect();
        let s = store_with(&entries);
        let q = pseudo_random(999, 8);
        assert_eq!(ask(&s, &q, 3).len(), 3);
        assert_eq!(ask(&s, &q, 1_000).len(), MAX_TOP_K as usize);
        assert!(ask(&s, &q, 0).is_empty());
        // Fewer stored than asked: all of them.
        let small = store_with(&entries[..5]);
        assert_eq!(ask(&small, &q, 50).len(), 5);
    }

    #[test]
    fn the_bounded_heap_agrees_with_a_full_sort() {
        let entries: Vec<_> = (0..500)
            .map(|i| entry(&format!("id-{i}"), &pseudo_random(i, 16)))
            .collect();
        let s = store_with(&entries);
        let q = pseudo_random(7, 16);
        let scorer = Scorer::new(&q).unwrap();
        let mut all: Vec<(String, f32)> = entries
            .iter()
            .map(|e| {
                (
                    e.id.clone(),
                    scorer.score(&encode_values(&e.values)).unwrap(),
                )
            })
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(37);
        assert_eq!(ask(&s, &q, 37), all);
    }

    #[test]
    fn zero_vectors_never_match_and_a_zero_query_finds_nothing() {
        let s = store_with(&[entry("zero", &[0.0, 0.0]), entry("x", &[1.0, 0.0])]);
        assert_eq!(ids(&ask(&s, &[1.0, 1.0], 10)), ["x"]);
        assert!(ask(&s, &[0.0, 0.0], 10).is_empty());
    }

    #[test]
    fn vectors_of_another_dimension_are_not_compared() {
        let s = store_with(&[entry("two", &[1.0, 0.0]), entry("three", &[1.0, 0.0, 0.0])]);
        assert_eq!(ids(&ask(&s, &[1.0, 0.0, 0.0], 10)), ["three"]);
        assert_eq!(
            stats(&s).unwrap(),
            VectorStats {
                count: 2,
                dims: None,
                mixed_dims: true
            }
        );
    }

    #[test]
    fn encoded_values_are_little_endian_f32_and_round_trip() {
        assert_eq!(encode_values(&[1.0]), [0x00, 0x00, 0x80, 0x3f]);
        let values = vec![0.0, -0.0, 1.5, -2.25, f32::MIN_POSITIVE, f32::MAX, 1e-30];
        let bytes = encode_values(&values);
        assert_eq!(bytes.len(), values.len() * 4);
        let back = decode_values(&bytes).unwrap();
        assert_eq!(
            back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(decode_values(&[1, 2, 3]), None);
    }

    #[test]
    fn an_upsert_replaces_an_entry_with_the_same_id() {
        let s = store_with(&[entry("a", &[1.0, 0.0])]);
        let mut replaced = entry("a", &[0.0, 1.0]);
        replaced.blob = "new".into();
        let answer = upsert(
            &s,
            &VectorUpsert {
                entries: vec![replaced],
            },
        )
        .unwrap();
        assert_eq!(answer.upserted, 1);
        let hits = query(
            &s,
            &VectorQuery {
                vector: vec![0.0, 1.0],
                top_k: 5,
            },
        )
        .unwrap()
        .matches;
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].blob, "new");
        assert!((hits[0].score - 1.0).abs() < 1e-6);
    }

    #[test]
    fn an_upsert_breaking_a_bound_writes_nothing() {
        let s = MapStore::default();
        let cases = [
            (entry("", &[1.0]), "entries[1].id"),
            (
                entry(&"x".repeat(MAX_ID_BYTES + 1), &[1.0]),
                "entries[1].id",
            ),
            (entry("a", &[]), "entries[1].values"),
            (entry("a", &vec![1.0; MAX_DIMS + 1]), "entries[1].values"),
            (entry("a", &[1.0, f32::NAN]), "entries[1].values"),
            (entry("a", &[f32::INFINITY]), "entries[1].values"),
            (
                VectorEntry {
                    blob: "b".repeat(MAX_BLOB_BYTES + 1),
                    ..entry("a", &[1.0])
                },
                "entries[1].blob",
            ),
        ];
        for (bad, field) in cases {
            let msg = VectorUpsert {
                entries: vec![entry("ok", &[1.0]), bad],
            };
            match upsert(&s, &msg) {
                Err(VectorError::Invalid(e)) => assert_eq!(e.field, field),
                other => panic!("expected a validation error for {field}, got {other:?}"),
            }
            assert!(s.0.borrow().is_empty());
        }
        let too_many = VectorUpsert {
            entries: vec![entry("a", &[1.0]); MAX_UPSERT_ENTRIES + 1],
        };
        assert!(matches!(
            upsert(&s, &too_many),
            Err(VectorError::Invalid(_))
        ));
        // The largest accepted vector is fine.
        let widest = VectorUpsert {
            entries: vec![entry("w", &vec![0.5; MAX_DIMS])],
        };
        assert_eq!(upsert(&s, &widest).unwrap().upserted, 1);
    }

    #[test]
    fn a_query_breaking_a_bound_is_rejected() {
        let s = MapStore::default();
        for vector in [vec![], vec![1.0; MAX_DIMS + 1], vec![f32::NAN]] {
            let msg = VectorQuery { vector, top_k: 1 };
            assert!(matches!(query(&s, &msg), Err(VectorError::Invalid(_))));
        }
    }

    #[test]
    fn deletes_count_only_entries_that_existed() {
        let s = store_with(&[entry("a", &[1.0]), entry("b", &[1.0])]);
        let gone = delete(
            &s,
            &VectorDelete {
                ids: vec!["a".into(), "missing".into(), "a".into()],
            },
        )
        .unwrap();
        assert_eq!(gone.deleted, 1);
        assert_eq!(ids(&ask(&s, &[1.0], 10)), ["b"]);
        let too_many = VectorDelete {
            ids: vec!["x".into(); MAX_DELETE_IDS + 1],
        };
        assert!(matches!(
            delete(&s, &too_many),
            Err(VectorError::Invalid(_))
        ));
    }

    #[test]
    fn stats_report_the_count_and_the_shared_dimension() {
        assert_eq!(
            stats(&MapStore::default()).unwrap(),
            VectorStats {
                count: 0,
                dims: None,
                mixed_dims: false
            }
        );
        let s = store_with(&[entry("a", &[1.0, 2.0, 3.0]), entry("b", &[1.0, 0.0, 0.0])]);
        assert_eq!(
            stats(&s).unwrap(),
            VectorStats {
                count: 2,
                dims: Some(3),
                mixed_dims: false
            }
        );
    }

    #[test]
    fn scoring_ten_thousand_vectors_of_384_dimensions_completes() {
        const N: u64 = 10_000;
        const DIMS: usize = 384;
        let rows: Vec<(String, Vec<u8>)> = (0..N)
            .map(|i| (format!("doc-{i}"), encode_values(&pseudo_random(i, DIMS))))
            .collect();
        // The query is a stored vector, so it must come first with a score of 1.
        let q = decode_values(&rows[4_242].1).unwrap();
        let scorer = Scorer::new(&q).unwrap();
        let mut top = TopK::new(10);
        for (id, vals) in &rows {
            if let Some(score) = scorer.score(vals) {
                top.offer(score, id);
            }
        }
        let best = top.into_sorted();
        assert_eq!(best.len(), 10);
        assert_eq!(best[0].0, "doc-4242");
        assert!((best[0].1 - 1.0).abs() < 1e-6);
        assert!(best.windows(2).all(|w| w[0].1 >= w[1].1));
    }
}

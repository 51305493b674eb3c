//! Messages between the worker and its Durable Objects (JSON over the stub's `fetch`).

use serde::{Deserialize, Serialize};

use crate::rate_limit::{RateOp, RateRule};

/// Path of the rate limiter's only endpoint.
pub const RATE_LIMITER_CHECK_PATH: &str = "/check";

/// `POST /check` to a `RateLimiter` object: apply `op` to the counter `bucket`.
///
/// One object serves one key (a user, an account, an IP); `bucket` separates independent
/// counters of that key (e.g. `requests`, `login_failures`). The answer is a
/// [`RateDecision`](crate::rate_limit::RateDecision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateCheck {
    /// Counter name inside the object.
    pub bucket: String,
    /// The limit to apply.
    pub rule: RateRule,
    /// What to do.
    pub op: RateOp,
}

/// `POST` path of the `VectorIndex` object: insert or replace entries ([`VectorUpsert`] →
/// [`VectorUpserted`]).
pub const VECTOR_UPSERT_PATH: &str = "/upsert";
/// `POST` path of the `VectorIndex` object: exact cosine search ([`VectorQuery`] →
/// [`VectorQueryAnswer`]).
pub const VECTOR_QUERY_PATH: &str = "/query";
/// `POST` path of the `VectorIndex` object: delete by id ([`VectorDelete`] → [`VectorDeleted`]).
pub const VECTOR_DELETE_PATH: &str = "/delete";
/// `GET` path of the `VectorIndex` object: how many vectors and of which dimension
/// ([`VectorStats`]).
pub const VECTOR_STATS_PATH: &str = "/stats";

/// `POST /upsert` to a user's `VectorIndex` object (one object per user, named by the user id).
/// Entries replace earlier ones with the same id; within one message the last one wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorUpsert {
    /// The entries to write.
    pub entries: Vec<crate::ports::VectorEntry>,
}

/// The answer to [`VectorUpsert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorUpserted {
    /// Entries written (the message's entry count).
    pub upserted: u64,
}

/// `POST /query`: the `top_k` stored vectors closest to `vector` by cosine similarity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorQuery {
    /// The query vector (same dimension as the stored ones; others are not compared).
    pub vector: Vec<f32>,
    /// Results wanted (clamped to the object's maximum; 0 answers nothing).
    pub top_k: u32,
}

/// The answer to [`VectorQuery`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorQueryAnswer {
    /// Best first; equal scores by ascending id.
    pub matches: Vec<crate::ports::VectorMatch>,
}

/// `POST /delete`: delete entries by id (unknown ids are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorDelete {
    /// The ids to delete.
    pub ids: Vec<String>,
}

/// The answer to [`VectorDelete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorDeleted {
    /// Entries that existed and are now gone.
    pub deleted: u64,
}

/// The answer to `GET /stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorStats {
    /// Vectors stored.
    pub count: u64,
    /// Their dimension when they all share one; `None` when there are none or they disagree
    /// (see `mixed_dims`).
    pub dims: Option<u32>,
    /// Whether stored vectors have different dimensions (only same-dimension ones are compared).
    pub mixed_dims: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{VectorEntry, VectorMatch};
    use serde_json::json;

    #[test]
    fn vector_messages_have_the_documented_json_shapes() {
        let upsert = VectorUpsert {
            entries: vec![VectorEntry {
                id: "a".into(),
                values: vec![1.0, 0.5],
                blob: "YmxvYg==".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(&upsert).unwrap(),
            json!({"entries": [{"id": "a", "values": [1.0, 0.5], "blob": "YmxvYg=="}]})
        );
        let query: VectorQuery =
            serde_json::from_value(json!({"vector": [0.25, 1.0], "top_k": 3})).unwrap();
        assert_eq!(query.top_k, 3);
        let answer = VectorQueryAnswer {
            matches: vec![VectorMatch {
                id: "a".into(),
                score: 0.5,
                blob: "x".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(&answer).unwrap(),
            json!({"matches": [{"id": "a", "score": 0.5, "blob": "x"}]})
        );
        assert_eq!(
            serde_json::to_value(VectorDelete {
                ids: vec!["a".into()]
            })
            .unwrap(),
            json!({"ids": ["a"]})
        );
        assert_eq!(
            serde_json::to_value(VectorStats {
                count: 2,
                dims: Some(384),
                mixed_dims: false
            })
            .unwrap(),
            json!({"count": 2, "dims": 384, "mixed_dims": false})
        );
    }
}

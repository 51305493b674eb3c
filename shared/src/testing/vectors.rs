//! The vector index fake (Vectorize): per-user maps, exact cosine search.

use std::cell::RefCell;
use std::collections::HashMap;

use async_trait::async_trait;

use crate::domain::UserId;
use crate::ports::{StoreError, VectorEntry, VectorIndex, VectorMatch};

/// Vectors per user in maps; exact cosine search.
#[derive(Debug, Default)]
pub struct InMemoryVectorIndex {
    rows: RefCell<HashMap<UserId, HashMap<String, VectorEntry>>>,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

#[async_trait(?Send)]
impl VectorIndex for InMemoryVectorIndex {
    async fn upsert(&self, user: UserId, entries: Vec<VectorEntry>) -> Result<u64, StoreError> {
        let n = entries.len() as u64;
        let mut rows = self.rows.borrow_mut();
        let mine = rows.entry(user).or_default();
        for e in entries {
            mine.insert(e.id.clone(), e);
        }
        Ok(n)
    }
    async fn query(
        &self,
        user: UserId,
        vector: &[f32],
        top_k: u32,
    ) -> Result<Vec<VectorMatch>, StoreError> {
        let rows = self.rows.borrow();
        let mut hits: Vec<VectorMatch> = rows
            .get(&user)
            .map(|m| {
                m.values()
                    .map(|e| VectorMatch {
                        id: e.id.clone(),
                        score: cosine(vector, &e.values),
                        blob: e.blob.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        hits.truncate(top_k as usize);
        Ok(hits)
    }
    async fn delete(&self, user: UserId, ids: &[String]) -> Result<(), StoreError> {
        if let Some(m) = self.rows.borrow_mut().get_mut(&user) {
            for id in ids {
                m.remove(id);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_fake_vector_index_ranks_by_cosine_and_isolates_users() {
        let idx = InMemoryVectorIndex::default();
        let (a, b) = (UserId(uuid::Uuid::nil()), UserId(uuid::Uuid::max()));
        let e = |id: &str, v: Vec<f32>| VectorEntry {
            id: id.into(),
            values: v,
            blob: String::new(),
        };
        idx.upsert(a, vec![e("x", vec![1.0, 0.0]), e("y", vec![0.0, 1.0])])
            .await
            .unwrap();
        idx.upsert(b, vec![e("z", vec![1.0, 0.0])]).await.unwrap();
        let hits = idx.query(a, &[0.9, 0.1], 5).await.unwrap();
        let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids, vec!["x", "y"]);
    }
}

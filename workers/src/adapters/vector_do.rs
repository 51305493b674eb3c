//! The vector index in the `VectorIndex` Durable Object: one object per user (named by the
//! user id), exact cosine search, JSON messages of [`shared::do_protocol`].

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::do_protocol::{
    VectorDelete, VectorDeleted, VectorQuery, VectorQueryAnswer, VectorStats, VectorUpsert,
    VectorUpserted, VECTOR_DELETE_PATH, VECTOR_QUERY_PATH, VECTOR_STATS_PATH, VECTOR_UPSERT_PATH,
};
use shared::domain::UserId;
use shared::ports::{StoreError, VectorEntry, VectorIndex, VectorMatch};
use worker::{Method, ObjectNamespace, Request, RequestInit};

use super::unavailable;

/// Per-user vector indexes in the `VectorIndex` Durable Object namespace (`VECTOR_INDEX`).
pub struct DurableVectorIndex(pub ObjectNamespace);

impl DurableVectorIndex {
    /// One message to the user's object. Failures (including a refusal by the object) are
    /// outages: the service checked the bounds before. Bodies are never put in errors.
    async fn call<B: Serialize, A: DeserializeOwned>(
        &self,
        user: UserId,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<A, StoreError> {
        let mut init = RequestInit::new();
        init.with_method(method);
        if let Some(body) = body {
            let json = serde_json::to_string(body)
                .map_err(|e| StoreError::Unavailable(format!("encoding vector message: {e}")))?;
            init.with_body(Some(wasm_bindgen::JsValue::from_str(&json)));
        }
        let req = Request::new_with_init(&format!("https://vector-index{path}"), &init)
            .map_err(|e| unavailable("building vector message", &e))?;
        let stub = self
            .0
            .id_from_name(&user.to_string())
            .and_then(|id| id.get_stub())
            .map_err(|e| unavailable("vector index stub", &e))?;
        let mut resp = stub
            .fetch_with_request(req)
            .await
            .map_err(|e| unavailable("vector index fetch", &e))?;
        if resp.status_code() != 200 {
            return Err(StoreError::Unavailable(format!(
                "vector index {path} answered {}",
                resp.status_code()
            )));
        }
        resp.json::<A>()
            .await
            .map_err(|e| unavailable("decoding vector answer", &e))
    }

    /// How many vectors the user has, and their dimension. (The service keeps each user's
    /// dimension in D1; this is the object's own view, for checks and diagnostics.)
    #[allow(dead_code)]
    pub async fn stats(&self, user: UserId) -> Result<VectorStats, StoreError> {
        self.call::<(), _>(user, Method::Get, VECTOR_STATS_PATH, None)
            .await
    }
}

#[async_trait(?Send)]
impl VectorIndex for DurableVectorIndex {
    async fn upsert(&self, user: UserId, entries: Vec<VectorEntry>) -> Result<u64, StoreError> {
        let msg = VectorUpsert { entries };
        let answer: VectorUpserted = self
            .call(user, Method::Post, VECTOR_UPSERT_PATH, Some(&msg))
            .await?;
        Ok(answer.upserted)
    }

    async fn query(
        &self,
        user: UserId,
        vector: &[f32],
        top_k: u32,
    ) -> Result<Vec<VectorMatch>, StoreError> {
        let msg = VectorQuery {
            vector: vector.to_vec(),
            top_k,
        };
        let answer: VectorQueryAnswer = self
            .call(user, Method::Post, VECTOR_QUERY_PATH, Some(&msg))
            .await?;
        Ok(answer.matches)
    }

    async fn delete(&self, user: UserId, ids: &[String]) -> Result<(), StoreError> {
        let msg = VectorDelete { ids: ids.to_vec() };
        let _: VectorDeleted = self
            .call(user, Method::Post, VECTOR_DELETE_PATH, Some(&msg))
            .await?;
        Ok(())
    }
}

//! The vector index on Cloudflare Vectorize (production): one index for every user, isolated
//! by an indexed `user_id` metadata filter. workers-rs has no Vectorize API, so the binding is
//! a small `wasm_bindgen` extern type; everything it is given or answers is built and read by
//! the natively tested mapping in [`shared::vectorize`] (ids, padding, filter, limits, where
//! payloads live). Payloads too large for metadata live in R2 (`RECORDS`).
//!
//! Setup (once per index; the metadata index must exist before vectors are inserted):
//! ```text
//! wrangler vectorize create adiuva-vectors --dimensions=1536 --metric=cosine
//! wrangler vectorize create-metadata-index adiuva-vectors --property-name user_id --type string
//! ```
//! `wrangler dev` cannot simulate Vectorize: this adapter only runs against the real service.

use async_trait::async_trait;
use futures_util::future::try_join_all;
use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::domain::UserId;
use shared::ports::{StoreError, VectorEntry, VectorIndex, VectorMatch};
use shared::vectorize::{
    attach_metadata, plan_delete, plan_query, plan_upsert, read_matches, BlobSource, StoredVector,
    VectorizeMatches, DEFAULT_INDEX_DIMS, GET_BY_IDS_BATCH, MAX_BATCH, MAX_DIMS,
};
use shared::AppError;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Bucket, Env, EnvBinding};

use super::unavailable;
use crate::state::RECORDS;

/// The Vectorize binding's name in `wrangler.toml` (`[[env.production.vectorize]]`).
pub const VECTORIZE: &str = "VECTORIZE";

#[wasm_bindgen]
extern "C" {
    /// The Vectorize binding object (`env.VECTORIZE`, a `Vectorize` index, V2).
    #[wasm_bindgen(extends = js_sys::Object)]
    #[derive(Debug, Clone)]
    pub type VectorizeBinding;

    /// `upsert(vectors: VectorizeVector[]): Promise<VectorizeAsyncMutation>`.
    #[wasm_bindgen(method, catch)]
    fn upsert(this: &VectorizeBinding, vectors: &JsValue) -> Result<js_sys::Promise, JsValue>;

    /// `query(vector: number[], options: VectorizeQueryOptions): Promise<VectorizeMatches>`.
    #[wasm_bindgen(method, catch)]
    fn query(
        this: &VectorizeBinding,
        vector: &JsValue,
        options: &JsValue,
    ) -> Result<js_sys::Promise, JsValue>;

    /// `getByIds(ids: string[]): Promise<VectorizeVector[]>`.
    #[wasm_bindgen(method, catch, js_name = getByIds)]
    fn get_by_ids(this: &VectorizeBinding, ids: &JsValue) -> Result<js_sys::Promise, JsValue>;

    /// `deleteByIds(ids: string[]): Promise<VectorizeAsyncMutation>`.
    #[wasm_bindgen(method, catch, js_name = deleteByIds)]
    fn delete_by_ids(this: &VectorizeBinding, ids: &JsValue) -> Result<js_sys::Promise, JsValue>;
}

impl EnvBinding for VectorizeBinding {
    const TYPE_NAME: &'static str = "Vectorize";

    /// The runtime's class name for the binding is not part of its API, so the object is
    /// recognised by the methods used here instead.
    fn get(val: JsValue) -> worker::Result<Self> {
        let has = |name: &str| {
            js_sys::Reflect::get(&val, &JsValue::from_str(name)).is_ok_and(|f| f.is_function())
        };
        if val.is_object()
            && ["upsert", "query", "getByIds", "deleteByIds"]
                .into_iter()
                .all(has)
        {
            Ok(val.unchecked_into())
        } else {
            Err(worker::Error::RustError(
                "binding is not a Vectorize index".into(),
            ))
        }
    }
}

/// A failed binding call as a store outage (Vectorize's messages name codes and limits, never
/// the vectors or metadata sent).
fn js_unavailable(what: &str, e: &JsValue) -> StoreError {
    let detail = e
        .dyn_ref::<js_sys::Error>()
        .map_or_else(|| format!("{e:?}"), |e| String::from(e.message()));
    StoreError::Unavailable(format!("{what}: {detail}"))
}

fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, StoreError> {
    // JSON-compatible: structs and maps become plain objects (a JS `Map` would be ignored).
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| StoreError::Unavailable(format!("encoding for Vectorize: {e}")))
}

async fn settle(
    what: &str,
    promise: Result<js_sys::Promise, JsValue>,
) -> Result<JsValue, StoreError> {
    let promise = promise.map_err(|e| js_unavailable(what, &e))?;
    JsFuture::from(promise)
        .await
        .map_err(|e| js_unavailable(what, &e))
}

fn from_js<T: DeserializeOwned>(what: &str, value: JsValue) -> Result<T, StoreError> {
    serde_wasm_bindgen::from_value(value)
        .map_err(|e| StoreError::Unavailable(format!("decoding {what}: {e}")))
}

/// Per-user vector indexes in one Vectorize index, with large payloads in R2.
pub struct VectorizeIndex {
    index: VectorizeBinding,
    blobs: Bucket,
    dims: usize,
}

impl VectorizeIndex {
    /// The `VECTORIZE` index (of [`DEFAULT_INDEX_DIMS`] dimensions) and the `RECORDS` bucket of
    /// `env`.
    pub fn new(env: &Env) -> Result<Self, AppError> {
        let index = env
            .get_binding::<VectorizeBinding>(VECTORIZE)
            .map_err(|e| AppError::internal(format!("binding {VECTORIZE}: {e}")))?;
        let blobs = env
            .bucket(RECORDS)
            .map_err(|e| AppError::internal(format!("binding {RECORDS}: {e}")))?;
        Ok(Self::from_parts(index, blobs, DEFAULT_INDEX_DIMS))
    }

    /// An index of `dims` dimensions (at most 1536: every vector is zero-padded to it) and the
    /// bucket for large payloads.
    pub fn from_parts(index: VectorizeBinding, blobs: Bucket, dims: usize) -> Self {
        Self {
            index,
            blobs,
            dims: dims.clamp(1, MAX_DIMS),
        }
    }

    async fn payload(&self, blob: BlobSource) -> Result<Option<String>, StoreError> {
        match blob {
            BlobSource::Inline(b) => Ok(Some(b)),
            BlobSource::R2(key) => {
                let Some(object) = self
                    .blobs
                    .get(key)
                    .execute()
                    .await
                    .map_err(|e| unavailable("reading vector payload", &e))?
                else {
                    // Deleted since the (eventually consistent) index answered.
                    return Ok(None);
                };
                let Some(body) = object.body() else {
                    return Ok(None);
                };
                body.text()
                    .await
                    .map(Some)
                    .map_err(|e| unavailable("reading vector payload", &e))
            }
        }
    }
}

#[async_trait(?Send)]
impl VectorIndex for VectorizeIndex {
    async fn upsert(&self, user: UserId, entries: Vec<VectorEntry>) -> Result<u64, StoreError> {
        let written = entries.len() as u64;
        let plan = plan_upsert(user, entries, self.dims)
            .map_err(|e| StoreError::Unavailable(format!("vectorize upsert: {e}")))?;
        // Payloads first, so that no vector points at a missing object.
        try_join_all(plan.r2_puts.into_iter().map(|(key, blob)| async move {
            self.blobs
                .put(key, blob)
                .execute()
                .await
                .map_err(|e| unavailable("writing vector payload", &e))
        }))
        .await?;
        for batch in plan.vectors.chunks(MAX_BATCH) {
            settle("vectorize upsert", self.index.upsert(&to_js(batch)?)).await?;
        }
        for keys in plan.r2_deletes.chunks(MAX_BATCH) {
            // Stale large payloads of entries now stored inline: garbage, not an error.
            if let Err(e) = self.blobs.delete_multiple(keys.to_vec()).await {
                tracing::warn!(error = %e, keys = keys.len(), "vectorize: stale payload cleanup failed");
            }
        }
        Ok(written)
    }

    async fn query(
        &self,
        user: UserId,
        vector: &[f32],
        top_k: u32,
    ) -> Result<Vec<VectorMatch>, StoreError> {
        let Some(plan) = plan_query(user, vector, top_k, self.dims)
            .map_err(|e| StoreError::Unavailable(format!("vectorize query: {e}")))?
        else {
            return Ok(Vec::new());
        };
        let answer = settle(
            "vectorize query",
            self.index
                .query(&to_js(&plan.vector)?, &to_js(&plan.options)?),
        )
        .await?;
        let mut answer: VectorizeMatches = from_js("vectorize matches", answer)?;
        if plan.needs_get_by_ids() {
            let ids: Vec<String> = answer.matches.iter().map(|m| m.id.clone()).collect();
            let mut stored: Vec<StoredVector> = Vec::with_capacity(ids.len());
            for batch in ids.chunks(GET_BY_IDS_BATCH) {
                let got =
                    settle("vectorize getByIds", self.index.get_by_ids(&to_js(batch)?)).await?;
                stored.extend(from_js::<Vec<StoredVector>>("vectorize vectors", got)?);
            }
            attach_metadata(&mut answer.matches, stored);
        }
        let hits = read_matches(user, answer.matches, plan.options.top_k);
        let matches = try_join_all(hits.into_iter().map(|h| async move {
            let blob = self.payload(h.blob).await?;
            Ok::<_, StoreError>(blob.map(|blob| VectorMatch {
                id: h.id,
                score: h.score,
                blob,
            }))
        }))
        .await?;
        Ok(matches.into_iter().flatten().collect())
    }

    async fn delete(&self, user: UserId, ids: &[String]) -> Result<(), StoreError> {
        let plan = plan_delete(user, ids);
        for batch in plan.vector_ids.chunks(MAX_BATCH) {
            settle(
                "vectorize deleteByIds",
                self.index.delete_by_ids(&to_js(batch)?),
            )
            .await?;
        }
        for keys in plan.r2_keys.chunks(MAX_BATCH) {
            self.blobs
                .delete_multiple(keys.to_vec())
                .await
                .map_err(|e| unavailable("deleting vector payloads", &e))?;
        }
        Ok(())
    }
}

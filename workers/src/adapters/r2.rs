//! R2 adapter: blobs stream from the request straight into R2, which checks their SHA-256
//! itself (`put(..).sha256(..)`), so the worker never holds a whole body in memory.

use async_trait::async_trait;
use shared::ports::StoreError;
use shared::storage::{BlobStore, Checksum};
use worker::{Bucket, Data, ResponseBody};

use super::unavailable;

/// A bucket of opaque client-encrypted blobs.
pub struct R2BlobStore(pub Bucket);

impl R2BlobStore {
    /// The body of `key` as a stream for a response (no copy through the worker), with its size.
    pub async fn stream(&self, key: &str) -> Result<Option<(ResponseBody, u64)>, StoreError> {
        let Some(object) = self
            .0
            .get(key)
            .execute()
            .await
            .map_err(|e| unavailable("reading blob", &e))?
        else {
            return Ok(None);
        };
        let size = object.size();
        let body = object
            .body()
            .ok_or_else(|| StoreError::Unavailable(format!("blob {key} has no body")))?
            .response_body()
            .map_err(|e| unavailable("streaming blob", &e))?;
        Ok(Some((body, size)))
    }
}

#[async_trait(?Send)]
impl BlobStore for R2BlobStore {
    type Body = Data;

    async fn put(&self, key: &str, body: Data, checksum: &Checksum) -> Result<bool, StoreError> {
        match self
            .0
            .put(key, body)
            .sha256(checksum.digest().to_vec())
            .execute()
            .await
        {
            Ok(_) => Ok(true),
            // Pinned under wrangler dev: R2 error 10037, nothing stored.
            Err(e)
                if e.to_string()
                    .contains("SHA-256 checksum you specified did not match") =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable("writing blob", &e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0
            .delete(key)
            .await
            .map_err(|e| unavailable("deleting blob", &e))
    }
}

//! R2 adapter: blobs stream from the request straight into R2, which checks their SHA-256
//! itself (`put(..).sha256(..)`), so the worker never holds a whole body in memory.

use async_trait::async_trait;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use shared::backup::multipart::{MultipartBlobs, Part};
use shared::ports::StoreError;
use shared::storage::{BlobStore, Checksum};
use worker::{Bucket, Data, ResponseBody, UploadedPart};

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
            // workerd's words when the body stream being written (the client's request) broke
            // off; R2's own failures carry R2 error codes instead.
            Err(e) if e.to_string().contains("Network connection lost") => Err(
                StoreError::SourceAborted(format!("writing blob {key}: {e}")),
            ),
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

#[async_trait(?Send)]
impl MultipartBlobs for R2BlobStore {
    async fn begin(&self, key: &str) -> Result<String, StoreError> {
        let upload = self
            .0
            .create_multipart_upload(key)
            .execute()
            .await
            .map_err(|e| unavailable("starting multipart upload", &e))?;
        Ok(upload.upload_id().await)
    }

    async fn part(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        bytes: Vec<u8>,
    ) -> Result<String, StoreError> {
        let upload = self
            .0
            .resume_multipart_upload(key, upload_id)
            .map_err(|e| unavailable("resuming multipart upload", &e))?;
        let part = upload
            .upload_part(number, bytes)
            .await
            .map_err(|e| unavailable("uploading part", &e))?;
        Ok(part.etag())
    }

    async fn finish(&self, key: &str, upload_id: &str, parts: &[Part]) -> Result<(), StoreError> {
        let upload = self
            .0
            .resume_multipart_upload(key, upload_id)
            .map_err(|e| unavailable("resuming multipart upload", &e))?;
        upload
            .complete(
                parts
                    .iter()
                    .map(|p| UploadedPart::new(p.number, p.etag.clone())),
            )
            .await
            .map_err(|e| unavailable("completing multipart upload", &e))?;
        Ok(())
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        let upload = self
            .0
            .resume_multipart_upload(key, upload_id)
            .map_err(|e| unavailable("resuming multipart upload", &e))?;
        upload
            .abort()
            .await
            .map_err(|e| unavailable("aborting multipart upload", &e))
    }

    async fn digest(&self, key: &str) -> Result<Option<(Checksum, u64)>, StoreError> {
        let Some(object) = self
            .0
            .get(key)
            .execute()
            .await
            .map_err(|e| unavailable("reading blob", &e))?
        else {
            return Ok(None);
        };
        let mut stream = object
            .body()
            .ok_or_else(|| StoreError::Unavailable(format!("blob {key} has no body")))?
            .stream()
            .map_err(|e| unavailable("streaming blob", &e))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| unavailable("reading blob", &e))?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        let hex = hex::encode(hasher.finalize());
        Ok(Checksum::parse(&hex, "checksum").ok().map(|c| (c, size)))
    }
}

#[async_trait(?Send)]
impl shared::housekeeping::BlobSweep for R2BlobStore {
    async fn list(
        &self,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<shared::housekeeping::BlobPage, StoreError> {
        let mut list = self.0.list().limit(limit.clamp(1, 1000));
        if let Some(c) = cursor {
            list = list.cursor(c);
        }
        let objects = list
            .execute()
            .await
            .map_err(|e| unavailable("listing blobs", &e))?;
        let blobs = objects
            .objects()
            .into_iter()
            .map(|o| shared::housekeeping::ListedBlob {
                key: o.key(),
                uploaded_ms: i64::try_from(o.uploaded().as_millis()).unwrap_or(i64::MAX),
            })
            .collect();
        Ok(shared::housekeeping::BlobPage {
            blobs,
            cursor: if objects.truncated() {
                objects.cursor()
            } else {
                None
            },
        })
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        BlobStore::delete(self, key).await
    }
}

#[async_trait(?Send)]
impl shared::accounts::deletion::PrefixedBlobs for R2BlobStore {
    async fn keys_under(&self, prefix: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        let objects = self
            .0
            .list()
            .prefix(prefix)
            .limit(limit.clamp(1, 1000))
            .execute()
            .await
            .map_err(|e| unavailable("listing blobs", &e))?;
        Ok(objects.objects().into_iter().map(|o| o.key()).collect())
    }

    async fn delete_key(&self, key: &str) -> Result<(), StoreError> {
        BlobStore::delete(self, key).await
    }
}

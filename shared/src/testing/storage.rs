//! The blob store fake (R2): single objects and multipart uploads.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use async_trait::async_trait;

use crate::ports::StoreError;

/// Blobs in a map; verifies checksums as R2 does (nothing stored on a mismatch).
#[derive(Debug, Default)]
pub struct InMemoryBlobStore {
    /// Objects by key.
    pub objects: RefCell<HashMap<String, Vec<u8>>>,
    /// Fail the next put with an outage (fault injection).
    pub fail_next_put: Cell<bool>,
}

#[async_trait(?Send)]
impl crate::storage::BlobStore for InMemoryBlobStore {
    type Body = Vec<u8>;
    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        checksum: &crate::storage::Checksum,
    ) -> Result<bool, StoreError> {
        if self.fail_next_put.replace(false) {
            return Err(StoreError::Unavailable("injected".into()));
        }
        if !checksum.matches(&body) {
            return Ok(false);
        }
        self.objects.borrow_mut().insert(key.to_owned(), body);
        Ok(true)
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.objects.borrow_mut().remove(key);
        Ok(())
    }
}

/// Multipart on the in-memory store: parts kept per upload id until finished.
#[async_trait(?Send)]
impl crate::backup::multipart::MultipartBlobs for InMemoryBlobStore {
    async fn begin(&self, key: &str) -> Result<String, StoreError> {
        Ok(format!("mp-{key}"))
    }
    async fn part(
        &self,
        _key: &str,
        upload_id: &str,
        number: u16,
        bytes: Vec<u8>,
    ) -> Result<String, StoreError> {
        let etag = format!("etag-{number}");
        self.objects
            .borrow_mut()
            .insert(format!("{upload_id}#{number:05}"), bytes);
        Ok(etag)
    }
    async fn finish(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[crate::backup::multipart::Part],
    ) -> Result<(), StoreError> {
        let mut objects = self.objects.borrow_mut();
        let mut whole = Vec::new();
        for p in parts {
            let part = objects
                .remove(&format!("{upload_id}#{:05}", p.number))
                .ok_or_else(|| StoreError::Unavailable("missing part".into()))?;
            whole.extend(part);
        }
        objects.insert(key.to_owned(), whole);
        Ok(())
    }
    async fn abort(&self, _key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.objects
            .borrow_mut()
            .retain(|k, _| !k.starts_with(&format!("{upload_id}#")));
        Ok(())
    }
    async fn digest(
        &self,
        key: &str,
    ) -> Result<Option<(crate::storage::Checksum, u64)>, StoreError> {
        Ok(self
            .objects
            .borrow()
            .get(key)
            .map(|b| (crate::storage::Checksum::of(b), b.len() as u64)))
    }
}

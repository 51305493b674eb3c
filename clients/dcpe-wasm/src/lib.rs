//! The client-side crypto of the desktop app's client kit (`clients/typescript`), compiled to
//! wasm with wasm-bindgen: [`shared::dcpe`] (distance-comparison-preserving encryption of
//! embeddings) and the blob checksum of the storage API ([`shared::storage::Checksum`], lowercase
//! hex SHA-256), one-shot or incremental.
//!
//! The functions of [`core`] are plain Rust over `shared` (tested natively against the
//! cross-language fixture `clients/fixtures/dcpe-vectors.json`, which the TypeScript tests read
//! too); the `#[wasm_bindgen]` items below only convert their errors to JavaScript `Error`s.
//! Nothing here draws randomness: the caller passes the key seed and every nonce (the TypeScript
//! kit takes them from `crypto.getRandomValues`). Keys never leave the caller.

use wasm_bindgen::prelude::*;

/// The operations, free of wasm-bindgen types (errors are messages).
pub mod core {
    use sha2::{Digest, Sha256};
    use shared::dcpe::{decrypt_vector, encrypt_vector, DcpeKey};
    use shared::storage::Checksum;

    /// A DCPE key (its versioned byte form, [`shared::dcpe::KEY_BYTES_LEN`] bytes) from 32
    /// bytes of the caller's randomness, a scale factor and β.
    ///
    /// # Errors
    /// A seed that is not 32 bytes; a scale or β out of range.
    pub fn generate_key(seed: &[u8], scale: f64, beta: f64) -> Result<Vec<u8>, String> {
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| format!("the seed must be 32 bytes (got {})", seed.len()))?;
        let key = DcpeKey::generate(seed, scale, beta).map_err(|e| e.to_string())?;
        Ok(key.to_bytes())
    }

    /// Reads key bytes; returns `(scale, beta)`.
    ///
    /// # Errors
    /// Bytes that are not a version-1 DCPE key.
    pub fn key_params(key: &[u8]) -> Result<(f64, f64), String> {
        let key = DcpeKey::from_bytes(key).map_err(|e| e.to_string())?;
        Ok((key.scale(), key.beta()))
    }

    /// Encrypts `plaintext` under `key` and `nonce` ([`shared::dcpe::encrypt_vector`]).
    ///
    /// # Errors
    /// A malformed key, an empty nonce, an empty, oversized or non-finite vector, overflow.
    pub fn encrypt(key: &[u8], nonce: &[u8], plaintext: &[f32]) -> Result<Vec<f32>, String> {
        let key = DcpeKey::from_bytes(key).map_err(|e| e.to_string())?;
        encrypt_vector(&key, nonce, plaintext).map_err(|e| e.to_string())
    }

    /// Decrypts a ciphertext of [`encrypt`] ([`shared::dcpe::decrypt_vector`]).
    ///
    /// # Errors
    /// As [`encrypt`].
    pub fn decrypt(key: &[u8], nonce: &[u8], ciphertext: &[f32]) -> Result<Vec<f32>, String> {
        let key = DcpeKey::from_bytes(key).map_err(|e| e.to_string())?;
        decrypt_vector(&key, nonce, ciphertext).map_err(|e| e.to_string())
    }

    /// The storage API's checksum of `bytes`: lowercase hex SHA-256.
    pub fn checksum(bytes: &[u8]) -> String {
        Checksum::of(bytes).as_str().to_owned()
    }

    /// An incremental [`checksum`], for blobs sent in parts (multipart backups).
    #[derive(Clone, Default)]
    pub struct ChecksumStream(Sha256);

    impl ChecksumStream {
        /// Adds `bytes`.
        pub fn update(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }

        /// The checksum of everything added, as [`checksum`] gives it.
        pub fn finish(self) -> String {
            hex::encode(self.0.finalize())
        }
    }
}

fn js_error(message: &str) -> JsError {
    JsError::new(message)
}

/// `dcpeGenerateKey(seed: Uint8Array(32), scale, beta) → Uint8Array` (the key's bytes).
///
/// # Errors
/// See [`core::generate_key`].
#[wasm_bindgen(js_name = dcpeGenerateKey)]
pub fn dcpe_generate_key(seed: &[u8], scale: f64, beta: f64) -> Result<Vec<u8>, JsError> {
    core::generate_key(seed, scale, beta).map_err(|e| js_error(&e))
}

/// `dcpeKeyScale(key) → number`.
///
/// # Errors
/// A malformed key.
#[wasm_bindgen(js_name = dcpeKeyScale)]
pub fn dcpe_key_scale(key: &[u8]) -> Result<f64, JsError> {
    core::key_params(key)
        .map(|(scale, _)| scale)
        .map_err(|e| js_error(&e))
}

/// `dcpeKeyBeta(key) → number`.
///
/// # Errors
/// A malformed key.
#[wasm_bindgen(js_name = dcpeKeyBeta)]
pub fn dcpe_key_beta(key: &[u8]) -> Result<f64, JsError> {
    core::key_params(key)
        .map(|(_, beta)| beta)
        .map_err(|e| js_error(&e))
}

/// `dcpeEncrypt(key, nonce, plaintext: Float32Array) → Float32Array`.
///
/// # Errors
/// See [`core::encrypt`].
#[wasm_bindgen(js_name = dcpeEncrypt)]
pub fn dcpe_encrypt(key: &[u8], nonce: &[u8], plaintext: &[f32]) -> Result<Vec<f32>, JsError> {
    core::encrypt(key, nonce, plaintext).map_err(|e| js_error(&e))
}

/// `dcpeDecrypt(key, nonce, ciphertext: Float32Array) → Float32Array`.
///
/// # Errors
/// See [`core::decrypt`].
#[wasm_bindgen(js_name = dcpeDecrypt)]
pub fn dcpe_decrypt(key: &[u8], nonce: &[u8], ciphertext: &[f32]) -> Result<Vec<f32>, JsError> {
    core::decrypt(key, nonce, ciphertext).map_err(|e| js_error(&e))
}

/// `checksum(bytes) → string`: lowercase hex SHA-256, as the storage API compares it.
#[wasm_bindgen]
pub fn checksum(bytes: &[u8]) -> String {
    core::checksum(bytes)
}

/// An incremental checksum: `new ChecksumStream()`, `update(bytes)`…, `finish()`.
#[wasm_bindgen]
#[derive(Default)]
pub struct ChecksumStream(core::ChecksumStream);

#[wasm_bindgen]
impl ChecksumStream {
    /// An empty stream.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The checksum of everything added (the stream can go on).
    pub fn finish(&self) -> String {
        self.0.clone().finish()
    }
}

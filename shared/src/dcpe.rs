//! Client-side DCPE: approximate distance-comparison-preserving encryption of embeddings.
//!
//! This is the scale-and-perturb (SAP) scheme of Fuchsbauer, Ghosal, Hauke and O'Neill,
//! "Approximate Distance-Comparison-Preserving Symmetric Encryption" (SCN 2022). The desktop
//! app encrypts each embedding with it before uploading, so the server can run nearest-neighbour
//! search over vectors it cannot read back into the original embedding space.
//!
//! # The scheme
//!
//! A key ([`DcpeKey`]) is a scale factor `s > 0`, an approximation parameter `β ≥ 0` and a
//! 32-byte PRF key `K`. To encrypt `m ∈ ℝᵈ` under a nonce `n`:
//!
//! 1. seed ChaCha20 with `HMAC-SHA256(K, "adiuva/dcpe/v1/noise" ‖ n)`;
//! 2. draw `d` standard Gaussians (Box–Muller) and normalise them: `u` is uniform on the unit
//!    sphere;
//! 3. draw `x` uniform in `(0, 1)` and set `r = (s·β/4)·x^(1/d)`, so `r·u` is uniform in the ball
//!    of radius `s·β/4`;
//! 4. the ciphertext is `c = s·m + r·u` (computed in `f64`, stored as `f32`).
//!
//! [`decrypt_vector`] regenerates `r·u` from the same key and nonce and returns `(c − r·u)/s`,
//! equal to `m` up to `f32` rounding.
//!
//! **The guarantee** (β-DCP): for plaintexts `x, y, z` encrypted under distinct nonces,
//! `‖x−y‖ < ‖x−z‖ − β` implies `‖c(x)−c(y)‖ < ‖c(x)−c(z)‖`. Each ciphertext is within `s·β/4`
//! of `s·m`, so each ciphertext distance is within `s·β/2` of `s` times the plaintext one.
//! Comparisons between distances that differ by less than `β` may flip; that fuzz is the
//! privacy.
//!
//! # What it protects and what it leaks
//!
//! - **Protects**: the exact coordinates of each embedding, to within noise of norm up to
//!   `β/4` (in plaintext units), so exact embedding-inversion attacks see perturbed inputs; and
//!   without `K` nobody can remove the noise. Fresh nonces make two encryptions of the same
//!   vector differ.
//! - **Leaks, by design**: approximate distances, hence the approximate order of distances
//!   and the nearest-neighbour graph, clusters and duplicates — that is what makes server-side
//!   search work. An attacker holding some known plaintext/ciphertext pairs, or a public
//!   embedding model and guesses of the text, can match ciphertexts to candidate texts by
//!   their neighbourhood structure.
//! - **Leaks norms up to scale**: `‖c‖ ≈ s·‖m‖ ± s·β/4`. With a public scale (e.g.
//!   [`DEFAULT_SCALE`]) the norms leak outright; this is moot for unit-normalised embeddings,
//!   whose norm is always 1.
//! - **Not IND-CPA** and not meant to be: ciphertexts are distinguishable by the distances they
//!   preserve. Treat DCPE vectors as "obfuscated", not as "encrypted" in the AES sense; the
//!   payload that goes with each vector must be encrypted with a real AEAD separately.
//! - **Nonce reuse is fatal for the pair**: two vectors encrypted under the same key and nonce
//!   get the same noise, so their difference `s·(m₁ − m₂)` is exact. Use a fresh random nonce
//!   (16 bytes from the OS) per encryption and store it next to the ciphertext (nonces are not
//!   secret); never reuse a record id as the nonce if the record can be re-embedded.
//!
//! # Choosing β and the scale
//!
//! `β` trades privacy for accuracy: larger `β` means more noise (the plaintext is hidden in a
//! ball of radius `β/4`) and worse search recall. It is measured in the plaintext's distance
//! units, so it only means something relative to the embeddings' norms and spacing. **Always
//! L2-normalise embeddings before encrypting** — then all norms are 1, Euclidean distance and
//! cosine similarity give the same order (`‖x−y‖² = 2 − 2·cos(x, y)`), and one β fits every
//! model. For unit-normalised embeddings, [`DEFAULT_BETA`] (0.5) keeps recall@10 of cosine
//! search over ciphertexts above 0.9 (0.93 measured) on real sentence embeddings; its docs
//! and `cargo bench -p shared --bench dcpe` give the whole table. To pick β for another model
//! or corpus, run that benchmark on a sample of its embeddings and take the largest β whose
//! recall is acceptable; if you need stronger hiding, accept lower recall (or re-rank the top
//! hits client-side on decrypted vectors, which costs nothing extra because the client has the
//! key).
//!
//! The scale `s` does not change any distance comparison or cosine (everything scales by `s`);
//! it only sets the ciphertexts' magnitude. A secret random scale hides absolute norms for
//! non-normalised inputs; for unit-normalised inputs [`DEFAULT_SCALE`] is fine.
//!
//! # Cosine search over ciphertexts
//!
//! The server ranks by cosine similarity, and ciphertexts are not unit length (`‖c‖/s` is
//! about `√(1 + (β/4)²)` for a unit `m` in high dimensions, varying slightly per vector). Cosine
//! over ciphertexts is the Euclidean order of the *normalised* ciphertexts, and normalising a
//! ciphertext moves it at most twice as far as the noise did. So for unit plaintexts, cosine
//! over ciphertexts is guaranteed `2β`-DCP: `‖x−y‖ < ‖x−z‖ − 2β` implies
//! `cos(c(x), c(y)) > cos(c(x), c(z))`. Note the ratio that matters is β to the plaintext norm
//! (1), not β to `s`: `s` cancels out of cosine. The worst-case bound is loose in practice —
//! the noise direction is random, so in `d` dimensions it moves inner products by only about
//! `β/(4√d)` — which is why the measured recall stays high well beyond what the bound promises.
//! Measured on real sentence embeddings, top-10 recall of cosine search over ciphertexts is
//! within 0.02 of Euclidean search over the same ciphertexts at every β tried (table at
//! [`DEFAULT_BETA`]), so the server's cosine metric costs nothing over Euclidean.
//! Queries are encrypted too (with their own nonce) so the server never sees a plaintext
//! embedding.
//!
//! # Use from the desktop app
//!
//! This module is plain Rust with no platform dependency (ChaCha20, HMAC-SHA256, `f64`
//! arithmetic), so it compiles to `wasm32-unknown-unknown` as part of this crate. A desktop
//! app written in Rust calls it directly; a web-view front end goes through a thin wrapper crate
//! outside `shared` that depends on `shared` (with `default-features = false`) and
//! `wasm-bindgen`, along these lines:
//!
//! ```ignore
//! use wasm_bindgen::prelude::*;
//!
//! #[wasm_bindgen]
//! pub fn dcpe_generate_key(seed: &[u8], scale: f64, beta: f64) -> Result<Vec<u8>, JsError> {
//!     let seed: [u8; 32] = seed.try_into().map_err(|_| JsError::new("seed must be 32 bytes"))?;
//!     let key = shared::dcpe::DcpeKey::generate(seed, scale, beta)
//!         .map_err(|e| JsError::new(&e.to_string()))?;
//!     Ok(key.to_bytes())
//! }
//!
//! #[wasm_bindgen]
//! pub fn dcpe_encrypt(key: &[u8], nonce: &[u8], embedding: &[f32]) -> Result<Vec<f32>, JsError> {
//!     let key = shared::dcpe::DcpeKey::from_bytes(key).map_err(|e| JsError::new(&e.to_string()))?;
//!     shared::dcpe::encrypt_vector(&key, nonce, embedding).map_err(|e| JsError::new(&e.to_string()))
//! }
//! ```
//!
//! JavaScript then passes a `Float32Array` and gets one back; the seed and nonces come from
//! `crypto.getRandomValues`, the key bytes are kept in the OS keychain (they are as sensitive as
//! any symmetric key), and the same key must be used on every device that searches the same
//! index.

use std::fmt;

use hmac::{Hmac, Mac};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::Sha256;

/// The default approximation parameter for **unit-normalised** embeddings.
///
/// Chosen from `cargo bench -p shared --bench dcpe` (top-10 cosine search over ciphertexts
/// against exact cosine search over plaintexts; 10,000 all-MiniLM-L6-v2 sentence embeddings,
/// 200 held-out queries, queries encrypted too):
///
/// | β | 0.05 | 0.1 | 0.25 | **0.5** | 0.75 | 1.0 | 1.5 | 2.0 |
/// | --- | --- | --- | --- | --- | --- | --- | --- | --- |
/// | recall@10 | 0.990 | 0.983 | 0.964 | **0.931** | 0.901 | 0.873 | 0.813 | 0.740 |
///
/// 0.5 is the largest β that clears the 0.9 target with a margin (0.75 sits right on it). The
/// noise it adds has norm up to `β/4 = 0.125` against plaintexts of norm 1; the guarantee
/// (order kept whenever distances differ by more than β, 2β for cosine) is far looser than
/// what is observed, because random noise in 384 dimensions barely moves inner products. On a
/// harder synthetic set (tight, equally spaced clusters) the same β gives recall@10 0.87.
pub const DEFAULT_BETA: f64 = 0.5;

/// The default scale factor. Any positive scale gives the same search results; this one keeps
/// ciphertext coordinates of unit-normalised embeddings comfortably inside `f32` range and
/// precision.
pub const DEFAULT_SCALE: f64 = 1024.0;

/// The most dimensions [`encrypt_vector`] and [`decrypt_vector`] accept. (The server's vector
/// store accepts fewer; see `crate::vectors::MAX_DIMS`.)
pub const MAX_DIMENSIONS: usize = 4096;

/// Length of [`DcpeKey::to_bytes`] in format version 1.
pub const KEY_BYTES_LEN: usize = 53;

const KEY_MAGIC: &[u8; 4] = b"DCPE";
const KEY_VERSION: u8 = 1;
const PRF_KEY_LABEL: &[u8] = b"adiuva/dcpe/v1/prf-key";
const NOISE_LABEL: &[u8] = b"adiuva/dcpe/v1/noise";

/// Why a DCPE operation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DcpeError {
    /// The scale factor was zero, negative, NaN or infinite.
    #[error("the scale factor must be a finite number greater than 0 (got {0})")]
    InvalidScale(f64),
    /// β was negative, NaN or infinite.
    #[error("beta must be a finite number of at least 0 (got {0})")]
    InvalidBeta(f64),
    /// The vector had no elements.
    #[error("the vector is empty")]
    EmptyVector,
    /// The vector had more than [`MAX_DIMENSIONS`] elements.
    #[error("the vector has {0} dimensions; at most {MAX_DIMENSIONS} are allowed")]
    TooManyDimensions(usize),
    /// An element was NaN or infinite.
    #[error("element {0} of the vector is not a finite number")]
    NonFiniteElement(usize),
    /// The result does not fit in `f32` (the scale is too large for these values).
    #[error("the result overflows f32; use a smaller scale factor")]
    Overflow,
    /// The nonce was empty.
    #[error("the nonce is empty")]
    EmptyNonce,
    /// Key bytes were not a version-1 DCPE key.
    #[error("malformed DCPE key: {0}")]
    MalformedKey(&'static str),
}

/// A DCPE secret key: scale factor `s`, approximation parameter `β` and a 32-byte PRF key.
///
/// Everything in it is secret except `β` (which the ciphertexts reveal approximately anyway);
/// its `Debug` output shows only `β`.
///
/// # Byte format (version 1, [`KEY_BYTES_LEN`] = 53 bytes)
///
/// | offset | length | content |
/// | --- | --- | --- |
/// | 0 | 4 | ASCII `DCPE` |
/// | 4 | 1 | format version, `0x01` |
/// | 5 | 8 | `s`, IEEE-754 `f64`, little-endian |
/// | 13 | 8 | `β`, IEEE-754 `f64`, little-endian |
/// | 21 | 32 | PRF key `K` |
///
/// Version 1 also fixes the noise derivation described in the [module docs](self), so a key
/// read back decrypts everything it encrypted.
#[derive(Clone, PartialEq)]
pub struct DcpeKey {
    scale: f64,
    beta: f64,
    prf_key: [u8; 32],
}

impl DcpeKey {
    /// A key from 32 bytes of caller-provided randomness (the app passes bytes from the OS
    /// CSPRNG; this crate has no randomness source of its own so it stays wasm-friendly).
    ///
    /// The PRF key is `HMAC-SHA256(seed, "adiuva/dcpe/v1/prf-key")`, so the same seed gives
    /// the same key. `scale` must be finite and positive ([`DEFAULT_SCALE`] is fine); `beta`
    /// finite and at least 0 ([`DEFAULT_BETA`] for unit-normalised embeddings; 0 means no
    /// noise at all — plain scaling, which hides nothing).
    pub fn generate(seed: [u8; 32], scale: f64, beta: f64) -> Result<Self, DcpeError> {
        check_params(scale, beta)?;
        let mut mac = new_mac(&seed);
        mac.update(PRF_KEY_LABEL);
        Ok(Self {
            scale,
            beta,
            prf_key: mac.finalize().into_bytes().into(),
        })
    }

    /// Reads a key written by [`to_bytes`](Self::to_bytes) (the format is in the type's docs).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DcpeError> {
        if bytes.len() != KEY_BYTES_LEN {
            return Err(DcpeError::MalformedKey("expected 53 bytes"));
        }
        if &bytes[..4] != KEY_MAGIC {
            return Err(DcpeError::MalformedKey("missing the DCPE marker"));
        }
        if bytes[4] != KEY_VERSION {
            return Err(DcpeError::MalformedKey("unsupported format version"));
        }
        let f64_at = |at: usize| {
            let mut le = [0u8; 8];
            le.copy_from_slice(&bytes[at..at + 8]);
            f64::from_le_bytes(le)
        };
        let (scale, beta) = (f64_at(5), f64_at(13));
        check_params(scale, beta)?;
        let mut prf_key = [0u8; 32];
        prf_key.copy_from_slice(&bytes[21..]);
        Ok(Self {
            scale,
            beta,
            prf_key,
        })
    }

    /// The key in the versioned byte format (secret: store it like any symmetric key).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(KEY_BYTES_LEN);
        out.extend_from_slice(KEY_MAGIC);
        out.push(KEY_VERSION);
        out.extend_from_slice(&self.scale.to_le_bytes());
        out.extend_from_slice(&self.beta.to_le_bytes());
        out.extend_from_slice(&self.prf_key);
        out
    }

    /// The approximation parameter β (in plaintext distance units).
    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// The scale factor `s`.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The largest norm the added noise can have, `s·β/4` (in ciphertext units).
    pub fn max_perturbation(&self) -> f64 {
        self.scale * self.beta / 4.0
    }

    /// The noise vector `r·u` for `nonce` and `dims` dimensions, in `f64`.
    fn perturbation(&self, nonce: &[u8], dims: usize) -> Vec<f64> {
        let mut mac = new_mac(&self.prf_key);
        mac.update(NOISE_LABEL);
        mac.update(nonce);
        let mut rng = ChaCha20Rng::from_seed(mac.finalize().into_bytes().into());

        // u: d standard Gaussians by Box–Muller, normalised onto the unit sphere.
        let mut u = Vec::with_capacity(dims + 1);
        let mut norm_sq = 0.0;
        while !(norm_sq > 0.0 && f64::is_finite(norm_sq)) {
            u.clear();
            while u.len() < dims {
                let radius = (-2.0 * open_unit(&mut rng).ln()).sqrt();
                let (sin, cos) = (std::f64::consts::TAU * open_unit(&mut rng)).sin_cos();
                u.push(radius * cos);
                u.push(radius * sin);
            }
            u.truncate(dims);
            norm_sq = u.iter().map(|g| g * g).sum();
        }
        // r = (s·β/4)·x^(1/d), x uniform in (0, 1): r·u is uniform in the ball of radius s·β/4.
        let dims = f64::from(u32::try_from(dims).unwrap_or(u32::MAX));
        let radius = self.max_perturbation() * open_unit(&mut rng).powf(dims.recip());
        let factor = radius / norm_sq.sqrt();
        for g in &mut u {
            *g *= factor;
        }
        u
    }
}

impl fmt::Debug for DcpeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DcpeKey")
            .field("beta", &self.beta)
            .field("scale", &"<redacted>")
            .field("prf_key", &"<redacted>")
            .finish()
    }
}

/// Encrypts one embedding under `key` and `nonce`: `s·m + r·u` (see the [module docs](self)).
///
/// `plaintext` should be L2-normalised (see "Choosing β"). `nonce` must be non-empty and must
/// never be reused with the same key for a different vector; 16 random bytes per call, stored
/// beside the ciphertext, is the recommended use. The same key, nonce and plaintext always
/// give the same ciphertext.
///
/// Rejects an empty nonce, an empty vector, more than [`MAX_DIMENSIONS`] elements, NaN or
/// infinite elements, and results that overflow `f32`.
pub fn encrypt_vector(
    key: &DcpeKey,
    nonce: &[u8],
    plaintext: &[f32],
) -> Result<Vec<f32>, DcpeError> {
    check_input(nonce, plaintext)?;
    let noise = key.perturbation(nonce, plaintext.len());
    plaintext
        .iter()
        .zip(noise)
        .map(|(&m, e)| to_f32(key.scale * f64::from(m) + e))
        .collect()
}

/// Decrypts a ciphertext of [`encrypt_vector`] given the key and the nonce it was encrypted
/// under: `(c − r·u)/s`, equal to the plaintext up to `f32` rounding (a relative error around
/// 10⁻⁷). A wrong key or nonce gives a wrong vector, not an error: DCPE has no integrity check.
///
/// Rejects the same malformed input as [`encrypt_vector`].
pub fn decrypt_vector(
    key: &DcpeKey,
    nonce: &[u8],
    ciphertext: &[f32],
) -> Result<Vec<f32>, DcpeError> {
    check_input(nonce, ciphertext)?;
    let noise = key.perturbation(nonce, ciphertext.len());
    ciphertext
        .iter()
        .zip(noise)
        .map(|(&c, e)| to_f32((f64::from(c) - e) / key.scale))
        .collect()
}

fn check_params(scale: f64, beta: f64) -> Result<(), DcpeError> {
    if !(scale.is_finite() && scale > 0.0) {
        return Err(DcpeError::InvalidScale(scale));
    }
    if !(beta.is_finite() && beta >= 0.0) {
        return Err(DcpeError::InvalidBeta(beta));
    }
    if !(scale * beta).is_finite() {
        return Err(DcpeError::Overflow);
    }
    Ok(())
}

fn check_input(nonce: &[u8], vector: &[f32]) -> Result<(), DcpeError> {
    if nonce.is_empty() {
        return Err(DcpeError::EmptyNonce);
    }
    if vector.is_empty() {
        return Err(DcpeError::EmptyVector);
    }
    if vector.len() > MAX_DIMENSIONS {
        return Err(DcpeError::TooManyDimensions(vector.len()));
    }
    match vector.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(DcpeError::NonFiniteElement(index)),
        None => Ok(()),
    }
}

fn new_mac(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// A uniform `f64` in the open interval `(0, 1)`: 53 random bits, centred in their cell.
fn open_unit(rng: &mut ChaCha20Rng) -> f64 {
    // Exact: the value is below 2^53.
    #[allow(clippy::cast_precision_loss)]
    let bits = (rng.next_u64() >> 11) as f64;
    (bits + 0.5) * (1.0 / 9_007_199_254_740_992.0)
}

fn to_f32(value: f64) -> Result<f32, DcpeError> {
    // Rounding to f32 is the storage format; overflow is caught below.
    #[allow(clippy::cast_possible_truncation)]
    let narrowed = value as f32;
    if narrowed.is_finite() {
        Ok(narrowed)
    } else {
        Err(DcpeError::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(beta: f64) -> DcpeKey {
        DcpeKey::generate([7; 32], DEFAULT_SCALE, beta).unwrap()
    }

    fn dist(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    fn cosine(a: &[f32], b: &[f32]) -> f64 {
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        dot / (norm(a) * norm(b))
    }

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    fn sample_vec() -> Vec<f32> {
        (0..384u16).map(|i| (f32::from(i) * 0.37).sin()).collect()
    }

    #[test]
    fn the_same_key_and_nonce_give_the_same_ciphertext() {
        let k = key(DEFAULT_BETA);
        let m = sample_vec();
        assert_eq!(
            encrypt_vector(&k, b"nonce-1", &m).unwrap(),
            encrypt_vector(&k, b"nonce-1", &m).unwrap()
        );
        let same_seed = DcpeKey::generate([7; 32], DEFAULT_SCALE, DEFAULT_BETA).unwrap();
        assert_eq!(
            encrypt_vector(&k, b"nonce-1", &m).unwrap(),
            encrypt_vector(&same_seed, b"nonce-1", &m).unwrap()
        );
    }

    #[test]
    fn different_nonces_and_different_keys_give_different_ciphertexts() {
        let k = key(DEFAULT_BETA);
        let m = sample_vec();
        let a = encrypt_vector(&k, b"nonce-1", &m).unwrap();
        let b = encrypt_vector(&k, b"nonce-2", &m).unwrap();
        assert_ne!(a, b);
        assert!(
            a.iter()
                .zip(&b)
                .filter(|(x, y)| x.to_bits() != y.to_bits())
                .count()
                > 380
        );
        let other = DcpeKey::generate([8; 32], DEFAULT_SCALE, DEFAULT_BETA).unwrap();
        assert_ne!(a, encrypt_vector(&other, b"nonce-1", &m).unwrap());
    }

    #[test]
    fn decryption_recovers_the_plaintext_within_float_tolerance() {
        for beta in [0.0, 0.1, DEFAULT_BETA, 2.0] {
            let k = key(beta);
            let m = sample_vec();
            let c = encrypt_vector(&k, b"n", &m).unwrap();
            let back = decrypt_vector(&k, b"n", &c).unwrap();
            for (x, y) in m.iter().zip(&back) {
                assert!((x - y).abs() < 1e-5, "{x} vs {y} at beta {beta}");
            }
        }
    }

    #[test]
    fn decryption_with_the_wrong_nonce_does_not_recover_the_plaintext() {
        let k = key(1.0);
        let m = unit(sample_vec());
        let c = encrypt_vector(&k, b"right", &m).unwrap();
        let wrong = decrypt_vector(&k, b"wrong", &c).unwrap();
        assert!(dist(&m, &wrong) > 0.1);
    }

    #[test]
    fn the_perturbation_norm_never_exceeds_s_beta_over_4() {
        for (i, dims) in [1usize, 2, 3, 17, 384, 1536, MAX_DIMENSIONS]
            .into_iter()
            .enumerate()
        {
            for beta in [0.01, 0.5, 3.0] {
                let k = DcpeKey::generate([u8::try_from(i).unwrap(); 32], 3.5, beta).unwrap();
                let bound = k.max_perturbation();
                let mut largest: f64 = 0.0;
                for n in 0..200u32 {
                    let e = k.perturbation(&n.to_le_bytes(), dims);
                    assert_eq!(e.len(), dims);
                    let norm = e.iter().map(|x| x * x).sum::<f64>().sqrt();
                    assert!(norm <= bound * (1.0 + 1e-12), "{norm} > {bound}");
                    largest = largest.max(norm);
                }
                // The noise is not degenerate: in many dimensions it sits near the boundary.
                if dims >= 17 {
                    assert!(largest > 0.8 * bound);
                }
            }
        }
    }

    #[test]
    fn the_ciphertext_is_within_s_beta_over_4_of_the_scaled_plaintext() {
        let k = key(0.3);
        let m = sample_vec();
        for n in 0..50u8 {
            let c = encrypt_vector(&k, &[n], &m).unwrap();
            let scaled: Vec<f32> = m.iter().map(|&x| x * 1024.0).collect();
            // Plus f32 rounding of ciphertext coordinates (≈ |c|·2⁻²⁴ each).
            assert!(dist(&c, &scaled) <= k.max_perturbation() + 1e-3);
        }
    }

    #[test]
    fn the_noise_direction_is_spread_over_the_sphere() {
        // The mean of many unit noise directions is near 0 in every coordinate.
        let k = key(4.0);
        let dims = 8;
        let mut mean = [0.0f64; 8];
        let trials = 4000u32;
        for n in 0..trials {
            let e = k.perturbation(&n.to_be_bytes(), dims);
            let norm = e.iter().map(|x| x * x).sum::<f64>().sqrt();
            for (acc, x) in mean.iter_mut().zip(&e) {
                *acc += x / norm / f64::from(trials);
            }
        }
        assert!(mean.iter().all(|m| m.abs() < 0.05), "{mean:?}");
    }

    #[test]
    fn beta_zero_is_exact_scaling() {
        let k = DcpeKey::generate([1; 32], 8.0, 0.0).unwrap();
        let m = sample_vec();
        let c = encrypt_vector(&k, b"n", &m).unwrap();
        let scaled: Vec<f32> = m.iter().map(|&x| x * 8.0).collect();
        assert_eq!(c, scaled);
        assert_eq!(decrypt_vector(&k, b"n", &c).unwrap(), m);
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let k = key(DEFAULT_BETA);
        assert_eq!(encrypt_vector(&k, b"n", &[]), Err(DcpeError::EmptyVector));
        assert_eq!(
            encrypt_vector(&k, b"n", &vec![0.5; MAX_DIMENSIONS + 1]),
            Err(DcpeError::TooManyDimensions(MAX_DIMENSIONS + 1))
        );
        assert!(encrypt_vector(&k, b"n", &vec![0.5; MAX_DIMENSIONS]).is_ok());
        assert_eq!(
            encrypt_vector(&k, b"n", &[1.0, f32::NAN]),
            Err(DcpeError::NonFiniteElement(1))
        );
        assert_eq!(
            encrypt_vector(&k, b"n", &[f32::INFINITY]),
            Err(DcpeError::NonFiniteElement(0))
        );
        assert_eq!(encrypt_vector(&k, b"", &[1.0]), Err(DcpeError::EmptyNonce));
        assert_eq!(decrypt_vector(&k, b"n", &[]), Err(DcpeError::EmptyVector));
        assert_eq!(
            decrypt_vector(&k, b"n", &[f32::NEG_INFINITY]),
            Err(DcpeError::NonFiniteElement(0))
        );

        let huge = DcpeKey::generate([0; 32], 1e300, 0.0).unwrap();
        assert_eq!(
            encrypt_vector(&huge, b"n", &[1.0]),
            Err(DcpeError::Overflow)
        );

        for scale in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                DcpeKey::generate([0; 32], scale, 0.1),
                Err(DcpeError::InvalidScale(_))
            ));
        }
        for beta in [-0.1, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                DcpeKey::generate([0; 32], 1.0, beta),
                Err(DcpeError::InvalidBeta(_))
            ));
        }
        assert_eq!(
            DcpeKey::generate([0; 32], 1e300, 1e300),
            Err(DcpeError::Overflow)
        );
    }

    #[test]
    fn key_bytes_round_trip() {
        let k = DcpeKey::generate([42; 32], 777.25, 0.125).unwrap();
        let bytes = k.to_bytes();
        assert_eq!(bytes.len(), KEY_BYTES_LEN);
        assert_eq!(&bytes[..5], b"DCPE\x01");
        let back = DcpeKey::from_bytes(&bytes).unwrap();
        assert_eq!(back, k);
        assert_eq!(back.scale().to_bits(), 777.25f64.to_bits());
        assert_eq!(back.beta().to_bits(), 0.125f64.to_bits());
        let m = sample_vec();
        assert_eq!(
            encrypt_vector(&k, b"n", &m).unwrap(),
            encrypt_vector(&back, b"n", &m).unwrap()
        );
    }

    #[test]
    fn malformed_key_bytes_are_rejected() {
        let good = key(0.1).to_bytes();
        assert!(DcpeKey::from_bytes(&good[..52]).is_err());
        assert!(DcpeKey::from_bytes(&[good.as_slice(), &[0]].concat()).is_err());
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        assert!(DcpeKey::from_bytes(&bad_magic).is_err());
        let mut bad_version = good.clone();
        bad_version[4] = 2;
        assert!(DcpeKey::from_bytes(&bad_version).is_err());
        let mut bad_scale = good.clone();
        bad_scale[5..13].copy_from_slice(&(-1.0f64).to_le_bytes());
        assert!(matches!(
            DcpeKey::from_bytes(&bad_scale),
            Err(DcpeError::InvalidScale(_))
        ));
        let mut bad_beta = good;
        bad_beta[13..21].copy_from_slice(&f64::NAN.to_le_bytes());
        assert!(matches!(
            DcpeKey::from_bytes(&bad_beta),
            Err(DcpeError::InvalidBeta(_))
        ));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let k = DcpeKey::generate([0xAB; 32], 1234.5, 0.25).unwrap();
        let shown = format!("{k:?}");
        assert!(shown.contains("redacted"));
        assert!(shown.contains("0.25"));
        assert!(!shown.contains("1234"));
        let prf_hex = hex::encode(k.prf_key);
        assert!(!shown.to_lowercase().contains(&prf_hex[..8]));
        assert!(!shown.contains(&format!("{:?}", k.prf_key)));
    }

    #[test]
    fn version_1_ciphertexts_stay_decryptable() {
        // Pins the noise derivation (HMAC label, ChaCha20 stream, Box–Muller, radius): if this
        // changes, stored ciphertexts no longer decrypt and the key format version must change.
        let k = DcpeKey::generate([9; 32], 2.0, 1.0).unwrap();
        let c = encrypt_vector(&k, b"known answer", &[0.5, -0.25, 0.0, 1.0]).unwrap();
        let expected = [1.090_468_8, -0.213_825_32, -0.146_322_24, 1.633_980_5];
        for (got, want) in c.iter().zip(expected) {
            assert!((got - want).abs() < 1e-5, "{c:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn encrypted_distances_keep_every_order_separated_by_more_than_beta(
            points in prop::collection::vec(prop::collection::vec(-2.0f32..2.0, 1..=12), 6),
            dims in 1usize..=12,
            beta in 0.0f64..1.5,
            scale in 0.5f64..5000.0,
            seed in any::<[u8; 32]>(),
        ) {
            let k = DcpeKey::generate(seed, scale, beta).unwrap();
            let points: Vec<Vec<f32>> = points
                .into_iter()
                .map(|mut p| { p.resize(dims, 0.25); p })
                .collect();
            let enc: Vec<Vec<f32>> = points
                .iter()
                .enumerate()
                .map(|(i, p)| encrypt_vector(&k, &i.to_le_bytes(), p).unwrap())
                .collect();
            // Slack for rounding ciphertexts to f32 (≈ 10⁻⁶ here); the bound itself is exact.
            let slack = 1e-4;
            for x in 0..points.len() {
                for y in 0..points.len() {
                    for z in 0..points.len() {
                        if x == y || x == z || y == z {
                            continue;
                        }
                        if dist(&points[x], &points[y]) < dist(&points[x], &points[z]) - beta - slack {
                            prop_assert!(
                                dist(&enc[x], &enc[y]) < dist(&enc[x], &enc[z]),
                                "order of ({x},{y}) vs ({x},{z}) flipped"
                            );
                        }
                    }
                }
            }
        }

        #[test]
        fn cosine_over_ciphertexts_of_unit_vectors_keeps_orders_separated_by_twice_beta(
            points in prop::collection::vec(prop::collection::vec(-1.0f32..1.0, 16), 6),
            beta in 0.0f64..0.6,
            seed in any::<[u8; 32]>(),
        ) {
            let k = DcpeKey::generate(seed, DEFAULT_SCALE, beta).unwrap();
            let points: Vec<Vec<f32>> = points
                .into_iter()
                .filter(|p| p.iter().map(|x| x * x).sum::<f32>() > 0.01)
                .map(unit)
                .collect();
            let enc: Vec<Vec<f32>> = points
                .iter()
                .enumerate()
                .map(|(i, p)| encrypt_vector(&k, &[u8::try_from(i).unwrap(), 1], p).unwrap())
                .collect();
            for x in 0..points.len() {
                for y in 0..points.len() {
                    for z in 0..points.len() {
                        if x == y || x == z || y == z {
                            continue;
                        }
                        if dist(&points[x], &points[y]) < dist(&points[x], &points[z]) - 2.0 * beta - 1e-4 {
                            prop_assert!(cosine(&enc[x], &enc[y]) > cosine(&enc[x], &enc[z]));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_order_property_is_exercised_by_enough_triples() {
        // Guards the property test above against vacuity: with its parameters, a good share of
        // triples meet the separation condition.
        let points: Vec<Vec<f32>> = (0..6u16)
            .map(|i| {
                (0..6u16)
                    .map(|j| (f32::from(i * 7 + j) * 1.3).sin() * 2.0)
                    .collect()
            })
            .collect();
        let mut qualifying = 0;
        for x in 0..6 {
            for y in 0..6 {
                for z in 0..6 {
                    if x != y
                        && x != z
                        && y != z
                        && dist(&points[x], &points[y]) < dist(&points[x], &points[z]) - 0.75
                    {
                        qualifying += 1;
                    }
                }
            }
        }
        assert!(qualifying >= 20, "{qualifying}");
    }
}

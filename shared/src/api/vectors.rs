//! Vector store bodies (plan Step 8d; DESIGN "Vectors").

use serde::{Deserialize, Serialize};

/// `POST /storage/vectors/upsert`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VectorUpsertRequest {
    /// 1–100 items.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
    pub vectors: Vec<VectorItem>,
}

/// One vector to store.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VectorItem {
    /// Client-chosen id: 1–128 of `[A-Za-z0-9_.:-]`.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^[A-Za-z0-9_.:-]{1,128}$", example = "doc-42#3")
    )]
    pub id: String,
    /// The embedding, already encrypted by the client (DCPE); 1–1536 finite numbers, the same
    /// count for every vector of the user. Without it, a 32-dimension vector derived from the
    /// blob's SHA-256 is used (exact-match search only).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(nullable = false, min_items = 1, max_items = 1536)
    )]
    pub values: Option<Vec<f64>>,
    /// The client-encrypted payload (standard base64, at most 64 KiB decoded).
    #[cfg_attr(feature = "openapi", schema(format = Byte))]
    pub blob: String,
    /// Lowercase hex SHA-256 of the decoded blob.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{64}$"))]
    pub checksum: String,
}

/// `POST /storage/vectors/search`: by an encrypted embedding or by a blob (exact match), never
/// both.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum VectorSearchRequest {
    /// Nearest to an embedding (encrypted like the stored ones).
    Vector(SearchByVector),
    /// Nearest to a blob's derived vector: finds that exact blob.
    Blob(SearchByBlob),
}

/// A search by embedding.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SearchByVector {
    /// The query embedding: 1–1536 finite numbers, as many as the stored vectors have.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 1536))]
    pub vector: Vec<f64>,
    /// Results wanted, 1–100 (default 10; `null` means the default).
    #[serde(default, deserialize_with = "crate::input::opt_integral_u32")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<u32>, minimum = 1, maximum = 100)
    )]
    pub top_k: Option<u32>,
}

/// A search by blob.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SearchByBlob {
    /// The blob (standard base64, at most 64 KiB decoded).
    #[cfg_attr(feature = "openapi", schema(format = Byte))]
    pub query_blob: String,
    /// Results wanted, 1–100 (default 10; `null` means the default).
    #[serde(default, deserialize_with = "crate::input::opt_integral_u32")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<u32>, minimum = 1, maximum = 100)
    )]
    pub top_k: Option<u32>,
}

/// `DELETE /storage/vectors`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VectorDeleteRequest {
    /// 1–100 ids (unknown ones, and strings that cannot be ids, are ignored).
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
    pub ids: Vec<String>,
}

/// The answer of an upsert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VectorUpserted {
    /// Vectors written.
    pub upserted: u64,
}

/// The answer of a search.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VectorSearchResponse {
    /// Best first.
    pub results: Vec<VectorSearchResult>,
}

/// One hit.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VectorSearchResult {
    /// The vector's id.
    pub id: String,
    /// Cosine similarity of the (encrypted) vectors, −1 to 1.
    pub score: f32,
    /// The stored payload (standard base64).
    #[cfg_attr(feature = "openapi", schema(format = Byte))]
    pub blob: String,
}

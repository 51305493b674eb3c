//! Cloud record bodies.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{AppError, FieldError};
use crate::storage::{Checksum, TableName};

/// `POST /storage/records` as JSON.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRecord {
    /// Table name: 1–64 of `[A-Za-z0-9_-]`.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$", example = "tasks")
    )]
    pub table: String,
    /// The client-encrypted bytes, standard base64.
    #[cfg_attr(feature = "openapi", schema(format = Byte))]
    pub blob: String,
    /// Lowercase hex SHA-256 of the bytes.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{64}$"))]
    pub checksum: String,
}

/// `PUT /storage/records/{id}` as JSON.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateRecord {
    /// The client-encrypted bytes, standard base64.
    #[cfg_attr(feature = "openapi", schema(format = Byte))]
    pub blob: String,
    /// Lowercase hex SHA-256 of the bytes.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{64}$"))]
    pub checksum: String,
}

fn decode(blob: &str) -> Result<Vec<u8>, FieldError> {
    STANDARD
        .decode(blob)
        .map_err(|_| FieldError::new("blob", "must be standard base64"))
}

impl CreateRecord {
    /// Table, checksum and decoded bytes.
    ///
    /// # Errors
    /// 422 naming every invalid field.
    pub fn try_into_domain(self) -> Result<(TableName, Checksum, Vec<u8>), AppError> {
        let table = TableName::parse(&self.table, "table");
        let checksum = Checksum::parse(&self.checksum, "checksum");
        let bytes = decode(&self.blob);
        match (table, checksum, bytes) {
            (Ok(t), Ok(c), Ok(b)) => Ok((t, c, b)),
            (t, c, b) => Err(AppError::Validation(
                [t.err(), c.err(), b.err()].into_iter().flatten().collect(),
            )),
        }
    }
}

impl UpdateRecord {
    /// Checksum and decoded bytes.
    ///
    /// # Errors
    /// 422 naming every invalid field.
    pub fn try_into_domain(self) -> Result<(Checksum, Vec<u8>), AppError> {
        match (
            Checksum::parse(&self.checksum, "checksum"),
            decode(&self.blob),
        ) {
            (Ok(c), Ok(b)) => Ok((c, b)),
            (c, b) => Err(AppError::Validation(
                [c.err(), b.err()].into_iter().flatten().collect(),
            )),
        }
    }
}

/// `201` of a create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordCreated {
    /// Record id (UUID).
    pub id: String,
    /// Creation (epoch ms).
    pub created_at: i64,
    /// ETag of this version.
    pub etag: String,
}

/// `200` of an update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordUpdated {
    /// Always true.
    pub ok: bool,
    /// ETag of the new version.
    pub etag: String,
    /// Change time (epoch ms).
    pub updated_at: i64,
}

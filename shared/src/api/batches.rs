//! `/batches`: one plan run for many items (issue #22, the matrix's `batch_active` and
//! `batch_builder` rows). The rules and numbers are in [`crate::chat::batch`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{PlanAction, PlanStep};
use crate::domain::{check_model_name, check_provider_name};
use crate::error::{AppError, FieldError};

/// Items one batch may carry.
pub const MAX_BATCH_ITEMS: usize = 100;
/// Steps a custom batch (`steps`, the batch builder) may carry.
pub const MAX_BATCH_STEPS: usize = 10;

/// One item of a batch: the variables its run of the plan gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    /// The variables of the plan's templates (each `llm` step takes those of its template).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub variables: Map<String, Value>,
}

/// `POST /batches`: a playbook (or, with the batch builder, custom steps) run once per item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The playbook to run (`GET /plans/playbook`); exactly one of `playbook_id` and `steps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub playbook_id: Option<String>,
    /// Custom steps built from template ids (power and team: the matrix's `batch_builder`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 10))]
    pub steps: Option<Vec<PlanStep>>,
    /// The items, 1–100.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
    pub items: Vec<BatchItem>,
    /// The LLM provider, as in `ChatRequest.provider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 32, pattern = r"^[a-z0-9_-]{1,32}$")
    )]
    pub provider: Option<String>,
    /// The model, as in `ChatRequest.model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 128,
            pattern = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$"
        )
    )]
    pub model: Option<String>,
}

impl BatchRequest {
    /// Checks the shape: exactly one of `playbook_id` and `steps` (1–10 of them), 1–100 items,
    /// and the provider and model names (their existence is the provider registry's).
    ///
    /// # Errors
    /// 422 naming every bad field.
    pub fn validate(&self) -> Result<(), AppError> {
        let mut errors = Vec::new();
        match (&self.playbook_id, &self.steps) {
            (Some(_), Some(_)) | (None, None) => errors.push(FieldError::new(
                "playbook_id",
                "give exactly one of playbook_id and steps",
            )),
            (Some(id), None) if id.is_empty() || id.chars().count() > 200 => {
                errors.push(FieldError::new("playbook_id", "1 to 200 characters"));
            }
            (None, Some(steps)) if steps.is_empty() || steps.len() > MAX_BATCH_STEPS => {
                errors.push(FieldError::new(
                    "steps",
                    format!("1 to {MAX_BATCH_STEPS} steps"),
                ));
            }
            _ => {}
        }
        if self.items.is_empty() || self.items.len() > MAX_BATCH_ITEMS {
            errors.push(FieldError::new(
                "items",
                format!("1 to {MAX_BATCH_ITEMS} items"),
            ));
        }
        if let Some(reason) = self
            .provider
            .as_deref()
            .and_then(|p| check_provider_name(p).err())
        {
            errors.push(FieldError::new("provider", reason));
        }
        if let Some(reason) = self
            .model
            .as_deref()
            .and_then(|m| check_model_name(m).err())
        {
            errors.push(FieldError::new("model", reason));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(errors))
        }
    }
}

/// `202` to `POST /batches`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchStarted {
    /// The batch (`GET /batches/{id}`, and `batch_id` of its socket frames).
    pub batch_id: String,
}

/// Where a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    /// Items are still running or waiting.
    Running,
    /// Every item ran (some may have failed: see each result's `error`).
    Done,
    /// `DELETE /batches/{id}` stopped it; the results so far stay.
    Cancelled,
    /// The home no longer holds its results (they expired 10 minutes after the batch ended, or
    /// the home was evicted from memory): run it again.
    Lost,
}

/// Why one item failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchItemError {
    /// The stable error code (`rate_limited`, `upstream_unavailable`, …).
    pub code: String,
    /// What happened, for people.
    pub message: String,
}

/// One item's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchResult {
    /// The item's index in `items`.
    pub index: u32,
    /// The output of the plan's last `llm` step (sanitized; empty when the item failed).
    pub output: String,
    /// The actions of every `llm` step, in order, for the app to apply.
    pub actions: Vec<PlanAction>,
    /// Why the item failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<BatchItemError>,
}

/// `GET /batches/{id}` and `DELETE /batches/{id}`: the batch and its results so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchView {
    /// The batch.
    pub id: String,
    /// Where it is.
    pub status: BatchState,
    /// Its items.
    pub total: u32,
    /// Items finished (succeeded or failed).
    pub completed: u32,
    /// The results so far, by index.
    pub results: Vec<BatchResult>,
}

/// One batch of `GET /batches`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchSummary {
    /// The batch.
    pub id: String,
    /// Where it is.
    pub status: BatchState,
    /// Its items.
    pub total: u32,
    /// Items finished (0 when lost).
    pub completed: u32,
    /// When it was submitted (ms).
    pub created_at: i64,
}

/// `GET /batches`: the caller's batches of the last day, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchList {
    /// The batches.
    pub batches: Vec<BatchSummary>,
}

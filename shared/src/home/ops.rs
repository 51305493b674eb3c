//! Every operation a home performs ([`HomeOp`]), with its arguments and answer.
//!
//! Arguments are plain data the worker has already parsed and checked at its edge (table
//! names, checksums, bounds); the home re-checks what it decides on (tier gates, quotas,
//! versions, ownership of uploads).

use serde::{Deserialize, Serialize};

use super::HomeOp;
use crate::api::UserProfile;
use crate::backup::multipart::{Part, PartStored, UploadStarted};
use crate::backup::{BackupMetadata, BackupRow};
pub use crate::domain::TeamGrant;
use crate::domain::{tier_in_force, Comp, Role, Tier};
use crate::ports::VectorMatch;
use crate::storage::{Cursor, RecordMeta, RecordRow};

macro_rules! op {
    ($ty:ty, $name:literal, $answer:ty) => {
        impl HomeOp for $ty {
            const NAME: &'static str = $name;
            type Answer = $answer;
        }
    };
}

/// Nothing to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Done {}

// ---- the account ---------------------------------------------------------------------------

/// Only the admission (and the principal) — for routes whose work is elsewhere.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Admit {}
op!(Admit, "admit", Done);

/// The caller's profile (`GET /auth/me`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct GetProfile {}
op!(GetProfile, "get_profile", UserProfile);

/// The caller's exact usage and limits (`GET /usage`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct GetUsage {}
op!(GetUsage, "get_usage", crate::api::UsageReport);

/// What a home keeps of the account (D1 is the source of truth; see [`SetAccount`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// The email address (normalised).
    pub email: String,
    /// The role.
    pub role: Role,
    /// The paid tier as stored.
    pub tier: Tier,
    /// When it lapses (past due), if it does.
    pub tier_until: Option<i64>,
    /// Seats of the team subscription (1 otherwise).
    pub seats: u32,
    /// Whether the address was verified.
    #[serde(default)]
    pub email_verified: bool,
    /// Whether an administrator suspended the account (every call answers 403
    /// `account_suspended`; the home closes the user's sockets when this turns on).
    #[serde(default)]
    pub suspended: bool,
    /// A tier an administrator granted until a time, whatever the account pays.
    #[serde(default)]
    pub comp: Option<Comp>,
    /// What the user's team grants (the team's subscription), if the user is in a team.
    #[serde(default)]
    pub team: Option<TeamGrant>,
}

impl AccountState {
    /// The tier in force at `now` (see [`tier_in_force`]: paid, comp and team in one place).
    pub fn tier_in_force(&self, now: i64) -> Tier {
        tier_in_force(self.tier, self.tier_until, self.comp, self.team, now)
    }
}

/// Replaces the home's copy of the account (pushed by every billing change, and loaded by the
/// home itself from D1 when its copy is older than a minute). `None`: the account is gone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetAccount {
    /// The account as D1 has it now.
    pub account: Option<AccountState>,
}
op!(SetAccount, "set_account", Done);

/// Ends sessions: their access tokens stop working at once and their sockets are closed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeSessions {
    /// The sessions (refresh families).
    pub sids: Vec<uuid::Uuid>,
}
op!(RevokeSessions, "revoke_sessions", Revoked);

/// What [`RevokeSessions`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// Sessions now revoked.
    pub revoked: u32,
}

// ---- records -------------------------------------------------------------------------------

/// What a record write is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordTarget {
    /// A new record in `table`.
    Create {
        /// Table name (checked).
        table: String,
    },
    /// A new version of record `id`.
    Update {
        /// Record id.
        id: String,
        /// The `If-Match` header, if sent.
        if_match: Option<String>,
    },
}

/// Takes the admission, checks the gate, the version and the quota, and reserves `size` bytes
/// for a write whose blob the worker then stores under the answered key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReserveRecord {
    /// What is written.
    pub target: RecordTarget,
    /// The blob's size.
    pub size: u64,
    /// The blob's checksum (lowercase hex SHA-256).
    pub checksum: String,
}
op!(ReserveRecord, "reserve_record", Reservation);

/// A reservation: what to commit or release, and where the bytes go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The reservation's id.
    pub reservation: String,
    /// The id of what is written (record or backup id).
    pub id: String,
    /// The R2 key the bytes go to.
    pub key: String,
}

/// Makes a reserved record write live (the blob is stored and verified).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitRecord {
    /// The reservation.
    pub reservation: String,
}
op!(CommitRecord, "commit_record", RecordCommitted);

/// What [`CommitRecord`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCommitted {
    /// The record now.
    pub row: RecordRow,
    /// The blob the record no longer references (to delete).
    pub replaced_key: Option<String>,
}

/// Gives back a reservation whose write did not happen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Release {
    /// The reservation.
    pub reservation: String,
}
op!(Release, "release", Done);

/// A live record's metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetRecord {
    /// Record id.
    pub id: String,
}
op!(GetRecord, "get_record", RecordRow);

/// Deletes a record, leaving a tombstone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteRecord {
    /// Record id.
    pub id: String,
    /// The `If-Match` header, if sent.
    pub if_match: Option<String>,
}
op!(DeleteRecord, "delete_record", Deleted);

/// The blob of what was deleted (to delete in R2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// R2 key.
    pub key: String,
}

/// One page of the listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListRecords {
    /// Only this table.
    pub table: Option<String>,
    /// Only records changed after this (epoch ms).
    pub updated_since: Option<i64>,
    /// Continue after this position.
    pub after: Option<Cursor>,
    /// Rows to skip (page-based paging).
    pub offset: u32,
    /// Page size.
    pub limit: u32,
}
op!(ListRecords, "list_records", RecordPage);

/// A page of metadata and the cursor of the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPage {
    /// The page.
    pub items: Vec<RecordMeta>,
    /// `X-Next-Cursor`.
    pub next: Option<String>,
    /// `X-Sync-Reset`: a deletion after the query's position is no longer listed.
    #[serde(default)]
    pub reset: bool,
}

// ---- backups -------------------------------------------------------------------------------

/// Takes the admission, checks the gate and the quota (counting what pruning could free when
/// `prune`), and reserves `size` bytes for a backup the worker then stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReserveBackup {
    /// Size in bytes.
    pub size: u64,
    /// The client's backup time (part of the key).
    pub timestamp: i64,
    /// Whether the oldest backups may be deleted to make room.
    pub prune: bool,
}
op!(ReserveBackup, "reserve_backup", Reservation);

/// The metadata of a verified backup to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupFacts {
    /// The client's format version.
    pub version: i64,
    /// The client's backup time.
    pub timestamp: i64,
    /// SHA-256 of the whole backup (verified).
    pub checksum: String,
    /// Whether the oldest backups may be deleted to make room.
    pub prune: bool,
}

/// Records a reserved, stored and verified backup — pruning only now, when needed and allowed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitBackup {
    /// The reservation.
    pub reservation: String,
    /// What the backup is.
    pub facts: BackupFacts,
}
op!(CommitBackup, "commit_backup", BackupCommitted);

/// What a backup commit did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupCommitted {
    /// The new backup.
    pub meta: BackupMetadata,
    /// Blobs of backups pruned to make room (to delete in R2).
    pub pruned_keys: Vec<String>,
}

/// The newest backup.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct LatestBackup {}
op!(LatestBackup, "latest_backup", BackupRow);

/// Every backup's metadata, newest first.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct BackupHistory {}
op!(BackupHistory, "backup_history", Vec<BackupMetadata>);

/// Deletes one backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteBackup {
    /// Backup id.
    pub id: String,
}
op!(DeleteBackup, "delete_backup", Deleted);

/// Opens a multipart upload slot (at most [`crate::backup::multipart::MAX_OPEN_UPLOADS`] per
/// user); the worker then starts the R2 upload and reports it with [`UploadOpened`].
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct BeginUpload {}
op!(BeginUpload, "begin_upload", Reservation);

/// The R2 multipart upload of a slot from [`BeginUpload`] was created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadOpened {
    /// The upload (the reservation's id).
    pub upload: String,
    /// R2's multipart upload id.
    pub r2_upload_id: String,
}
op!(UploadOpened, "upload_opened", UploadStarted);

/// Checks the gate and the quota (open parts count as backup bytes) and reserves a part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReservePart {
    /// The upload.
    pub upload: String,
    /// 1-based part number.
    pub number: u16,
    /// Its size.
    pub size: u64,
    /// Its checksum (verified by the worker before the call).
    pub checksum: String,
}
op!(ReservePart, "reserve_part", PartSlot);

/// Where a reserved part goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartSlot {
    /// The reservation.
    pub reservation: String,
    /// The upload's R2 key.
    pub key: String,
    /// R2's multipart upload id.
    pub r2_upload_id: String,
}

/// Records a stored part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitPart {
    /// The reservation.
    pub reservation: String,
    /// R2's etag of the part.
    pub etag: String,
}
op!(CommitPart, "commit_part", PartStored);

/// Checks an upload's parts and hands them out for assembly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssembleUpload {
    /// The upload.
    pub upload: String,
}
op!(AssembleUpload, "assemble_upload", Assembly);

/// What the worker assembles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assembly {
    /// The upload's R2 key.
    pub key: String,
    /// R2's multipart upload id.
    pub r2_upload_id: String,
    /// The parts, by number.
    pub parts: Vec<Part>,
    /// Their total size.
    pub size: u64,
}

/// Turns an assembled and verified upload into a backup (pruning when needed and allowed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitUpload {
    /// The upload.
    pub upload: String,
    /// What the backup is.
    pub facts: BackupFacts,
}
op!(CommitUpload, "commit_upload", BackupCommitted);

/// Forgets an upload (aborted by the client, or its assembly failed verification).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DropUpload {
    /// The upload.
    pub upload: String,
}
op!(DropUpload, "drop_upload", UploadRef);

/// Where a dropped upload's bytes are (to abort or delete in R2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRef {
    /// R2 key.
    pub key: String,
    /// R2's multipart upload id, if it was created.
    pub r2_upload_id: Option<String>,
}

// ---- vectors -------------------------------------------------------------------------------

/// One vector of an upsert, checked by the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorIn {
    /// Client id.
    pub id: String,
    /// Bytes it takes (blob plus 4 per dimension).
    pub size: u64,
    /// SHA-256 of its blob.
    pub checksum: String,
    /// The values and the payload, when the home is also the index (the local backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<crate::ports::VectorEntry>,
}

/// Stores vectors (all or none): the gate, one dimension per user and the quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpsertVectors {
    /// Their dimension.
    pub dims: u32,
    /// The vectors.
    pub items: Vec<VectorIn>,
}
op!(UpsertVectors, "upsert_vectors", Upserted);

/// How many vectors were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upserted {
    /// The count.
    pub upserted: u64,
}

/// The gate and the user's dimension, and — when the home is the index — the search itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchVectors {
    /// The query vector.
    pub vector: Vec<f32>,
    /// Results wanted.
    pub top_k: u32,
    /// Whether to search here (the local backend) or only answer the dimension.
    pub search: bool,
}
op!(SearchVectors, "search_vectors", Searched);

/// What [`SearchVectors`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Searched {
    /// The dimension of the user's vectors; `None` without any.
    pub dims: Option<u32>,
    /// Best first (empty unless searched here).
    pub matches: Vec<VectorMatch>,
}

/// Deletes vectors by id (unknown ids ignored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteVectors {
    /// The ids.
    pub ids: Vec<String>,
}
op!(DeleteVectors, "delete_vectors", Done);

// ---- chat ----------------------------------------------------------------------------------

/// What a chat request needs of its caller's home, answered with the admission (one hop): the
/// agents the user enabled.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct GetChatChoices {}
op!(GetChatChoices, "get_chat_choices", ChatChoices);

/// The user's chat choices as stored in their home.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatChoices {
    /// The agents the user enabled (`PUT /agents/enabled`), in registry order; `None` until
    /// they choose (the tier's default applies, see [`crate::chat::allowance::effective`]).
    #[serde(default)]
    pub agents: Option<Vec<String>>,
    /// The installed plugins whose live version declares agents (see
    /// [`SetInstalledPlugins`]), sorted by plugin id: which plugin agents the user's chat loads.
    #[serde(default)]
    pub plugins: Vec<InstalledPlugin>,
}

/// One installed plugin whose live (approved) version declares chat agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstalledPlugin {
    /// The plugin.
    pub plugin_id: uuid::Uuid,
    /// Its live version (`plugins.live_version_id`), whose manifest declares the agents.
    pub version_id: uuid::Uuid,
}

/// Replaces the home's set of installed plugins with agents (a service call: pushed by
/// install and uninstall at once, and reloaded from D1 with the account copy). Enabled-agent
/// choices naming an agent of a plugin no longer in the set are dropped from the stored choice.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetInstalledPlugins {
    /// The set as D1 has it now.
    pub plugins: Vec<InstalledPlugin>,
}
op!(SetInstalledPlugins, "set_installed_plugins", Done);

/// Stores the user's enabled agents (names the worker checked against the registry). The home
/// refuses more than the tier in force allows (403 `tier_required`, feature `agents`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetEnabledAgents {
    /// The agents, in registry order.
    pub agents: Vec<String>,
}
op!(SetEnabledAgents, "set_enabled_agents", Done);

// ---- batches (run by the object itself, which owns the in-memory runs) --------------------

/// Starts a batch (`POST /batches`): the home checks it (see
/// [`crate::chat::orchestrator::batch`]), bounds the batches running at once (the matrix's
/// `batch_active`) and runs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartBatch {
    /// The batch as the client sent it.
    pub batch: crate::api::BatchRequest,
}
op!(StartBatch, "start_batch", crate::api::BatchStarted);

/// One batch and its results so far (`GET /batches/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetBatch {
    /// The batch.
    pub id: String,
}
op!(GetBatch, "get_batch", crate::api::BatchView);

/// The user's batches (`GET /batches`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ListBatches {}
op!(ListBatches, "list_batches", crate::api::BatchList);

/// Cancels a batch (`DELETE /batches/{id}`): its running upstream calls are aborted and no
/// further item starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CancelBatch {
    /// The batch.
    pub id: String,
}
op!(CancelBatch, "cancel_batch", crate::api::BatchView);

// ---- account deletion ----------------------------------------------------------------------

/// What a home holds that lives outside it and must go with the account (a service op of the
/// deletion): its open multipart uploads (to abort in R2) and its vector ids (to delete from
/// Vectorize when that is the index).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ErasureInventory {}
op!(ErasureInventory, "erasure_inventory", ErasureList);

/// What [`ErasureInventory`] answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureList {
    /// Open uploads.
    pub uploads: Vec<UploadRef>,
    /// Every vector id.
    pub vector_ids: Vec<String>,
}

/// Wipes the home (a service op of the deletion): every socket is closed (an `unauthorized`
/// frame, code 4001), its alarm is deleted and its whole SQLite storage is dropped. The next
/// call finds an empty home that knows no account.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Wipe {}
op!(Wipe, "wipe", Done);

// ---- account export ------------------------------------------------------------------------

/// Everything the home holds of the caller, for `GET /auth/export` (a user's op: admitted and
/// authorised like any other).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ExportInventory {}
op!(ExportInventory, "export_inventory", HomeInventory);

/// What [`ExportInventory`] answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeInventory {
    /// Live records with their R2 keys.
    pub records: Vec<InventoryBlob>,
    /// Backups with their R2 keys.
    pub backups: Vec<InventoryBlob>,
    /// Open uploads.
    pub uploads: Vec<crate::api::ExportUpload>,
    /// Vectors.
    pub vectors: Vec<crate::api::ExportVector>,
}

/// One blob the home knows, and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryBlob {
    /// Record or backup id.
    pub id: String,
    /// The record's table.
    pub table: Option<String>,
    /// Version (record) or format version (backup).
    pub version: i64,
    /// The backup's client time.
    pub timestamp: Option<i64>,
    /// SHA-256.
    pub checksum: String,
    /// Bytes.
    pub size_bytes: u64,
    /// Creation (epoch ms).
    pub created_at: i64,
    /// Last change (epoch ms).
    pub updated_at: i64,
    /// R2 key.
    pub key: String,
}

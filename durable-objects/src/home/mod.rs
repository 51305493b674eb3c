//! Logic of the `UserHome` Durable Object: one user's state, serialised in one place.
//!
//! A home holds, in its SQLite storage: its copy of the account (tier, seats, role, email —
//! loaded from D1, the source of truth, and refreshed when older than [`ACCOUNT_MAX_AGE_MS`]),
//! the request limiter (GCRA, as [`shared::rate_limit`]), revoked sessions, exact usage
//! counters, reservations of writes in flight, and the metadata of the user's records,
//! backups, multipart uploads and vectors (and, with the local vector backend, the vectors).
//!
//! ## Why exact
//! A Durable Object handles one event at a time and its SQLite calls are synchronous, so
//! [`Home::handle`] runs start to finish without interleaving: a quota check, the reservation it
//! allows and the counter it moves happen together. A write reserves its bytes *before* the
//! worker uploads them (so N concurrent writes at the quota's edge cannot all pass), and its
//! commit re-checks against the counters as they are then (so usage never exceeds the limit).
//! A reservation not committed within [`RESERVATION_TTL_MS`] is dropped.
//!
//! ## What a call does, in order
//! 1. drop expired reservations;
//! 2. the service's own calls ([`SetAccount`], [`RevokeSessions`]) run as they are;
//! 3. otherwise: the account must exist, and the caller's session must not be revoked (401),
//!    and the account must not be suspended (403 `account_suspended`);
//! 4. with `admit`, one unit of the allowance is taken (429 when exhausted) — before any work;
//! 5. the operation runs; its effects (change notices for sockets, sessions to disconnect) are
//!    handed to the object, which owns the sockets.

mod account;
mod backups;
mod batch_ids;
mod choices;
mod memo;
mod records;
pub mod sql;
mod vectors;

#[cfg(test)]
mod tests;

use std::cell::RefCell;

use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::api::{ByteUsage, RequestUsage, UsageReport};
use shared::domain::{Tier, UserId};
use shared::home::ops::{
    Admit, AssembleUpload, BackupHistory, BeginUpload, CommitBackup, CommitPart, CommitRecord,
    CommitUpload, DeleteBackup, DeleteRecord, DeleteVectors, Done, DropUpload, ErasureInventory,
    ErasureList, ExportInventory, GetChatChoices, GetProfile, GetRecord, GetUsage, HomeInventory,
    InventoryBlob, LatestBackup, ListRecords, Release, ReserveBackup, ReservePart, ReserveRecord,
    RevokeSessions, SearchVectors, SetAccount, SetEnabledAgents, SetInstalledPlugins, UploadOpened,
    UpsertVectors,
};
use shared::home::{HomeOp, HomePrincipal, HomeRequest, HomeResponse, WireError};
use shared::housekeeping::{Housekeep, Housekept, Referenced, ReferencedKeys};
use shared::ports::Random;
use shared::rate_limit::{gcra, RateDecision, RateOp, RateRule};
use shared::tiers::{features, rate_limit};
use shared::AppError;

pub use account::{Freshness, ACCOUNT_MAX_AGE_MS, ACCOUNT_REFRESH_AHEAD_MS};
pub use memo::{Memo, HOUSEKEEPING_EVERY_MS};
use sql::{Sql, SqlError, SqlValue};

/// How long a reservation waits for its commit (ms): long enough for a 95 MB upload.
pub const RESERVATION_TTL_MS: i64 = 15 * 60_000;

/// The schema; every statement is idempotent.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS account (\
       id INTEGER PRIMARY KEY CHECK (id = 1), email TEXT NOT NULL, role TEXT NOT NULL, \
       tier TEXT NOT NULL, tier_until INTEGER, seats INTEGER NOT NULL, \
       gone INTEGER NOT NULL DEFAULT 0, checked_at INTEGER NOT NULL)",
    // Kept apart from `account` so homes created before verification existed need no ALTER.
    "CREATE TABLE IF NOT EXISTS account_verified (\
       id INTEGER PRIMARY KEY CHECK (id = 1), verified INTEGER NOT NULL)",
    // Suspension and comp, apart for the same reason.
    "CREATE TABLE IF NOT EXISTS account_admin (\
       id INTEGER PRIMARY KEY CHECK (id = 1), suspended INTEGER NOT NULL, comp_tier TEXT, \
       comp_until INTEGER)",
    // What the user's team grants (no row, or a NULL tier: no team); apart for the same reason.
    "CREATE TABLE IF NOT EXISTS account_team (\
       id INTEGER PRIMARY KEY CHECK (id = 1), tier TEXT, until INTEGER)",
    "CREATE TABLE IF NOT EXISTS limiter (bucket TEXT PRIMARY KEY, tat INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS revoked (sid TEXT PRIMARY KEY, until INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS usage (kind TEXT PRIMARY KEY, used INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS reservations (\
       id TEXT PRIMARY KEY, kind TEXT NOT NULL, bytes INTEGER NOT NULL, \
       expires_at INTEGER NOT NULL, pending TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS reservations_by_expiry ON reservations (expires_at)",
    "CREATE TABLE IF NOT EXISTS records (\
       id TEXT PRIMARY KEY, tbl TEXT NOT NULL, r2_key TEXT NOT NULL, checksum TEXT NOT NULL, \
       size INTEGER NOT NULL, version INTEGER NOT NULL, created_at INTEGER NOT NULL, \
       updated_at INTEGER NOT NULL, deleted_at INTEGER)",
    "CREATE INDEX IF NOT EXISTS records_sync ON records (updated_at, id)",
    "CREATE INDEX IF NOT EXISTS records_by_table ON records (tbl, updated_at, id)",
    // The leftover sweep asks which keys a row references.
    "CREATE INDEX IF NOT EXISTS records_by_key ON records (r2_key)",
    // Tombstones only: the minute's purge and the sync-reset check read them without a scan
    // of the live records.
    "CREATE INDEX IF NOT EXISTS records_tombstones ON records (deleted_at) \
       WHERE deleted_at IS NOT NULL",
    // The latest `updated_at` of a record tombstone purged: a device whose sync position is
    // older may have missed that deletion (see `list_records`).
    "CREATE TABLE IF NOT EXISTS sync_horizon (\
       id INTEGER PRIMARY KEY CHECK (id = 1), forgotten INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS backups (\
       id TEXT PRIMARY KEY, r2_key TEXT NOT NULL, version INTEGER NOT NULL, \
       timestamp INTEGER NOT NULL, checksum TEXT NOT NULL, chunk_count INTEGER NOT NULL, \
       size INTEGER NOT NULL, created_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS backups_by_time ON backups (created_at)",
    "CREATE TABLE IF NOT EXISTS uploads (\
       id TEXT PRIMARY KEY, r2_key TEXT NOT NULL, r2_upload_id TEXT, state TEXT NOT NULL, \
       created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS parts (\
       upload_id TEXT NOT NULL, number INTEGER NOT NULL, etag TEXT NOT NULL, \
       size INTEGER NOT NULL, checksum TEXT NOT NULL, PRIMARY KEY (upload_id, number))",
    "CREATE TABLE IF NOT EXISTS chat_choices (\
       id INTEGER PRIMARY KEY CHECK (id = 1), agents TEXT)",
    // The installed plugins with agents (JSON `[{plugin_id, version_id}]`), see choices.rs.
    "CREATE TABLE IF NOT EXISTS plugin_set (\
       id INTEGER PRIMARY KEY CHECK (id = 1), plugins TEXT NOT NULL)",
    // That a batch existed (id, size, time) — never its inputs or results (memory only).
    "CREATE TABLE IF NOT EXISTS batch_ids (\
       id TEXT PRIMARY KEY, total INTEGER NOT NULL, created_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS vectors (\
       id TEXT PRIMARY KEY, dims INTEGER NOT NULL, size INTEGER NOT NULL, \
       checksum TEXT NOT NULL, vals BLOB, blob TEXT)",
];

/// Settings a home runs with (from the deployment's configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HomeConfig {
    /// Bytes in one quota gigabyte: 10^9, or smaller with `ENV=dev` so tests reach the edge.
    pub bytes_per_gb: u64,
    /// Whether the request limiter applies.
    pub rate_limits: bool,
    /// How long an access token lives (ms): how long a revoked session is remembered.
    pub access_ttl_ms: i64,
    /// Tombstones older than this are purged by the home's own housekeeping (ms; 30 days).
    pub tombstone_age_ms: i64,
}

/// Deletes up to `?2` tombstones of records deleted before `?1`, answering their `updated_at`.
const PURGE_TOMBSTONES_SQL: &str = "DELETE FROM records WHERE id IN (SELECT id FROM records \
     WHERE deleted_at IS NOT NULL AND deleted_at < ? LIMIT ?) RETURNING updated_at";

/// Tombstones the home purges by itself per housekeeping pass (the cron's visits purge more).
pub const TOMBSTONES_PER_SWEEP: u32 = 100;

/// A change other devices should hear of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `record`, `backup` or `vector`.
    pub kind: &'static str,
    /// Where the change is (records: `<updated_at>.<id>`; backups: `<created_at>.<id>`;
    /// vectors: the time of the change).
    pub cursor: String,
}

impl Notice {
    /// The socket frame.
    pub fn frame(&self) -> String {
        serde_json::json!({"type": "changed", "kind": self.kind, "cursor": self.cursor}).to_string()
    }
}

/// What the object must do after a call: push notices, close revoked sessions' sockets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effects {
    /// Changes to announce on every socket of the user.
    pub notices: Vec<Notice>,
    /// Sessions whose sockets must close.
    pub close_sessions: Vec<uuid::Uuid>,
    /// The account was just suspended: every socket of the user must close.
    pub suspended: bool,
}

/// One user's home over its storage.
pub struct Home<'a, S: Sql> {
    sql: &'a S,
    memo: &'a Memo,
    user: UserId,
    cfg: HomeConfig,
    rng: &'a dyn Random,
    effects: RefCell<Effects>,
}

/// Who a call is for, as the home knows it.
#[derive(Debug, Clone, Copy)]
struct Caller {
    now: i64,
    principal: HomePrincipal,
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(store)`
fn store(e: SqlError) -> AppError {
    AppError::internal(format!("home storage: {e}"))
}

fn run<O: HomeOp>(
    args: serde_json::Value,
    f: impl FnOnce(O) -> Result<O::Answer, AppError>,
) -> Result<serde_json::Value, AppError> {
    let op: O = serde_json::from_value(args)
        .map_err(|e| AppError::internal(format!("home op {}: bad arguments: {e}", O::NAME)))?;
    let answer = f(op)?;
    serde_json::to_value(answer)
        .map_err(|e| AppError::internal(format!("home op {}: encoding: {e}", O::NAME)))
}

/// A new random id (UUID v4, hyphenated).
fn new_id(rng: &dyn Random) -> String {
    shared::ports::new_uuid(rng).to_string()
}

impl<'a, S: Sql> Home<'a, S> {
    /// The home of `user` over `sql`, its schema created if need be.
    ///
    /// # Errors
    /// Storage failures.
    pub fn open(
        sql: &'a S,
        memo: &'a Memo,
        user: UserId,
        cfg: HomeConfig,
        rng: &'a dyn Random,
    ) -> Result<Self, SqlError> {
        for statement in SCHEMA {
            sql.exec(statement, &[])?;
        }
        Ok(Self::attach(sql, memo, user, cfg, rng))
    }

    /// The home of `user` over `sql` whose schema [`Home::open`] created already (the object
    /// opens once per life and attaches on every later event).
    pub fn attach(
        sql: &'a S,
        memo: &'a Memo,
        user: UserId,
        cfg: HomeConfig,
        rng: &'a dyn Random,
    ) -> Self {
        Self {
            sql,
            memo,
            user,
            cfg,
            rng,
            effects: RefCell::default(),
        }
    }

    /// Performs one call at `now` (see the module's order) and returns its answer and the
    /// effects the object must carry out.
    pub fn handle(&self, now: i64, req: &HomeRequest) -> (HomeResponse, Effects) {
        let mut resp = HomeResponse::default();
        let outcome = self.call(now, req, &mut resp);
        match outcome {
            Ok(v) => resp.ok = Some(v),
            Err(e) => {
                if e.is_server_error() {
                    // The chain stays here, in the object's logs; the worker gets the envelope.
                    eprintln_internal(&e);
                }
                resp.error = Some(WireError::of(&e));
            }
        }
        (resp, self.effects.take())
    }

    fn call(
        &self,
        now: i64,
        req: &HomeRequest,
        resp: &mut HomeResponse,
    ) -> Result<serde_json::Value, AppError> {
        self.sweep(now).map_err(store)?;
        let args = req.args.clone();
        match req.op.as_str() {
            SetAccount::NAME => {
                return run(args, |op: SetAccount| {
                    self.set_account(op.account.as_ref(), now).map_err(store)?;
                    Ok(Done {})
                })
            }
            RevokeSessions::NAME => {
                return run(args, |op: RevokeSessions| self.revoke(&op.sids, now));
            }
            SetInstalledPlugins::NAME => {
                return run(args, |op: SetInstalledPlugins| {
                    self.set_installed_plugins(&op.plugins)
                });
            }
            Housekeep::NAME => {
                return run(args, |op: Housekeep| {
                    let tombstones = self
                        .purge_tombstones(op.tombstones_before, op.limit)
                        .map_err(store)?;
                    Ok(Housekept { tombstones })
                });
            }
            ErasureInventory::NAME => {
                return run(args, |_: ErasureInventory| self.erasure_inventory());
            }
            Referenced::NAME => {
                return run(args, |op: Referenced| {
                    Ok(ReferencedKeys {
                        keys: self.referenced(&op.keys).map_err(store)?,
                    })
                });
            }
            _ => {}
        }
        let principal = self.authorize(now, req.sid)?;
        resp.principal = Some(principal);
        let caller = Caller { now, principal };
        if req.admit {
            let decision = self.admit(&caller)?;
            resp.decision = decision;
            if let Some(d) = decision.filter(|d| !d.allowed) {
                return Err(AppError::RateLimited {
                    retry_after_secs: d.retry_after_secs(),
                });
            }
        }
        self.dispatch(&caller, req.op.as_str(), args, resp.decision)
    }

    fn dispatch(
        &self,
        c: &Caller,
        name: &str,
        args: serde_json::Value,
        decision: Option<RateDecision>,
    ) -> Result<serde_json::Value, AppError> {
        match name {
            Admit::NAME => run(args, |_: Admit| Ok(Done {})),
            GetProfile::NAME => run(args, |_: GetProfile| self.profile(c)),
            GetUsage::NAME => run(args, |_: GetUsage| self.usage_report(c, decision)),
            ReserveRecord::NAME => run(args, |op: ReserveRecord| self.reserve_record(c, &op)),
            CommitRecord::NAME => run(args, |op: CommitRecord| self.commit_record(c, &op)),
            Release::NAME => run(args, |op: Release| self.release(&op.reservation)),
            GetRecord::NAME => run(args, |op: GetRecord| self.get_record(&op.id)),
            DeleteRecord::NAME => run(args, |op: DeleteRecord| self.delete_record(c, &op)),
            ListRecords::NAME => run(args, |op: ListRecords| self.list_records(c, &op)),
            ReserveBackup::NAME => run(args, |op: ReserveBackup| self.reserve_backup(c, &op)),
            CommitBackup::NAME => run(args, |op: CommitBackup| self.commit_backup(c, &op)),
            LatestBackup::NAME => run(args, |_: LatestBackup| self.latest_backup()),
            BackupHistory::NAME => run(args, |_: BackupHistory| self.backup_history()),
            DeleteBackup::NAME => run(args, |op: DeleteBackup| self.delete_backup(c, &op.id)),
            BeginUpload::NAME => run(args, |_: BeginUpload| self.begin_upload(c)),
            UploadOpened::NAME => run(args, |op: UploadOpened| self.upload_opened(c, &op)),
            ReservePart::NAME => run(args, |op: ReservePart| self.reserve_part(c, &op)),
            CommitPart::NAME => run(args, |op: CommitPart| self.commit_part(c, &op)),
            AssembleUpload::NAME => run(args, |op: AssembleUpload| self.assemble(c, &op.upload)),
            CommitUpload::NAME => run(args, |op: CommitUpload| self.commit_upload(c, &op)),
            DropUpload::NAME => run(args, |op: DropUpload| self.drop_upload(&op.upload)),
            UpsertVectors::NAME => run(args, |op: UpsertVectors| self.upsert_vectors(c, &op)),
            SearchVectors::NAME => run(args, |op: SearchVectors| self.search_vectors(c, &op)),
            DeleteVectors::NAME => run(args, |op: DeleteVectors| self.delete_vectors(c, &op)),
            GetChatChoices::NAME => run(args, |_: GetChatChoices| self.chat_choices()),
            ExportInventory::NAME => run(args, |_: ExportInventory| self.export_inventory()),
            SetEnabledAgents::NAME => {
                run(args, |op: SetEnabledAgents| self.set_enabled_agents(c, &op))
            }
            other => Err(AppError::internal(format!("unknown home op {other}"))),
        }
    }

    /// The caller of session `sid`, if they may call (the account exists, the session is not
    /// revoked) — for a socket handshake, which takes no unit of the allowance.
    ///
    /// # Errors
    /// 401 otherwise; storage failures.
    pub fn principal(&self, now: i64, sid: Option<uuid::Uuid>) -> Result<HomePrincipal, AppError> {
        self.authorize(now, sid)
    }

    /// Takes one unit of the user's allowance now (the WebSocket's messages, which reach the
    /// object directly, come through here too). `None` when limits are off.
    ///
    /// # Errors
    /// 401 when the account is gone or the session revoked; storage failures.
    pub fn admit_message(
        &self,
        now: i64,
        sid: Option<uuid::Uuid>,
    ) -> Result<Option<RateDecision>, AppError> {
        let principal = self.authorize(now, sid)?;
        self.admit(&Caller { now, principal })
    }

    fn admit(&self, c: &Caller) -> Result<Option<RateDecision>, AppError> {
        if !self.cfg.rate_limits {
            return Ok(None);
        }
        let limit = rate_limit(c.principal.tier, c.principal.seats);
        // The bucket is named after the limit, so a tier change applies at once.
        let bucket = format!("requests:{limit}");
        let decision = self
            .limit(&bucket, RateRule::per_minute(limit), RateOp::Acquire, c.now)
            .map_err(store)?;
        if !decision.allowed {
            log_info("request rate limited");
        }
        Ok(Some(decision))
    }

    /// Applies `op` to the counter `bucket` (nanosecond TATs travel as text: beyond 2^53).
    /// The counter is written once it runs [`memo::LIMITER_LAG_MS`] ahead of what storage holds
    /// (a stored TAT in the past counts as now): a new life can grant less than that again.
    fn limit(
        &self,
        bucket: &str,
        rule: RateRule,
        op: RateOp,
        now: i64,
    ) -> Result<RateDecision, SqlError> {
        let cached = self.memo.tats.borrow().get(bucket).copied();
        let known = if let Some(tat) = cached {
            tat
        } else {
            let stored = self
                .sql
                .one(
                    "SELECT CAST(tat AS TEXT) FROM limiter WHERE bucket = ?",
                    &[bucket.into()],
                )?
                .and_then(|r| r.text(0).parse::<i64>().ok());
            memo::Tat {
                current: stored,
                stored,
            }
        };
        let (decision, new_tat) = gcra(known.current, now, rule, op);
        let now_ns = now.saturating_mul(1_000_000);
        let floor = known.stored.unwrap_or(now_ns).max(now_ns);
        let stored = if new_tat.saturating_sub(floor) >= memo::LIMITER_LAG_MS * 1_000_000 {
            self.sql.exec(
                "INSERT INTO limiter (bucket, tat) VALUES (?, CAST(? AS INTEGER)) \
                 ON CONFLICT (bucket) DO UPDATE SET tat = excluded.tat",
                &[bucket.into(), new_tat.to_string().into()],
            )?;
            Some(new_tat)
        } else {
            known.stored
        };
        self.memo.tats.borrow_mut().insert(
            bucket.to_owned(),
            memo::Tat {
                current: Some(new_tat),
                stored,
            },
        );
        Ok(decision)
    }

    /// Drops reservations whose commit never came (whenever one can have expired), and, at
    /// most every [`HOUSEKEEPING_EVERY_MS`], revocations past any token and drained limiter
    /// counters (both equivalent to no row).
    fn sweep(&self, now: i64) -> Result<(), SqlError> {
        let next = match self.memo.next_expiry.get() {
            memo::Known::Read(next) => next,
            memo::Known::Unread => self
                .sql
                .one("SELECT MIN(expires_at) FROM reservations", &[])?
                .and_then(|r| r.opt_int(0)),
        };
        let next = match next {
            Some(at) if at <= now => {
                self.sql.exec(
                    "DELETE FROM reservations WHERE expires_at <= ?",
                    &[now.into()],
                )?;
                self.sql
                    .one("SELECT MIN(expires_at) FROM reservations", &[])?
                    .and_then(|r| r.opt_int(0))
            }
            other => other,
        };
        self.memo.next_expiry.set(memo::Known::Read(next));
        if now >= self.memo.housekeeping_at.get() {
            self.sql
                .exec("DELETE FROM revoked WHERE until <= ?", &[now.into()])?;
            // Drained counters are equivalent to none (and other limits' buckets with them).
            let now_ns = now.saturating_mul(1_000_000);
            self.sql.exec(
                "DELETE FROM limiter WHERE tat <= CAST(? AS INTEGER)",
                &[now_ns.to_string().into()],
            )?;
            let mut tats = self.memo.tats.borrow_mut();
            tats.retain(|_, tat| tat.current.is_some_and(|t| t > now_ns));
            for tat in tats.values_mut() {
                if tat.stored.is_some_and(|t| t <= now_ns) {
                    tat.stored = None;
                }
            }
            drop(tats);
            // Tombstones past their listing (the cron's visits reach the homes nobody uses).
            self.purge_tombstones(now - self.cfg.tombstone_age_ms, TOMBSTONES_PER_SWEEP)?;
            // Revocations are re-read when next needed.
            *self.memo.revoked.borrow_mut() = None;
            self.memo.housekeeping_at.set(now + HOUSEKEEPING_EVERY_MS);
        }
        Ok(())
    }

    /// Deletes up to `limit` tombstones of records deleted before `before`; returns how many
    /// (the newest purged `updated_at` becomes the sync horizon).
    fn purge_tombstones(&self, before: i64, limit: u32) -> Result<u32, SqlError> {
        let gone = self
            .sql
            .exec(PURGE_TOMBSTONES_SQL, &[before.into(), int(limit)])?;
        if let Some(latest) = gone.iter().map(|r| r.int(0)).max() {
            self.sql.exec(
                "INSERT INTO sync_horizon (id, forgotten) VALUES (1, ?) \
                 ON CONFLICT (id) DO UPDATE SET forgotten = max(forgotten, excluded.forgotten)",
                &[latest.into()],
            )?;
        }
        Ok(u32::try_from(gone.len()).unwrap_or(u32::MAX))
    }

    /// The keys among `keys` a row of this home references: a live record, a backup, an
    /// upload, or a write in flight (its reservation names the key).
    fn referenced(&self, keys: &[String]) -> Result<Vec<String>, SqlError> {
        let mut found = Vec::new();
        for key in keys {
            let hit = self.sql.one(
                "SELECT 1 WHERE EXISTS (SELECT 1 FROM records WHERE r2_key = ? AND deleted_at IS NULL) \
                 OR EXISTS (SELECT 1 FROM backups WHERE r2_key = ?) \
                 OR EXISTS (SELECT 1 FROM uploads WHERE r2_key = ?) \
                 OR EXISTS (SELECT 1 FROM reservations WHERE instr(pending, ?) > 0)",
                &[
                    key.as_str().into(),
                    key.as_str().into(),
                    key.as_str().into(),
                    key.as_str().into(),
                ],
            )?;
            if hit.is_some() {
                found.push(key.clone());
            }
        }
        Ok(found)
    }

    /// What must go elsewhere when the account is deleted: open uploads and vector ids.
    fn erasure_inventory(&self) -> Result<ErasureList, AppError> {
        let uploads = self
            .sql
            .exec("SELECT r2_key, r2_upload_id FROM uploads", &[])
            .map_err(store)?
            .iter()
            .map(|r| shared::home::ops::UploadRef {
                key: r.text(0),
                r2_upload_id: r.opt_text(1),
            })
            .collect();
        let vector_ids = self
            .sql
            .exec("SELECT id FROM vectors", &[])
            .map_err(store)?
            .iter()
            .map(|r| r.text(0))
            .collect();
        Ok(ErasureList {
            uploads,
            vector_ids,
        })
    }

    /// Everything the home holds of its user, for the export.
    fn export_inventory(&self) -> Result<HomeInventory, AppError> {
        let records = self
            .sql
            .exec(
                "SELECT id, tbl, version, checksum, size, created_at, updated_at, r2_key \
                 FROM records WHERE deleted_at IS NULL ORDER BY updated_at, id",
                &[],
            )
            .map_err(store)?
            .iter()
            .map(|r| InventoryBlob {
                id: r.text(0),
                table: Some(r.text(1)),
                version: r.int(2),
                timestamp: None,
                checksum: r.text(3),
                size_bytes: r.uint(4),
                created_at: r.int(5),
                updated_at: r.int(6),
                key: r.text(7),
            })
            .collect();
        let backups = self
            .sql
            .exec(
                "SELECT id, version, timestamp, checksum, size, created_at, r2_key \
                 FROM backups ORDER BY created_at, id",
                &[],
            )
            .map_err(store)?
            .iter()
            .map(|r| InventoryBlob {
                id: r.text(0),
                table: None,
                version: r.int(1),
                timestamp: Some(r.int(2)),
                checksum: r.text(3),
                size_bytes: r.uint(4),
                created_at: r.int(5),
                updated_at: r.int(5),
                key: r.text(6),
            })
            .collect();
        let uploads = self
            .sql
            .exec(
                "SELECT u.id, COUNT(p.number), COALESCE(SUM(p.size), 0), u.created_at, \
                   u.expires_at FROM uploads u LEFT JOIN parts p ON p.upload_id = u.id \
                 GROUP BY u.id ORDER BY u.created_at, u.id",
                &[],
            )
            .map_err(store)?
            .iter()
            .map(|r| shared::api::ExportUpload {
                id: r.text(0),
                parts: u32::try_from(r.int(1)).unwrap_or(0),
                size_bytes: r.uint(2),
                created_at: r.int(3),
                expires_at: r.int(4),
            })
            .collect();
        let vectors = self
            .sql
            .exec(
                "SELECT id, dims, size, checksum FROM vectors ORDER BY id",
                &[],
            )
            .map_err(store)?
            .iter()
            .map(|r| shared::api::ExportVector {
                id: r.text(0),
                dims: u32::try_from(r.int(1)).unwrap_or(0),
                size_bytes: r.uint(2),
                checksum: r.text(3),
            })
            .collect();
        Ok(HomeInventory {
            records,
            backups,
            uploads,
            vectors,
        })
    }

    // ---- usage and quotas -------------------------------------------------------------------

    fn used(&self, kind: &str) -> Result<u64, SqlError> {
        Ok(self
            .sql
            .one("SELECT used FROM usage WHERE kind = ?", &[kind.into()])?
            .map_or(0, |r| r.uint(0)))
    }

    fn add_used(&self, kind: &str, delta: i64) -> Result<(), SqlError> {
        self.sql.exec(
            "INSERT INTO usage (kind, used) VALUES (?, 0) ON CONFLICT (kind) DO NOTHING",
            &[kind.into()],
        )?;
        self.sql.exec(
            "UPDATE usage SET used = MAX(0, used + ?) WHERE kind = ?",
            &[delta.into(), kind.into()],
        )?;
        Ok(())
    }

    fn reserved(&self, kind: &str) -> Result<u64, SqlError> {
        Ok(self
            .sql
            .one(
                "SELECT COALESCE(SUM(bytes), 0) FROM reservations WHERE kind = ?",
                &[kind.into()],
            )?
            .map_or(0, |r| r.uint(0)))
    }

    /// The byte limit of a matrix value (`None`: unlimited).
    fn quota(&self, gb: i64) -> Option<u64> {
        u64::try_from(gb)
            .ok()
            .map(|gb| gb.saturating_mul(self.cfg.bytes_per_gb))
    }

    fn cloud_limit(&self, tier: Tier) -> Option<u64> {
        self.quota(features(tier).cloud_storage_gb)
    }

    fn backup_limit(&self, tier: Tier) -> Option<u64> {
        self.quota(features(tier).backup_gb)
    }

    /// Refuses unless `used + reserved + adding` fits `limit`.
    fn room(&self, kind: &str, limit: Option<u64>, adding: u64) -> Result<(), AppError> {
        let Some(limit) = limit else { return Ok(()) };
        let used = self.used(kind).map_err(store)?;
        let reserved = self.reserved(kind).map_err(store)?;
        if used.saturating_add(reserved).saturating_add(adding) > limit {
            return Err(AppError::QuotaExceeded { used, limit });
        }
        Ok(())
    }

    fn usage_report(
        &self,
        c: &Caller,
        decision: Option<RateDecision>,
    ) -> Result<UsageReport, AppError> {
        let limit = rate_limit(c.principal.tier, c.principal.seats);
        let remaining = match decision {
            Some(d) => d.remaining,
            None if !self.cfg.rate_limits => limit,
            None => {
                let bucket = format!("requests:{limit}");
                self.limit(&bucket, RateRule::per_minute(limit), RateOp::Peek, c.now)
                    .map_err(store)?
                    .remaining
            }
        };
        Ok(UsageReport {
            cloud_storage: ByteUsage {
                used_bytes: self.used("cloud").map_err(store)?,
                limit_bytes: self.cloud_limit(c.principal.tier),
            },
            backup: ByteUsage {
                used_bytes: self.used("backup").map_err(store)?,
                limit_bytes: self.backup_limit(c.principal.tier),
            },
            requests: RequestUsage { limit, remaining },
        })
    }

    // ---- reservations -----------------------------------------------------------------------

    fn reserve<T: Serialize>(
        &self,
        kind: &str,
        bytes: u64,
        pending: &T,
        now: i64,
    ) -> Result<String, AppError> {
        let id = new_id(self.rng);
        let pending = serde_json::to_string(pending)
            .map_err(|e| AppError::internal(format!("encoding a reservation: {e}")))?;
        self.sql
            .exec(
                "INSERT INTO reservations (id, kind, bytes, expires_at, pending) \
                 VALUES (?, ?, ?, ?, ?)",
                &[
                    id.clone().into(),
                    kind.into(),
                    bytes.into(),
                    (now + RESERVATION_TTL_MS).into(),
                    pending.into(),
                ],
            )
            .map_err(store)?;
        self.memo.reserved_until(now + RESERVATION_TTL_MS);
        Ok(id)
    }

    /// Takes the reservation `id` out (it is spent whatever the commit decides).
    fn take<T: DeserializeOwned>(&self, id: &str) -> Result<T, AppError> {
        let row = self
            .sql
            .one(
                "DELETE FROM reservations WHERE id = ? RETURNING pending",
                &[id.into()],
            )
            .map_err(store)?
            // Expired (dropped) or never made: the write must be retried from the start.
            .ok_or(AppError::Conflict(
                "the write took too long and its reservation lapsed; send it again",
            ))?;
        serde_json::from_str(&row.text(0))
            .map_err(|e| AppError::internal(format!("decoding a reservation: {e}")))
    }

    fn release(&self, id: &str) -> Result<Done, AppError> {
        self.sql
            .exec("DELETE FROM reservations WHERE id = ?", &[id.into()])
            .map_err(store)?;
        Ok(Done {})
    }

    fn notice(&self, kind: &'static str, cursor: String) {
        self.effects
            .borrow_mut()
            .notices
            .push(Notice { kind, cursor });
    }
}

/// Logs an internal error with its chain (inside the object).
fn eprintln_internal(e: &AppError) {
    tracing::error!(code = e.code(), error = ?e, "home call failed");
}

fn log_info(message: &'static str) {
    tracing::info!("{message}");
}

/// A bound as SQL text, for `LIMIT`/`OFFSET`.
fn int(v: u32) -> SqlValue {
    SqlValue::Int(i64::from(v))
}

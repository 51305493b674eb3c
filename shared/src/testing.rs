//! In-memory fakes of every port, for native tests (feature `test-utils`).
//!
//! Each fake keeps the contract its port documents (conflicts, atomic rotation, single use),
//! so services tested against them behave as they do against D1, R2 and Durable Objects.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::billing::{BillingChange, EventRecord, RecordOutcome, Subscription};
use crate::domain::{Email, RefreshTokenHash, User, UserId};
use crate::ports::{
    BillingStore, ChargeRequest, CheckoutRequest, CheckoutSession, Clock, HttpClient, HttpError,
    HttpRequest, HttpResponse, Llm, LlmDelta, LlmRequest, LlmResponse, LlmStream, NewRefreshToken,
    Payments, Random, RateLimiter, RefreshTokenStore, RotateOutcome, StoreError,
    StoredRefreshToken, TicketStore, TransferRequest, UpstreamError, UserStore, VectorEntry,
    VectorIndex, VectorMatch,
};
use crate::rate_limit::{gcra, RateDecision, RateOp, RateRule};

/// A clock that only moves when told.
#[derive(Debug)]
pub struct FixedClock(Cell<i64>);

impl FixedClock {
    /// A clock at `now_ms`.
    pub fn at(now_ms: i64) -> Self {
        Self(Cell::new(now_ms))
    }
    /// Moves the clock forward.
    pub fn advance(&self, ms: i64) {
        self.0.set(self.0.get() + ms);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.get()
    }
}

/// Deterministic, distinct "random" bytes (a counter through SHA-256).
#[derive(Debug)]
pub struct SeqRandom(Cell<u64>);

impl SeqRandom {
    /// A sequence starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Cell::new(seed))
    }
}

impl Random for SeqRandom {
    fn fill(&self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(32) {
            let n = self.0.get();
            self.0.set(n + 1);
            let block = Sha256::digest(n.to_le_bytes());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

/// Users in a map.
#[derive(Debug, Default)]
pub struct InMemoryUserStore {
    /// Rows by id.
    pub rows: RefCell<HashMap<UserId, User>>,
}

#[async_trait(?Send)]
impl UserStore for InMemoryUserStore {
    async fn insert(&self, user: &User) -> Result<(), StoreError> {
        let mut rows = self.rows.borrow_mut();
        if rows.values().any(|u| u.email == user.email) {
            return Err(StoreError::Conflict("email already registered"));
        }
        rows.insert(user.id, user.clone());
        Ok(())
    }
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        Ok(self
            .rows
            .borrow()
            .values()
            .find(|u| &u.email == email)
            .cloned())
    }
    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.rows.borrow().get(&id).cloned())
    }
    async fn update_password_hash(
        &self,
        id: UserId,
        phc: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if let Some(u) = self.rows.borrow_mut().get_mut(&id) {
            phc.clone_into(&mut u.password_hash);
            u.updated_at = now_ms;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct TokenRow {
    token: NewRefreshToken,
    rotated_at: Option<i64>,
}

/// Refresh tokens and families in maps.
#[derive(Debug, Default)]
pub struct InMemoryRefreshTokenStore {
    tokens: RefCell<Vec<TokenRow>>,
    /// Family id → (owner, revoked).
    families: RefCell<HashMap<uuid::Uuid, (UserId, bool)>>,
}

impl InMemoryRefreshTokenStore {
    /// How many tokens are stored (for assertions).
    pub fn token_count(&self) -> usize {
        self.tokens.borrow().len()
    }

    fn family_revoked(&self, family: uuid::Uuid) -> bool {
        self.families.borrow().get(&family).is_none_or(|f| f.1)
    }
}

#[async_trait(?Send)]
impl RefreshTokenStore for InMemoryRefreshTokenStore {
    async fn start_family(&self, first: &NewRefreshToken) -> Result<(), StoreError> {
        self.families
            .borrow_mut()
            .insert(first.family_id, (first.user_id, false));
        self.tokens.borrow_mut().push(TokenRow {
            token: first.clone(),
            rotated_at: None,
        });
        Ok(())
    }
    async fn find_by_hash(
        &self,
        hash: &RefreshTokenHash,
    ) -> Result<Option<StoredRefreshToken>, StoreError> {
        Ok(self
            .tokens
            .borrow()
            .iter()
            .find(|r| &r.token.token_hash == hash)
            .map(|r| StoredRefreshToken {
                id: r.token.id,
                user_id: r.token.user_id,
                family_id: r.token.family_id,
                expires_at: r.token.expires_at,
                rotated_at: r.rotated_at,
                family_revoked: self.family_revoked(r.token.family_id),
            }))
    }
    async fn rotate(
        &self,
        parent_id: uuid::Uuid,
        child: &NewRefreshToken,
        now_ms: i64,
    ) -> Result<RotateOutcome, StoreError> {
        if self.family_revoked(child.family_id) {
            return Ok(RotateOutcome::FamilyRevoked);
        }
        let mut tokens = self.tokens.borrow_mut();
        let Some(parent) = tokens.iter_mut().find(|r| r.token.id == parent_id) else {
            return Err(StoreError::Unavailable("parent token vanished".into()));
        };
        if parent.rotated_at.is_some() {
            return Ok(RotateOutcome::AlreadyRotated);
        }
        parent.rotated_at = Some(now_ms);
        tokens.push(TokenRow {
            token: child.clone(),
            rotated_at: None,
        });
        Ok(RotateOutcome::Rotated)
    }
    async fn add_sibling(&self, child: &NewRefreshToken) -> Result<bool, StoreError> {
        if self.family_revoked(child.family_id) {
            return Ok(false);
        }
        self.tokens.borrow_mut().push(TokenRow {
            token: child.clone(),
            rotated_at: None,
        });
        Ok(true)
    }
    async fn revoke_family(
        &self,
        family_id: uuid::Uuid,
        _reason: &str,
        _now_ms: i64,
    ) -> Result<(), StoreError> {
        if let Some(f) = self.families.borrow_mut().get_mut(&family_id) {
            f.1 = true;
        }
        Ok(())
    }
    async fn revoke_all(&self, user_id: UserId, _now_ms: i64) -> Result<u64, StoreError> {
        let mut n = 0;
        for f in self.families.borrow_mut().values_mut() {
            if f.0 == user_id && !f.1 {
                f.1 = true;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Tickets in a map: hash → (user, expiry, used).
#[derive(Debug, Default)]
pub struct InMemoryTicketStore {
    rows: RefCell<HashMap<[u8; 32], (UserId, i64, bool)>>,
}

#[async_trait(?Send)]
impl TicketStore for InMemoryTicketStore {
    async fn insert(
        &self,
        hash: &[u8; 32],
        user_id: UserId,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.rows
            .borrow_mut()
            .insert(*hash, (user_id, expires_at, false));
        Ok(())
    }
    async fn consume(&self, hash: &[u8; 32], now_ms: i64) -> Result<Option<UserId>, StoreError> {
        let mut rows = self.rows.borrow_mut();
        match rows.get_mut(hash) {
            Some(row) if !row.2 && row.1 > now_ms => {
                row.2 = true;
                Ok(Some(row.0))
            }
            _ => Ok(None),
        }
    }
}

/// GCRA counters in a map, on an injected clock.
#[derive(Debug)]
pub struct InMemoryRateLimiter<'c> {
    clock: &'c FixedClock,
    state: RefCell<HashMap<String, i64>>,
}

impl<'c> InMemoryRateLimiter<'c> {
    /// Counters reading time from `clock`.
    pub fn new(clock: &'c FixedClock) -> Self {
        Self {
            clock,
            state: RefCell::default(),
        }
    }
}

#[async_trait(?Send)]
impl RateLimiter for InMemoryRateLimiter<'_> {
    async fn check(
        &self,
        key: &str,
        rule: RateRule,
        op: RateOp,
    ) -> Result<RateDecision, StoreError> {
        let mut state = self.state.borrow_mut();
        let (decision, tat) = gcra(state.get(key).copied(), self.clock.now_ms(), rule, op);
        state.insert(key.to_owned(), tat);
        Ok(decision)
    }
}

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

/// Multipart uploads in maps.
#[derive(Debug, Default)]
pub struct InMemoryUploadStore {
    /// Uploads.
    pub uploads: RefCell<Vec<crate::backup::multipart::Upload>>,
    /// Parts by upload.
    pub parts: RefCell<HashMap<String, Vec<crate::backup::multipart::Part>>>,
}

#[async_trait(?Send)]
impl crate::backup::multipart::UploadStore for InMemoryUploadStore {
    async fn create(&self, upload: &crate::backup::multipart::Upload) -> Result<(), StoreError> {
        self.uploads.borrow_mut().push(upload.clone());
        Ok(())
    }
    async fn get(
        &self,
        user: UserId,
        id: &str,
    ) -> Result<Option<crate::backup::multipart::Upload>, StoreError> {
        Ok(self
            .uploads
            .borrow()
            .iter()
            .find(|u| u.user_id == user && u.id == id)
            .cloned())
    }
    async fn put_part(
        &self,
        upload_id: &str,
        part: &crate::backup::multipart::Part,
        _c: &crate::storage::Checksum,
    ) -> Result<(), StoreError> {
        let mut parts = self.parts.borrow_mut();
        let list = parts.entry(upload_id.to_owned()).or_default();
        list.retain(|p| p.number != part.number);
        list.push(part.clone());
        list.sort_by_key(|p| p.number);
        Ok(())
    }
    async fn parts(
        &self,
        upload_id: &str,
    ) -> Result<Vec<crate::backup::multipart::Part>, StoreError> {
        Ok(self
            .parts
            .borrow()
            .get(upload_id)
            .cloned()
            .unwrap_or_default())
    }
    async fn delete(&self, upload_id: &str) -> Result<(), StoreError> {
        self.uploads.borrow_mut().retain(|u| u.id != upload_id);
        self.parts.borrow_mut().remove(upload_id);
        Ok(())
    }
    async fn expired(
        &self,
        now_ms: i64,
    ) -> Result<Vec<crate::backup::multipart::Upload>, StoreError> {
        Ok(self
            .uploads
            .borrow()
            .iter()
            .filter(|u| u.expires_at <= now_ms)
            .cloned()
            .collect())
    }
}

/// Record rows in a vector; also the usage source for quotas.
#[derive(Debug, Default)]
pub struct InMemoryRecordStore {
    /// Rows.
    pub rows: RefCell<Vec<crate::storage::RecordRow>>,
    /// Fail the next insert (fault injection).
    pub fail_next_insert: Cell<bool>,
}

#[async_trait(?Send)]
impl crate::storage::RecordStore for InMemoryRecordStore {
    async fn insert(&self, row: &crate::storage::RecordRow) -> Result<(), StoreError> {
        if self.fail_next_insert.replace(false) {
            return Err(StoreError::Unavailable("injected".into()));
        }
        self.rows.borrow_mut().push(row.clone());
        Ok(())
    }
    async fn get(
        &self,
        user: UserId,
        id: &str,
    ) -> Result<Option<crate::storage::RecordRow>, StoreError> {
        Ok(self
            .rows
            .borrow()
            .iter()
            .find(|r| r.user_id == user && r.id == id)
            .cloned())
    }
    async fn update(
        &self,
        row: &crate::storage::RecordRow,
        expected: i64,
    ) -> Result<bool, StoreError> {
        let mut rows = self.rows.borrow_mut();
        match rows.iter_mut().find(|r| {
            r.user_id == row.user_id
                && r.id == row.id
                && r.version == expected
                && r.deleted_at.is_none()
        }) {
            Some(r) => {
                *r = row.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn delete(
        &self,
        user: UserId,
        id: &str,
        expected: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut rows = self.rows.borrow_mut();
        match rows.iter_mut().find(|r| {
            r.user_id == user && r.id == id && r.version == expected && r.deleted_at.is_none()
        }) {
            Some(r) => {
                r.deleted_at = Some(now_ms);
                r.updated_at = now_ms;
                r.version += 1;
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn list(
        &self,
        user: UserId,
        q: &crate::storage::ListQuery,
        tombstones_since: i64,
    ) -> Result<Vec<crate::storage::RecordRow>, StoreError> {
        let mut rows: Vec<_> = self
            .rows
            .borrow()
            .iter()
            .filter(|r| r.user_id == user)
            .filter(|r| q.table.as_ref().is_none_or(|t| t.as_str() == r.table))
            .filter(|r| q.updated_since.is_none_or(|s| r.updated_at > s))
            .filter(|r| r.deleted_at.is_none_or(|d| d >= tombstones_since))
            .filter(|r| {
                q.after
                    .as_ref()
                    .is_none_or(|c| (r.updated_at, r.id.as_str()) > (c.u, c.i.as_str()))
            })
            .cloned()
            .collect();
        rows.sort_by(|a, b| (a.updated_at, &a.id).cmp(&(b.updated_at, &b.id)));
        Ok(rows
            .into_iter()
            .skip(q.offset as usize)
            .take(q.limit as usize)
            .collect())
    }
}

#[async_trait(?Send)]
impl crate::tiers::TierStore for InMemoryRecordStore {
    async fn tier_info(&self, _user: UserId) -> Result<Option<crate::tiers::TierInfo>, StoreError> {
        Ok(None)
    }
    async fn storage_used(&self, user: UserId) -> Result<u64, StoreError> {
        Ok(self
            .rows
            .borrow()
            .iter()
            .filter(|r| r.user_id == user && r.deleted_at.is_none())
            .map(|r| r.size_bytes)
            .sum())
    }
    async fn backup_used(&self, _user: UserId) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// Vectors per user in maps; exact cosine search.
#[derive(Debug, Default)]
pub struct InMemoryVectorIndex {
    rows: RefCell<HashMap<UserId, HashMap<String, VectorEntry>>>,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

#[async_trait(?Send)]
impl VectorIndex for InMemoryVectorIndex {
    async fn upsert(&self, user: UserId, entries: Vec<VectorEntry>) -> Result<u64, StoreError> {
        let n = entries.len() as u64;
        let mut rows = self.rows.borrow_mut();
        let mine = rows.entry(user).or_default();
        for e in entries {
            mine.insert(e.id.clone(), e);
        }
        Ok(n)
    }
    async fn query(
        &self,
        user: UserId,
        vector: &[f32],
        top_k: u32,
    ) -> Result<Vec<VectorMatch>, StoreError> {
        let rows = self.rows.borrow();
        let mut hits: Vec<VectorMatch> = rows
            .get(&user)
            .map(|m| {
                m.values()
                    .map(|e| VectorMatch {
                        id: e.id.clone(),
                        score: cosine(vector, &e.values),
                        blob: e.blob.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        hits.truncate(top_k as usize);
        Ok(hits)
    }
    async fn delete(&self, user: UserId, ids: &[String]) -> Result<(), StoreError> {
        if let Some(m) = self.rows.borrow_mut().get_mut(&user) {
            for id in ids {
                m.remove(id);
            }
        }
        Ok(())
    }
}

/// An LLM that answers from a script, recording every request.
#[derive(Debug, Default)]
pub struct ScriptedLlm {
    /// Answers, in order.
    pub script: RefCell<VecDeque<Result<LlmResponse, UpstreamError>>>,
    /// Requests received.
    pub requests: RefCell<Vec<LlmRequest>>,
}

#[async_trait(?Send)]
impl Llm for ScriptedLlm {
    async fn complete(&self, req: &LlmRequest) -> Result<LlmResponse, UpstreamError> {
        self.requests.borrow_mut().push(req.clone());
        self.script
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| Err(UpstreamError::Unavailable("script exhausted".into())))
    }
    async fn stream<'a>(&'a self, req: &LlmRequest) -> Result<LlmStream<'a>, UpstreamError> {
        let done = self.complete(req).await?;
        let text = done.message.content.clone().unwrap_or_default();
        // Two-character pieces, so stream consumers see fragments split anywhere.
        let chars: Vec<char> = text.chars().collect();
        let mut events: Vec<Result<LlmDelta, UpstreamError>> = chars
            .chunks(2)
            .map(|c| Ok(LlmDelta::Text(c.iter().collect())))
            .collect();
        events.push(Ok(LlmDelta::Done(done)));
        Ok(Box::pin(futures_util::stream::iter(events)))
    }
}

/// Payments that record calls and answer with fixed sessions.
#[derive(Debug, Default)]
pub struct FakePayments {
    /// Checkout requests received.
    pub checkouts: RefCell<Vec<CheckoutRequest>>,
    /// Subscriptions cancelled.
    pub cancelled: RefCell<Vec<String>>,
    /// Transfers made.
    pub transfers: RefCell<Vec<TransferRequest>>,
    /// Charges made.
    pub charges: RefCell<Vec<ChargeRequest>>,
    /// When set, every charge is declined and every transfer fails as unavailable.
    pub failing: Cell<bool>,
}

#[async_trait(?Send)]
impl Payments for FakePayments {
    async fn create_checkout_session(
        &self,
        req: &CheckoutRequest,
    ) -> Result<CheckoutSession, UpstreamError> {
        let n = {
            let mut c = self.checkouts.borrow_mut();
            c.push(req.clone());
            c.len()
        };
        Ok(CheckoutSession {
            id: format!("cs_test_{n}"),
            url: format!("https://checkout.invalid/cs_test_{n}"),
        })
    }
    async fn cancel_subscription(
        &self,
        subscription_id: &str,
        _idempotency_key: &str,
    ) -> Result<(), UpstreamError> {
        self.cancelled.borrow_mut().push(subscription_id.to_owned());
        Ok(())
    }
    async fn create_transfer(&self, req: &TransferRequest) -> Result<String, UpstreamError> {
        if self.failing.get() {
            return Err(UpstreamError::Unavailable("scripted outage".to_owned()));
        }
        let mut t = self.transfers.borrow_mut();
        t.push(req.clone());
        Ok(format!("tr_test_{}", t.len()))
    }
    async fn charge(&self, req: &ChargeRequest) -> Result<String, UpstreamError> {
        if self.failing.get() {
            return Err(UpstreamError::Declined("scripted decline".to_owned()));
        }
        let mut c = self.charges.borrow_mut();
        c.push(req.clone());
        Ok(format!("pi_test_{}", c.len()))
    }
}

/// An HTTP client that answers from a script, recording requests and sleeps.
#[derive(Debug, Default)]
pub struct ScriptedHttp {
    /// Answers, in order.
    pub script: RefCell<VecDeque<Result<HttpResponse, HttpError>>>,
    /// Requests sent.
    pub requests: RefCell<Vec<HttpRequest>>,
    /// Backoff sleeps (ms).
    pub slept: RefCell<Vec<u64>>,
}

impl ScriptedHttp {
    /// A client answering `script` in order (then network errors).
    pub fn with(script: Vec<Result<HttpResponse, HttpError>>) -> Self {
        Self {
            script: RefCell::new(script.into()),
            ..Self::default()
        }
    }
}

#[async_trait(?Send)]
impl HttpClient for ScriptedHttp {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.requests.borrow_mut().push(req);
        self.script
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| Err(HttpError::Network("script exhausted".into())))
    }
    async fn sleep(&self, ms: u64) {
        self.slept.borrow_mut().push(ms);
    }
}

/// Subscriptions and events in maps, writing tiers into an [`InMemoryUserStore`].
#[derive(Debug)]
pub struct InMemoryBillingStore<'u> {
    users: &'u InMemoryUserStore,
    /// Subscriptions by Stripe id.
    pub subscriptions: RefCell<HashMap<String, Subscription>>,
    /// Processed event ids.
    pub events: RefCell<Vec<EventRecord>>,
    /// Stripe customers by user.
    pub customers: RefCell<HashMap<UserId, String>>,
}

impl<'u> InMemoryBillingStore<'u> {
    /// A store updating `users`.
    pub fn new(users: &'u InMemoryUserStore) -> Self {
        Self {
            users,
            subscriptions: RefCell::default(),
            events: RefCell::default(),
            customers: RefCell::default(),
        }
    }
}

#[async_trait(?Send)]
impl BillingStore for InMemoryBillingStore<'_> {
    async fn event_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.events.borrow().iter().any(|e| e.id == event_id))
    }
    async fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        Ok(self.subscriptions.borrow().get(id).cloned())
    }
    async fn latest_subscription(&self, user: UserId) -> Result<Option<Subscription>, StoreError> {
        Ok(self
            .subscriptions
            .borrow()
            .values()
            .filter(|s| s.user_id == user)
            .max_by_key(|s| s.last_event_created)
            .cloned())
    }
    async fn user_by_customer(&self, customer_id: &str) -> Result<Option<UserId>, StoreError> {
        Ok(self
            .customers
            .borrow()
            .iter()
            .find(|(_, c)| c.as_str() == customer_id)
            .map(|(u, _)| *u))
    }
    async fn customer_of(&self, user: UserId) -> Result<Option<String>, StoreError> {
        Ok(self.customers.borrow().get(&user).cloned())
    }
    async fn record(
        &self,
        event: &EventRecord,
        change: Option<&BillingChange>,
    ) -> Result<RecordOutcome, StoreError> {
        if self.events.borrow().iter().any(|e| e.id == event.id) {
            return Ok(RecordOutcome::Duplicate);
        }
        self.events.borrow_mut().push(event.clone());
        if let Some(c) = change {
            let sub = &c.subscription;
            let mut subs = self.subscriptions.borrow_mut();
            let newer_applied = subs
                .get(&sub.stripe_subscription_id)
                .is_some_and(|s| s.last_event_created > sub.last_event_created);
            if !newer_applied {
                subs.insert(sub.stripe_subscription_id.clone(), sub.clone());
                if let Some(u) = self.users.rows.borrow_mut().get_mut(&sub.user_id) {
                    u.tier = c.user_tier;
                    u.tier_until = c.tier_until;
                }
                if let Some(cus) = &sub.customer_id {
                    self.customers.borrow_mut().insert(sub.user_id, cus.clone());
                }
            }
        }
        Ok(RecordOutcome::Applied)
    }
    async fn mark_cancel_at_period_end(&self, id: &str, _now_ms: i64) -> Result<(), StoreError> {
        if let Some(s) = self.subscriptions.borrow_mut().get_mut(id) {
            s.cancel_at_period_end = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_random_never_repeats_a_block() {
        let r = SeqRandom::new(1);
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        r.fill(&mut a);
        r.fill(&mut b);
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn the_fake_vector_index_ranks_by_cosine_and_isolates_users() {
        let idx = InMemoryVectorIndex::default();
        let (a, b) = (UserId(uuid::Uuid::nil()), UserId(uuid::Uuid::max()));
        let e = |id: &str, v: Vec<f32>| VectorEntry {
            id: id.into(),
            values: v,
            blob: String::new(),
        };
        idx.upsert(a, vec![e("x", vec![1.0, 0.0]), e("y", vec![0.0, 1.0])])
            .await
            .unwrap();
        idx.upsert(b, vec![e("z", vec![1.0, 0.0])]).await.unwrap();
        let hits = idx.query(a, &[0.9, 0.1], 5).await.unwrap();
        let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids, vec!["x", "y"]);
    }
}

/// The marketplace's tables in memory, with the D1 adapter's semantics (counts recomputed,
/// one pending version per plugin, insert-if-absent purchases, first payout wins).
#[derive(Debug, Default)]
pub struct InMemoryPluginStore {
    /// Plugins by id.
    pub plugins: RefCell<HashMap<uuid::Uuid, crate::marketplace::Plugin>>,
    /// Versions, in submission order.
    pub versions: RefCell<Vec<crate::marketplace::PluginVersion>>,
    /// Reviews recorded.
    pub reviews: RefCell<Vec<crate::marketplace::ReviewRecord>>,
    /// Installations: (plugin, user) → installed_at.
    pub installs: RefCell<HashMap<(uuid::Uuid, UserId), i64>>,
    /// Ratings: (plugin, user) → stars.
    pub ratings: RefCell<HashMap<(uuid::Uuid, UserId), crate::marketplace::Stars>>,
    /// Purchases, with the payout each was paid in.
    pub revenue: RefCell<Vec<(crate::marketplace::RevenueEvent, Option<uuid::Uuid>)>>,
    /// Payout accounts.
    pub accounts: RefCell<HashMap<UserId, String>>,
    /// Payouts.
    pub payouts: RefCell<Vec<crate::marketplace::Payout>>,
}

impl InMemoryPluginStore {
    fn recount(&self, plugin: uuid::Uuid) -> crate::marketplace::RatingTally {
        let installs = self
            .installs
            .borrow()
            .keys()
            .filter(|(p, _)| *p == plugin)
            .count() as u64;
        let mut tally = crate::marketplace::RatingTally::default();
        for ((p, _), stars) in self.ratings.borrow().iter() {
            if *p == plugin {
                tally.add(*stars);
            }
        }
        if let Some(row) = self.plugins.borrow_mut().get_mut(&plugin) {
            row.install_count = installs;
            row.rating = tally;
        }
        tally
    }
}

#[async_trait(?Send)]
impl crate::marketplace::PluginStore for InMemoryPluginStore {
    async fn insert_plugin(
        &self,
        id: uuid::Uuid,
        author: UserId,
        first: &crate::marketplace::PluginVersion,
        now_ms: i64,
        max_pending: u64,
    ) -> Result<bool, StoreError> {
        if self.pending_by_author(author).await? >= max_pending {
            return Ok(false);
        }
        self.plugins.borrow_mut().insert(
            id,
            crate::marketplace::Plugin {
                id,
                author_id: author,
                status: crate::marketplace::PluginStatus::PendingReview,
                live: None,
                install_count: 0,
                rating: crate::marketplace::RatingTally::default(),
                created_at: now_ms,
                approved_at: None,
            },
        );
        self.versions.borrow_mut().push(first.clone());
        Ok(true)
    }
    async fn insert_version(
        &self,
        version: &crate::marketplace::PluginVersion,
        max_pending: u64,
    ) -> Result<bool, StoreError> {
        let author = self
            .plugins
            .borrow()
            .get(&version.plugin_id)
            .map(|p| p.author_id)
            .ok_or(StoreError::Conflict("no such plugin"))?;
        if self.pending_by_author(author).await? >= max_pending {
            return Ok(false);
        }
        let mut versions = self.versions.borrow_mut();
        if versions.iter().any(|v| {
            v.plugin_id == version.plugin_id
                && (v.manifest.version == version.manifest.version
                    || v.status == crate::marketplace::VersionStatus::PendingReview)
        }) {
            return Err(StoreError::Conflict("version exists or one is pending"));
        }
        versions.push(version.clone());
        Ok(true)
    }
    async fn pending_by_author(&self, author: UserId) -> Result<u64, StoreError> {
        let plugins = self.plugins.borrow();
        Ok(self
            .versions
            .borrow()
            .iter()
            .filter(|v| {
                v.status == crate::marketplace::VersionStatus::PendingReview
                    && plugins
                        .get(&v.plugin_id)
                        .is_some_and(|p| p.author_id == author)
            })
            .count() as u64)
    }
    async fn plugin(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<crate::marketplace::Plugin>, StoreError> {
        Ok(self.plugins.borrow().get(&id).cloned())
    }
    async fn versions(
        &self,
        plugin: uuid::Uuid,
    ) -> Result<Vec<crate::marketplace::PluginVersion>, StoreError> {
        Ok(self
            .versions
            .borrow()
            .iter()
            .filter(|v| v.plugin_id == plugin)
            .cloned()
            .collect())
    }
    async fn live_version(
        &self,
        plugin: uuid::Uuid,
    ) -> Result<Option<crate::marketplace::PluginVersion>, StoreError> {
        Ok(self
            .versions
            .borrow()
            .iter()
            .find(|v| {
                v.plugin_id == plugin && v.status == crate::marketplace::VersionStatus::Approved
            })
            .cloned())
    }
    async fn pending(
        &self,
        limit: u32,
    ) -> Result<
        Vec<(
            crate::marketplace::Plugin,
            crate::marketplace::PluginVersion,
        )>,
        StoreError,
    > {
        let plugins = self.plugins.borrow();
        Ok(self
            .versions
            .borrow()
            .iter()
            .filter(|v| v.status == crate::marketplace::VersionStatus::PendingReview)
            .take(limit as usize)
            .map(|v| (plugins[&v.plugin_id].clone(), v.clone()))
            .collect())
    }
    async fn decide(&self, review: &crate::marketplace::ReviewRecord) -> Result<(), StoreError> {
        use crate::marketplace::{Decision, PluginStatus, VersionStatus};
        let mut versions = self.versions.borrow_mut();
        let Some(idx) = versions.iter().position(|v| {
            v.id == review.version_id
                && v.plugin_id == review.plugin_id
                && v.status == VersionStatus::PendingReview
        }) else {
            return Err(StoreError::Conflict("version is not pending review"));
        };
        let mut plugins = self.plugins.borrow_mut();
        let plugin = plugins
            .get_mut(&review.plugin_id)
            .ok_or(StoreError::Conflict("no such plugin"))?;
        match review.decision {
            Decision::Approve => {
                for v in versions.iter_mut() {
                    if v.plugin_id == review.plugin_id && v.status == VersionStatus::Approved {
                        v.status = VersionStatus::Superseded;
                    }
                }
                versions[idx].status = VersionStatus::Approved;
                plugin.status = PluginStatus::Approved;
                plugin.live = Some(versions[idx].manifest.clone());
                plugin.approved_at = Some(review.reviewed_at);
            }
            Decision::Reject => {
                versions[idx].status = VersionStatus::Rejected;
                if plugin.live.is_none() {
                    plugin.status = PluginStatus::Rejected;
                }
            }
        }
        versions[idx].decided_at = Some(review.reviewed_at);
        self.reviews.borrow_mut().push(review.clone());
        Ok(())
    }
    async fn catalog(
        &self,
        query: &crate::marketplace::CatalogQuery,
    ) -> Result<(Vec<crate::marketplace::Plugin>, u64), StoreError> {
        use crate::marketplace::{PluginStatus, Sort};
        let needle = query.q.as_ref().map(|q| q.to_ascii_lowercase());
        let mut hits: Vec<crate::marketplace::Plugin> = self
            .plugins
            .borrow()
            .values()
            .filter(|p| p.status == PluginStatus::Approved)
            .filter(|p| {
                let live = p.live.as_ref().expect("approved plugins have a manifest");
                query.category.is_none_or(|c| c == live.category)
                    && needle.as_ref().is_none_or(|n| {
                        live.name.to_ascii_lowercase().contains(n)
                            || live.description.to_ascii_lowercase().contains(n)
                    })
            })
            .cloned()
            .collect();
        hits.sort_by(|a, b| {
            let by = match query.sort {
                Sort::Rating => {
                    let key = |p: &crate::marketplace::Plugin| {
                        (
                            p.rating.count == 0,
                            std::cmp::Reverse(p.rating.average_hundredths().unwrap_or(0)),
                            std::cmp::Reverse(p.rating.count),
                        )
                    };
                    key(a).cmp(&key(b))
                }
                Sort::Installs => b.install_count.cmp(&a.install_count),
                Sort::Newest => b.approved_at.cmp(&a.approved_at),
            };
            by.then(a.id.cmp(&b.id))
        });
        let total = hits.len() as u64;
        let skip = (query.page.saturating_sub(1) as usize).saturating_mul(query.per_page as usize);
        Ok((
            hits.into_iter()
                .skip(skip)
                .take(query.per_page as usize)
                .collect(),
            total,
        ))
    }
    async fn installed_at(
        &self,
        plugin: uuid::Uuid,
        user: UserId,
    ) -> Result<Option<i64>, StoreError> {
        Ok(self.installs.borrow().get(&(plugin, user)).copied())
    }
    async fn purchase(
        &self,
        plugin: uuid::Uuid,
        user: UserId,
    ) -> Result<Option<crate::marketplace::RevenueEvent>, StoreError> {
        Ok(self
            .revenue
            .borrow()
            .iter()
            .find(|(e, _)| e.plugin_id == plugin && e.user_id == user)
            .map(|(e, _)| e.clone()))
    }
    async fn install(
        &self,
        plugin: uuid::Uuid,
        user: UserId,
        purchase: Option<&crate::marketplace::RevenueEvent>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if let Some(event) = purchase {
            let mut revenue = self.revenue.borrow_mut();
            if !revenue
                .iter()
                .any(|(e, _)| e.plugin_id == plugin && e.user_id == user)
            {
                revenue.push((event.clone(), None));
            }
        }
        let new = self
            .installs
            .borrow_mut()
            .insert((plugin, user), now_ms)
            .is_none();
        self.recount(plugin);
        Ok(new)
    }
    async fn uninstall(&self, plugin: uuid::Uuid, user: UserId) -> Result<bool, StoreError> {
        let existed = self.installs.borrow_mut().remove(&(plugin, user)).is_some();
        self.ratings.borrow_mut().remove(&(plugin, user));
        self.recount(plugin);
        Ok(existed)
    }
    async fn rate(
        &self,
        plugin: uuid::Uuid,
        user: UserId,
        stars: crate::marketplace::Stars,
        _now_ms: i64,
    ) -> Result<crate::marketplace::RatingTally, StoreError> {
        if !self.installs.borrow().contains_key(&(plugin, user)) {
            return Err(StoreError::Conflict("the plugin is no longer installed"));
        }
        self.ratings.borrow_mut().insert((plugin, user), stars);
        Ok(self.recount(plugin))
    }
    async fn rating_of(
        &self,
        plugin: uuid::Uuid,
        user: UserId,
    ) -> Result<Option<crate::marketplace::Stars>, StoreError> {
        Ok(self.ratings.borrow().get(&(plugin, user)).copied())
    }
    async fn earnings(
        &self,
        developer: UserId,
    ) -> Result<Vec<crate::marketplace::PeriodEarnings>, StoreError> {
        let mut by: std::collections::BTreeMap<
            crate::marketplace::Period,
            crate::marketplace::PeriodEarnings,
        > = std::collections::BTreeMap::new();
        for (e, _) in self.revenue.borrow().iter() {
            if e.developer_id != developer {
                continue;
            }
            let row = by
                .entry(e.period)
                .or_insert_with(|| crate::marketplace::PeriodEarnings {
                    period: e.period,
                    sales: 0,
                    gross_cents: 0,
                    developer_cents: 0,
                    platform_cents: 0,
                    payout: None,
                });
            row.sales += 1;
            row.gross_cents += e.amount_cents;
            row.developer_cents += e.developer_share_cents;
            row.platform_cents += e.platform_share_cents;
        }
        let payouts = self.payouts.borrow();
        Ok(by
            .into_values()
            .rev()
            .map(|mut row| {
                row.payout = payouts
                    .iter()
                    .find(|p| p.developer_id == developer && p.period == row.period)
                    .cloned();
                row
            })
            .collect())
    }
    async fn set_payout_account(&self, developer: UserId, account: &str) -> Result<(), StoreError> {
        self.accounts
            .borrow_mut()
            .insert(developer, account.to_owned());
        Ok(())
    }
    async fn payout_account(&self, developer: UserId) -> Result<Option<String>, StoreError> {
        Ok(self.accounts.borrow().get(&developer).cloned())
    }
    async fn due_payouts(
        &self,
        before: crate::marketplace::Period,
    ) -> Result<Vec<crate::marketplace::DuePayout>, StoreError> {
        let accounts = self.accounts.borrow();
        let mut due: std::collections::BTreeMap<
            (crate::marketplace::Period, String),
            (UserId, u64, String),
        > = std::collections::BTreeMap::new();
        for (e, paid) in self.revenue.borrow().iter() {
            if paid.is_some() || e.period >= before {
                continue;
            }
            let Some(account) = accounts.get(&e.developer_id) else {
                continue;
            };
            due.entry((e.period, e.developer_id.to_string()))
                .or_insert((e.developer_id, 0, account.clone()))
                .1 += e.developer_share_cents;
        }
        Ok(due
            .into_iter()
            .map(|((period, _), (developer_id, amount_cents, destination))| {
                crate::marketplace::DuePayout {
                    developer_id,
                    period,
                    amount_cents,
                    destination,
                }
            })
            .collect())
    }
    async fn start_payout(
        &self,
        payout: &crate::marketplace::Payout,
    ) -> Result<crate::marketplace::Payout, StoreError> {
        let mut payouts = self.payouts.borrow_mut();
        if let Some(p) = payouts
            .iter()
            .find(|p| p.developer_id == payout.developer_id && p.period == payout.period)
        {
            return Ok(p.clone());
        }
        payouts.push(payout.clone());
        Ok(payout.clone())
    }
    async fn finish_payout(
        &self,
        payout_id: uuid::Uuid,
        transfer_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut payouts = self.payouts.borrow_mut();
        let p = payouts
            .iter_mut()
            .find(|p| p.id == payout_id)
            .ok_or(StoreError::Conflict("no such payout"))?;
        p.status = crate::marketplace::PayoutStatus::Paid;
        p.transfer_id = Some(transfer_id.to_owned());
        p.paid_at = Some(now_ms);
        for (e, paid) in self.revenue.borrow_mut().iter_mut() {
            if paid.is_none() && e.developer_id == p.developer_id && e.period == p.period {
                *paid = Some(payout_id);
            }
        }
        Ok(())
    }
}

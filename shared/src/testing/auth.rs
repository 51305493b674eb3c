//! Fakes of the account ports: users, refresh tokens, tickets, rate counters.

use std::cell::RefCell;
use std::collections::HashMap;

use async_trait::async_trait;

use super::FixedClock;
use crate::domain::{Email, RefreshTokenHash, Role, User, UserId};
use crate::ports::{
    AccountTokenStore, Clock, Mailer, MfaRow, MfaStore, NewRefreshToken, OutgoingEmail,
    RateLimiter, RefreshTokenStore, RotateOutcome, SecurityEvent, SecurityLog, SessionRow,
    StoreError, StoredRefreshToken, TicketStore, TokenPurpose, UpstreamError, UserStore,
};
use crate::rate_limit::{gcra, RateDecision, RateOp, RateRule};

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
    async fn mark_email_verified(
        &self,
        id: UserId,
        role: Role,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if let Some(u) = self.rows.borrow_mut().get_mut(&id) {
            u.email_verified_at = u.email_verified_at.or(Some(now_ms));
            u.role = role;
            u.updated_at = now_ms;
        }
        Ok(())
    }
}

/// A one-time token: user, purpose, expiry, used.
type AccountTokenRow = (UserId, TokenPurpose, i64, bool);

/// One-time account tokens in a map: hash → row; emails resolve through `users`.
#[derive(Debug, Default)]
pub struct InMemoryAccountTokenStore {
    /// Rows by hash.
    pub rows: RefCell<HashMap<[u8; 32], AccountTokenRow>>,
    /// The accounts `insert_for_email` looks up (a copy of the user store's emails).
    pub emails: RefCell<HashMap<Email, UserId>>,
}

#[async_trait(?Send)]
impl AccountTokenStore for InMemoryAccountTokenStore {
    async fn insert(
        &self,
        hash: &[u8; 32],
        user: UserId,
        purpose: TokenPurpose,
        _now_ms: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.rows
            .borrow_mut()
            .insert(*hash, (user, purpose, expires_at, false));
        Ok(())
    }
    async fn insert_for_email(
        &self,
        hash: &[u8; 32],
        email: &Email,
        purpose: TokenPurpose,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<Option<UserId>, StoreError> {
        let user = self.emails.borrow().get(email).copied();
        if let Some(u) = user {
            self.insert(hash, u, purpose, now_ms, expires_at).await?;
        }
        Ok(user)
    }
    async fn consume(
        &self,
        hash: &[u8; 32],
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Result<Option<UserId>, StoreError> {
        let mut rows = self.rows.borrow_mut();
        match rows.get_mut(hash) {
            Some(row) if row.1 == purpose && !row.3 && row.2 > now_ms => {
                row.3 = true;
                Ok(Some(row.0))
            }
            _ => Ok(None),
        }
    }
    async fn find(
        &self,
        hash: &[u8; 32],
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Result<Option<UserId>, StoreError> {
        Ok(self
            .rows
            .borrow()
            .get(hash)
            .filter(|r| r.1 == purpose && !r.3 && r.2 > now_ms)
            .map(|r| r.0))
    }
    async fn spend_all(
        &self,
        user: UserId,
        purpose: TokenPurpose,
        _now_ms: i64,
    ) -> Result<(), StoreError> {
        for row in self.rows.borrow_mut().values_mut() {
            if row.0 == user && row.1 == purpose {
                row.3 = true;
            }
        }
        Ok(())
    }
}

/// Two-factor state in maps.
#[derive(Debug, Default)]
pub struct InMemoryMfaStore {
    /// Rows by user.
    pub rows: RefCell<HashMap<UserId, MfaRow>>,
    /// Recovery codes: (user, hash) → used.
    pub codes: RefCell<HashMap<(UserId, [u8; 32]), bool>>,
}

#[async_trait(?Send)]
impl MfaStore for InMemoryMfaStore {
    async fn get(&self, user: UserId) -> Result<Option<MfaRow>, StoreError> {
        Ok(self.rows.borrow().get(&user).cloned())
    }
    async fn set_pending(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        _now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut rows = self.rows.borrow_mut();
        if rows.get(&user).is_some_and(|r| r.enabled) {
            return Ok(false);
        }
        rows.insert(
            user,
            MfaRow {
                sealed_secret: sealed_secret.to_vec(),
                enabled: false,
                last_step: 0,
            },
        );
        Ok(true)
    }
    async fn enable(
        &self,
        user: UserId,
        recovery_hashes: &[[u8; 32]],
        step: i64,
        _now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut rows = self.rows.borrow_mut();
        let Some(row) = rows.get_mut(&user).filter(|r| !r.enabled) else {
            return Ok(false);
        };
        row.enabled = true;
        row.last_step = step;
        let mut codes = self.codes.borrow_mut();
        codes.retain(|(u, _), _| *u != user);
        for h in recovery_hashes {
            codes.insert((user, *h), false);
        }
        Ok(true)
    }
    async fn accept_step(&self, user: UserId, step: i64) -> Result<bool, StoreError> {
        match self.rows.borrow_mut().get_mut(&user) {
            Some(r) if r.enabled && r.last_step < step => {
                r.last_step = step;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn spend_recovery_code(
        &self,
        user: UserId,
        hash: &[u8; 32],
        _now_ms: i64,
    ) -> Result<bool, StoreError> {
        match self.codes.borrow_mut().get_mut(&(user, *hash)) {
            Some(used) if !*used => {
                *used = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn disable(&self, user: UserId) -> Result<(), StoreError> {
        self.rows.borrow_mut().remove(&user);
        self.codes.borrow_mut().retain(|(u, _), _| *u != user);
        Ok(())
    }
}

/// A mailer that keeps every message (or fails every send, when `fail` is set).
#[derive(Debug, Default)]
pub struct RecordingMailer {
    /// Messages sent.
    pub sent: RefCell<Vec<OutgoingEmail>>,
    /// Answer every send with this failure instead.
    pub fail: RefCell<Option<UpstreamError>>,
}

#[async_trait(?Send)]
impl Mailer for RecordingMailer {
    async fn send(&self, message: &OutgoingEmail) -> Result<(), UpstreamError> {
        if let Some(e) = self.fail.borrow_mut().take() {
            return Err(e);
        }
        self.sent.borrow_mut().push(message.clone());
        Ok(())
    }
}

/// The security log in a vector.
#[derive(Debug, Default)]
pub struct InMemorySecurityLog {
    /// Events, oldest first.
    pub events: RefCell<Vec<SecurityEvent>>,
}

#[async_trait(?Send)]
impl SecurityLog for InMemorySecurityLog {
    async fn record(&self, event: &SecurityEvent) -> Result<(), StoreError> {
        self.events.borrow_mut().push(event.clone());
        Ok(())
    }
    async fn recent(&self, user: UserId, limit: u32) -> Result<Vec<SecurityEvent>, StoreError> {
        Ok(self
            .events
            .borrow()
            .iter()
            .rev()
            .filter(|e| e.user_id == user)
            .take(limit as usize)
            .cloned()
            .collect())
    }
}

#[derive(Debug, Clone)]
struct TokenRow {
    token: NewRefreshToken,
    rotated_at: Option<i64>,
}

#[derive(Debug, Clone)]
struct FamilyRow {
    user: UserId,
    revoked: bool,
    device_name: Option<String>,
    created_at: i64,
    last_used_at: i64,
}

/// Refresh tokens and families in maps.
#[derive(Debug, Default)]
pub struct InMemoryRefreshTokenStore {
    tokens: RefCell<Vec<TokenRow>>,
    families: RefCell<HashMap<uuid::Uuid, FamilyRow>>,
}

impl InMemoryRefreshTokenStore {
    /// How many tokens are stored (for assertions).
    pub fn token_count(&self) -> usize {
        self.tokens.borrow().len()
    }

    fn family_revoked(&self, family: uuid::Uuid) -> bool {
        self.families
            .borrow()
            .get(&family)
            .is_none_or(|f| f.revoked)
    }
}

#[async_trait(?Send)]
impl RefreshTokenStore for InMemoryRefreshTokenStore {
    async fn start_family(&self, first: &NewRefreshToken) -> Result<(), StoreError> {
        self.families.borrow_mut().insert(
            first.family_id,
            FamilyRow {
                user: first.user_id,
                revoked: false,
                device_name: first.device_name.as_ref().map(|d| d.as_str().to_owned()),
                created_at: first.created_at,
                last_used_at: first.created_at,
            },
        );
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
        if let Some(f) = self.families.borrow_mut().get_mut(&child.family_id) {
            f.last_used_at = now_ms;
        }
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
            f.revoked = true;
        }
        Ok(())
    }
    async fn revoke_all(
        &self,
        user_id: UserId,
        except: Option<uuid::Uuid>,
        _now_ms: i64,
    ) -> Result<Vec<uuid::Uuid>, StoreError> {
        let mut revoked = Vec::new();
        for (id, f) in self.families.borrow_mut().iter_mut() {
            if f.user == user_id && !f.revoked && Some(*id) != except {
                f.revoked = true;
                revoked.push(*id);
            }
        }
        revoked.sort();
        Ok(revoked)
    }
    async fn revoke_session(
        &self,
        user_id: UserId,
        family_id: uuid::Uuid,
        _now_ms: i64,
    ) -> Result<bool, StoreError> {
        match self.families.borrow_mut().get_mut(&family_id) {
            Some(f) if f.user == user_id && !f.revoked => {
                f.revoked = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn sessions(&self, user_id: UserId, now_ms: i64) -> Result<Vec<SessionRow>, StoreError> {
        let tokens = self.tokens.borrow();
        let mut rows: Vec<SessionRow> = self
            .families
            .borrow()
            .iter()
            .filter(|(id, f)| {
                f.user == user_id
                    && !f.revoked
                    && tokens
                        .iter()
                        .any(|t| t.token.family_id == **id && t.token.expires_at > now_ms)
            })
            .map(|(id, f)| SessionRow {
                id: *id,
                device_name: f.device_name.clone(),
                created_at: f.created_at,
                last_used_at: f.last_used_at,
            })
            .collect();
        rows.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(rows)
    }
}

/// A ticket: user, session, expiry, used.
type TicketRow = (UserId, Option<uuid::Uuid>, i64, bool);

/// Tickets in a map: hash → (user, session, expiry, used).
#[derive(Debug, Default)]
pub struct InMemoryTicketStore {
    rows: RefCell<HashMap<[u8; 32], TicketRow>>,
}

#[async_trait(?Send)]
impl TicketStore for InMemoryTicketStore {
    async fn insert(
        &self,
        hash: &[u8; 32],
        user_id: UserId,
        sid: Option<uuid::Uuid>,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.rows
            .borrow_mut()
            .insert(*hash, (user_id, sid, expires_at, false));
        Ok(())
    }
    async fn consume(
        &self,
        hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<Option<(UserId, Option<uuid::Uuid>)>, StoreError> {
        let mut rows = self.rows.borrow_mut();
        match rows.get_mut(hash) {
            Some(row) if !row.3 && row.2 > now_ms => {
                row.3 = true;
                Ok(Some((row.0, row.1)))
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

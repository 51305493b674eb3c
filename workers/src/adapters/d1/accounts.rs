//! Accounts (`users`), refresh-token families, WebSocket tickets, and the account state a
//! user's home keeps a copy of.

use async_trait::async_trait;
use serde::Deserialize;
use shared::domain::{Email, RefreshTokenHash, Role, Tier, User, UserId};
use shared::ports::{
    AccountTokenStore, MfaRow, MfaStore, NewRefreshToken, RefreshTokenStore, RotateOutcome,
    SecurityEvent, SecurityEventKind, SecurityLog, SessionRow, StoreError, StoredRefreshToken,
    TicketStore, TokenPurpose, UserStore,
};
use wasm_bindgen::JsValue;

use super::super::unavailable;
use super::{changes, int, is_unique_violation, opt_text, stmt, text, Db};

/// Accounts in D1 `users`.
pub struct D1UserStore(pub Db);

#[derive(Deserialize)]
pub(super) struct UserRow {
    pub(super) id: String,
    pub(super) email: String,
    pub(super) password_hash: String,
    pub(super) tier: String,
    pub(super) tier_until: Option<f64>,
    pub(super) role: String,
    pub(super) email_verified_at: Option<f64>,
    pub(super) created_at: f64,
    pub(super) updated_at: f64,
    pub(super) suspended_at: Option<f64>,
}

impl UserRow {
    #[allow(clippy::cast_possible_truncation)]
    pub(super) fn into_user(self) -> Result<User, StoreError> {
        let corrupt = |what: &str| StoreError::Unavailable(format!("corrupt users row: {what}"));
        Ok(User {
            id: UserId::parse(&self.id).ok_or_else(|| corrupt("id"))?,
            email: Email::parse(&self.email).map_err(|_| corrupt("email"))?,
            password_hash: self.password_hash,
            tier: Tier::parse(&self.tier).ok_or_else(|| corrupt("tier"))?,
            tier_until: self.tier_until.map(|v| v as i64),
            role: Role::parse(&self.role).ok_or_else(|| corrupt("role"))?,
            email_verified_at: self.email_verified_at.map(|v| v as i64),
            created_at: self.created_at as i64,
            updated_at: self.updated_at as i64,
            suspended_at: self.suspended_at.map(|v| v as i64),
        })
    }
}

const USER_COLUMNS: &str = "id, email, password_hash, tier, tier_until, role, email_verified_at, \
     created_at, updated_at, suspended_at";

impl D1UserStore {
    async fn find_one(&self, column: &str, value: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = ?1");
        stmt(&self.0, &sql, &[text(value)])?
            .first::<UserRow>(None)
            .await
            .map_err(|e| unavailable("reading user", &e))?
            .map(UserRow::into_user)
            .transpose()
    }
}

#[async_trait(?Send)]
impl UserStore for D1UserStore {
    async fn insert(&self, u: &User) -> Result<(), StoreError> {
        let s = stmt(
            &self.0,
            "INSERT INTO users (id, email, password_hash, tier, role, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &[
                text(u.id.to_string()),
                text(u.email.as_str()),
                text(&u.password_hash),
                text(u.tier.as_str()),
                text(u.role.as_str()),
                int(u.created_at),
                int(u.updated_at),
            ],
        )?;
        match s.run().await {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict("email already registered"))
            }
            Err(e) => Err(unavailable("inserting user", &e)),
        }
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.find_one("email", email.as_str()).await
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.find_one("id", &id.to_string()).await
    }

    async fn update_password_hash(
        &self,
        id: UserId,
        phc: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        stmt(
            &self.0,
            "UPDATE users SET password_hash = ?1, updated_at = ?2 WHERE id = ?3",
            &[text(phc), int(now_ms), text(id.to_string())],
        )?
        .run()
        .await
        .map_err(|e| unavailable("updating password hash", &e))?;
        Ok(())
    }

    async fn mark_email_verified(
        &self,
        id: UserId,
        role: Role,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        stmt(
            &self.0,
            "UPDATE users SET email_verified_at = COALESCE(email_verified_at, ?1), role = ?2, \
               updated_at = ?1 WHERE id = ?3",
            &[int(now_ms), text(role.as_str()), text(id.to_string())],
        )?
        .run()
        .await
        .map_err(|e| unavailable("marking email verified", &e))?;
        Ok(())
    }
}

/// Refresh tokens in D1 `refresh_families` and `refresh_tokens` (hashes only).
pub struct D1RefreshTokenStore(pub Db);

#[derive(Deserialize)]
struct TokenRow {
    id: String,
    user_id: String,
    family_id: String,
    expires_at: f64,
    rotated_at: Option<f64>,
    family_revoked: f64,
}

const INSERT_TOKEN_VALUES: &str = "INSERT INTO refresh_tokens \
     (id, user_id, family_id, token_hash, parent_id, created_at, expires_at) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7";

fn token_args(t: &NewRefreshToken) -> Vec<JsValue> {
    vec![
        text(t.id.to_string()),
        text(t.user_id.to_string()),
        text(t.family_id.to_string()),
        text(hex::encode(t.token_hash.0)),
        opt_text(t.parent_id.map(|p| p.to_string())),
        int(t.created_at),
        int(t.expires_at),
    ]
}

impl D1RefreshTokenStore {
    async fn family_revoked(&self, family_id: uuid::Uuid) -> Result<bool, StoreError> {
        let revoked = stmt(
            &self.0,
            "SELECT revoked_at IS NOT NULL AS revoked FROM refresh_families WHERE id = ?1",
            &[text(family_id.to_string())],
        )?
        .first::<f64>(Some("revoked"))
        .await
        .map_err(|e| unavailable("reading family", &e))?;
        Ok(revoked.is_none_or(|r| r != 0.0))
    }
}

#[async_trait(?Send)]
impl RefreshTokenStore for D1RefreshTokenStore {
    async fn start_family(&self, first: &NewRefreshToken) -> Result<(), StoreError> {
        let family = stmt(
            &self.0,
            "INSERT INTO refresh_families (id, user_id, created_at, last_used_at, device_name) \
             VALUES (?1, ?2, ?3, ?3, ?4)",
            &[
                text(first.family_id.to_string()),
                text(first.user_id.to_string()),
                int(first.created_at),
                opt_text(
                    first
                        .device_name
                        .as_ref()
                        .map(shared::domain::DeviceName::as_str),
                ),
            ],
        )?;
        let token = stmt(&self.0, INSERT_TOKEN_VALUES, &token_args(first))?;
        self.0
            .batch(vec![family, token])
            .await
            .map_err(|e| unavailable("starting token family", &e))?;
        Ok(())
    }

    async fn find_by_hash(
        &self,
        hash: &RefreshTokenHash,
    ) -> Result<Option<StoredRefreshToken>, StoreError> {
        let row = stmt(
            &self.0,
            "SELECT t.id, t.user_id, t.family_id, t.expires_at, t.rotated_at, \
                    (f.revoked_at IS NOT NULL) AS family_revoked \
             FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
             WHERE t.token_hash = ?1",
            &[text(hex::encode(hash.0))],
        )?
        .first::<TokenRow>(None)
        .await
        .map_err(|e| unavailable("reading refresh token", &e))?;
        let Some(r) = row else { return Ok(None) };
        let corrupt = || StoreError::Unavailable("corrupt refresh_tokens row".into());
        #[allow(clippy::cast_possible_truncation)]
        Ok(Some(StoredRefreshToken {
            id: uuid::Uuid::try_parse(&r.id).map_err(|_| corrupt())?,
            user_id: UserId::parse(&r.user_id).ok_or_else(corrupt)?,
            family_id: uuid::Uuid::try_parse(&r.family_id).map_err(|_| corrupt())?,
            expires_at: r.expires_at as i64,
            rotated_at: r.rotated_at.map(|v| v as i64),
            family_revoked: r.family_revoked != 0.0,
        }))
    }

    async fn rotate(
        &self,
        parent_id: uuid::Uuid,
        child: &NewRefreshToken,
        now_ms: i64,
    ) -> Result<RotateOutcome, StoreError> {
        // One transaction: mark the parent rotated only if it is current and its family live,
        // then insert the child only if that update changed a row.
        let mark = stmt(
            &self.0,
            "UPDATE refresh_tokens SET rotated_at = ?1 \
             WHERE id = ?2 AND rotated_at IS NULL AND EXISTS \
               (SELECT 1 FROM refresh_families f \
                WHERE f.id = refresh_tokens.family_id AND f.revoked_at IS NULL)",
            &[int(now_ms), text(parent_id.to_string())],
        )?;
        let insert = stmt(
            &self.0,
            &format!("{INSERT_TOKEN_VALUES} WHERE changes() = 1"),
            &token_args(child),
        )?;
        // The session was used now (a no-op unless the insert just stored the child).
        let touch = stmt(
            &self.0,
            "UPDATE refresh_families SET last_used_at = ?1 WHERE id = ?2 AND EXISTS \
               (SELECT 1 FROM refresh_tokens WHERE id = ?3)",
            &[
                int(now_ms),
                text(child.family_id.to_string()),
                text(child.id.to_string()),
            ],
        )?;
        let results = self
            .0
            .batch(vec![mark, insert, touch])
            .await
            .map_err(|e| unavailable("rotating refresh token", &e))?;
        if results.first().map(changes) == Some(1) {
            return Ok(RotateOutcome::Rotated);
        }
        if self.family_revoked(child.family_id).await? {
            Ok(RotateOutcome::FamilyRevoked)
        } else {
            Ok(RotateOutcome::AlreadyRotated)
        }
    }

    async fn add_sibling(&self, child: &NewRefreshToken) -> Result<bool, StoreError> {
        let mut args = token_args(child);
        args.push(text(child.family_id.to_string()));
        let r = stmt(
            &self.0,
            &format!(
                "{INSERT_TOKEN_VALUES} WHERE EXISTS \
                 (SELECT 1 FROM refresh_families WHERE id = ?8 AND revoked_at IS NULL)"
            ),
            &args,
        )?
        .run()
        .await
        .map_err(|e| unavailable("adding sibling token", &e))?;
        Ok(changes(&r) == 1)
    }

    async fn revoke_family(
        &self,
        family_id: uuid::Uuid,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        stmt(
            &self.0,
            "UPDATE refresh_families SET revoked_at = ?1, revoke_reason = ?2 \
             WHERE id = ?3 AND revoked_at IS NULL",
            &[int(now_ms), text(reason), text(family_id.to_string())],
        )?
        .run()
        .await
        .map_err(|e| unavailable("revoking family", &e))?;
        Ok(())
    }

    async fn revoke_all(
        &self,
        user_id: UserId,
        except: Option<uuid::Uuid>,
        now_ms: i64,
    ) -> Result<Vec<uuid::Uuid>, StoreError> {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let rows = stmt(
            &self.0,
            "UPDATE refresh_families SET revoked_at = ?1, revoke_reason = 'logout_all' \
             WHERE user_id = ?2 AND revoked_at IS NULL AND id IS NOT ?3 RETURNING id",
            &[
                int(now_ms),
                text(user_id.to_string()),
                opt_text(except.map(|e| e.to_string())),
            ],
        )?
        .all()
        .await
        .map_err(|e| unavailable("revoking all families", &e))?
        .results::<Id>()
        .map_err(|e| unavailable("reading revoked families", &e))?;
        Ok(rows
            .iter()
            .filter_map(|r| uuid::Uuid::try_parse(&r.id).ok())
            .collect())
    }

    async fn revoke_session(
        &self,
        user_id: UserId,
        family_id: uuid::Uuid,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let r = stmt(
            &self.0,
            "UPDATE refresh_families SET revoked_at = ?1, revoke_reason = 'logout' \
             WHERE id = ?2 AND user_id = ?3 AND revoked_at IS NULL",
            &[
                int(now_ms),
                text(family_id.to_string()),
                text(user_id.to_string()),
            ],
        )?
        .run()
        .await
        .map_err(|e| unavailable("revoking a session", &e))?;
        Ok(changes(&r) == 1)
    }

    async fn sessions(&self, user_id: UserId, now_ms: i64) -> Result<Vec<SessionRow>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            device_name: Option<String>,
            created_at: f64,
            last_used_at: Option<f64>,
        }
        let rows = stmt(
            &self.0,
            "SELECT f.id, f.device_name, f.created_at, f.last_used_at FROM refresh_families f \
             WHERE f.user_id = ?1 AND f.revoked_at IS NULL AND EXISTS \
               (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id AND t.expires_at > ?2) \
             ORDER BY f.created_at DESC, f.id",
            &[text(user_id.to_string()), int(now_ms)],
        )?
        .all()
        .await
        .map_err(|e| unavailable("listing sessions", &e))?
        .results::<Row>()
        .map_err(|e| unavailable("reading sessions", &e))?;
        #[allow(clippy::cast_possible_truncation)]
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(SessionRow {
                    id: uuid::Uuid::try_parse(&r.id).ok()?,
                    device_name: r.device_name,
                    created_at: r.created_at as i64,
                    last_used_at: r.last_used_at.unwrap_or(r.created_at) as i64,
                })
            })
            .collect())
    }
}

/// One-time account tokens in D1 `account_tokens` (hashes only).
pub struct D1AccountTokenStore(pub Db);

#[async_trait(?Send)]
impl AccountTokenStore for D1AccountTokenStore {
    async fn insert(
        &self,
        hash: &[u8; 32],
        user: UserId,
        purpose: TokenPurpose,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        stmt(
            &self.0,
            "INSERT INTO account_tokens (token_hash, user_id, purpose, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                text(hex::encode(hash)),
                text(user.to_string()),
                text(purpose.as_str()),
                int(now_ms),
                int(expires_at),
            ],
        )?
        .run()
        .await
        .map_err(|e| unavailable("storing account token", &e))?;
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
        #[derive(Deserialize)]
        struct Row {
            user_id: String,
        }
        let row = stmt(
            &self.0,
            "INSERT INTO account_tokens (token_hash, user_id, purpose, created_at, expires_at) \
             SELECT ?1, id, ?2, ?3, ?4 FROM users WHERE email = ?5 RETURNING user_id",
            &[
                text(hex::encode(hash)),
                text(purpose.as_str()),
                int(now_ms),
                int(expires_at),
                text(email.as_str()),
            ],
        )?
        .first::<Row>(None)
        .await
        .map_err(|e| unavailable("storing account token", &e))?;
        Ok(row.and_then(|r| UserId::parse(&r.user_id)))
    }

    async fn consume(
        &self,
        hash: &[u8; 32],
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Result<Option<UserId>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            user_id: String,
        }
        let row = stmt(
            &self.0,
            "UPDATE account_tokens SET used_at = ?1 \
             WHERE token_hash = ?2 AND purpose = ?3 AND used_at IS NULL AND expires_at > ?1 \
             RETURNING user_id",
            &[int(now_ms), text(hex::encode(hash)), text(purpose.as_str())],
        )?
        .first::<Row>(None)
        .await
        .map_err(|e| unavailable("spending account token", &e))?;
        Ok(row.and_then(|r| UserId::parse(&r.user_id)))
    }

    async fn find(
        &self,
        hash: &[u8; 32],
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Result<Option<UserId>, StoreError> {
        let user = stmt(
            &self.0,
            "SELECT user_id FROM account_tokens \
             WHERE token_hash = ?1 AND purpose = ?2 AND used_at IS NULL AND expires_at > ?3",
            &[text(hex::encode(hash)), text(purpose.as_str()), int(now_ms)],
        )?
        .first::<String>(Some("user_id"))
        .await
        .map_err(|e| unavailable("reading account token", &e))?;
        Ok(user.and_then(|u| UserId::parse(&u)))
    }

    async fn spend_all(
        &self,
        user: UserId,
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        stmt(
            &self.0,
            "UPDATE account_tokens SET used_at = ?1 \
             WHERE user_id = ?2 AND purpose = ?3 AND used_at IS NULL",
            &[int(now_ms), text(user.to_string()), text(purpose.as_str())],
        )?
        .run()
        .await
        .map_err(|e| unavailable("spending account tokens", &e))?;
        Ok(())
    }
}

/// Two-factor state in D1 `user_mfa` and `recovery_codes`.
pub struct D1MfaStore(pub Db);

#[async_trait(?Send)]
impl MfaStore for D1MfaStore {
    async fn get(&self, user: UserId) -> Result<Option<MfaRow>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            sealed_secret: String,
            enabled: f64,
            last_step: f64,
        }
        let row = stmt(
            &self.0,
            "SELECT sealed_secret, (enabled_at IS NOT NULL) AS enabled, last_step \
             FROM user_mfa WHERE user_id = ?1",
            &[text(user.to_string())],
        )?
        .first::<Row>(None)
        .await
        .map_err(|e| unavailable("reading two-factor state", &e))?;
        let Some(r) = row else { return Ok(None) };
        #[allow(clippy::cast_possible_truncation)]
        Ok(Some(MfaRow {
            sealed_secret: shared::accounts::mfa::decode_sealed(&r.sealed_secret)
                .ok_or_else(|| StoreError::Unavailable("corrupt user_mfa row".into()))?,
            enabled: r.enabled != 0.0,
            last_step: r.last_step as i64,
        }))
    }

    async fn set_pending(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let r = stmt(
            &self.0,
            "INSERT INTO user_mfa (user_id, sealed_secret, created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
               created_at = excluded.created_at, last_step = 0 \
             WHERE user_mfa.enabled_at IS NULL",
            &[
                text(user.to_string()),
                text(shared::accounts::mfa::encode_sealed(sealed_secret)),
                int(now_ms),
            ],
        )?
        .run()
        .await
        .map_err(|e| unavailable("storing a pending secret", &e))?;
        Ok(changes(&r) == 1)
    }

    async fn enable(
        &self,
        user: UserId,
        recovery_hashes: &[[u8; 32]],
        step: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let uid = user.to_string();
        // One transaction: enable, then replace the codes only if this call enabled it.
        let mut statements = vec![stmt(
            &self.0,
            "UPDATE user_mfa SET enabled_at = ?1, last_step = ?2 \
             WHERE user_id = ?3 AND enabled_at IS NULL",
            &[int(now_ms), int(step), text(&uid)],
        )?];
        let enabled_now = "EXISTS (SELECT 1 FROM user_mfa WHERE user_id = ?1 AND enabled_at = ?2)";
        statements.push(stmt(
            &self.0,
            &format!("DELETE FROM recovery_codes WHERE user_id = ?1 AND {enabled_now}"),
            &[text(&uid), int(now_ms)],
        )?);
        for h in recovery_hashes {
            statements.push(stmt(
                &self.0,
                &format!(
                    "INSERT INTO recovery_codes (user_id, code_hash) SELECT ?1, ?3 \
                     WHERE {enabled_now}"
                ),
                &[text(&uid), int(now_ms), text(hex::encode(h))],
            )?);
        }
        let results = self
            .0
            .batch(statements)
            .await
            .map_err(|e| unavailable("enabling two-factor", &e))?;
        Ok(results.first().map(changes) == Some(1))
    }

    async fn accept_step(&self, user: UserId, step: i64) -> Result<bool, StoreError> {
        let r = stmt(
            &self.0,
            "UPDATE user_mfa SET last_step = ?1 \
             WHERE user_id = ?2 AND enabled_at IS NOT NULL AND last_step < ?1",
            &[int(step), text(user.to_string())],
        )?
        .run()
        .await
        .map_err(|e| unavailable("accepting a code", &e))?;
        Ok(changes(&r) == 1)
    }

    async fn spend_recovery_code(
        &self,
        user: UserId,
        hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let r = stmt(
            &self.0,
            "UPDATE recovery_codes SET used_at = ?1 \
             WHERE user_id = ?2 AND code_hash = ?3 AND used_at IS NULL",
            &[int(now_ms), text(user.to_string()), text(hex::encode(hash))],
        )?
        .run()
        .await
        .map_err(|e| unavailable("spending a recovery code", &e))?;
        Ok(changes(&r) == 1)
    }

    async fn disable(&self, user: UserId) -> Result<(), StoreError> {
        let uid = user.to_string();
        let codes = stmt(
            &self.0,
            "DELETE FROM recovery_codes WHERE user_id = ?1",
            &[text(&uid)],
        )?;
        let row = stmt(
            &self.0,
            "DELETE FROM user_mfa WHERE user_id = ?1",
            &[text(&uid)],
        )?;
        self.0
            .batch(vec![codes, row])
            .await
            .map_err(|e| unavailable("disabling two-factor", &e))?;
        Ok(())
    }
}

/// The security log in D1 `security_events`.
pub struct D1SecurityLog {
    /// The database.
    pub db: Db,
    /// Row ids.
    pub rng: &'static dyn shared::ports::Random,
}

#[async_trait(?Send)]
impl SecurityLog for D1SecurityLog {
    async fn record(&self, e: &SecurityEvent) -> Result<(), StoreError> {
        stmt(
            &self.db,
            "INSERT INTO security_events (id, user_id, kind, device_name, network, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[
                text(shared::ports::new_uuid(self.rng).to_string()),
                text(e.user_id.to_string()),
                text(e.kind.as_str()),
                opt_text(e.device_name.as_deref()),
                opt_text(e.network.as_deref()),
                int(e.at),
            ],
        )?
        .run()
        .await
        .map_err(|err| unavailable("recording security event", &err))?;
        Ok(())
    }

    async fn recent(&self, user: UserId, limit: u32) -> Result<Vec<SecurityEvent>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            kind: String,
            device_name: Option<String>,
            network: Option<String>,
            created_at: f64,
        }
        let rows = stmt(
            &self.db,
            "SELECT kind, device_name, network, created_at FROM security_events \
             WHERE user_id = ?1 ORDER BY created_at DESC, id LIMIT ?2",
            &[text(user.to_string()), int(i64::from(limit))],
        )?
        .all()
        .await
        .map_err(|err| unavailable("reading security events", &err))?
        .results::<Row>()
        .map_err(|err| unavailable("reading security events", &err))?;
        #[allow(clippy::cast_possible_truncation)]
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(SecurityEvent {
                    user_id: user,
                    kind: SecurityEventKind::parse(&r.kind)?,
                    device_name: r.device_name,
                    network: r.network,
                    at: r.created_at as i64,
                })
            })
            .collect())
    }
}

/// WebSocket tickets in D1 `ws_tickets` (hashes only).
pub struct D1TicketStore(pub Db);

#[async_trait(?Send)]
impl TicketStore for D1TicketStore {
    async fn insert(
        &self,
        hash: &[u8; 32],
        user_id: UserId,
        sid: Option<uuid::Uuid>,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        stmt(
            &self.0,
            "INSERT INTO ws_tickets (ticket_hash, user_id, session_id, expires_at) \
             VALUES (?1, ?2, ?3, ?4)",
            &[
                text(hex::encode(hash)),
                text(user_id.to_string()),
                opt_text(sid.map(|s| s.to_string())),
                int(expires_at),
            ],
        )?
        .run()
        .await
        .map_err(|e| unavailable("storing ticket", &e))?;
        Ok(())
    }

    async fn consume(
        &self,
        hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<Option<(UserId, Option<uuid::Uuid>)>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            user_id: String,
            session_id: Option<String>,
        }
        let row = stmt(
            &self.0,
            "UPDATE ws_tickets SET used_at = ?1 \
             WHERE ticket_hash = ?2 AND used_at IS NULL AND expires_at > ?1 \
             RETURNING user_id, session_id",
            &[int(now_ms), text(hex::encode(hash))],
        )?
        .first::<Row>(None)
        .await
        .map_err(|e| unavailable("consuming ticket", &e))?;
        Ok(row.and_then(|r| {
            UserId::parse(&r.user_id).map(|u| {
                (
                    u,
                    r.session_id
                        .as_deref()
                        .and_then(|s| uuid::Uuid::try_parse(s).ok()),
                )
            })
        }))
    }
}

/// What a user's home loads of its account from D1: email, role, tier, lapse and seats.
pub struct D1AccountLoader(pub Db);

#[derive(Deserialize)]
struct AccountRow {
    email: String,
    role: String,
    tier: String,
    tier_until: Option<f64>,
    seats: f64,
    verified: f64,
    suspended: f64,
    comp_tier: Option<String>,
    comp_until: Option<f64>,
    team_tier: Option<String>,
    team_status: Option<String>,
    team_period_end: Option<f64>,
}

impl D1AccountLoader {
    /// The account of `user` as D1 has it now; `None` when it no longer exists or its
    /// deletion is pending.
    ///
    /// # Errors
    /// D1 failures.
    pub async fn load(
        &self,
        user: UserId,
    ) -> Result<Option<shared::home::ops::AccountState>, StoreError> {
        // Seats come from the user's live team subscription, if any; the team grant from the
        // subscription of the team the user belongs to (one statement).
        let sql = format!(
            "SELECT u.email, u.role, u.tier, u.tier_until, \
                (u.email_verified_at IS NOT NULL) AS verified, \
                (u.suspended_at IS NOT NULL) AS suspended, u.comp_tier, u.comp_until, \
                COALESCE((SELECT s.seats FROM \
                subscriptions s WHERE s.user_id = u.id AND s.tier = 'team' \
                  AND s.status IN ('active', 'trialing', 'past_due') \
                ORDER BY s.last_event_created DESC LIMIT 1), 1) AS seats, {} \
             FROM users u WHERE u.id = ?1 AND NOT EXISTS \
               (SELECT 1 FROM account_deletions d WHERE d.user_id = u.id)",
            super::teams::TEAM_GRANT_COLUMNS
        );
        let row = stmt(&self.0, &sql, &[text(user.to_string())])?
            .first::<AccountRow>(None)
            .await
            .map_err(|e| unavailable("reading account", &e))?;
        let Some(r) = row else { return Ok(None) };
        let team = super::teams::team_grant(
            r.team_tier.as_deref(),
            r.team_status.as_deref(),
            r.team_period_end,
        )?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(Some(shared::home::ops::AccountState {
            email: r.email,
            role: Role::parse(&r.role)
                .ok_or_else(|| StoreError::Unavailable("corrupt users.role".into()))?,
            tier: Tier::parse(&r.tier)
                .ok_or_else(|| StoreError::Unavailable("corrupt users.tier".into()))?,
            tier_until: r.tier_until.map(|v| v as i64),
            seats: r.seats.clamp(1.0, f64::from(u32::MAX)) as u32,
            email_verified: r.verified != 0.0,
            suspended: r.suspended != 0.0,
            comp: match (r.comp_tier, r.comp_until) {
                (Some(t), Some(until)) => Some(shared::domain::Comp {
                    tier: Tier::parse(&t)
                        .ok_or_else(|| StoreError::Unavailable("corrupt users.comp_tier".into()))?,
                    until: until as i64,
                }),
                _ => None,
            },
            team,
        }))
    }
}

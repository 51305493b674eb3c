//! Account export: `GET /auth/export` → everything held about the caller, as JSON, with signed
//! short-lived links for the caller's encrypted blobs (`GET /auth/export/blob?token=…`).
//!
//! ## Links
//! A link token authorises one user to download one object (a record's or a backup's blob)
//! until an instant, exactly like a plugin download token ([`crate::marketplace::download`])
//! but under its own key (`KeyPurpose::ExportDownload`) and domain: `base64url(payload) "."
//! base64url(mac)`, `payload` = `{kind}|{key}|{user_id}|{expires_at_ms}` (`kind` `record` or
//! `backup`; R2 keys are `{user_id}/…` and never contain `|`). [`verify_link`] checks the
//! shape, the MAC (constant time, before any claim is read), the expiry, that the token is the
//! requesting user's and that the key lies under that user's prefix; every refusal is 403.
//! The download also needs the user's bearer token, so a leaked link alone opens nothing.
//!
//! ## Throttle
//! An export reads every row of the account and signs a link per blob: [`EXPORT_RULE`] allows 3
//! an hour per account (taken before any work; 429 beyond).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use async_trait::async_trait;

use super::{record_event, ClientMeta};
use crate::api::{
    AccountExport, ExportBlob, ExportEarnings, ExportInstall, ExportPlugin, ExportProfile,
    ExportPurchase, ExportRating, ExportSubscription, SecurityEventInfo, SessionInfo,
};
use crate::domain::UserId;
use crate::error::AppError;
use crate::home::ops::{ExportInventory, InventoryBlob};
use crate::home::HomePort;
use crate::ports::{
    Clock, RateLimiter, RefreshTokenStore, SecurityEventKind, SecurityLog, StoreError,
};
use crate::rate_limit::{RateOp, RateRule};

/// Exports per account: 3 an hour.
pub const EXPORT_RULE: RateRule = RateRule {
    limit: 3,
    window_ms: 3_600_000,
};
/// How long an export link lives (ms): 15 minutes.
pub const LINK_TTL_MS: i64 = 15 * 60 * 1000;
/// The MAC's domain-separation prefix.
pub const DOMAIN: &[u8] = b"adiuva/export-download/v1\n";
/// Longest token considered (characters).
pub const MAX_TOKEN_LEN: usize = 1024;

/// Which bucket a link's object is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobKind {
    /// A record's blob.
    Record,
    /// A backup.
    Backup,
}

impl BlobKind {
    fn as_str(self) -> &'static str {
        match self {
            BlobKind::Record => "record",
            BlobKind::Backup => "backup",
        }
    }
}

/// What an export link grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    /// The bucket.
    pub kind: BlobKind,
    /// The R2 key.
    pub key: String,
    /// The only user who may use it.
    pub user_id: UserId,
    /// Last valid instant (epoch ms, inclusive).
    pub expires_at_ms: i64,
}

impl LinkClaims {
    fn payload(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.kind.as_str(),
            self.key,
            self.user_id,
            self.expires_at_ms
        )
    }

    fn from_payload(payload: &str) -> Option<Self> {
        let mut parts = payload.split('|');
        let kind = match parts.next()? {
            "record" => BlobKind::Record,
            "backup" => BlobKind::Backup,
            _ => return None,
        };
        let key = parts.next()?.to_owned();
        let user_id = UserId::parse(parts.next()?)?;
        let expires_at_ms = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            kind,
            key,
            user_id,
            expires_at_ms,
        })
    }
}

fn mac(secret: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(DOMAIN);
    mac.update(payload);
    mac.finalize().into_bytes().into()
}

/// Signs `claims` with `secret`.
pub fn sign_link(secret: &[u8], claims: &LinkClaims) -> String {
    let payload = claims.payload();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(mac(secret, payload.as_bytes()))
    )
}

/// Verifies `token` for `user` at `now_ms`; answers what it grants.
///
/// # Errors
/// 403 `forbidden` for a malformed, forged, expired or another user's token, or one whose key
/// is not under the user's prefix.
pub fn verify_link(
    secret: &[u8],
    token: &str,
    user: UserId,
    now_ms: i64,
) -> Result<LinkClaims, AppError> {
    let invalid = || AppError::Forbidden("invalid export link");
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid());
    }
    let (p64, m64) = token.split_once('.').ok_or_else(invalid)?;
    let payload = URL_SAFE_NO_PAD.decode(p64).map_err(|_| invalid())?;
    let presented = URL_SAFE_NO_PAD.decode(m64).map_err(|_| invalid())?;
    if !bool::from(mac(secret, &payload).as_slice().ct_eq(&presented)) {
        return Err(invalid());
    }
    let claims = std::str::from_utf8(&payload)
        .ok()
        .and_then(LinkClaims::from_payload)
        .ok_or_else(invalid)?;
    if now_ms > claims.expires_at_ms {
        return Err(AppError::Forbidden("the export link has expired"));
    }
    if claims.user_id != user || !claims.key.starts_with(&format!("{user}/")) {
        return Err(invalid());
    }
    Ok(claims)
}

/// What D1 holds of an account, for its export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRows {
    /// The account.
    pub profile: ExportProfile,
    /// Subscriptions.
    pub subscriptions: Vec<ExportSubscription>,
    /// Plugins authored.
    pub plugins_authored: Vec<ExportPlugin>,
    /// Installations.
    pub installs: Vec<ExportInstall>,
    /// Ratings.
    pub ratings: Vec<ExportRating>,
    /// Purchases.
    pub purchases: Vec<ExportPurchase>,
    /// Earnings per month.
    pub earnings: Vec<ExportEarnings>,
    /// Team membership.
    pub team: Option<crate::api::ExportTeam>,
}

/// D1's side of the export.
#[async_trait(?Send)]
pub trait ExportStore {
    /// Every D1 row of `user` (`None`: no such account).
    async fn account_rows(&self, user: UserId) -> Result<Option<AccountRows>, StoreError>;
}

/// The export over its ports.
pub struct Exporter<'a> {
    /// D1's rows.
    pub store: &'a dyn ExportStore,
    /// Sessions.
    pub sessions: &'a dyn RefreshTokenStore,
    /// The security log.
    pub events: &'a dyn SecurityLog,
    /// Throttles.
    pub limiter: &'a dyn RateLimiter,
    /// The caller's home (admitted already).
    pub home: &'a dyn HomePort,
    /// Time.
    pub clock: &'a dyn Clock,
    /// The link key.
    pub link_key: &'a [u8; 32],
    /// Where links point (the API's origin).
    pub base_url: &'a str,
}

impl Exporter<'_> {
    /// `GET /auth/export` for `user` (session `sid`).
    ///
    /// # Errors
    /// 429 beyond [`EXPORT_RULE`]; 401 when the account is gone.
    pub async fn export(
        &self,
        user: UserId,
        sid: Option<uuid::Uuid>,
        meta: &ClientMeta,
    ) -> Result<AccountExport, AppError> {
        let key = format!("export:acct:{user}#account_export");
        let d = self
            .limiter
            .check(&key, EXPORT_RULE, RateOp::Acquire)
            .await?;
        if !d.allowed {
            return Err(AppError::RateLimited {
                retry_after_secs: d.retry_after_secs(),
            });
        }
        let now = self.clock.now_ms();
        let inventory = crate::home::call(self.home, &ExportInventory {}).await?;
        let rows = self
            .store
            .account_rows(user)
            .await?
            .ok_or(AppError::Unauthorized)?;
        let sessions = self
            .sessions
            .sessions(user, now)
            .await?
            .into_iter()
            .map(|r| SessionInfo {
                id: r.id.to_string(),
                device_name: r.device_name,
                created_at: r.created_at,
                last_used_at: r.last_used_at,
                current: Some(r.id) == sid,
            })
            .collect();
        record_event(self.events, user, SecurityEventKind::Export, meta, now).await;
        let security_events = self
            .events
            .recent(user, super::EVENTS_SHOWN)
            .await?
            .into_iter()
            .map(|e| SecurityEventInfo {
                kind: e.kind,
                at: e.at,
                device_name: e.device_name,
                network: e.network,
            })
            .collect();
        let expires = now.saturating_add(LINK_TTL_MS);
        let link = |kind: BlobKind, b: InventoryBlob| self.link(user, kind, b, expires);
        tracing::info!(
            user_id = %user,
            records = inventory.records.len(),
            backups = inventory.backups.len(),
            "account exported"
        );
        Ok(AccountExport {
            exported_at: now,
            links_expire_at: expires,
            profile: rows.profile,
            sessions,
            security_events,
            subscriptions: rows.subscriptions,
            records: inventory
                .records
                .into_iter()
                .map(|b| link(BlobKind::Record, b))
                .collect(),
            backups: inventory
                .backups
                .into_iter()
                .map(|b| link(BlobKind::Backup, b))
                .collect(),
            uploads: inventory.uploads,
            vectors: inventory.vectors,
            plugins_authored: rows.plugins_authored,
            installs: rows.installs,
            ratings: rows.ratings,
            purchases: rows.purchases,
            earnings: rows.earnings,
            team: rows.team,
        })
    }
}

impl Exporter<'_> {
    /// `b` with its signed link for `user`, valid until `expires`.
    fn link(&self, user: UserId, kind: BlobKind, b: InventoryBlob, expires: i64) -> ExportBlob {
        let token = sign_link(
            self.link_key,
            &LinkClaims {
                kind,
                key: b.key,
                user_id: user,
                expires_at_ms: expires,
            },
        );
        ExportBlob {
            id: b.id,
            table: b.table,
            version: b.version,
            timestamp: b.timestamp,
            checksum: b.checksum,
            size_bytes: b.size_bytes,
            created_at: b.created_at,
            updated_at: b.updated_at,
            download_url: format!(
                "{}/api/v1/auth/export/blob?token={token}",
                self.base_url.trim_end_matches('/')
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"export-secret-export-secret-1234";
    const NOW: i64 = 1_800_000_000_000;

    fn user() -> UserId {
        UserId::parse("0b0e5f58-52a1-4a5c-9f6e-0d8f5d2c1a11").unwrap()
    }

    fn claims() -> LinkClaims {
        LinkClaims {
            kind: BlobKind::Record,
            key: format!("{}/notes/abc", user()),
            user_id: user(),
            expires_at_ms: NOW + LINK_TTL_MS,
        }
    }

    #[test]
    fn a_link_verifies_for_its_user_until_its_expiry_and_not_after() {
        let t = sign_link(SECRET, &claims());
        assert_eq!(verify_link(SECRET, &t, user(), NOW).unwrap(), claims());
        assert!(verify_link(SECRET, &t, user(), NOW + LINK_TTL_MS).is_ok());
        let e = verify_link(SECRET, &t, user(), NOW + LINK_TTL_MS + 1).unwrap_err();
        assert_eq!(e.status(), 403);
    }

    #[test]
    fn another_user_another_secret_or_an_altered_token_is_refused() {
        let t = sign_link(SECRET, &claims());
        let other = UserId::parse("1b0e5f58-52a1-4a5c-9f6e-0d8f5d2c1a11").unwrap();
        assert_eq!(
            verify_link(SECRET, &t, other, NOW).unwrap_err().status(),
            403
        );
        assert!(verify_link(b"another-secret-another-secret-12", &t, user(), NOW).is_err());
        let mut forged = claims();
        forged.key = format!("{other}/notes/abc");
        forged.user_id = other;
        let (_, mac) = t.split_once('.').unwrap();
        let altered = format!("{}.{mac}", URL_SAFE_NO_PAD.encode(forged.payload()));
        assert!(verify_link(SECRET, &altered, other, NOW).is_err());
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let s = String::from_utf8(b).unwrap();
            if s != t {
                assert!(verify_link(SECRET, &s, user(), NOW).is_err(), "flip at {i}");
            }
        }
    }

    #[test]
    fn a_signed_key_outside_the_users_prefix_is_refused() {
        let mut c = claims();
        c.key = "someone-else/notes/abc".to_owned();
        let t = sign_link(SECRET, &c);
        assert!(verify_link(SECRET, &t, user(), NOW).is_err());
    }

    #[test]
    fn garbage_is_refused() {
        for t in ["", ".", "abc", "a.b.c", &"x".repeat(MAX_TOKEN_LEN + 1)] {
            assert!(verify_link(SECRET, t, user(), NOW).is_err(), "{t}");
        }
    }
}

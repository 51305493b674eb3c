//! D1 side of the cron's housekeeping ([`shared::housekeeping`]): bounded purges, discarded
//! packages, the account walk and the jobs' cursors.
//!
//! `refresh_tokens.parent_id` cascades on delete, so before an expired token goes, the link of
//! its children (possibly live) to it is cut in the same transaction: purging an old token
//! never takes a live session with it.

use async_trait::async_trait;
use serde::Deserialize;
use shared::domain::UserId;
use shared::housekeeping::{DiscardedPackage, HousekeepingStore};
use shared::ports::StoreError;
use wasm_bindgen::JsValue;

use super::{changes, int, opt_text, stmt, text, Db};
use crate::adapters::unavailable;

/// The housekeeping tables of D1.
pub struct D1HousekeepingStore(pub Db);

/// The expired tokens one purge takes (the same rows in both statements of its transaction).
const EXPIRED_TOKENS: &str =
    "SELECT id FROM refresh_tokens WHERE expires_at < ?1 ORDER BY expires_at, id LIMIT ?2";

#[derive(Deserialize)]
struct Family {
    family_id: String,
}

#[derive(Deserialize)]
struct Package {
    id: String,
    package_key: String,
}

#[derive(Deserialize)]
struct Key {
    package_key: String,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn json_list(items: &[String]) -> JsValue {
    text(serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned()))
}

#[async_trait(?Send)]
impl HousekeepingStore for D1HousekeepingStore {
    async fn purge_tickets(&self, before: i64, limit: u32) -> Result<u32, StoreError> {
        let r = stmt(
            &self.0,
            "DELETE FROM ws_tickets WHERE ticket_hash IN \
             (SELECT ticket_hash FROM ws_tickets WHERE expires_at < ?1 LIMIT ?2)",
            &[int(before), int(i64::from(limit))],
        )?
        .run()
        .await
        .map_err(|e| unavailable("purging tickets", &e))?;
        Ok(count(changes(&r)))
    }

    async fn purge_account_tokens(&self, before: i64, limit: u32) -> Result<u32, StoreError> {
        let r = stmt(
            &self.0,
            "DELETE FROM account_tokens WHERE token_hash IN \
             (SELECT token_hash FROM account_tokens WHERE expires_at < ?1 \
              ORDER BY expires_at LIMIT ?2)",
            &[int(before), int(i64::from(limit))],
        )?
        .run()
        .await
        .map_err(|e| unavailable("purging account tokens", &e))?;
        Ok(count(changes(&r)))
    }

    async fn purge_sso(&self, before: i64, limit: u32) -> Result<u32, StoreError> {
        let args = [int(before), int(i64::from(limit))];
        let logins = stmt(
            &self.0,
            "DELETE FROM sso_logins WHERE state_hash IN \
             (SELECT state_hash FROM sso_logins WHERE expires_at < ?1 ORDER BY expires_at LIMIT ?2)",
            &args,
        )?;
        let codes = stmt(
            &self.0,
            "DELETE FROM sso_codes WHERE code_hash IN \
             (SELECT code_hash FROM sso_codes WHERE expires_at < ?1 ORDER BY expires_at LIMIT ?2)",
            &args,
        )?;
        let results = self
            .0
            .batch(vec![logins, codes])
            .await
            .map_err(|e| unavailable("purging SSO sign-ins and codes", &e))?;
        Ok(count(results.iter().map(changes).sum()))
    }

    async fn purge_refresh_tokens(&self, before: i64, limit: u32) -> Result<u32, StoreError> {
        let args = [int(before), int(i64::from(limit))];
        let unlink = stmt(
            &self.0,
            &format!(
                "UPDATE refresh_tokens SET parent_id = NULL WHERE parent_id IN ({EXPIRED_TOKENS})"
            ),
            &args,
        )?;
        let delete = stmt(
            &self.0,
            &format!(
                "DELETE FROM refresh_tokens WHERE id IN ({EXPIRED_TOKENS}) RETURNING family_id"
            ),
            &args,
        )?;
        let results = self
            .0
            .batch(vec![unlink, delete])
            .await
            .map_err(|e| unavailable("purging refresh tokens", &e))?;
        let families: Vec<Family> = results
            .get(1)
            .map(worker::D1Result::results::<Family>)
            .transpose()
            .map_err(|e| unavailable("reading purged tokens", &e))?
            .unwrap_or_default();
        let mut ids: Vec<String> = families.into_iter().map(|f| f.family_id).collect();
        ids.sort();
        ids.dedup();
        if !ids.is_empty() {
            // A family left without tokens can never be used again.
            stmt(
                &self.0,
                "DELETE FROM refresh_families WHERE id IN (SELECT value FROM json_each(?1)) \
                 AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = refresh_families.id)",
                &[json_list(&ids)],
            )?
            .run()
            .await
            .map_err(|e| unavailable("purging emptied families", &e))?;
        }
        Ok(count(results.get(1).map_or(0, changes)))
    }

    async fn purge_dead_families(&self, before: i64, limit: u32) -> Result<u32, StoreError> {
        let r = stmt(
            &self.0,
            "DELETE FROM refresh_families WHERE id IN \
             (SELECT id FROM refresh_families WHERE revoked_at IS NOT NULL AND revoked_at < ?1 \
              ORDER BY revoked_at LIMIT ?2)",
            &[int(before), int(i64::from(limit))],
        )?
        .run()
        .await
        .map_err(|e| unavailable("purging families", &e))?;
        Ok(count(changes(&r)))
    }

    async fn discarded_packages(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<DiscardedPackage>, StoreError> {
        let rows: Vec<Package> = stmt(
            &self.0,
            "SELECT id, package_key FROM plugin_versions \
             WHERE status IN ('rejected', 'superseded') AND package_purged_at IS NULL \
               AND decided_at < ?1 ORDER BY decided_at LIMIT ?2",
            &[int(before), int(i64::from(limit))],
        )?
        .all()
        .await
        .and_then(|r| r.results())
        .map_err(|e| unavailable("reading discarded packages", &e))?;
        Ok(rows
            .into_iter()
            .map(|p| DiscardedPackage {
                version_id: p.id,
                key: p.package_key,
            })
            .collect())
    }

    async fn package_purged(&self, version_id: &str, now: i64) -> Result<(), StoreError> {
        stmt(
            &self.0,
            "UPDATE plugin_versions SET package_purged_at = ?1 WHERE id = ?2",
            &[int(now), text(version_id)],
        )?
        .run()
        .await
        .map_err(|e| unavailable("marking a purged package", &e))?;
        Ok(())
    }

    async fn packages_referenced(&self, keys: &[String]) -> Result<Vec<String>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<Key> = stmt(
            &self.0,
            "SELECT DISTINCT package_key FROM plugin_versions \
             WHERE package_purged_at IS NULL AND package_key IN (SELECT value FROM json_each(?1))",
            &[json_list(keys)],
        )?
        .all()
        .await
        .and_then(|r| r.results())
        .map_err(|e| unavailable("reading package references", &e))?;
        Ok(rows.into_iter().map(|k| k.package_key).collect())
    }

    async fn users_after(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError> {
        let rows: Vec<Id> = stmt(
            &self.0,
            "SELECT id FROM users WHERE (?1 IS NULL OR id > ?1) ORDER BY id LIMIT ?2",
            &[opt_text(after), int(i64::from(limit))],
        )?
        .all()
        .await
        .and_then(|r| r.results())
        .map_err(|e| unavailable("walking accounts", &e))?;
        Ok(rows
            .into_iter()
            .filter_map(|r| uuid::Uuid::parse_str(&r.id).ok().map(UserId))
            .collect())
    }

    async fn cursor(&self, job: &str) -> Result<Option<String>, StoreError> {
        stmt(
            &self.0,
            "SELECT cursor FROM housekeeping WHERE job = ?1",
            &[text(job)],
        )?
        .first::<Option<String>>(Some("cursor"))
        .await
        .map(Option::flatten)
        .map_err(|e| unavailable("reading a housekeeping cursor", &e))
    }

    async fn set_cursor(
        &self,
        job: &str,
        cursor: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        stmt(
            &self.0,
            "INSERT INTO housekeeping (job, cursor, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (job) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
            &[text(job), opt_text(cursor), int(now)],
        )?
        .run()
        .await
        .map_err(|e| unavailable("storing a housekeeping cursor", &e))?;
        Ok(())
    }
}

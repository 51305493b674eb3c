//! D1 adapters of what is global: accounts, sessions and tickets ([`accounts`]), billing
//! ([`billing`]), teams ([`teams`]) and the marketplace ([`plugins`]). Per-user state lives in the user's home.
//!
//! Facts pinned under `wrangler dev`: NULL must be bound as `JsValue::NULL`; integers above
//! i32 travel as f64 (exact to 2^53, enough for epoch ms); a unique violation is an
//! `Error::D1` whose text contains `UNIQUE constraint failed`; `db.batch` is one transaction.

mod accounts;
mod admin;
mod billing;
mod deletion;
mod export;
mod housekeeping;
mod plugins;
mod sso;
mod teams;

use std::rc::Rc;

pub use accounts::{
    D1AccountLoader, D1AccountTokenStore, D1MfaStore, D1RefreshTokenStore, D1SecurityLog,
    D1TicketStore, D1UserStore,
};
pub use admin::D1AdminStore;
pub use billing::D1BillingStore;
pub use deletion::D1DeletionStore;
pub use export::D1ExportStore;
pub use housekeeping::D1HousekeepingStore;
pub use plugins::{D1PluginAgents, D1PluginStore};
use shared::ports::StoreError;
pub use sso::D1SsoStore;
pub use teams::D1TeamStore;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

use super::{unavailable, Hops};

/// The D1 database, counting every statement it prepares in this request's [`Hops`].
pub struct Db {
    db: D1Database,
    hops: Rc<Hops>,
}

impl Db {
    /// `db`, counted in `hops`.
    pub fn new(db: D1Database, hops: Rc<Hops>) -> Self {
        Self { db, hops }
    }

    /// Runs `statements` as one transaction (each was counted when prepared).
    pub async fn batch(
        &self,
        statements: Vec<D1PreparedStatement>,
    ) -> worker::Result<Vec<D1Result>> {
        self.db.batch(statements).await
    }
}

#[allow(clippy::cast_precision_loss)]
pub(super) fn int(v: i64) -> JsValue {
    JsValue::from_f64(v as f64)
}

pub(super) fn text(v: impl AsRef<str>) -> JsValue {
    JsValue::from_str(v.as_ref())
}

pub(super) fn opt_text(v: Option<impl AsRef<str>>) -> JsValue {
    v.map_or(JsValue::NULL, text)
}

pub(super) fn is_unique_violation(e: &worker::Error) -> bool {
    let text = match e {
        worker::Error::D1(d1) => format!("{} {d1:?}", d1.cause()),
        other => other.to_string(),
    };
    text.contains("UNIQUE constraint failed")
}

pub(super) fn stmt(
    db: &Db,
    sql: &str,
    args: &[JsValue],
) -> Result<D1PreparedStatement, StoreError> {
    db.hops.d1();
    db.db
        .prepare(sql)
        .bind(args)
        .map_err(|e| unavailable("binding D1 statement", &e))
}

pub(super) fn changes(r: &D1Result) -> usize {
    r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0)
}

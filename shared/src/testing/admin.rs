//! Fake of the admin port: accounts, the audit log and payouts in memory.

use std::cell::RefCell;
use std::collections::HashMap;

use async_trait::async_trait;

use crate::domain::{Comp, Email, UserId};
use crate::ports::{AdminStore, AdminUserRow, AuditRecord, PayoutRecord, StoreError};

/// Accounts (with their admin view), entries and payouts in memory.
#[derive(Debug, Default)]
pub struct InMemoryAdminStore {
    /// Accounts by id.
    pub users: RefCell<HashMap<UserId, AdminUserRow>>,
    /// The audit log, oldest first.
    pub entries: RefCell<Vec<AuditRecord>>,
    /// Payout rows.
    pub payouts: RefCell<Vec<PayoutRecord>>,
    /// When set, every write fails (to show that a failed change records nothing).
    pub fail_writes: std::cell::Cell<bool>,
}

impl InMemoryAdminStore {
    fn write(&self) -> Result<(), StoreError> {
        if self.fail_writes.get() {
            return Err(StoreError::Unavailable("writes disabled".into()));
        }
        Ok(())
    }
}

#[async_trait(?Send)]
impl AdminStore for InMemoryAdminStore {
    async fn user_by_email(
        &self,
        email: &Email,
        _now_ms: i64,
    ) -> Result<Option<AdminUserRow>, StoreError> {
        Ok(self
            .users
            .borrow()
            .values()
            .find(|r| &r.user.email == email)
            .cloned())
    }
    async fn user_by_id(
        &self,
        id: UserId,
        _now_ms: i64,
    ) -> Result<Option<AdminUserRow>, StoreError> {
        Ok(self.users.borrow().get(&id).cloned())
    }
    async fn set_suspended(
        &self,
        id: UserId,
        at: Option<i64>,
        entry: &AuditRecord,
    ) -> Result<(), StoreError> {
        self.write()?;
        if let Some(row) = self.users.borrow_mut().get_mut(&id) {
            row.user.suspended_at = at.map(|at| row.user.suspended_at.unwrap_or(at));
        }
        self.entries.borrow_mut().push(entry.clone());
        Ok(())
    }
    async fn set_comp(
        &self,
        id: UserId,
        comp: Comp,
        entry: &AuditRecord,
    ) -> Result<(), StoreError> {
        self.write()?;
        if let Some(row) = self.users.borrow_mut().get_mut(&id) {
            row.comp = Some(comp);
        }
        self.entries.borrow_mut().push(entry.clone());
        Ok(())
    }
    async fn record(&self, entry: &AuditRecord) -> Result<(), StoreError> {
        self.write()?;
        self.entries.borrow_mut().push(entry.clone());
        Ok(())
    }
    async fn audit(&self, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        // Newest first; of entries made at the same time, the later one first.
        let mut all: Vec<AuditRecord> = self.entries.borrow().iter().rev().cloned().collect();
        all.sort_by_key(|e| std::cmp::Reverse(e.at));
        all.truncate(limit as usize);
        Ok(all)
    }
    async fn payouts(&self, months: u32) -> Result<Vec<PayoutRecord>, StoreError> {
        let rows = self.payouts.borrow().clone();
        let mut periods: Vec<String> = rows.iter().map(|r| r.period.clone()).collect();
        periods.sort_unstable_by(|a, b| b.cmp(a));
        periods.dedup();
        periods.truncate(months as usize);
        Ok(rows
            .into_iter()
            .filter(|r| periods.contains(&r.period))
            .collect())
    }
}

//! [`ModerationStore`] in memory: reports by target and reporter, flags on the user records, the audit record.

use async_trait::async_trait;

use crate::error::AppResult;
use crate::model::{AuditEntry, Report, ReportStatus, ReportTarget, Standing, UserId};
use crate::ports::{AuditKey, ModerationStore, RateLimit, ReportKey};

use super::InMemoryStore;

impl InMemoryStore {
    fn set_standing(&self, user_id: &UserId, change: impl FnOnce(&mut Standing)) -> bool {
        let mut state = self.lock();
        state.users.get_mut(user_id).map(|record| change(&mut record.standing)).is_some()
    }
}

#[async_trait]
impl ModerationStore for InMemoryStore {
    async fn create_report(&self, report: &Report, limit: &RateLimit) -> AppResult<bool> {
        let mut state = self.lock();
        let key = (report.target.to_string(), report.reporter_id.clone());
        if state.reports.contains_key(&key) {
            return Ok(false);
        }
        state.count(&report.reporter_id, limit)?;
        state.reports.insert(key, report.clone());
        Ok(true)
    }

    async fn open_reports(&self, after: Option<&ReportKey>, limit: usize) -> AppResult<Vec<Report>> {
        let state = self.lock();
        let order = |key: &ReportKey| (key.created_at.clone(), key.target.clone(), key.reporter_id.clone());
        let mut open: Vec<&Report> = state
            .reports
            .values()
            .filter(|r| r.status == ReportStatus::Open)
            .filter(|r| after.is_none_or(|a| order(&ReportKey::of(r)) > order(a)))
            .collect();
        open.sort_by_key(|r| order(&ReportKey::of(r)));
        Ok(open.into_iter().take(limit).cloned().collect())
    }

    async fn resolve_reports(
        &self,
        target: &ReportTarget,
        status: ReportStatus,
        _resolved_by: &UserId,
        _at: &str,
    ) -> AppResult<usize> {
        let mut state = self.lock();
        let target = target.to_string();
        let mut resolved = 0;
        for ((_, _), report) in
            state.reports.iter_mut().filter(|((t, _), r)| *t == target && r.status == ReportStatus::Open)
        {
            report.status = status;
            resolved += 1;
        }
        Ok(resolved)
    }

    async fn set_operator(&self, user_id: &UserId, operator: bool) -> AppResult<bool> {
        Ok(self.set_standing(user_id, |standing| standing.operator = operator))
    }

    async fn set_suspended(&self, user_id: &UserId, suspended: bool) -> AppResult<bool> {
        Ok(self.set_standing(user_id, |standing| standing.suspended = suspended))
    }

    async fn record_audit(&self, entry: &AuditEntry) -> AppResult<()> {
        self.lock().audit.push(entry.clone());
        Ok(())
    }

    async fn audit_entries(&self, month: &str, before: Option<&AuditKey>, limit: usize) -> AppResult<Vec<AuditEntry>> {
        let state = self.lock();
        let mut entries: Vec<&AuditEntry> = state
            .audit
            .iter()
            .filter(|e| e.month() == month)
            .filter(|e| before.is_none_or(|b| (&e.at, &e.id) < (&b.at, &b.id)))
            .collect();
        entries.sort_by(|a, b| (&b.at, &b.id).cmp(&(&a.at, &a.id)));
        Ok(entries.into_iter().take(limit).cloned().collect())
    }
}

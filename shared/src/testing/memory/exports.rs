//! [`ExportStore`] in memory: each user's latest export.

use async_trait::async_trait;

use crate::error::AppResult;
use crate::model::{ExportId, ExportRecord, ReadyExport, UserId};
use crate::ports::{Created, ExportStore};

use super::InMemoryStore;

#[async_trait]
impl ExportStore for InMemoryStore {
    async fn start_export(&self, record: &ExportRecord, fresh_after: &str) -> AppResult<Created<ExportRecord>> {
        let mut state = self.lock();
        match state.exports.get(&record.user_id) {
            Some(existing) if existing.requested_at.as_str() >= fresh_after => Ok(Created::Existing(existing.clone())),
            _ => {
                state.exports.insert(record.user_id.clone(), record.clone());
                Ok(Created::New(record.clone()))
            }
        }
    }

    async fn export_record(&self, user_id: &UserId) -> AppResult<Option<ExportRecord>> {
        Ok(self.lock().exports.get(user_id).cloned())
    }

    async fn finish_export(&self, user_id: &UserId, export_id: &ExportId, ready: &ReadyExport) -> AppResult<bool> {
        let mut state = self.lock();
        let Some(record) = state.exports.get_mut(user_id).filter(|r| r.export_id == *export_id) else {
            return Ok(false);
        };
        record.ready = Some(ready.clone());
        Ok(true)
    }

    async fn forget_export(&self, user_id: &UserId) -> AppResult<Option<ExportRecord>> {
        Ok(self.lock().exports.remove(user_id))
    }
}

//! [`UploadStore`] in memory.

use async_trait::async_trait;

use crate::error::AppResult;
use crate::model::{Processed, Upload, UploadId};
use crate::ports::UploadStore;

use super::InMemoryStore;

#[async_trait]
impl UploadStore for InMemoryStore {
    async fn create_upload(&self, upload: &Upload) -> AppResult<()> {
        self.lock().uploads.insert(upload.id.clone(), upload.clone());
        Ok(())
    }

    async fn get_upload(&self, id: &UploadId) -> AppResult<Option<Upload>> {
        Ok(self.lock().uploads.get(id).cloned())
    }

    async fn record_processed(&self, id: &UploadId, processed: &Processed) -> AppResult<Option<Upload>> {
        let mut state = self.lock();
        let Some(upload) = state.uploads.get_mut(id) else { return Ok(None) };
        upload.processed = Some(processed.clone());
        Ok(Some(upload.clone()))
    }

    async fn delete_upload(&self, id: &UploadId) -> AppResult<()> {
        self.lock().uploads.remove(id);
        Ok(())
    }
}

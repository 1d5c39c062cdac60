//! [`UploadStore`] over DynamoDB: one item per upload under its own partition (pattern #29). Attaching it to a
//! message is part of the message's transaction (`messages.rs`).

use async_trait::async_trait;

use super::items::{upload_from_item, upload_to_item};
use super::{DynamoDbStore, keys, s};
use crate::error::{AppError, AppResult};
use crate::model::{Processed, Upload, UploadId, now_epoch_seconds};
use crate::ports::UploadStore;

/// How long an upload nobody attached keeps its record: past the form's validity and the bucket's one-day
/// expiry of never-attached objects.
const UNATTACHED_RECORD_SECS: u64 = 2 * 24 * 3600;

#[async_trait]
impl UploadStore for DynamoDbStore {
    async fn create_upload(&self, upload: &Upload) -> AppResult<()> {
        let item = upload_to_item(upload, now_epoch_seconds() + UNATTACHED_RECORD_SECS);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await?;
        Ok(())
    }

    async fn get_upload(&self, id: &UploadId) -> AppResult<Option<Upload>> {
        self.get(keys::upload(id), keys::UPLOAD).await?.map(|item| upload_from_item(&item)).transpose()
    }

    async fn record_processed(&self, id: &UploadId, processed: &Processed) -> AppResult<Option<Upload>> {
        let json = serde_json::to_string(processed).map_err(AppError::internal)?;
        let update = self
            .client
            .update_item()
            .set_key(Some(Self::key(keys::upload(id), keys::UPLOAD)))
            // `processed` is a reserved word in expressions.
            .update_expression("SET #processed = :processed")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#processed", "processed")
            .expression_attribute_values(":processed", s(json));
        self.update_if(update).await?.map(|item| upload_from_item(&item)).transpose()
    }

    async fn delete_upload(&self, id: &UploadId) -> AppResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::upload(id), keys::UPLOAD)))
            .send()
            .await?;
        Ok(())
    }
}

//! [`ExportStore`] over DynamoDB (pattern #60): one item per user (`USER#<id>`, `PROFILE#EXPORT`) holding their
//! latest export; starting one is a conditional put, so requests at the same moment start one export.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use super::{DynamoDbStore, get_id, get_n, get_opt_s, get_s, id, keys, n, s, unless_refused};
use crate::error::{AppError, AppResult};
use crate::model::{ExportId, ExportRecord, ReadyExport, UserId, now_epoch_seconds};
use crate::ports::{Created, ExportStore};

/// An export record outlives its document (kept a day) by a day, then TTL deletes it.
const RECORD_TTL_SECS: u64 = 2 * 86_400;

fn export_from_item(item: &super::Item) -> AppResult<ExportRecord> {
    let ready = match get_opt_s(item, "readyAt") {
        Some(ready_at) => Some(ReadyExport { ready_at, size: get_n(item, "documentBytes")? }),
        None => None,
    };
    Ok(ExportRecord {
        user_id: get_id(item, "userId")?,
        export_id: get_id(item, "exportId")?,
        requested_at: get_s(item, "requestedAt")?,
        ready,
    })
}

#[async_trait]
impl ExportStore for DynamoDbStore {
    async fn start_export(&self, record: &ExportRecord, fresh_after: &str) -> AppResult<Created<ExportRecord>> {
        let mut item = Self::key(keys::user(&record.user_id), keys::EXPORT);
        item.insert("userId".into(), id(&record.user_id));
        item.insert("exportId".into(), id(&record.export_id));
        item.insert("requestedAt".into(), s(&record.requested_at));
        item.insert("ttl".into(), n(now_epoch_seconds() + RECORD_TTL_SECS));
        // A put that lost to a fresh export, then a read of that one; it can vanish in between (the account's
        // erasure forgets it), so the put is tried again.
        for _ in 0..3 {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(pk) OR requestedAt < :fresh")
                .expression_attribute_values(":fresh", s(fresh_after))
                .send()
                .await;
            if unless_refused(put)?.is_some() {
                return Ok(Created::New(record.clone()));
            }
            if let Some(existing) = self.export_record(&record.user_id).await? {
                return Ok(Created::Existing(existing));
            }
        }
        Err(AppError::internal("the export record kept changing"))
    }

    async fn export_record(&self, user_id: &UserId) -> AppResult<Option<ExportRecord>> {
        self.get(keys::user(user_id), keys::EXPORT).await?.as_ref().map(export_from_item).transpose()
    }

    async fn finish_export(&self, user_id: &UserId, export_id: &ExportId, ready: &ReadyExport) -> AppResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::user(user_id), keys::EXPORT)))
            .update_expression("SET readyAt = :at, documentBytes = :size")
            .condition_expression("exportId = :id")
            .expression_attribute_values(":at", s(&ready.ready_at))
            .expression_attribute_values(":size", n(ready.size))
            .expression_attribute_values(":id", id(export_id))
            .send()
            .await;
        Ok(unless_refused(result)?.is_some())
    }

    async fn forget_export(&self, user_id: &UserId) -> AppResult<Option<ExportRecord>> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::user(user_id), keys::EXPORT)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await?;
        out.attributes.filter(|item| !item.is_empty()).as_ref().map(export_from_item).transpose()
    }
}

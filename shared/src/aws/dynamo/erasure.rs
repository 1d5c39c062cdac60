//! [`ErasureStore`] over DynamoDB (patterns #57-#59): closing a deleted account in one transaction (username claim
//! freed, profile made a tombstone), and erasing the user's messages one conversation page at a time. There is
//! no index by sender: a page is a `Query` of the conversation's messages filtered on `senderId`, so erasing
//! reads each conversation's history once, whoever wrote it.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use futures_util::{StreamExt, TryStreamExt, stream};

use super::items::message_from_item;
use super::{DynamoDbStore, cancellation_codes, id, keys, n, s};
use crate::error::{AppError, AppResult};
use crate::model::{Conversation, DELETED_ACCOUNT, DELETED_CONTENT, Message, UserId};
use crate::ports::{ErasedPage, ErasureStore, username_key};

/// Message updates one erasure page keeps in flight.
const ERASES_IN_FLIGHT: usize = 16;

#[async_trait]
impl ErasureStore for DynamoDbStore {
    async fn tombstone_user(&self, user_id: &UserId, username: &str, at: &str) -> AppResult<bool> {
        let free_claim = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::username(&username_key(username)), keys::UNAME)))
            .condition_expression("userId = :me")
            .expression_attribute_values(":me", id(user_id))
            .build()?;
        let tombstone = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::user(user_id), keys::PROFILE)))
            .update_expression(
                "SET username = :deleted, deleted = :true, deletedAt = :at, passwordHash = :none \
                 REMOVE avatar, gsi1pk, gsi1sk, #operator",
            )
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(deleted) OR deleted = :false)")
            // `operator` is a reserved word.
            .expression_attribute_names("#operator", "operator")
            .expression_attribute_values(":deleted", s(DELETED_ACCOUNT))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(":none", s(""))
            .build()?;
        let writes = vec![
            TransactWriteItem::builder().delete(free_claim).build(),
            TransactWriteItem::builder().update(tombstone).build(),
        ];
        match self.transact(writes).await {
            Ok(()) => Ok(true),
            Err(e)
                if cancellation_codes(&e).is_some_and(|codes| codes.iter().any(|c| c == "ConditionalCheckFailed")) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn erase_messages(
        &self,
        conversation: &Conversation,
        sender: &UserId,
        after_seq: u64,
        limit: usize,
    ) -> AppResult<ErasedPage> {
        // `Limit` bounds the items read; the filter then keeps the sender's.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
            .filter_expression("senderId = :me")
            .expression_attribute_values(":pk", s(keys::conversation(&conversation.id)))
            .expression_attribute_values(":low", s(keys::message(after_seq.saturating_add(1))))
            .expression_attribute_values(":high", s(keys::message(u64::MAX)))
            .expression_attribute_values(":me", id(sender))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .consistent_read(true)
            .send()
            .await?;
        let scanned_through = match out.last_evaluated_key {
            Some(key) if !key.is_empty() => Some(seq_of_sort_key(&key)?),
            _ => None,
        };
        let found: Vec<Message> =
            out.items.unwrap_or_default().iter().map(message_from_item).collect::<AppResult<_>>()?;
        let at = crate::model::now_iso();
        let erasing: Vec<_> = found.iter().map(|message| self.erase_one(conversation, message, &at)).collect();
        stream::iter(erasing).buffer_unordered(ERASES_IN_FLIGHT).try_collect::<Vec<()>>().await?;
        Ok(ErasedPage { erased: found, scanned_through })
    }

    async fn delete_presence(&self, user_id: &UserId) -> AppResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::user(user_id), keys::PRESENCE)))
            .send()
            .await?;
        Ok(())
    }
}

/// The seq of a message sort key (`MSG#<20 digits>`) in a `LastEvaluatedKey`.
fn seq_of_sort_key(key: &super::Item) -> AppResult<u64> {
    let sort_key = super::get_s(key, "sk")?;
    sort_key
        .strip_prefix("MSG#")
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| AppError::internal(format!("unexpected sort key {sort_key} in an erasure page")))
}

impl DynamoDbStore {
    /// Erases one message; when it is the conversation's newest, its `lastMessage` copy too.
    async fn erase_one(&self, conversation: &Conversation, message: &Message, at: &str) -> AppResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(&conversation.id), keys::message(message.seq))))
            .update_expression(
                "SET content = :content, deleted = :true, deletedAt = if_not_exists(deletedAt, :at), \
                 senderName = :deleted REMOVE senderAvatar, fileUrl, fileName, attachment",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":content", s(DELETED_CONTENT))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(":deleted", s(DELETED_ACCOUNT))
            .send()
            .await?;
        if message.seq != conversation.last_seq {
            return Ok(());
        }
        let last = serde_json::to_string(&message.clone().erased(at)).map_err(AppError::internal)?;
        let refreshed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(&conversation.id), keys::META)))
            .update_expression("SET lastMessage = :last")
            .condition_expression("lastSeq = :seq")
            .expression_attribute_values(":last", s(last))
            .expression_attribute_values(":seq", n(message.seq))
            .send()
            .await;
        match refreshed {
            // A newer message came meanwhile: its copy is the one to keep.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            other => other.map(|_| ()).map_err(Into::into),
        }
    }
}

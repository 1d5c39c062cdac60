//! [`ErasureStore`] over DynamoDB (patterns #57-#59): closing a deleted account in one transaction (username claim
//! freed, profile made a tombstone), and erasing the user's messages one conversation page at a time (a page of
//! [`MessageStore::sent_messages`], then one update per message).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use futures_util::{StreamExt, TryStreamExt, stream};

use super::{DynamoDbStore, cancellation_codes, id, keys, s, unless_refused};
use crate::error::AppResult;
use crate::model::{Conversation, ConversationId, DELETED_ACCOUNT, DELETED_CONTENT, Message, UserId};
use crate::ports::PushStore;
use crate::ports::{ErasureStore, MessageStore, SenderPage, username_key};

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
    ) -> AppResult<SenderPage> {
        let page = self.sent_messages(&conversation.id, sender, after_seq, limit).await?;
        let at = crate::model::now_iso();
        let erasing: Vec<_> = page.messages.iter().map(|message| self.erase_one(conversation, message, &at)).collect();
        stream::iter(erasing).buffer_unordered(ERASES_IN_FLIGHT).try_collect::<Vec<()>>().await?;
        Ok(page)
    }

    async fn close_for_deleted_member(&self, conversation_id: &ConversationId, deleted: &UserId) -> AppResult<()> {
        let closed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(conversation_id), keys::META)))
            .update_expression("SET deletedMember = :deleted")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":deleted", id(deleted))
            .send()
            .await;
        // Refused: gone already, nothing to close.
        unless_refused(closed).map(drop)
    }

    async fn delete_presence(&self, user_id: &UserId) -> AppResult<()> {
        let subscriptions = self.push_subscriptions(user_id).await?;
        let keys = subscriptions.iter().map(|sub| Self::key(keys::user(user_id), keys::push(&sub.id))).collect();
        self.batch_delete(keys).await?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::user(user_id), keys::PRESENCE)))
            .send()
            .await?;
        Ok(())
    }
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
        self.refresh_last_message(&message.clone().erased(at)).await
    }
}

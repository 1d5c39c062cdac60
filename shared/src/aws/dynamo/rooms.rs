//! [`RoomStore`] over DynamoDB: a `JOIN#` item per connection that opened a conversation (remembered on the
//! connection record for cleanup) and a typing slot per user and conversation (patterns #24-#26).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::{DynamoDbStore, get_id, get_n, id, keys, n, unless_refused};
use crate::error::{AppError, AppResult};
use crate::model::{Connection, ConnectionId, ConversationId, LiveConnection, UserId};
use crate::ports::RoomStore;

#[async_trait]
impl RoomStore for DynamoDbStore {
    async fn join(&self, connection: &Connection, conversation_id: &ConversationId) -> AppResult<()> {
        let connection_id = &connection.connection_id;
        let mut item = Self::key(keys::conversation(conversation_id), keys::joined(connection_id));
        item.insert("connectionId".into(), id(connection_id));
        item.insert("userId".into(), id(&connection.user_id));
        item.insert("connectedAt".into(), n(connection.connected_at));
        item.insert("ttl".into(), n(connection.expires_at));
        // The connection remembers its rooms so that closing it can clean them up.
        let remember = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::connection(connection_id), keys::CONN)))
            .update_expression("ADD rooms :room")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":room", AttributeValue::Ss(vec![conversation_id.to_string()]))
            .build()?;
        let items = vec![self.put(item, false)?, TransactWriteItem::builder().update(remember).build()];
        if self.transact_unless_raced(items).await? {
            Ok(())
        } else {
            Err(AppError::Unauthorized("connection is not registered, reconnect"))
        }
    }

    async fn leave(&self, connection_id: &ConnectionId, conversation_id: &ConversationId) -> AppResult<()> {
        let forget = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::connection(connection_id), keys::CONN)))
            .update_expression("DELETE rooms :room")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":room", AttributeValue::Ss(vec![conversation_id.to_string()]))
            .build()?;
        let items = vec![
            self.delete(keys::conversation(conversation_id), &keys::joined(connection_id))?,
            TransactWriteItem::builder().update(forget).build(),
        ];
        self.transact_unless_raced(items).await.map(drop)
    }

    async fn leave_all(&self, connection_id: &ConnectionId) -> AppResult<()> {
        let Some(item) = self.get(keys::connection(connection_id), keys::CONN).await? else { return Ok(()) };
        let rooms = match item.get("rooms") {
            Some(AttributeValue::Ss(rooms)) => rooms.clone(),
            _ => return Ok(()),
        };
        let keys = rooms.iter().map(|room| Self::key(keys::conversation(room), keys::joined(connection_id))).collect();
        self.batch_delete(keys).await
    }

    async fn forget_member(&self, conversation_id: &ConversationId, user_id: &UserId) -> AppResult<()> {
        let theirs: Vec<super::Item> = self
            .live_items(keys::conversation(conversation_id), keys::JOIN_PREFIX)
            .await?
            .into_iter()
            .filter(|item| super::get_opt_s(item, "userId").as_deref() == Some(user_id.as_str()))
            .filter_map(|item| super::get_opt_s(&item, "sk"))
            .map(|sk| Self::key(keys::conversation(conversation_id), sk))
            .collect();
        self.batch_delete(theirs).await
    }

    async fn joined(&self, conversation_id: &ConversationId) -> AppResult<Vec<(UserId, LiveConnection)>> {
        self.live_items(keys::conversation(conversation_id), keys::JOIN_PREFIX)
            .await?
            .iter()
            .map(|item| {
                let connection = LiveConnection {
                    connection_id: ConnectionId::new(super::get_s(item, "connectionId")?),
                    connected_at: get_n(item, "connectedAt")?,
                    expires_at: get_n(item, "ttl")?,
                };
                Ok((get_id(item, "userId")?, connection))
            })
            .collect()
    }

    async fn claim_typing(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        now_ms: u64,
        window_ms: u64,
    ) -> AppResult<bool> {
        let mut item = Self::key(keys::conversation(conversation_id), keys::typing(user_id));
        item.insert("at".into(), n(now_ms));
        item.insert("ttl".into(), n(now_ms / 1000 + 60));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #at <= :cutoff")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":cutoff", n(now_ms.saturating_sub(window_ms)))
            .send()
            .await;
        Ok(unless_refused(result)?.is_some())
    }

    async fn release_typing(&self, conversation_id: &ConversationId, user_id: &UserId) -> AppResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(conversation_id), keys::typing(user_id))))
            .send()
            .await?;
        Ok(())
    }
}

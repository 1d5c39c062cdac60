//! [`ConversationStore`] over DynamoDB: `META` per conversation (with its member set), a membership item per
//! member under the user (read pointer), and a claim per private pair (patterns #9-#11, #17, #29-#31).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};

use super::items::{conversation_from_item, kind_str};
use super::{DynamoDbStore, cancellation_codes, failed_condition, get_id, get_n_or_zero, id, id_set, keys, n, s};
use crate::error::{AppError, AppResult};
use crate::model::{Conversation, ConversationId, UserId};
use crate::ports::{ConversationChanges, ConversationStore, Created, Membership};

#[async_trait]
impl ConversationStore for DynamoDbStore {
    async fn create_conversation(&self, c: &Conversation) -> AppResult<Created<Conversation>> {
        let mut meta = Self::key(keys::conversation(&c.id), keys::META);
        meta.insert("conversationId".into(), id(&c.id));
        meta.insert("type".into(), s(kind_str(c.kind)));
        if let Some(name) = &c.name {
            meta.insert("name".into(), s(name));
        }
        if let Some(avatar) = &c.avatar {
            meta.insert("avatar".into(), s(avatar));
        }
        meta.insert("members".into(), id_set(&c.member_ids));
        meta.insert("createdBy".into(), id(&c.created_by));
        meta.insert("createdAt".into(), s(&c.created_at));
        meta.insert("updatedAt".into(), s(&c.updated_at));
        meta.insert("lastSeq".into(), n(c.last_seq));

        let pair_key = c.private_pair_key();
        let mut items = Vec::with_capacity(c.member_ids.len() + 2);
        if let Some(pair) = &pair_key {
            let mut claim = Self::key(keys::pair(pair), keys::PAIR);
            claim.insert("conversationId".into(), id(&c.id));
            items.push(self.put(claim, true)?);
        }
        items.push(self.put(meta, true)?);
        for member in &c.member_ids {
            let mut membership = Self::key(keys::user(member), keys::conversation(&c.id));
            membership.insert("conversationId".into(), id(&c.id));
            membership.insert("joinedAt".into(), s(&c.created_at));
            membership.insert("lastReadSeq".into(), n(0));
            items.push(self.put(membership, false)?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(Created::New(c.clone())),
            Err(e) if pair_key.is_some() && cancellation_codes(&e).is_some_and(|codes| failed_condition(&codes, 0)) => {
                let pair = pair_key.expect("checked");
                let claim = self
                    .get(keys::pair(&pair), keys::PAIR)
                    .await?
                    .ok_or_else(|| AppError::internal("pair claim vanished after a failed condition"))?;
                let existing = self
                    .get_conversation(&get_id(&claim, "conversationId")?)
                    .await?
                    .ok_or_else(|| AppError::internal("pair claim points at a missing conversation"))?;
                Ok(Created::Existing(existing))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn get_conversation(&self, conversation_id: &ConversationId) -> AppResult<Option<Conversation>> {
        self.get(keys::conversation(conversation_id), keys::META)
            .await?
            .map(|item| conversation_from_item(&item))
            .transpose()
    }

    async fn get_conversations(&self, ids: &[ConversationId]) -> AppResult<Vec<Conversation>> {
        let ids: std::collections::BTreeSet<&ConversationId> = ids.iter().collect();
        let keys = ids.into_iter().map(|id| Self::key(keys::conversation(id), keys::META)).collect();
        self.batch_get(keys, None).await?.iter().map(conversation_from_item).collect()
    }

    async fn memberships(&self, user_id: &UserId) -> AppResult<Vec<Membership>> {
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::user(user_id)))
            .expression_attribute_values(":prefix", s(keys::CONV_PREFIX))
            .projection_expression("conversationId, lastReadSeq")
            .consistent_read(true);
        self.query_all(query, None, None)
            .await?
            .iter()
            .map(|item| {
                Ok(Membership {
                    conversation_id: get_id(item, "conversationId")?,
                    last_read_seq: get_n_or_zero(item, "lastReadSeq"),
                })
            })
            .collect()
    }

    async fn membership(&self, user_id: &UserId, conversation_id: &ConversationId) -> AppResult<Option<Membership>> {
        let item = self.get(keys::user(user_id), &keys::conversation(conversation_id)).await?;
        Ok(item.map(|item| Membership {
            conversation_id: conversation_id.clone(),
            last_read_seq: get_n_or_zero(&item, "lastReadSeq"),
        }))
    }

    async fn members_of(&self, conversation_ids: &[ConversationId]) -> AppResult<Vec<UserId>> {
        let keys = conversation_ids.iter().map(|id| Self::key(keys::conversation(id), keys::META)).collect();
        let mut members = std::collections::BTreeSet::new();
        for item in self.batch_get(keys, Some("members")).await? {
            if let Some(AttributeValue::Ss(ids)) = item.get("members") {
                members.extend(ids.iter().filter_map(|id| UserId::parse(id).ok()));
            }
        }
        Ok(members.into_iter().collect())
    }

    async fn update_conversation(
        &self,
        conversation_id: &ConversationId,
        actor_id: &UserId,
        changes: &ConversationChanges,
        updated_at: &str,
    ) -> AppResult<Option<Conversation>> {
        let mut set = vec!["updatedAt = :now"];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(conversation_id), keys::META)))
            .condition_expression("contains(members, :actor) AND #type = :group")
            .expression_attribute_names("#type", "type")
            .expression_attribute_values(":actor", id(actor_id))
            .expression_attribute_values(":group", s("group"))
            .expression_attribute_values(":now", s(updated_at))
            .return_values(ReturnValue::AllNew);
        if let Some(name) = &changes.name {
            set.push("#name = :name");
            update = update.expression_attribute_names("#name", "name").expression_attribute_values(":name", s(name));
        }
        if let Some(avatar) = &changes.avatar {
            set.push("avatar = :avatar");
            update = update.expression_attribute_values(":avatar", s(avatar));
        }
        match update.update_expression(format!("SET {}", set.join(", "))).send().await {
            Ok(out) => conversation_from_item(&out.attributes.unwrap_or_default()).map(Some),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn add_members(
        &self,
        conversation: &Conversation,
        actor_id: &UserId,
        new_ids: &[UserId],
        max_members: usize,
        now: &str,
    ) -> AppResult<Option<Conversation>> {
        let room = max_members.saturating_sub(new_ids.len()) as u64;
        let grow = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(&conversation.id), keys::META)))
            .update_expression("ADD members :new SET updatedAt = :now")
            .condition_expression("contains(members, :actor) AND size(members) <= :room")
            .expression_attribute_values(":new", id_set(new_ids))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":actor", id(actor_id))
            .expression_attribute_values(":room", n(room))
            .build()?;
        let mut items = vec![TransactWriteItem::builder().update(grow).build()];
        for user_id in new_ids {
            let mut membership = Self::key(keys::user(user_id), keys::conversation(&conversation.id));
            membership.insert("conversationId".into(), id(&conversation.id));
            membership.insert("joinedAt".into(), s(now));
            membership.insert("lastReadSeq".into(), n(conversation.last_seq));
            // A concurrent add of the same user fails here instead of resetting their read pointer.
            items.push(self.put(membership, true)?);
        }
        if !self.transact_unless_raced(items).await? {
            return Ok(None);
        }
        self.get_conversation(&conversation.id).await
    }

    async fn remove_member(
        &self,
        conversation_id: &ConversationId,
        actor_id: &UserId,
        user_id: &UserId,
        now: &str,
    ) -> AppResult<Option<Conversation>> {
        let shrink = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(conversation_id), keys::META)))
            .update_expression("DELETE members :gone SET updatedAt = :now")
            .condition_expression("contains(members, :actor) AND contains(members, :user)")
            .expression_attribute_values(":gone", id_set([user_id]))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":actor", id(actor_id))
            .expression_attribute_values(":user", id(user_id))
            .build()?;
        let items = vec![
            TransactWriteItem::builder().update(shrink).build(),
            self.delete(keys::user(user_id), &keys::conversation(conversation_id))?,
        ];
        if !self.transact_unless_raced(items).await? {
            return Ok(None);
        }
        self.get_conversation(conversation_id).await
    }
}

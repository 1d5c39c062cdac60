//! [`QueryStore`](super::QueryStore) over DynamoDB: access patterns #4, #15-#17 and the group membership writes of
//! docs/data-model.md. Every read is a `GetItem`, `BatchGetItem` or `Query` on a key; nothing scans.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};

use super::dynamo::{
    DynamoDbStore, Item, conversation_from_item, get_opt_s, get_s, keys, message_from_item, n, s, user_from_item,
};
use super::queries::{ConversationChanges, Membership, SeqRange, UserKey};
use super::{ConversationStore, QueryStore};
use crate::error::{AppError, AppResult};
use crate::model::{Conversation, Message, User};

const MEMBERSHIP_PREFIX: &str = "CONV#";
const USER_INDEX: &str = "gsi1";
/// Profile attributes a client may see; the index projects everything, including the password hash.
const PUBLIC_PROFILE: &str = "userId, username, avatar, createdAt";

/// Bounds of the reaction items of one message, `RX#<seq>#<emoji>#<userId>` (written by the reaction use case).
/// `~` sorts after `#`, so `reaction_bound(seq) + "~"` is above every reaction of `seq`.
fn reaction_bound(seq: u64) -> String {
    format!("RX#{seq:020}")
}

fn reaction_seq(sk: &str) -> Option<u64> {
    sk.strip_prefix("RX#")?.get(..20)?.parse().ok()
}

/// A number attribute that older items may lack (a membership written before read pointers existed reads 0).
fn get_n_or_zero(item: &Item, name: &str) -> u64 {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
        _ => 0,
    }
}

impl DynamoDbStore {
    /// One `Query` over the reaction items of `messages` (adjacent seqs of one conversation), folded into each
    /// message's `reactions`. Reactions sort by emoji, then user, so the folded lists are stable.
    async fn attach_reactions(&self, conversation_id: &str, messages: &mut [Message]) -> AppResult<()> {
        let (Some(low), Some(high)) = (messages.iter().map(|m| m.seq).min(), messages.iter().map(|m| m.seq).max())
        else {
            return Ok(());
        };
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
            .expression_attribute_values(":pk", s(keys::conversation(conversation_id)))
            .expression_attribute_values(":low", s(reaction_bound(low)))
            .expression_attribute_values(":high", s(format!("{}~", reaction_bound(high))))
            .projection_expression("sk, emoji, userId")
            .consistent_read(true);
        for item in self.query_all(query, None, None).await? {
            let (Some(seq), Some(emoji), Some(user_id)) =
                (reaction_seq(&get_s(&item, "sk")?), get_opt_s(&item, "emoji"), get_opt_s(&item, "userId"))
            else {
                continue;
            };
            if let Some(message) = messages.iter_mut().find(|m| m.seq == seq) {
                message.reactions.entry(emoji).or_default().push(user_id);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl QueryStore for DynamoDbStore {
    async fn search_users(&self, prefix: &str, after: Option<&UserKey>, limit: usize) -> AppResult<Vec<User>> {
        let shard = keys::username_shard(prefix);
        // The start key of an index query names the index key and the table key of the last item.
        let start = after.map(|a| {
            let mut key = Self::key(keys::user(&a.id), keys::PROFILE);
            key.insert("gsi1pk".into(), s(&shard));
            key.insert("gsi1sk".into(), s(&a.name));
            key
        });
        let query = self
            .client
            .query()
            .index_name(USER_INDEX)
            .key_condition_expression("gsi1pk = :shard AND begins_with(gsi1sk, :prefix)")
            .expression_attribute_values(":shard", s(&shard))
            .expression_attribute_values(":prefix", s(prefix))
            .projection_expression(PUBLIC_PROFILE);
        self.query_all(query, start, Some(limit)).await?.iter().map(user_from_item).collect()
    }

    async fn memberships(&self, user_id: &str) -> AppResult<Vec<Membership>> {
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::user(user_id)))
            .expression_attribute_values(":prefix", s(MEMBERSHIP_PREFIX))
            .projection_expression("conversationId, lastReadSeq")
            .consistent_read(true);
        self.query_all(query, None, None)
            .await?
            .iter()
            .map(|item| {
                Ok(Membership {
                    conversation_id: get_s(item, "conversationId")?,
                    last_read_seq: get_n_or_zero(item, "lastReadSeq"),
                })
            })
            .collect()
    }

    async fn membership(&self, user_id: &str, conversation_id: &str) -> AppResult<Option<Membership>> {
        let item = self.get(keys::user(user_id), &keys::conversation(conversation_id)).await?;
        Ok(item.map(|item| Membership {
            conversation_id: conversation_id.to_owned(),
            last_read_seq: get_n_or_zero(&item, "lastReadSeq"),
        }))
    }

    async fn get_conversations(&self, ids: &[String]) -> AppResult<Vec<Conversation>> {
        let mut ids: Vec<&String> = ids.iter().collect();
        ids.sort();
        ids.dedup();
        let keys = ids.into_iter().map(|id| Self::key(keys::conversation(id), keys::META)).collect();
        self.batch_get(keys, None).await?.iter().map(conversation_from_item).collect()
    }

    async fn messages(&self, conversation_id: &str, range: SeqRange, limit: usize) -> AppResult<Vec<Message>> {
        // Bounded on both sides: the partition also holds META, send dedupe keys, reactions and typing items.
        let (low, high, forward) = match range {
            SeqRange::Before(before) if before > 1 => (1, before - 1, false),
            SeqRange::After(after) if after < u64::MAX => (after + 1, u64::MAX, true),
            _ => return Ok(Vec::new()),
        };
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
            .expression_attribute_values(":pk", s(keys::conversation(conversation_id)))
            .expression_attribute_values(":low", s(keys::message(low)))
            .expression_attribute_values(":high", s(keys::message(high)))
            .scan_index_forward(forward)
            .consistent_read(true);
        let mut messages: Vec<Message> =
            self.query_all(query, None, Some(limit)).await?.iter().map(message_from_item).collect::<AppResult<_>>()?;
        self.attach_reactions(conversation_id, &mut messages).await?;
        Ok(messages)
    }

    async fn update_conversation(
        &self,
        conversation_id: &str,
        actor_id: &str,
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
            .expression_attribute_values(":actor", s(actor_id))
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
            Err(e) => Err(AppError::internal(e)),
        }
    }

    async fn add_members(
        &self,
        conversation: &Conversation,
        actor_id: &str,
        new_ids: &[String],
        max_members: usize,
        now: &str,
    ) -> AppResult<Option<Conversation>> {
        let room = max_members.saturating_sub(new_ids.len()) as u64;
        let grow = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(&conversation.id), keys::META)))
            .update_expression("ADD members :new SET updatedAt = :now")
            .condition_expression("contains(members, :actor) AND size(members) <= :room")
            .expression_attribute_values(":new", AttributeValue::Ss(new_ids.to_vec()))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":actor", s(actor_id))
            .expression_attribute_values(":room", n(room))
            .build()
            .map_err(AppError::internal)?;
        let mut items = vec![TransactWriteItem::builder().update(grow).build()];
        for user_id in new_ids {
            let mut membership = Self::key(keys::user(user_id), keys::conversation(&conversation.id));
            membership.insert("conversationId".into(), s(&conversation.id));
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
        conversation_id: &str,
        actor_id: &str,
        user_id: &str,
        now: &str,
    ) -> AppResult<Option<Conversation>> {
        let shrink = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(conversation_id), keys::META)))
            .update_expression("DELETE members :gone SET updatedAt = :now")
            .condition_expression("contains(members, :actor) AND contains(members, :user)")
            .expression_attribute_values(":gone", AttributeValue::Ss(vec![user_id.to_owned()]))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":actor", s(actor_id))
            .expression_attribute_values(":user", s(user_id))
            .build()
            .map_err(AppError::internal)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaction_keys_bracket_exactly_their_messages() {
        let low = reaction_bound(7);
        let high = format!("{}~", reaction_bound(9));
        for inside in ["RX#00000000000000000007#👍#u1", "RX#00000000000000000009#zzz#zzzz"] {
            assert!(low.as_str() <= inside && inside <= high.as_str(), "{inside}");
        }
        for outside in ["RX#00000000000000000006#👍#u1", "RX#00000000000000000010#a#b", "MSG#00000000000000000008"] {
            assert!(!(low.as_str() <= outside && outside <= high.as_str()), "{outside}");
        }
        assert_eq!(reaction_seq("RX#00000000000000000042#👍#u1"), Some(42));
        assert_eq!(reaction_seq("MSG#00000000000000000042"), None);
        assert_eq!(reaction_seq("RX#42"), None);
    }
}

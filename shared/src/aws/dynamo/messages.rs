//! [`MessageStore`] over DynamoDB: messages under their conversation's partition by `seq`, the send dedupe keys,
//! reactions as items, read pointers on the memberships, and one user's messages and reactions (patterns #12-#16,
//! #18, #19, #28, #58, #61, #62).

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use futures_util::{StreamExt, TryStreamExt, stream};

use super::items::{attachment_value, message_from_item, message_to_item};
use super::{
    DynamoDbStore, cancellation_codes, contended, failed_condition, get_n, get_n_or_zero, get_opt_s, get_s,
    held_by_another_transaction, id, keys, n, s, unless_refused,
};
use crate::error::{AppError, AppResult};
use crate::model::{
    Attachment, AttachmentStatus, Conversation, ConversationId, DELETED_CONTENT, Message, NOT_MEMBERS_MENTIONED,
    NewMessage, UserId, now_epoch_seconds, now_iso,
};
use crate::ports::{Appended, ConversationStore, Created, MessageStore, RateLimit, SenderPage, SeqRange};
use crate::retry;

/// How long an append keeps retrying after another writer took the same `seq` first. Counted in time, not
/// attempts: with dozens of senders landing on one conversation at the same instant, one wins per round, so the
/// last needs as many rounds as there are writers. Well inside the function's 15 s timeout.
const APPEND_RACE_BUDGET: Duration = Duration::from_secs(6);
/// Memberships written at once when a deleted message's mentions are forgotten.
const MENTIONS_IN_FLIGHT: usize = 16;

/// Bounds of the reaction items of one message, `RX#<seq>#<emoji>#<userId>`. `~` sorts after `#`, so
/// `reaction_bound(seq) + "~"` is above every reaction of `seq`.
fn reaction_bound(seq: u64) -> String {
    format!("RX#{seq:020}")
}

fn reaction_seq(sk: &str) -> Option<u64> {
    sk.strip_prefix("RX#")?.get(..20)?.parse().ok()
}

#[async_trait]
impl MessageStore for DynamoDbStore {
    async fn append_message(
        &self,
        conversation: &Conversation,
        new: NewMessage,
        limit: &RateLimit,
    ) -> AppResult<Option<Created<Appended>>> {
        /// The transaction item that moves the sender's read pointer, which exists only for a member.
        const MEMBERSHIP: usize = 2;
        let started = Instant::now();
        let mut conversation = conversation.clone();
        for attempt in 0.. {
            let roster = conversation.roster.clone();
            let seq = conversation.last_seq + 1;
            let message = new.clone().into_message(seq, now_iso());
            let last_message = serde_json::to_string(&message).map_err(AppError::internal)?;

            // Item 0 takes the next seq only if nobody else did; item 2 moves the sender's read pointer only if
            // they are (still) a member; item 3 claims the client's idempotency key. Any of them failing cancels
            // the write. Membership comes before the claim, so it is judged first (see `append_message`).
            let advance = Update::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(keys::conversation(&new.conversation_id), keys::META)))
                .update_expression("SET lastSeq = :seq, updatedAt = :now, lastMessage = :last")
                .condition_expression("lastSeq = :prev")
                .expression_attribute_values(":seq", n(seq))
                .expression_attribute_values(":prev", n(conversation.last_seq))
                .expression_attribute_values(":now", s(&message.created_at))
                .expression_attribute_values(":last", s(last_message))
                .build()?;
            // Whoever sends has read everything up to their own message.
            let sender_read = Update::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(keys::user(&new.sender.id), keys::conversation(&new.conversation_id))))
                .update_expression("SET lastReadSeq = :seq")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":seq", n(seq))
                .build()?;
            let mut items = vec![
                TransactWriteItem::builder().update(advance).build(),
                self.put(message_to_item(&message), true)?,
                TransactWriteItem::builder().update(sender_read).build(),
            ];
            let claim_index = items.len();
            if let Some(cmid) = &new.client_message_id {
                let mut claim =
                    Self::key(keys::conversation(&new.conversation_id), keys::client_message(&new.sender.id, cmid));
                claim.insert("seq".into(), n(seq));
                items.push(self.put(claim, true)?);
            }
            let attach_index = items.len();
            if let Some(attachment) = &new.attachment {
                items.push(TransactWriteItem::builder().update(self.attach_update(&message, attachment)?).build());
            }
            // The sender's send budget, counted only if the message is stored.
            let now = now_epoch_seconds();
            let rate_index = items.len();
            items.push(TransactWriteItem::builder().update(self.rate_update(&new.sender.id, limit, now)?).build());
            // Each mentioned member's unread mentions, only if they are a member: a large group's roster is not
            // on `META`, so this condition is what checks them there.
            let mentions = items.len()..items.len() + new.mentioned_others().count();
            for mentioned in new.mentioned_others() {
                let mention = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(keys::user(mentioned), keys::conversation(&new.conversation_id))))
                    .update_expression("ADD mentionSeqs :seq")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":seq", AttributeValue::Ns(vec![seq.to_string()]))
                    .build()?;
                items.push(TransactWriteItem::builder().update(mention).build());
            }

            let Err(e) = self.transact(items).await else {
                return Ok(Some(Created::New(Appended { message, roster })));
            };
            let Some(codes) = cancellation_codes(&e) else { return Err(e.into()) };
            if failed_condition(&codes, MEMBERSHIP) {
                return Ok(None);
            }
            if let Some(cmid) = new.client_message_id.as_deref().filter(|_| failed_condition(&codes, claim_index)) {
                let claim = self
                    .get(keys::conversation(&new.conversation_id), &keys::client_message(&new.sender.id, cmid))
                    .await?
                    .ok_or_else(|| AppError::internal("client message claim vanished"))?;
                let original = self
                    .get_message(&new.conversation_id, get_n(&claim, "seq")?)
                    .await?
                    .ok_or_else(|| AppError::internal("client message claim points at a missing message"))?;
                return Ok(Some(Created::Existing(Appended { message: original, roster })));
            }
            if new.attachment.is_some() && failed_condition(&codes, attach_index) {
                return Err(AppError::Conflict("the upload changed or is attached already"));
            }
            if failed_condition(&codes, rate_index) {
                return Err(limit.exceeded(now));
            }
            if mentions.clone().any(|index| failed_condition(&codes, index)) {
                return Err(AppError::Validation(NOT_MEMBERS_MENTIONED.into()));
            }
            // Another writer took this seq, or held one of the items (the sender's read pointer included).
            let raced =
                contended(&codes, 0) || contended(&codes, 1) || codes.iter().any(|code| code == "TransactionConflict");
            if !raced {
                return Err(e.into());
            }
            if started.elapsed() > APPEND_RACE_BUDGET {
                break;
            }
            tracing::debug!(attempt, conversation_id = %new.conversation_id, "seq contention, retrying");
            retry::pause(attempt.min(4) + 1).await;
            // Only a conversation deleted meanwhile is missing; its sender is no member of anything.
            let Some(current) = self.get_conversation(&new.conversation_id).await? else { return Ok(None) };
            conversation = current;
        }
        // Only a conversation receiving far more messages per second than its store can order gets here.
        tracing::warn!(conversation_id = %new.conversation_id, "append lost the seq race for the whole budget");
        Err(AppError::BUSY)
    }

    async fn set_attachment(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        attachment: &Attachment,
    ) -> AppResult<Option<Message>> {
        let update = self
            .client
            .update_item()
            .set_key(Some(Self::key(keys::conversation(conversation_id), keys::message(seq))))
            .update_expression("SET attachment = :attachment")
            .condition_expression("attribute_exists(pk) AND deleted = :false")
            .expression_attribute_values(":attachment", attachment_value(attachment))
            .expression_attribute_values(":false", AttributeValue::Bool(false));
        self.update_if(update).await?.map(|item| message_from_item(&item)).transpose()
    }

    async fn get_message(&self, conversation_id: &ConversationId, seq: u64) -> AppResult<Option<Message>> {
        self.get(keys::conversation(conversation_id), &keys::message(seq))
            .await?
            .map(|item| message_from_item(&item))
            .transpose()
    }

    async fn edit_message(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        editor_id: &UserId,
        content: &str,
        at: &str,
    ) -> AppResult<Message> {
        let update = "SET content = :content, edited = :true, editedAt = :at";
        let values = [(":content", s(content)), (":at", s(at))];
        self.change_message(conversation_id, seq, Some(editor_id), update, &values).await
    }

    async fn delete_message(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        sender: Option<&UserId>,
        at: &str,
    ) -> AppResult<Message> {
        let update = "SET content = :content, deleted = :true, deletedAt = :at REMOVE fileUrl, fileName, attachment";
        self.change_message(conversation_id, seq, sender, update, &[(":content", s(DELETED_CONTENT)), (":at", s(at))])
            .await
    }

    async fn add_reaction(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        user_id: &UserId,
        emoji: &str,
    ) -> AppResult<bool> {
        let mut item = Self::key(keys::conversation(conversation_id), keys::reaction(seq, emoji, user_id));
        item.insert("seq".into(), n(seq));
        item.insert("emoji".into(), s(emoji));
        item.insert("userId".into(), id(user_id));
        // The message must still be there and not deleted when the reaction is written, in one transaction: a
        // delete at the same moment either comes first (and the reaction is refused) or after.
        let items = vec![
            self.condition_check(
                keys::conversation(conversation_id),
                &keys::message(seq),
                "attribute_exists(pk) AND deleted = :false",
                &[(":false", AttributeValue::Bool(false))],
            )?,
            self.put(item, true)?,
        ];
        // The message item is in every reaction's transaction, so a crowd reacting at once contends for it.
        match self.transact_patiently(items).await {
            Ok(()) => Ok(true),
            Err(e) => match cancellation_codes(&e) {
                // Gone or deleted: which one, only a read tells (this path is rare).
                Some(codes) if failed_condition(&codes, 0) => match self.get_message(conversation_id, seq).await? {
                    Some(_) => Err(AppError::Conflict("message was deleted")),
                    None => Err(AppError::NotFound("message not found")),
                },
                Some(codes) if failed_condition(&codes, 1) => Ok(false),
                Some(codes) if held_by_another_transaction(&codes) => Err(AppError::BUSY),
                _ => Err(e.into()),
            },
        }
    }

    async fn remove_reaction(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        user_id: &UserId,
        emoji: &str,
    ) -> AppResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(conversation_id), keys::reaction(seq, emoji, user_id))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn forget_mention(&self, conversation_id: &ConversationId, seq: u64, members: &[UserId]) -> AppResult<()> {
        let forgetting: Vec<_> = members
            .iter()
            .map(|member| {
                let update = self
                    .client
                    .update_item()
                    .set_key(Some(Self::key(keys::user(member), keys::conversation(conversation_id))))
                    .update_expression("DELETE mentionSeqs :seq")
                    // An update makes the item it misses: a member who left must not get a membership back.
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":seq", AttributeValue::Ns(vec![seq.to_string()]));
                self.update_if_returning(update, ReturnValue::None)
            })
            .collect();
        stream::iter(forgetting).buffer_unordered(MENTIONS_IN_FLIGHT).try_collect::<Vec<_>>().await?;
        Ok(())
    }

    async fn advance_read(
        &self,
        user_id: &UserId,
        conversation_id: &ConversationId,
        seq: u64,
        read_mentions: &[u64],
    ) -> AppResult<Option<u64>> {
        let mut update = self
            .client
            .update_item()
            .set_key(Some(Self::key(keys::user(user_id), keys::conversation(conversation_id))))
            .update_expression("SET lastReadSeq = :seq")
            .condition_expression("attribute_exists(pk) AND lastReadSeq < :seq")
            .expression_attribute_values(":seq", n(seq));
        if !read_mentions.is_empty() {
            // The seqs as read, not "all up to": a mention written meanwhile stays.
            update = update
                .update_expression("SET lastReadSeq = :seq DELETE mentionSeqs :read")
                .expression_attribute_values(
                    ":read",
                    AttributeValue::Ns(read_mentions.iter().map(u64::to_string).collect()),
                );
        }
        // A send moves the sender's pointer in a transaction; the update waits for it.
        let Some(old) = self.update_if_returning(update, ReturnValue::UpdatedOld).await? else { return Ok(None) };
        Ok(Some(get_n_or_zero(&old, "lastReadSeq")))
    }

    async fn messages(
        &self,
        conversation_id: &ConversationId,
        range: SeqRange,
        limit: usize,
    ) -> AppResult<Vec<Message>> {
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

    async fn sent_messages(
        &self,
        conversation_id: &ConversationId,
        sender: &UserId,
        after_seq: u64,
        limit: usize,
    ) -> AppResult<SenderPage> {
        // `Limit` bounds the items read; the filter then keeps the sender's (pattern #58).
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
            .filter_expression("senderId = :me")
            .expression_attribute_values(":pk", s(keys::conversation(conversation_id)))
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
        let messages = out.items.unwrap_or_default().iter().map(message_from_item).collect::<AppResult<_>>()?;
        Ok(SenderPage { messages, scanned_through })
    }

    async fn reactions_by(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        seqs: RangeInclusive<u64>,
    ) -> AppResult<Vec<(u64, String)>> {
        // The page's reactions (pattern #19), filtered on the user (pattern #61).
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
            .filter_expression("userId = :me")
            .expression_attribute_values(":pk", s(keys::conversation(conversation_id)))
            .expression_attribute_values(":low", s(reaction_bound(*seqs.start())))
            .expression_attribute_values(":high", s(format!("{}~", reaction_bound(*seqs.end()))))
            .expression_attribute_values(":me", id(user_id))
            .projection_expression("sk, emoji")
            .consistent_read(true);
        let items = self.query_all(query, None, None).await?;
        Ok(items
            .iter()
            .filter_map(|item| Some((reaction_seq(&get_s(item, "sk").ok()?)?, get_opt_s(item, "emoji")?)))
            .collect())
    }
}

/// The seq of a message sort key (`MSG#<20 digits>`) in a `LastEvaluatedKey`.
fn seq_of_sort_key(key: &super::Item) -> AppResult<u64> {
    let sort_key = get_s(key, "sk")?;
    sort_key
        .strip_prefix("MSG#")
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| AppError::internal(format!("unexpected sort key {sort_key} in a page of messages")))
}

impl DynamoDbStore {
    /// Marks the upload attached to `message`, if the sender made it for this conversation, nothing attached it
    /// yet, and the processor's outcome is still the one `attachment` was built from.
    fn attach_update(&self, message: &Message, attachment: &Attachment) -> AppResult<Update> {
        let processed = match (attachment.is_image(), attachment.status) {
            (false, _) => "",
            (true, AttachmentStatus::Processing) => " AND attribute_not_exists(#processed)",
            (true, _) => " AND attribute_exists(#processed)",
        };
        let mut update = Update::builder();
        if !processed.is_empty() {
            // A reserved word in expressions.
            update = update.expression_attribute_names("#processed", "processed");
        }
        Ok(update
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::upload(&attachment.id), keys::UPLOAD)))
            .update_expression("SET messageId = :message REMOVE #ttl")
            .condition_expression(format!(
                "attribute_exists(pk) AND attribute_not_exists(messageId) AND uploader = :sender \
                 AND conversationId = :conversation{processed}"
            ))
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":message", id(&message.id))
            .expression_attribute_values(":sender", id(&message.sender.id))
            .expression_attribute_values(":conversation", id(&message.conversation_id))
            .build()?)
    }

    /// Applies `update` to a message that is not deleted (and that `sender` sent, when given); keeps the conversation's `lastMessage`
    /// copy in step when it is the newest message.
    async fn change_message(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        sender: Option<&UserId>,
        update: &str,
        values: &[(&str, AttributeValue)],
    ) -> AppResult<Message> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(conversation_id), keys::message(seq))))
            .update_expression(update)
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .return_values(ReturnValue::AllNew);
        request = match sender {
            Some(sender) => request
                .condition_expression("attribute_exists(pk) AND senderId = :me AND deleted = :false")
                .expression_attribute_values(":me", id(sender)),
            None => request.condition_expression("attribute_exists(pk) AND deleted = :false"),
        };
        for (name, value) in values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        let changed = unless_refused(request.send().await)?.ok_or(AppError::Conflict("message cannot be changed"))?;
        let message = message_from_item(&changed.attributes.unwrap_or_default())?;
        self.refresh_last_message(&message).await?;
        Ok(message)
    }

    /// Replaces the conversation's `lastMessage` copy with `message` if it is still the newest (a newer message
    /// arrived meanwhile: its copy is the one to keep).
    pub(super) async fn refresh_last_message(&self, message: &Message) -> AppResult<()> {
        let last = serde_json::to_string(message).map_err(AppError::internal)?;
        let refreshed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(keys::conversation(&message.conversation_id), keys::META)))
            .update_expression("SET lastMessage = :last")
            .condition_expression("lastSeq = :seq")
            .expression_attribute_values(":last", s(last))
            .expression_attribute_values(":seq", n(message.seq))
            .send()
            .await;
        unless_refused(refreshed).map(drop)
    }

    /// One `Query` over the reaction items of `messages` (adjacent seqs of one conversation), folded into each
    /// message's `reactions`. Reactions sort by emoji, then user, so the folded lists are stable.
    async fn attach_reactions(&self, conversation_id: &ConversationId, messages: &mut [Message]) -> AppResult<()> {
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
            let (Some(seq), Some(emoji), Some(user_id)) = (
                reaction_seq(&get_s(&item, "sk")?),
                get_opt_s(&item, "emoji"),
                get_opt_s(&item, "userId").and_then(|id| UserId::parse(&id).ok()),
            ) else {
                continue;
            };
            if let Some(message) = messages.iter_mut().find(|m| m.seq == seq) {
                message.reactions.entry(emoji).or_default().push(user_id);
            }
        }
        Ok(())
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

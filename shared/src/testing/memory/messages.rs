//! [`MessageStore`] in memory: gap-free `seq`, the send dedupe, reactions and read pointers.

use std::ops::{Bound, RangeInclusive};

use async_trait::async_trait;

use crate::error::{AppError, AppResult};
use crate::model::{
    Attachment, AttachmentStatus, Conversation, ConversationId, Message, MessageId, NOT_MEMBERS_MENTIONED, NewMessage,
    UserId, now_iso,
};
use crate::ports::{Appended, Created, MessageStore, RateLimit, SenderPage, SeqRange};

use super::{InMemoryStore, State};

#[async_trait]
impl MessageStore for InMemoryStore {
    async fn append_message(
        &self,
        _read: &Conversation,
        new: NewMessage,
        limit: &RateLimit,
    ) -> AppResult<Option<Created<Appended>>> {
        self.injected("append_message")?;
        let mut state = self.lock();
        // Under the lock the state is current: the caller's read is not needed.
        let Some(conversation) =
            state.conversation(&new.conversation_id).filter(|_| state.is_member(&new.conversation_id, &new.sender.id))
        else {
            return Ok(None);
        };
        let roster = conversation.roster.clone();
        let dedupe_key =
            new.client_message_id.clone().map(|cmid| (new.conversation_id.clone(), new.sender.id.clone(), cmid));
        if let Some(seq) = dedupe_key.as_ref().and_then(|k| state.client_ids.get(k)) {
            let message = state.messages[&(new.conversation_id.clone(), *seq)].clone();
            return Ok(Some(Created::Existing(Appended { message, roster })));
        }
        let seq = conversation.last_seq + 1;
        let message_id = MessageId::new(new.conversation_id.clone(), seq);
        if let Some(attachment) = &new.attachment {
            let attachable = state.uploads.get(&attachment.id).is_some_and(|upload| {
                upload.message_id.is_none()
                    && upload.uploader == new.sender.id
                    && upload.conversation_id == new.conversation_id
                    && (!attachment.is_image()
                        || upload.processed.is_some() == (attachment.status != AttachmentStatus::Processing))
            });
            if !attachable {
                return Err(AppError::Conflict("the upload changed or is attached already"));
            }
        }
        if new.mentioned_others().any(|id| !state.is_member(&new.conversation_id, id)) {
            return Err(AppError::Validation(NOT_MEMBERS_MENTIONED.into()));
        }
        state.count(&new.sender.id, limit)?;
        for mentioned in new.mentioned_others() {
            state.mentions.entry((mentioned.clone(), new.conversation_id.clone())).or_default().insert(seq);
        }
        if let Some(upload) = new.attachment.as_ref().and_then(|a| state.uploads.get_mut(&a.id)) {
            upload.message_id = Some(message_id);
        }
        let message = new.into_message(seq, now_iso());
        let conv = state.conversations.get_mut(&message.conversation_id).expect("checked above");
        conv.last_seq = seq;
        conv.updated_at = message.created_at.clone();
        conv.last_message = Some(message.clone());
        if let Some(key) = dedupe_key {
            state.client_ids.insert(key, seq);
        }
        state.read_seqs.insert((message.sender.id.clone(), message.conversation_id.clone()), seq);
        state.messages.insert((message.conversation_id.clone(), seq), message.clone());
        Ok(Some(Created::New(Appended { message, roster })))
    }

    async fn set_attachment(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        attachment: &Attachment,
    ) -> AppResult<Option<Message>> {
        let mut state = self.lock();
        let Some(message) = state.messages.get_mut(&(conversation_id.clone(), seq)).filter(|m| !m.deleted) else {
            return Ok(None);
        };
        message.attachment = Some(attachment.unsigned());
        Ok(Some(message.clone()))
    }

    async fn get_message(&self, conversation_id: &ConversationId, seq: u64) -> AppResult<Option<Message>> {
        Ok(self.lock().messages.get(&(conversation_id.clone(), seq)).cloned())
    }

    async fn edit_message(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        editor_id: &UserId,
        content: &str,
        at: &str,
    ) -> AppResult<Message> {
        let mut state = self.lock();
        let message = editable(&mut state, conversation_id, seq, Some(editor_id))?;
        message.content = content.to_owned();
        message.edited = true;
        message.edited_at = Some(at.to_owned());
        Ok(message.clone())
    }

    async fn delete_message(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        sender: Option<&UserId>,
        at: &str,
    ) -> AppResult<Message> {
        let mut state = self.lock();
        let message = editable(&mut state, conversation_id, seq, sender)?;
        message.content = crate::model::DELETED_CONTENT.to_owned();
        message.deleted = true;
        message.deleted_at = Some(at.to_owned());
        message.file_url = None;
        message.file_name = None;
        message.attachment = None;
        Ok(message.clone())
    }

    async fn add_reaction(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        user_id: &UserId,
        emoji: &str,
    ) -> AppResult<bool> {
        let mut state = self.lock();
        let message =
            state.messages.get_mut(&(conversation_id.clone(), seq)).ok_or(AppError::NotFound("message not found"))?;
        if message.deleted {
            return Err(AppError::Conflict("message was deleted"));
        }
        let users = message.reactions.entry(emoji.to_owned()).or_default();
        if users.contains(user_id) {
            return Ok(false);
        }
        users.push(user_id.clone());
        Ok(true)
    }

    async fn remove_reaction(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        user_id: &UserId,
        emoji: &str,
    ) -> AppResult<bool> {
        let mut state = self.lock();
        let Some(message) = state.messages.get_mut(&(conversation_id.clone(), seq)) else { return Ok(false) };
        let Some(users) = message.reactions.get_mut(emoji) else { return Ok(false) };
        let before = users.len();
        users.retain(|u| u != user_id);
        let removed = users.len() != before;
        if users.is_empty() {
            message.reactions.remove(emoji);
        }
        Ok(removed)
    }

    async fn forget_mention(&self, conversation_id: &ConversationId, seq: u64, members: &[UserId]) -> AppResult<()> {
        self.injected("forget_mention")?;
        let mut state = self.lock();
        for member in members {
            if let Some(mentions) = state.mentions.get_mut(&(member.clone(), conversation_id.clone())) {
                mentions.remove(&seq);
            }
        }
        Ok(())
    }

    async fn advance_read(
        &self,
        user_id: &UserId,
        conversation_id: &ConversationId,
        seq: u64,
        read_mentions: &[u64],
    ) -> AppResult<Option<u64>> {
        let mut state = self.lock();
        // Like the conditional update on the membership item: no membership, nothing to move.
        if !state.is_member(conversation_id, user_id) {
            return Ok(None);
        }
        let key = (user_id.clone(), conversation_id.clone());
        let pointer = state.read_seqs.entry(key.clone()).or_insert(0);
        if *pointer >= seq {
            return Ok(None);
        }
        let previous = std::mem::replace(pointer, seq);
        if let Some(mentions) = state.mentions.get_mut(&key) {
            mentions.retain(|seq| !read_mentions.contains(seq));
        }
        Ok(Some(previous))
    }

    async fn messages(
        &self,
        conversation_id: &ConversationId,
        range: SeqRange,
        limit: usize,
    ) -> AppResult<Vec<Message>> {
        let state = self.lock();
        let key = |seq: u64| (conversation_id.clone(), seq);
        let page = match range {
            SeqRange::Before(before) => {
                state.messages.range(key(0)..key(before)).rev().take(limit).map(|(_, m)| m.clone()).collect()
            }
            SeqRange::After(after) => state
                .messages
                .range((Bound::Excluded(key(after)), Bound::Included(key(u64::MAX))))
                .take(limit)
                .map(|(_, m)| m.clone())
                .collect(),
        };
        Ok(page)
    }

    async fn sent_messages(
        &self,
        conversation_id: &ConversationId,
        sender: &UserId,
        after_seq: u64,
        limit: usize,
    ) -> AppResult<SenderPage> {
        let state = self.lock();
        let range = (
            Bound::Excluded((conversation_id.clone(), after_seq)),
            Bound::Included((conversation_id.clone(), u64::MAX)),
        );
        let looked_at: Vec<&Message> =
            state.messages.range(range).map(|(_, m)| m).take(limit.saturating_add(1)).collect();
        let scanned_through =
            if looked_at.len() > limit { looked_at.get(limit.wrapping_sub(1)).map(|m| m.seq) } else { None };
        let messages = looked_at.into_iter().take(limit).filter(|m| m.sender.id == *sender).cloned().collect();
        Ok(SenderPage { messages, scanned_through })
    }

    async fn reactions_by(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        seqs: RangeInclusive<u64>,
    ) -> AppResult<Vec<(u64, String)>> {
        let state = self.lock();
        let range = (conversation_id.clone(), *seqs.start())..=(conversation_id.clone(), *seqs.end());
        Ok(state
            .messages
            .range(range)
            .flat_map(|(_, message)| {
                let theirs = message.reactions.iter().filter(|(_, users)| users.contains(user_id));
                theirs.map(|(emoji, _)| (message.seq, emoji.clone()))
            })
            .collect())
    }
}

/// The message, if `user_id` sent it and it is not deleted.
fn editable<'a>(
    state: &'a mut State,
    conversation_id: &ConversationId,
    seq: u64,
    sender: Option<&UserId>,
) -> AppResult<&'a mut Message> {
    let message =
        state.messages.get_mut(&(conversation_id.clone(), seq)).ok_or(AppError::NotFound("message not found"))?;
    if sender.is_some_and(|id| *id != message.sender.id) || message.deleted {
        return Err(AppError::Conflict("message cannot be changed"));
    }
    Ok(message)
}

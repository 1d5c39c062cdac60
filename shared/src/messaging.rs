//! Use cases on existing messages and live rooms: edit, delete, read receipts, reactions, typing, joining.
//!
//! Each use case checks membership, changes the store, then tells the other parties. The connection that asked
//! (`origin`) is skipped by broadcasts because it gets the `ack` instead; the actor's other connections are not.

use serde::Serialize;
use serde_json::json;

use crate::auth::Identity;
use crate::error::{AppError, AppResult};
use crate::fanout::{Target, deliver_to_connections};
use crate::model::{Connection, Conversation, Message, message_id, now_iso, parse_message_id};
use crate::protocol::{event_frame, events, validate_content, validate_emoji};
use crate::service::Services;

/// `isTyping: true` is broadcast at most once per user per conversation per this window.
pub const TYPING_WINDOW_MS: u64 = 2000;
/// `messages_read` lists at most this many ids; older ones are implied by `upToSeq`.
const MAX_READ_IDS: u64 = 100;
/// `join_conversations` takes at most this many ids per frame.
const MAX_JOIN_IDS: usize = 100;

/// What mark_read should mark.
#[derive(Clone, Debug)]
pub enum ReadTarget {
    /// Seed 003: the ids the client displayed.
    Ids(Vec<String>),
    /// Seed 002: everything up to and including this message.
    UpTo(String),
}

/// Result of a mark_read.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadReceipt {
    pub conversation_id: String,
    /// The read pointer after the call.
    pub last_read_seq: u64,
    /// The messages newly marked read (empty when the pointer was already there).
    pub message_ids: Vec<String>,
}

/// Result of join_conversations.
#[derive(Clone, Debug, Serialize)]
pub struct Joined {
    pub joined: Vec<String>,
    /// Ids that are not conversations of this user (unknown ones look the same).
    pub rejected: Vec<String>,
}

impl Services {
    /// The conversation, if `user_id` is a member. Non-members and unknown ids get the same `NotFound`.
    pub async fn member_conversation(&self, conversation_id: &str, user_id: &str) -> AppResult<Conversation> {
        self.store
            .get_conversation(conversation_id)
            .await?
            .filter(|c| c.is_member(user_id))
            .ok_or(AppError::NotFound("conversation not found"))
    }

    /// The conversation and the message a message id names, if `user_id` may see them.
    async fn visible_message(&self, id: &str, user_id: &str) -> AppResult<(Conversation, Message)> {
        let (conversation_id, seq) = parse_message_id(id).ok_or(AppError::NotFound("message not found"))?;
        let conversation = self.member_conversation(conversation_id, user_id).await?;
        let message =
            self.store.get_message(conversation_id, seq).await?.ok_or(AppError::NotFound("message not found"))?;
        Ok((conversation, message))
    }

    fn member_list(conversation: &Conversation) -> Vec<String> {
        conversation.member_ids.iter().cloned().collect()
    }

    pub async fn edit_message(
        &self,
        me: &Identity,
        id: &str,
        new_content: &str,
        origin: Option<&str>,
    ) -> AppResult<Message> {
        validate_content(new_content)?;
        let (conversation, message) = self.visible_message(id, &me.user_id).await?;
        if message.sender.id != me.user_id {
            return Err(AppError::Forbidden("only the sender can edit a message"));
        }
        let edited =
            self.store.edit_message(&conversation.id, message.seq, &me.user_id, new_content, &now_iso()).await?;
        let frame = event_frame(
            events::MESSAGE_EDITED,
            json!({
                "messageId": edited.id,
                "newContent": edited.content,
                "editedAt": edited.edited_at,
                "conversationId": edited.conversation_id,
            }),
        );
        self.notify(&Self::member_list(&conversation), &frame, origin).await;
        Ok(edited)
    }

    pub async fn delete_message(&self, me: &Identity, id: &str, origin: Option<&str>) -> AppResult<Message> {
        let (conversation, message) = self.visible_message(id, &me.user_id).await?;
        if message.sender.id != me.user_id {
            return Err(AppError::Forbidden("only the sender can delete a message"));
        }
        let deleted = self.store.delete_message(&conversation.id, message.seq, &me.user_id, &now_iso()).await?;
        let frame = event_frame(
            events::MESSAGE_DELETED,
            json!({ "messageId": deleted.id, "conversationId": deleted.conversation_id }),
        );
        self.notify(&Self::member_list(&conversation), &frame, origin).await;
        Ok(deleted)
    }

    /// Moves the reader's pointer forward and tells the members: `messages_read` to everyone (the reader's other
    /// connections included), and `message_status: read` for the newest message to the other members.
    pub async fn mark_read(
        &self,
        me: &Identity,
        conversation_id: &str,
        target: ReadTarget,
        origin: Option<&str>,
    ) -> AppResult<ReadReceipt> {
        let conversation = self.member_conversation(conversation_id, &me.user_id).await?;
        let ids = match &target {
            ReadTarget::Ids(ids) if ids.is_empty() => {
                return Err(AppError::Validation("messageIds must not be empty".into()));
            }
            ReadTarget::Ids(ids) if ids.len() > MAX_READ_IDS as usize => {
                return Err(AppError::Validation(format!("at most {MAX_READ_IDS} messageIds per call")));
            }
            ReadTarget::Ids(ids) => ids.clone(),
            ReadTarget::UpTo(id) => vec![id.clone()],
        };
        let mut up_to = 0;
        for id in &ids {
            match parse_message_id(id) {
                Some((cid, seq)) if cid == conversation.id && seq <= conversation.last_seq => up_to = up_to.max(seq),
                _ => return Err(AppError::NotFound("message not found")),
            }
        }
        let Some(previous) = self.store.advance_read(&me.user_id, &conversation.id, up_to).await? else {
            return Ok(ReadReceipt { conversation_id: conversation.id, last_read_seq: up_to, message_ids: Vec::new() });
        };
        let message_ids: Vec<String> = match target {
            ReadTarget::Ids(mut ids) => {
                ids.sort();
                ids.dedup();
                ids
            }
            ReadTarget::UpTo(_) => {
                let first = (previous + 1).max(up_to.saturating_sub(MAX_READ_IDS - 1));
                (first..=up_to).map(|seq| message_id(&conversation.id, seq)).collect()
            }
        };
        let read_at = now_iso();
        let read = event_frame(
            events::MESSAGES_READ,
            json!({
                "conversationId": conversation.id,
                "messageIds": message_ids,
                "readBy": me.user_id,
                "readAt": read_at,
                "upToSeq": up_to,
            }),
        );
        let status = event_frame(
            events::MESSAGE_STATUS,
            json!({
                "conversationId": conversation.id,
                "messageId": message_id(&conversation.id, up_to),
                "status": "read",
                "userId": me.user_id,
            }),
        );
        let others: Vec<String> = conversation.member_ids.iter().filter(|m| **m != me.user_id).cloned().collect();
        let to_others = [read.clone(), status];
        tokio::join!(
            self.notify_all(&others, &to_others, None),
            self.notify(std::slice::from_ref(&me.user_id), &read, origin)
        );
        Ok(ReadReceipt { conversation_id: conversation.id, last_read_seq: up_to, message_ids })
    }

    /// Adds or removes a reaction; broadcasts only when something changed. Returns whether it did.
    pub async fn react(
        &self,
        me: &Identity,
        id: &str,
        emoji: &str,
        add: bool,
        origin: Option<&str>,
    ) -> AppResult<bool> {
        validate_emoji(emoji)?;
        let (conversation, message) = self.visible_message(id, &me.user_id).await?;
        let changed = if add {
            if message.deleted {
                return Err(AppError::Conflict("message was deleted"));
            }
            self.store.add_reaction(&conversation.id, message.seq, &me.user_id, emoji).await?
        } else {
            self.store.remove_reaction(&conversation.id, message.seq, &me.user_id, emoji).await?
        };
        if changed {
            let event = if add { events::REACTION_ADDED } else { events::REACTION_REMOVED };
            let frame = event_frame(
                event,
                json!({
                    "messageId": message.id,
                    "conversationId": conversation.id,
                    "emoji": emoji,
                    "userId": me.user_id,
                }),
            );
            self.notify(&Self::member_list(&conversation), &frame, origin).await;
        }
        Ok(changed)
    }

    /// Tells the connections that joined the conversation (except the typer's own) that `me` is typing.
    /// Returns whether a frame went out: `isTyping: true` is throttled per user and conversation.
    pub async fn typing(&self, me: &Identity, conversation_id: &str, is_typing: bool) -> AppResult<bool> {
        let conversation = self.member_conversation(conversation_id, &me.user_id).await?;
        if is_typing {
            let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
            if !self.store.claim_typing(&conversation.id, &me.user_id, now_ms, TYPING_WINDOW_MS).await? {
                return Ok(false);
            }
        } else {
            // Stopping frees the slot, so typing again right away is shown.
            self.store.release_typing(&conversation.id, &me.user_id).await?;
        }
        let targets: Vec<Target> = self
            .store
            .joined(&conversation.id)
            .await?
            .into_iter()
            .filter(|(user, _)| *user != me.user_id)
            .map(|(user_id, connection)| Target { user_id, connection })
            .collect();
        let frame = event_frame(
            events::TYPING_STATUS,
            json!({
                "userId": me.user_id,
                "username": me.username,
                "conversationId": conversation.id,
                "isTyping": is_typing,
            }),
        );
        deliver_to_connections(self.store.as_ref(), self.fanout.as_ref(), targets, &[frame]).await;
        Ok(true)
    }

    /// Opens conversations on this connection (it then receives typing indicators for them). Ids the user is
    /// not a member of are rejected without saying whether they exist.
    pub async fn join_conversations(&self, connection: &Connection, ids: &[String]) -> AppResult<Joined> {
        if ids.len() > MAX_JOIN_IDS {
            return Err(AppError::Validation(format!("at most {MAX_JOIN_IDS} conversationIds per call")));
        }
        let mine = self.store.user_graph(&connection.user_id).await?.conversation_ids;
        let (mut joined, mut rejected) = (Vec::new(), Vec::new());
        for id in ids {
            if mine.contains(id) {
                if !joined.contains(id) {
                    self.store.join(connection, id).await?;
                    joined.push(id.clone());
                }
            } else {
                rejected.push(id.clone());
            }
        }
        Ok(Joined { joined, rejected })
    }

    pub async fn leave_conversation(&self, connection_id: &str, conversation_id: &str) -> AppResult<()> {
        self.store.leave(connection_id, conversation_id).await
    }
}

//! Messages: sending (idempotent, gap-free `seq`), editing and deleting your own, read receipts, reactions and
//! reading history. Each operation stores first and then tells the members' connections; the connection the
//! request came from gets the answer instead of the broadcast.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::membership::{conversation_audience, member_conversation};
use super::paging::{Page, Pager, page_offset, page_size};
use super::uploads::Uploads;
use crate::delivery::Delivery;
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::model::{
    Actor, Conversation, ConversationId, ConversationKind, Message, MessageId, MessageKind, NOT_MEMBERS_MENTIONED,
    NewMessage, Roster, UploadId, UserId, now_iso,
};
use crate::ports::{Appended, ConnectionStore, ConversationStore, Created, MessageStore, RateLimit, SeqRange, Store};

/// Seed 003 asks to keep messages under 5 KB; 4,000 characters of UTF-8 stays within 16 KB.
pub const MAX_CONTENT_CHARS: usize = 4000;
const MAX_CLIENT_MESSAGE_ID_LEN: usize = 64;
const MAX_FILE_URL_LEN: usize = 2048;
const MAX_FILE_NAME_LEN: usize = 255;
/// Members one message may mention: each is one more item in the send's transaction (at most 100).
pub const MAX_MENTIONS: usize = 50;
/// `messages_read` lists at most this many ids; older ones are implied by `upToSeq`.
const MAX_READ_IDS: u64 = 100;
const MESSAGE_PAGE: (u64, u64) = (50, 100);
/// Messages one user may send: a chat pace with room for bursts, far below what floods a room.
pub const SEND_LIMIT: RateLimit = RateLimit { kind: "send", max: 60, window_secs: 10 };

/// `send_message` payload, also the body of `POST /conversations/:id/messages` (the path names the conversation).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendMessage {
    pub conversation_id: ConversationId,
    #[serde(default)]
    pub content: String,
    #[serde(default, rename = "type")]
    pub kind: MessageKind,
    pub file_url: Option<String>,
    pub file_name: Option<String>,
    /// An upload of the sender's for this conversation (`POST /conversations/{id}/uploads`), for `image` and
    /// `file` messages instead of a `fileUrl`.
    pub attachment: Option<UploadId>,
    pub client_message_id: Option<String>,
    /// Members mentioned (user ids; clients resolve `@name` against the member list). The text is not parsed.
    #[serde(default)]
    pub mentions: Vec<UserId>,
}

impl SendMessage {
    /// Checks limits and shape; trims nothing the user typed except to decide emptiness.
    pub fn validate(&self) -> AppResult<()> {
        match self.kind {
            MessageKind::Text => validate_content(&self.content)?,
            MessageKind::Image | MessageKind::File => {
                if self.content.chars().count() > MAX_CONTENT_CHARS {
                    return Err(AppError::PayloadTooLarge(format!(
                        "content is limited to {MAX_CONTENT_CHARS} characters"
                    )));
                }
                if self.file_url.is_some() == self.attachment.is_some() {
                    return Err(AppError::Validation(
                        "image and file messages need either an attachment (an upload id) or a fileUrl".into(),
                    ));
                }
            }
        }
        if self.attachment.is_some() && self.kind == MessageKind::Text {
            return Err(AppError::Validation("attachments go with type image or file".into()));
        }
        if let Some(url) = &self.file_url {
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            if !scheme_ok || url.len() > MAX_FILE_URL_LEN {
                return Err(AppError::Validation(format!(
                    "fileUrl must be an http(s) URL of at most {MAX_FILE_URL_LEN} characters"
                )));
            }
        }
        if self.file_name.as_ref().is_some_and(|n| n.is_empty() || n.len() > MAX_FILE_NAME_LEN) {
            return Err(AppError::Validation(format!("fileName must have 1-{MAX_FILE_NAME_LEN} characters")));
        }
        if self.mentions.len() > MAX_MENTIONS {
            return Err(AppError::Validation(format!("at most {MAX_MENTIONS} mentions per message")));
        }
        if let Some(id) = &self.client_message_id {
            let ok = !id.is_empty()
                && id.len() <= MAX_CLIENT_MESSAGE_ID_LEN
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' || b == b':');
            if !ok {
                return Err(AppError::Validation(format!(
                    "clientMessageId must have 1-{MAX_CLIENT_MESSAGE_ID_LEN} characters of [A-Za-z0-9_.:-]"
                )));
            }
        }
        Ok(())
    }
}

/// `{messageId, newContent}`: edit_message.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditMessage {
    pub message_id: MessageId,
    pub new_content: String,
}

/// `{messageId}`: delete_message.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRef {
    pub message_id: MessageId,
}

/// `{conversationId}` and either `messageIds` (seed 003: the ids the client displayed) or `lastMessageId`
/// (seed 002: everything up to and including it): mark_read.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarkRead {
    pub conversation_id: ConversationId,
    pub message_ids: Option<Vec<MessageId>>,
    pub last_message_id: Option<MessageId>,
}

/// `{messageId, emoji}`: add_reaction, remove_reaction.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    pub message_id: MessageId,
    pub emoji: String,
}

/// `GET /conversations/:id/messages/:messageId/reads`: how many members have read up to a message.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReadCount {
    pub message_id: MessageId,
    /// Members whose read position is at or past the message, its sender included (a member who joins later
    /// starts at the newest message). May lag a read by a moment.
    pub read_count: u64,
    pub member_count: u64,
}

/// What `send` stored, and the broadcast it still owes the conversation's members. The transport answers the
/// sender with `message` and runs `broadcast` (alongside that answer, so neither waits for the other).
#[must_use = "the members hear of the message only when the broadcast runs"]
pub struct Sent<'a> {
    /// `Existing` when an earlier try with the same `clientMessageId` stored it.
    pub message: Created<Message>,
    pub broadcast: Broadcast<'a>,
}

/// A new message's delivery to the members' connections; nothing for a duplicate.
#[must_use = "the members hear of the message only when the broadcast runs"]
pub struct Broadcast<'a> {
    /// Boxed: a message and its roster are big, and this travels through the transports' answers.
    pending: Option<Box<(&'a Messages, Appended, Actor)>>,
}

impl Broadcast<'_> {
    pub async fn run(self) {
        if let Some(pending) = self.pending {
            let (messages, appended, actor) = *pending;
            messages.broadcast(&appended, &actor).await;
        }
    }
}

/// Result of a mark_read.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadReceipt {
    pub conversation_id: ConversationId,
    /// The read pointer after the call.
    pub last_read_seq: u64,
    /// The messages newly marked read, by `seq` (empty when the pointer was already there).
    pub message_ids: Vec<MessageId>,
}

/// History query: at most one of `cursor` (continues the page it came from, in its direction), `page` (1-based,
/// newest first) and `after_seq` (oldest first, for catch-up).
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub page: Option<u64>,
    pub after_seq: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum HistoryPosition {
    Before(u64),
    After(u64),
}

pub struct Messages {
    messages: Arc<dyn MessageStore>,
    conversations: Arc<dyn ConversationStore>,
    connections: Arc<dyn ConnectionStore>,
    uploads: Arc<Uploads>,
    delivery: Delivery,
}

/// How often a send re-reads its upload after the processor finished it between the read and the write.
const ATTACH_ATTEMPTS: u32 = 3;

impl Messages {
    pub fn new(store: &Arc<dyn Store>, uploads: Arc<Uploads>, delivery: Delivery) -> Self {
        Messages {
            messages: store.clone(),
            conversations: store.clone(),
            connections: store.clone(),
            uploads,
            delivery,
        }
    }

    /// Stores a message if the actor is a member (else `NotFound`, like every conversation they cannot see).
    /// Unless a retry with the same `clientMessageId` already stored it, the returned broadcast sends
    /// `receive_message` to every member connection but the actor's origin, then (in a listed conversation
    /// delivered in this invocation) one `message_status: delivered` to each of the sender's connections listing
    /// the members reached.
    pub async fn send(&self, actor: &Actor, input: SendMessage) -> AppResult<Sent<'_>> {
        input.validate()?;
        let (conversation, _) =
            member_conversation(self.conversations.as_ref(), &input.conversation_id, actor.id()).await?;
        conversation.refuse_if_closed()?;
        let mentions: Vec<UserId> = input.mentions.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
        // A listed roster answers at once; a large group's members are checked by the write itself.
        if let Some(members) = conversation.roster.listed()
            && mentions.iter().any(|id| !members.contains(id))
        {
            return Err(AppError::Validation(NOT_MEMBERS_MENTIONED.into()));
        }
        let mut attempt = 0;
        let appended = loop {
            attempt += 1;
            let attachment = match &input.attachment {
                None => None,
                Some(upload_id) => Some(self.uploads.attachment(actor, &conversation.id, upload_id).await?),
            };
            if input.kind == MessageKind::Image && attachment.as_ref().is_some_and(|a| !a.is_image()) {
                return Err(AppError::Validation("an image message needs an image upload; send it as a file".into()));
            }
            let new = NewMessage {
                conversation_id: input.conversation_id.clone(),
                sender: actor.user.clone(),
                content: input.content.clone(),
                kind: input.kind,
                file_url: input.file_url.clone(),
                file_name: attachment.as_ref().map(|a| a.file_name.clone()).or_else(|| input.file_name.clone()),
                attachment,
                client_message_id: input.client_message_id.clone(),
                mentions: mentions.clone(),
            };
            match self.messages.append_message(&conversation, new, &SEND_LIMIT).await {
                // `None`: removed between the read and the write; the removal wins.
                Ok(appended) => break appended.ok_or(AppError::NotFound("conversation not found"))?,
                // The upload changed between the read and the write: attached meanwhile (refused), or processed
                // (read it again).
                Err(AppError::Conflict(_)) if input.attachment.is_some() => {
                    let upload_id = input.attachment.as_ref().expect("checked");
                    if attempt >= ATTACH_ATTEMPTS || self.uploads.is_attached(upload_id).await? {
                        return Err(AppError::Conflict("this upload is attached to a message already"));
                    }
                }
                Err(e) => return Err(e),
            }
        };
        let (mut appended, existed) = appended.into_parts();
        // Stored: from here nothing fails the send (its retry would find it stored and broadcast nothing).
        if let Some(attachment) = &appended.message.attachment {
            self.uploads.keep(attachment).await;
        }
        self.uploads.sign(&mut appended.message).await;
        Ok(if existed {
            Sent { message: Created::Existing(appended.message), broadcast: Broadcast { pending: None } }
        } else {
            Sent {
                message: Created::New(appended.message.clone()),
                broadcast: Broadcast { pending: Some(Box::new((self, appended, actor.clone()))) },
            }
        })
    }

    async fn broadcast(&self, appended: &Appended, actor: &Actor) {
        let message = &appended.message;
        let Some(recipients) = self.members_to_tell(&appended.roster, &message.conversation_id).await else { return };
        let event =
            Event::ReceiveMessage { message: message.clone(), conversation_id: message.conversation_id.clone() };
        let report = self.delivery.event_by(actor.id(), &recipients, event.frame(), actor.origin()).await;
        // Per-member delivery statuses only where they are cheap and complete: a listed conversation, every
        // connection posted here (none handed to workers).
        if appended.roster.is_large() || report.queued > 0 {
            return;
        }
        let reached: Vec<_> = report.reached.iter().filter(|user| *user != actor.id()).cloned().collect();
        if !reached.is_empty() {
            // The sender's connections were looked up for the broadcast already (their other tabs receive it).
            let status = Event::delivered(message, reached).frame();
            self.delivery.to_connections(report.targets_of(actor.id()), &[status]).await;
        }
    }

    pub async fn edit(&self, actor: &Actor, input: EditMessage) -> AppResult<Message> {
        validate_content(&input.new_content)?;
        let (conversation, message) = self.visible_message(actor, &input.message_id).await?;
        if message.sender.id != *actor.id() {
            return Err(AppError::Forbidden("only the sender can edit a message"));
        }
        conversation.refuse_if_closed()?;
        let edited = self
            .messages
            .edit_message(&conversation.id, message.seq, actor.id(), &input.new_content, &now_iso())
            .await?;
        let event = Event::MessageEdited {
            message_id: edited.id.clone(),
            new_content: edited.content.clone(),
            edited_at: edited.edited_at.clone(),
            conversation_id: edited.conversation_id.clone(),
        };
        self.announce(&conversation, event, actor).await;
        Ok(edited)
    }

    pub async fn delete(&self, actor: &Actor, id: &MessageId) -> AppResult<Message> {
        let (conversation, message) = self.visible_message(actor, id).await?;
        if message.sender.id != *actor.id() {
            return Err(AppError::Forbidden("only the sender can delete a message"));
        }
        self.erase(actor, &conversation, &message, Some(actor.id())).await
    }

    /// An operator deletes any message, member of its conversation or not (moderation; audited by the caller).
    pub async fn delete_as_operator(&self, operator: &Actor, id: &MessageId) -> AppResult<Message> {
        const GONE: AppError = AppError::NotFound("message not found");
        let conversation = self.conversations.get_conversation(&id.conversation_id).await?.ok_or(GONE)?;
        let message = self.messages.get_message(&conversation.id, id.seq).await?.ok_or(GONE)?;
        self.erase(operator, &conversation, &message, None).await
    }

    /// Soft-deletes the message (if `sender` sent it, when given), takes it out of the mentioned members' unread
    /// mentions, tells the members and discards its attachment.
    async fn erase(
        &self,
        actor: &Actor,
        conversation: &Conversation,
        message: &Message,
        sender: Option<&UserId>,
    ) -> AppResult<Message> {
        let deleted = self.messages.delete_message(&conversation.id, message.seq, sender, &now_iso()).await?;
        if !message.mentions.is_empty() {
            // The deletion stands either way; a mention left behind counts until the member reads past it.
            let forgotten = self.messages.forget_mention(&conversation.id, message.seq, &message.mentions).await;
            if let Err(e) = forgotten {
                tracing::warn!(message_id = %deleted.id, error = ?e, "a deleted message's mentions are still counted");
            }
        }
        let event =
            Event::MessageDeleted { message_id: deleted.id.clone(), conversation_id: deleted.conversation_id.clone() };
        self.announce(conversation, event, actor).await;
        if let Some(attachment) = &message.attachment {
            self.uploads.discard(attachment).await;
        }
        Ok(deleted)
    }

    /// Moves the actor's read pointer. Only if it moved: the actor's other connections get `messages_read`;
    /// in a listed conversation the other members get it too, then `message_status: read` for the newest
    /// message read. A large group's members ask for counts instead ([`Messages::read_count`]).
    pub async fn mark_read(&self, actor: &Actor, input: MarkRead) -> AppResult<ReadReceipt> {
        let (conversation, membership) =
            member_conversation(self.conversations.as_ref(), &input.conversation_id, actor.id()).await?;
        // `lastMessageId` stands for everything up to it; `messageIds` for exactly the messages displayed.
        let (named, up_to_named) = match (input.message_ids, input.last_message_id) {
            (Some(ids), None) if ids.is_empty() => {
                return Err(AppError::Validation("messageIds must not be empty".into()));
            }
            (Some(ids), None) if ids.len() > MAX_READ_IDS as usize => {
                return Err(AppError::Validation(format!("at most {MAX_READ_IDS} messageIds per call")));
            }
            (Some(ids), None) => (ids, false),
            (None, Some(last)) => (vec![last], true),
            _ => return Err(AppError::Validation("give either messageIds or lastMessageId".into())),
        };
        let up_to = named
            .iter()
            .map(|id| {
                let in_conversation = id.conversation_id == conversation.id && id.seq <= conversation.last_seq;
                if in_conversation { Ok(id.seq) } else { Err(AppError::NotFound("message not found")) }
            })
            .collect::<AppResult<Vec<u64>>>()?
            .into_iter()
            .max()
            .unwrap_or(0);
        let read_mentions = membership.mentions_read_by(up_to);
        let Some(previous) = self.messages.advance_read(actor.id(), &conversation.id, up_to, &read_mentions).await?
        else {
            // Already read (by an earlier call, or by sending): the ack tells where the pointer is, not where
            // this call asked it to go.
            let last_read_seq = up_to.max(membership.last_read_seq);
            return Ok(ReadReceipt { conversation_id: conversation.id, last_read_seq, message_ids: Vec::new() });
        };
        // The ids rebuilt from the seqs that actually advanced, in `seq` order.
        let first = (previous + 1).max(up_to.saturating_sub(MAX_READ_IDS - 1));
        let mut seqs: Vec<u64> = if up_to_named {
            (first..=up_to).collect()
        } else {
            named.iter().map(|id| id.seq).filter(|seq| *seq > previous).collect()
        };
        seqs.sort_unstable();
        seqs.dedup();
        let message_ids: Vec<MessageId> =
            seqs.into_iter().map(|seq| MessageId::new(conversation.id.clone(), seq)).collect();
        let read = Event::MessagesRead {
            conversation_id: conversation.id.clone(),
            message_ids: message_ids.clone(),
            read_by: actor.id().clone(),
            read_at: now_iso(),
            up_to_seq: up_to,
        }
        .frame();
        let status = Event::read(MessageId::new(conversation.id.clone(), up_to), actor.id().clone()).frame();
        let others: Vec<UserId> =
            conversation.roster.listed().into_iter().flatten().filter(|m| *m != actor.id()).cloned().collect();
        let to_others = [read.clone(), status];
        let to_actor = [read];
        tokio::join!(
            self.delivery.to_users(&others, &to_others, None),
            self.delivery.to_users(std::slice::from_ref(actor.id()), &to_actor, actor.origin())
        );
        Ok(ReadReceipt { conversation_id: conversation.id, last_read_seq: up_to, message_ids })
    }

    /// Adds or removes a reaction; broadcasts only when something changed. Returns whether it did.
    pub async fn react(&self, actor: &Actor, input: Reaction, add: bool) -> AppResult<bool> {
        validate_emoji(&input.emoji)?;
        let (conversation, message) = self.visible_message(actor, &input.message_id).await?;
        conversation.refuse_if_closed()?;
        let changed = if add {
            if message.deleted {
                return Err(AppError::Conflict("message was deleted"));
            }
            self.messages.add_reaction(&conversation.id, message.seq, actor.id(), &input.emoji).await?
        } else {
            self.messages.remove_reaction(&conversation.id, message.seq, actor.id(), &input.emoji).await?
        };
        if changed {
            let (message_id, conversation_id, emoji, user_id) =
                (message.id, conversation.id.clone(), input.emoji, actor.id().clone());
            let event = if add {
                Event::ReactionAdded { message_id, conversation_id, emoji, user_id }
            } else {
                Event::ReactionRemoved { message_id, conversation_id, emoji, user_id }
            };
            self.announce(&conversation, event, actor).await;
        }
        Ok(changed)
    }

    /// A page of history: newest first, or oldest first after `after_seq` (catch-up after a reconnect).
    pub async fn history(
        &self,
        actor: &Actor,
        conversation_id: &ConversationId,
        query: HistoryQuery,
        pager: &Pager,
    ) -> AppResult<Page<Message>> {
        let limit = page_size(query.limit, MESSAGE_PAGE)?;
        let given = [query.cursor.is_some(), query.page.is_some(), query.after_seq.is_some()];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(AppError::Validation("use at most one of cursor, page and afterSeq".into()));
        }
        let (conversation, _) = member_conversation(self.conversations.as_ref(), conversation_id, actor.id()).await?;
        // Bound to conversation and reader: a cursor replayed elsewhere is a 400, never another history.
        let scope = format!("messages:{conversation_id}:{}", actor.id());
        let range = if let Some(cursor) = &query.cursor {
            match pager.position(&scope, cursor)? {
                HistoryPosition::Before(seq) => SeqRange::Before(seq),
                HistoryPosition::After(seq) => SeqRange::After(seq),
            }
        } else if let Some(after) = query.after_seq {
            SeqRange::After(after)
        } else {
            // `seq` is gap-free, so page p of size L is exactly the L seqs below lastSeq - (p-1)L + 1.
            let skip = page_offset(query.page, limit)? as u64;
            SeqRange::Before((conversation.last_seq + 1).saturating_sub(skip))
        };
        let mut messages = self.messages.messages(conversation_id, range, limit).await?;
        self.uploads.sign_all(&mut messages).await;
        let full = messages.len() == limit;
        let next = match (range, messages.last()) {
            // Gap-free seqs: below a full page there is more exactly when its oldest seq is above 1.
            (SeqRange::Before(_), Some(oldest)) if full && oldest.seq > 1 => Some(HistoryPosition::Before(oldest.seq)),
            // Messages may arrive while the client catches up, so a full page always offers a next one.
            (SeqRange::After(_), Some(newest)) if full => Some(HistoryPosition::After(newest.seq)),
            _ => None,
        };
        let next_cursor = next.map(|position| pager.cursor(&scope, position));
        // In a group, the messages of users the reader blocked are left out (one `GetItem` of the reader's
        // presence per page; the cursor still moves past them). A private conversation's history stays whole.
        if conversation.kind == ConversationKind::Group && !messages.is_empty() {
            let reader = self.connections.presence(actor.id()).await?;
            messages.retain(|message| !reader.blocks(&message.sender.id));
        }
        Ok(Page { items: messages, next_cursor })
    }

    /// How many members have read up to `id` (any conversation size).
    pub async fn read_count(&self, actor: &Actor, id: &MessageId) -> AppResult<ReadCount> {
        let (conversation, _) =
            member_conversation(self.conversations.as_ref(), &id.conversation_id, actor.id()).await?;
        if id.seq > conversation.last_seq {
            return Err(AppError::NotFound("message not found"));
        }
        let read_count = self.conversations.readers(&conversation.id, id.seq).await?;
        Ok(ReadCount { message_id: id.clone(), read_count, member_count: conversation.roster.count() })
    }

    /// Recipients of a conversation's events; `None` (logged) if a large group's members could not be read.
    async fn members_to_tell(&self, roster: &Roster, conversation_id: &ConversationId) -> Option<Vec<UserId>> {
        conversation_audience(self.conversations.as_ref(), roster, conversation_id)
            .await
            .inspect_err(|e| tracing::warn!(%conversation_id, error = ?e, "could not read the members to notify"))
            .ok()
    }

    /// Tells every member's connections but the actor's origin.
    async fn announce(&self, conversation: &Conversation, event: Event, actor: &Actor) {
        if let Some(recipients) = self.members_to_tell(&conversation.roster, &conversation.id).await {
            self.delivery.event_by(actor.id(), &recipients, event.frame(), actor.origin()).await;
        }
    }

    /// The conversation and the message an id names, if the actor may see them.
    async fn visible_message(&self, actor: &Actor, id: &MessageId) -> AppResult<(Conversation, Message)> {
        let (conversation, _) =
            member_conversation(self.conversations.as_ref(), &id.conversation_id, actor.id()).await?;
        let message = self
            .messages
            .get_message(&conversation.id, id.seq)
            .await?
            .ok_or(AppError::NotFound("message not found"))?;
        Ok((conversation, message))
    }
}

/// Message text rules shared by sending and editing.
pub fn validate_content(content: &str) -> AppResult<()> {
    if content.chars().count() > MAX_CONTENT_CHARS {
        return Err(AppError::PayloadTooLarge(format!("content is limited to {MAX_CONTENT_CHARS} characters")));
    }
    if content.trim().is_empty() {
        return Err(AppError::Validation("content must not be empty".into()));
    }
    Ok(())
}

/// A reaction is one emoji (or a short emoji sequence): up to 16 characters, no spaces or key separators, and
/// not plain ASCII text.
pub fn validate_emoji(emoji: &str) -> AppResult<()> {
    let chars = emoji.chars().count();
    let ok = (1..=16).contains(&chars)
        && !emoji.chars().any(|c| c.is_whitespace() || c.is_control() || c == '#')
        && !emoji.is_ascii();
    if ok { Ok(()) } else { Err(AppError::Validation("emoji must be 1-16 characters of emoji".into())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rules() {
        let base = SendMessage {
            conversation_id: ConversationId::parse("c1").unwrap(),
            content: "hello".into(),
            kind: MessageKind::Text,
            file_url: None,
            file_name: None,
            attachment: None,
            client_message_id: None,
            mentions: Vec::new(),
        };
        base.validate().unwrap();
        let user = |i: usize| UserId::parse(&format!("u{i}")).unwrap();
        let crowded = SendMessage { mentions: (0..=MAX_MENTIONS).map(user).collect(), ..base.clone() };
        assert_eq!(crowded.validate().unwrap_err().code(), "validation_failed");
        let empty = SendMessage { content: "  \n".into(), ..base.clone() };
        assert_eq!(empty.validate().unwrap_err().code(), "validation_failed");
        let long = SendMessage { content: "é".repeat(MAX_CONTENT_CHARS + 1), ..base.clone() };
        assert_eq!(long.validate().unwrap_err().code(), "payload_too_large");
        let exact = SendMessage { content: "é".repeat(MAX_CONTENT_CHARS), ..base.clone() };
        exact.validate().unwrap();
        let image = SendMessage { kind: MessageKind::Image, content: String::new(), ..base.clone() };
        assert!(image.validate().is_err());
        let image = SendMessage { file_url: Some("https://cdn/x.png".into()), ..image };
        image.validate().unwrap();
        let js = SendMessage { file_url: Some("javascript:alert(1)".into()), ..base.clone() };
        assert!(js.validate().is_err());
        let bad_cmid = SendMessage { client_message_id: Some("has space".into()), ..base.clone() };
        assert!(bad_cmid.validate().is_err());
        let cmid = SendMessage { client_message_id: Some("tab-1:42".into()), ..base };
        cmid.validate().unwrap();
    }

    #[test]
    fn emoji_rules() {
        for ok in ["👍", "❤️", "🇫🇷", "👨‍👩‍👧"] {
            validate_emoji(ok).unwrap();
        }
        for bad in ["", "lol", "👍 👍", "#👍", &"👍".repeat(17)] {
            assert!(validate_emoji(bad).is_err(), "{bad:?}");
        }
    }
}

//! Messages as stored and served, and what a sender asks to store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Attachment, ConversationId, MessageId, Sender, UserId};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    #[default]
    Text,
    Image,
    File,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Sent,
    Delivered,
    Read,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    #[serde(rename = "_id")]
    pub id: MessageId,
    pub conversation_id: ConversationId,
    /// Position in the conversation: strictly increasing and gap-free, so clients resume with "after seq N".
    pub seq: u64,
    pub sender: Sender,
    pub content: String,
    #[serde(rename = "type")]
    pub kind: MessageKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// An uploaded file (`type` image or file); `fileUrl` stays for links to files hosted elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    pub status: MessageStatus,
    pub created_at: String,
    pub edited: bool,
    pub edited_at: Option<String>,
    pub deleted: bool,
    pub deleted_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    /// Emoji → ids of the users who reacted with it.
    pub reactions: BTreeMap<String, Vec<UserId>>,
    /// The members the sender mentioned, in id order: a client knows it was mentioned when its user's id is here.
    #[serde(default)]
    pub mentions: Vec<UserId>,
}

/// Why a message mentioning somebody who is not a member is refused.
pub const NOT_MEMBERS_MENTIONED: &str = "mentions must name members of the conversation";

/// What a deleted message's content becomes (seed 003).
pub const DELETED_CONTENT: &str = "This message was deleted";

/// What a sender asks to store; the store assigns `seq`, `id` and timestamps.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub conversation_id: ConversationId,
    pub sender: Sender,
    pub content: String,
    pub kind: MessageKind,
    pub file_url: Option<String>,
    pub file_name: Option<String>,
    /// Stored without URLs.
    pub attachment: Option<Attachment>,
    pub client_message_id: Option<String>,
    /// Members of the conversation, sorted and without repeats.
    pub mentions: Vec<UserId>,
}

impl NewMessage {
    /// The mentioned members whose unread-mention count this message raises: everyone mentioned but the sender
    /// (who has read their own message).
    pub fn mentioned_others(&self) -> impl Iterator<Item = &UserId> {
        self.mentions.iter().filter(|id| **id != self.sender.id)
    }

    pub fn into_message(self, seq: u64, created_at: String) -> Message {
        Message {
            id: MessageId::new(self.conversation_id.clone(), seq),
            conversation_id: self.conversation_id,
            seq,
            sender: self.sender,
            content: self.content,
            kind: self.kind,
            file_url: self.file_url,
            file_name: self.file_name,
            attachment: self.attachment,
            status: MessageStatus::Sent,
            created_at,
            edited: false,
            edited_at: None,
            deleted: false,
            deleted_at: None,
            client_message_id: self.client_message_id,
            reactions: BTreeMap::new(),
            mentions: self.mentions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{now_iso, test_user as user};

    #[test]
    fn message_serialises_in_seed_003_shape() {
        let msg = NewMessage {
            conversation_id: ConversationId::parse("c1").unwrap(),
            sender: Sender { id: user("u1"), username: "alice".into(), avatar: None },
            content: "hi".into(),
            kind: MessageKind::Text,
            file_url: None,
            file_name: None,
            attachment: None,
            client_message_id: Some("cm-1".into()),
            mentions: vec![user("u2")],
        }
        .into_message(7, "2024-01-15T10:30:00.000Z".into());
        let v = serde_json::to_value(&msg).unwrap();
        assert_eq!(v["_id"], "c1-7");
        assert_eq!(v["conversationId"], "c1");
        assert_eq!(v["sender"]["_id"], "u1");
        assert_eq!(v["type"], "text");
        assert_eq!(v["status"], "sent");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["edited"], false);
        assert!(v["editedAt"].is_null());
        assert_eq!(v["clientMessageId"], "cm-1");
        assert!(v.get("fileUrl").is_none());
        assert_eq!(v["mentions"], serde_json::json!(["u2"]));
        assert!(now_iso().ends_with('Z'));
        let back: Message = serde_json::from_value(v).unwrap();
        assert_eq!(back, msg, "stored copies (lastMessage) read back the same");
    }
}

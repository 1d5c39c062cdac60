//! Domain types, serialised exactly as clients see them (seed 003's shapes: `_id`, camelCase fields).
//!
//! Storage has its own mapping in [`crate::store`]; these types never carry keys or secrets to the wire.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Current time as ISO-8601 UTC with milliseconds, the format of every timestamp on the wire.
pub fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn now_epoch_seconds() -> u64 {
    chrono::Utc::now().timestamp().max(0) as u64
}

/// Random identifier for users and conversations: 32 lowercase hex digits, safe in URLs and keys.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A user as other users see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    #[serde(rename = "_id")]
    pub id: String,
    pub username: String,
    pub avatar: Option<String>,
    #[serde(rename = "createdAt")]
    pub created_at: String,
}

/// A user plus the secret needed to log them in. Never serialised to clients.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
}

/// A live WebSocket connection of a user. A user may hold several (tabs, devices).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub connection_id: String,
    pub user_id: String,
    pub username: String,
    pub avatar: Option<String>,
    /// Epoch seconds when `$connect` stored it.
    pub connected_at: u64,
    /// Epoch seconds after which DynamoDB's TTL may remove the record if `$disconnect` never came.
    pub expires_at: u64,
}

impl Connection {
    /// How this connection appears in its user's presence.
    pub fn live(&self) -> LiveConnection {
        LiveConnection {
            connection_id: self.connection_id.clone(),
            connected_at: self.connected_at,
            expires_at: self.expires_at,
        }
    }
}

/// One connection as listed in its user's presence: enough to post to it and to judge a 410 for it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LiveConnection {
    pub connection_id: String,
    /// Epoch seconds when `$connect` stored it. API Gateway answers 410 for a connection whose `$connect` has
    /// not returned yet, so a 410 soon after this time proves nothing (see [`crate::fanout`]).
    pub connected_at: u64,
    pub expires_at: u64,
}

/// A status that makes a user look offline to everyone else.
pub const INVISIBLE: &str = "invisible";

/// What is stored about a user's presence: their live connections, chosen status and last disconnect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presence {
    /// Connections that have not expired, in no particular order.
    pub connections: Vec<LiveConnection>,
    /// `online`, `away`, `busy`, `invisible` or custom text; `None` until the user sets one.
    pub status: Option<String>,
    pub last_seen: Option<String>,
}

impl Presence {
    /// Whether others should see the user online: connected, and not invisible.
    pub fn visible_online(&self) -> bool {
        !self.connections.is_empty() && self.status.as_deref() != Some(INVISIBLE)
    }

    /// The status others see: the chosen one (default `online`) while visible online, else `offline`.
    pub fn visible_status(&self) -> String {
        if self.visible_online() { self.status.clone().unwrap_or_else(|| "online".into()) } else { "offline".into() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationKind {
    Private,
    Group,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ConversationKind,
    pub name: Option<String>,
    pub avatar: Option<String>,
    pub member_ids: BTreeSet<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    /// Sequence number of the newest message; 0 before the first.
    pub last_seq: u64,
    pub last_message: Option<Message>,
}

impl Conversation {
    pub fn is_member(&self, user_id: &str) -> bool {
        self.member_ids.contains(user_id)
    }

    /// The key that makes a private conversation unique per pair of users, whoever creates it first.
    pub fn private_pair_key(&self) -> Option<String> {
        (self.kind == ConversationKind::Private).then(|| {
            let ids: Vec<&str> = self.member_ids.iter().map(String::as_str).collect();
            ids.join("#")
        })
    }
}

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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    #[serde(rename = "_id")]
    pub id: String,
    pub username: String,
    pub avatar: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    #[serde(rename = "_id")]
    pub id: String,
    pub conversation_id: String,
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
    pub status: MessageStatus,
    pub created_at: String,
    pub edited: bool,
    pub edited_at: Option<String>,
    pub deleted: bool,
    pub deleted_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    /// Emoji → ids of the users who reacted with it.
    pub reactions: BTreeMap<String, Vec<String>>,
}

/// What a deleted message's content becomes (seed 003).
pub const DELETED_CONTENT: &str = "This message was deleted";

/// Message ids name their conversation and position, so a message is found with one key lookup and an id
/// from another conversation can never alias one in this conversation.
pub fn message_id(conversation_id: &str, seq: u64) -> String {
    format!("{conversation_id}-{seq}")
}

pub fn parse_message_id(id: &str) -> Option<(&str, u64)> {
    let (conversation_id, seq) = id.rsplit_once('-')?;
    let seq = seq.parse().ok().filter(|s| *s > 0)?;
    (!conversation_id.is_empty()).then_some((conversation_id, seq))
}

/// What a sender asks to store; the store assigns `seq`, `id` and timestamps.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub conversation_id: String,
    pub sender: Sender,
    pub content: String,
    pub kind: MessageKind,
    pub file_url: Option<String>,
    pub file_name: Option<String>,
    pub client_message_id: Option<String>,
}

impl NewMessage {
    pub fn into_message(self, seq: u64, created_at: String) -> Message {
        Message {
            id: message_id(&self.conversation_id, seq),
            conversation_id: self.conversation_id,
            seq,
            sender: self.sender,
            content: self.content,
            kind: self.kind,
            file_url: self.file_url,
            file_name: self.file_name,
            status: MessageStatus::Sent,
            created_at,
            edited: false,
            edited_at: None,
            deleted: false,
            deleted_at: None,
            client_message_id: self.client_message_id,
            reactions: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip() {
        let id = message_id("abc123", 42);
        assert_eq!(parse_message_id(&id), Some(("abc123", 42)));
        assert_eq!(parse_message_id("abc123-0"), None);
        assert_eq!(parse_message_id("abc123"), None);
        assert_eq!(parse_message_id("-5"), None);
        assert_eq!(parse_message_id("abc-x"), None);
    }

    #[test]
    fn pair_key_is_order_independent() {
        let mk = |a: &str, b: &str| Conversation {
            id: "c".into(),
            kind: ConversationKind::Private,
            name: None,
            avatar: None,
            member_ids: [a.to_string(), b.to_string()].into_iter().collect(),
            created_by: a.into(),
            created_at: now_iso(),
            updated_at: now_iso(),
            last_seq: 0,
            last_message: None,
        };
        assert_eq!(mk("u1", "u2").private_pair_key(), mk("u2", "u1").private_pair_key());
        let mut group = mk("u1", "u2");
        group.kind = ConversationKind::Group;
        assert_eq!(group.private_pair_key(), None);
    }

    #[test]
    fn message_serialises_in_seed_003_shape() {
        let msg = NewMessage {
            conversation_id: "c1".into(),
            sender: Sender { id: "u1".into(), username: "alice".into(), avatar: None },
            content: "hi".into(),
            kind: MessageKind::Text,
            file_url: None,
            file_name: None,
            client_message_id: Some("cm-1".into()),
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
        assert!(now_iso().ends_with('Z'));
    }
}

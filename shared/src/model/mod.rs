//! Domain types, serialised exactly as clients see them (seed 003's shapes: `_id`, camelCase fields).
//!
//! Storage has its own mapping in [`crate::aws::dynamo`]; these types never carry keys or secrets to the wire.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

mod ids;

pub use ids::{ConnectionId, ConversationId, MAX_ID_LEN, MessageId, UserId};

/// Current time as ISO-8601 UTC with milliseconds, the format of every timestamp on the wire.
pub fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn now_epoch_seconds() -> u64 {
    chrono::Utc::now().timestamp().max(0) as u64
}

/// A user as other users see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    #[serde(rename = "_id")]
    pub id: UserId,
    pub username: String,
    pub avatar: Option<String>,
    #[serde(rename = "createdAt")]
    pub created_at: String,
}

impl User {
    /// The short form messages and friend events carry.
    pub fn summary(&self) -> Sender {
        Sender { id: self.id.clone(), username: self.username.clone(), avatar: self.avatar.clone() }
    }
}

/// A user plus the secret needed to log them in. Never serialised to clients.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
}

/// Who is acting: the authenticated user and, over the WebSocket, the connection the request came from. That
/// connection gets the `ack`, so broadcasts skip it; the user's other connections do receive them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user: Sender,
    pub origin: Option<ConnectionId>,
}

impl Actor {
    /// A request over HTTP: no connection to skip.
    pub fn http(user: &User) -> Actor {
        Actor { user: user.summary(), origin: None }
    }

    /// A frame from a registered WebSocket connection.
    pub fn connection(connection: &Connection) -> Actor {
        Actor {
            user: Sender {
                id: connection.user_id.clone(),
                username: connection.username.clone(),
                avatar: connection.avatar.clone(),
            },
            origin: Some(connection.connection_id.clone()),
        }
    }

    pub fn id(&self) -> &UserId {
        &self.user.id
    }

    pub fn origin(&self) -> Option<&ConnectionId> {
        self.origin.as_ref()
    }
}

/// A live WebSocket connection of a user. A user may hold several (tabs, devices).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub connection_id: ConnectionId,
    pub user_id: UserId,
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
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveConnection {
    pub connection_id: ConnectionId,
    /// Epoch seconds when `$connect` stored it. API Gateway answers 410 for a connection whose `$connect` has
    /// not returned yet, so a 410 soon after this time proves nothing (see [`crate::delivery`]).
    pub connected_at: u64,
    pub expires_at: u64,
}

/// A status that makes a user look offline to everyone else.
pub const INVISIBLE: &str = "invisible";

/// What is stored about a user's presence: their live connections, chosen status and last disconnect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPresence {
    /// Connections that have not expired, in no particular order.
    pub connections: Vec<LiveConnection>,
    /// `online`, `away`, `busy`, `invisible` or custom text; `None` until the user sets one.
    pub status: Option<String>,
    pub last_seen: Option<String>,
}

impl UserPresence {
    /// Whether others should see the user online: connected, and not invisible.
    pub fn visible_online(&self) -> bool {
        !self.connections.is_empty() && self.status.as_deref() != Some(INVISIBLE)
    }

    /// The status others see: the chosen one (default `online`) while visible online, else `offline`.
    pub fn visible_status(&self) -> String {
        if self.visible_online() { self.status.clone().unwrap_or_else(|| "online".into()) } else { "offline".into() }
    }

    /// The presence as others may see it.
    pub fn visible(&self) -> VisiblePresence {
        VisiblePresence {
            online: self.visible_online(),
            status: self.visible_status(),
            last_seen: self.last_seen.clone(),
        }
    }
}

/// A user's presence as others may see it (invisible looks offline), as it appears in friend lists and
/// `get_presence`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VisiblePresence {
    pub online: bool,
    /// The chosen status while online, else `offline`.
    pub status: String,
    pub last_seen: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationKind {
    Private,
    Group,
}

/// Conversations of up to this many members carry their member list on the conversation record, so every
/// operation gets the recipients with the read it makes anyway. Larger groups keep their members only as
/// items, read page by page, and follow the large-room rules (docs/protocol.md, "Large groups").
pub const LISTED_MEMBERS_MAX: usize = 50;
/// Members a group may have unless the deployment says otherwise (`MaxGroupMembers` in the template).
pub const DEFAULT_MAX_GROUP_MEMBERS: usize = 10_000;

/// Who is in a conversation, as far as the conversation record knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roster {
    /// Every member: conversations of up to [`LISTED_MEMBERS_MAX`].
    Listed(BTreeSet<UserId>),
    /// Only how many: a large group.
    Large { count: u64 },
}

impl Roster {
    /// The roster a conversation with exactly `members` has.
    pub fn of(members: BTreeSet<UserId>) -> Roster {
        if members.len() <= LISTED_MEMBERS_MAX { Roster::Listed(members) } else { Roster::large(members.len()) }
    }

    pub fn large(count: usize) -> Roster {
        Roster::Large { count: count as u64 }
    }

    pub fn count(&self) -> u64 {
        match self {
            Roster::Listed(members) => members.len() as u64,
            Roster::Large { count } => *count,
        }
    }

    pub fn listed(&self) -> Option<&BTreeSet<UserId>> {
        match self {
            Roster::Listed(members) => Some(members),
            Roster::Large { .. } => None,
        }
    }

    pub fn is_large(&self) -> bool {
        matches!(self, Roster::Large { .. })
    }
}

/// A conversation as stored. Membership of a large group is not visible here: ask the store
/// (`ConversationStore::member_conversation`).
#[derive(Clone, Debug, PartialEq)]
pub struct Conversation {
    pub id: ConversationId,
    pub kind: ConversationKind,
    pub name: Option<String>,
    pub avatar: Option<String>,
    pub roster: Roster,
    /// Moves with every change of the members: membership writes are conditional on it, so two changes that
    /// read the same roster cannot both apply.
    pub roster_version: u64,
    pub created_by: UserId,
    pub created_at: String,
    pub updated_at: String,
    /// Sequence number of the newest message; 0 before the first.
    pub last_seq: u64,
    pub last_message: Option<Message>,
}

impl Conversation {
    /// The key that makes a private conversation unique per pair of users, whoever creates it first.
    pub fn private_pair_key(&self) -> Option<String> {
        let members = self.roster.listed().filter(|_| self.kind == ConversationKind::Private)?;
        Some(members.iter().map(UserId::as_str).collect::<Vec<_>>().join("#"))
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
    pub id: UserId,
    pub username: String,
    pub avatar: Option<String>,
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
}

/// A conversation as clients see it: members as profiles (up to [`LISTED_MEMBERS_MAX`]; a large group's are
/// paged with `GET /conversations/:id/members`), newest message.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConversationView {
    #[serde(rename = "_id")]
    pub id: ConversationId,
    #[serde(rename = "type")]
    pub kind: ConversationKind,
    pub name: Option<String>,
    pub avatar: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<User>>,
    pub member_count: u64,
    /// Set on groups of more than [`LISTED_MEMBERS_MAX`]: the large-room rules apply.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub large: bool,
    pub last_message: Option<Message>,
    pub last_seq: u64,
    pub created_by: UserId,
    pub created_at: String,
    pub updated_at: String,
}

impl ConversationView {
    /// `conversation` with the profiles of its members (those found among `profiles`), sorted by username.
    pub fn new(conversation: Conversation, profiles: &std::collections::HashMap<UserId, User>) -> Self {
        let members = conversation.roster.listed().map(|ids| {
            let mut members: Vec<User> = ids.iter().filter_map(|id| profiles.get(id).cloned()).collect();
            members.sort_by(|a, b| a.username.cmp(&b.username));
            members
        });
        ConversationView {
            id: conversation.id,
            kind: conversation.kind,
            name: conversation.name,
            avatar: conversation.avatar,
            members,
            member_count: conversation.roster.count(),
            large: conversation.roster.is_large(),
            last_message: conversation.last_message,
            last_seq: conversation.last_seq,
            created_by: conversation.created_by,
            created_at: conversation.created_at,
            updated_at: conversation.updated_at,
        }
    }
}

/// Someone left a group or was removed from it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MemberLeft {
    pub conversation_id: ConversationId,
    pub user_id: UserId,
    pub removed_by: UserId,
}

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
    pub client_message_id: Option<String>,
}

impl NewMessage {
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

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    #[test]
    fn pair_key_is_order_independent() {
        let mk = |a: &str, b: &str| Conversation {
            id: ConversationId::parse("c").unwrap(),
            kind: ConversationKind::Private,
            name: None,
            avatar: None,
            roster: Roster::Listed([user(a), user(b)].into_iter().collect()),
            roster_version: 1,
            created_by: user(a),
            created_at: now_iso(),
            updated_at: now_iso(),
            last_seq: 0,
            last_message: None,
        };
        assert_eq!(mk("u1", "u2").private_pair_key(), mk("u2", "u1").private_pair_key());
        let mut group = mk("u1", "u2");
        group.kind = ConversationKind::Group;
        assert_eq!(Roster::of((0..51).map(|i| user(&format!("u{i}"))).collect()), Roster::Large { count: 51 });
        assert!(Roster::of((0..50).map(|i| user(&format!("u{i}"))).collect()).listed().is_some());
        assert_eq!(group.private_pair_key(), None);
    }

    #[test]
    fn message_serialises_in_seed_003_shape() {
        let msg = NewMessage {
            conversation_id: ConversationId::parse("c1").unwrap(),
            sender: Sender { id: user("u1"), username: "alice".into(), avatar: None },
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
        let back: Message = serde_json::from_value(v).unwrap();
        assert_eq!(back, msg, "stored copies (lastMessage) read back the same");
    }
}

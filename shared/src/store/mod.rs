//! Persistence ports. Handlers depend on these traits only; [`dynamo::DynamoDbStore`] serves them in AWS and on
//! the emulator, [`memory::InMemoryStore`] in handler unit tests. Both must behave the same, including the
//! atomic guarantees (unique usernames, one private conversation per pair, gap-free `seq`, idempotent sends).

use async_trait::async_trait;

use crate::error::AppResult;
use std::collections::HashMap;

use crate::model::{Connection, Conversation, LiveConnection, Message, NewMessage, Presence, User, UserRecord};

pub mod dynamo;
mod dynamo_queries;
pub mod memory;
mod memory_queries;
pub mod queries;

pub use queries::QueryStore;

/// Connections and presence. A user's presence (live connections, status, last seen) is one record, so
/// fan-out reads the connections of 100 users with one request, and connecting or disconnecting learns the
/// presence right after its own change in the same atomic write.
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Stores the connection and adds it to its user's presence. Returns the presence right after this change:
    /// of several simultaneous first connections of a user, exactly one sees itself alone.
    async fn add_connection(&self, connection: &Connection) -> AppResult<Presence>;
    /// The connection, unless unknown or expired.
    async fn get_connection(&self, connection_id: &str) -> AppResult<Option<Connection>>;
    /// Deletes the connection, takes it out of its user's presence and records `last_seen`. Returns the presence
    /// right after this change: of several simultaneous last disconnections, at least one sees none left.
    /// Idempotent.
    async fn remove_connection(&self, connection: &Connection, last_seen: &str) -> AppResult<Presence>;
    /// Takes a connection API Gateway reported gone out of its user's presence, so fan-out stops posting to
    /// it. The connection record stays: the `$disconnect` that follows still needs to know whose it was.
    async fn drop_gone_connection(&self, user_id: &str, connection: &LiveConnection) -> AppResult<()>;
    async fn presence(&self, user_id: &str) -> AppResult<Presence>;
    /// Presence of each of `user_ids` (users never seen have the default presence).
    async fn presences(&self, user_ids: &[String]) -> AppResult<HashMap<String, Presence>>;
    async fn set_status(&self, user_id: &str, status: &str) -> AppResult<()>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with `Conflict` when the username (case-insensitively) is taken.
    async fn create_user(&self, record: &UserRecord) -> AppResult<()>;
    async fn get_user(&self, user_id: &str) -> AppResult<Option<User>>;
    /// Users that exist among `user_ids`, in no particular order.
    async fn get_users(&self, user_ids: &[String]) -> AppResult<Vec<User>>;
    async fn find_by_username(&self, username: &str) -> AppResult<Option<UserRecord>>;
}

/// The result of creating something that may already exist.
#[derive(Debug, Clone, PartialEq)]
pub enum Created<T> {
    New(T),
    Existing(T),
}

#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Stores a new conversation and its memberships. A private conversation is unique per pair of users: if one
    /// exists (even one created concurrently), that one is returned as `Existing`.
    async fn create_conversation(&self, conversation: &Conversation) -> AppResult<Created<Conversation>>;
    async fn get_conversation(&self, conversation_id: &str) -> AppResult<Option<Conversation>>;
}

/// A stored message and the conversation members at the time it was stored (the recipients).
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    pub message: Message,
    pub member_ids: Vec<String>,
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Appends a message with the next `seq` if the sender is a member (else `NotFound`: non-members must not
    /// learn that the conversation exists). With a `client_message_id` already used by this sender in this
    /// conversation, nothing is written and the original message is returned as `Existing`.
    async fn append_message(&self, message: NewMessage) -> AppResult<Created<Appended>>;
    async fn get_message(&self, conversation_id: &str, seq: u64) -> AppResult<Option<Message>>;
    /// Replaces the content if `editor_id` sent the message and it is not deleted (`Conflict` otherwise).
    async fn edit_message(
        &self,
        conversation_id: &str,
        seq: u64,
        editor_id: &str,
        content: &str,
        at: &str,
    ) -> AppResult<Message>;
    /// Soft delete: keeps the item, replaces the content, marks it deleted. Sender only (`Conflict` otherwise).
    async fn delete_message(&self, conversation_id: &str, seq: u64, user_id: &str, at: &str) -> AppResult<Message>;
    /// Records a reaction; `false` if this user already reacted with this emoji.
    async fn add_reaction(&self, conversation_id: &str, seq: u64, user_id: &str, emoji: &str) -> AppResult<bool>;
    /// Removes a reaction; `false` if there was none.
    async fn remove_reaction(&self, conversation_id: &str, seq: u64, user_id: &str, emoji: &str) -> AppResult<bool>;
    /// Moves the user's read pointer forward to `seq`. Returns the previous pointer, or `None` if it already was
    /// at or past `seq` (read pointers never move back).
    async fn advance_read(&self, user_id: &str, conversation_id: &str, seq: u64) -> AppResult<Option<u64>>;
}

/// Which connections have a conversation open ("joined the room"), and the typing throttle. Live-session
/// state: every item expires with the connection's TTL.
#[async_trait]
pub trait RoomStore: Send + Sync {
    /// Fails with `Unauthorized` when the connection is no longer registered.
    async fn join(&self, connection: &Connection, conversation_id: &str) -> AppResult<()>;
    async fn leave(&self, connection_id: &str, conversation_id: &str) -> AppResult<()>;
    /// Forgets every room of a closing connection.
    async fn leave_all(&self, connection_id: &str) -> AppResult<()>;
    /// `(user id, connection)` of the connections that joined the conversation.
    async fn joined(&self, conversation_id: &str) -> AppResult<Vec<(String, LiveConnection)>>;
    /// Takes the user's typing slot in the conversation unless it was taken less than `window_ms` ago.
    async fn claim_typing(&self, conversation_id: &str, user_id: &str, now_ms: u64, window_ms: u64) -> AppResult<bool>;
    async fn release_typing(&self, conversation_id: &str, user_id: &str) -> AppResult<()>;
}

/// How two users relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    None,
    Friends,
    /// The first user asked the second.
    RequestSent,
    /// The second user asked the first.
    RequestReceived,
}

/// A pending friend request as seen from one side: the other user and when it was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRequest {
    pub user_id: String,
    pub created_at: String,
}

/// A user's relations, kept under their partition and read with one Query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserGraph {
    pub conversation_ids: Vec<String>,
    pub friend_ids: Vec<String>,
    pub incoming: Vec<PendingRequest>,
    pub outgoing: Vec<PendingRequest>,
}

/// Friendships and friend requests.
#[async_trait]
pub trait SocialStore: Send + Sync {
    async fn user_graph(&self, user_id: &str) -> AppResult<UserGraph>;
    async fn relation(&self, user_id: &str, other_id: &str) -> AppResult<Relation>;
    /// Fails with `Conflict` unless the two are strangers (no friendship, no request either way).
    async fn create_friend_request(&self, from: &str, to: &str, at: &str) -> AppResult<()>;
    /// Deletes the request `from` → `to`; `false` if there was none.
    async fn delete_friend_request(&self, from: &str, to: &str) -> AppResult<bool>;
    /// Turns the request `from` → `to` into a friendship; `false` if there was no such request.
    async fn accept_friend_request(&self, from: &str, to: &str, at: &str) -> AppResult<bool>;
    /// `false` if they were not friends.
    async fn delete_friendship(&self, a: &str, b: &str) -> AppResult<bool>;
    /// Member ids of the given conversations.
    async fn members_of(&self, conversation_ids: &[String]) -> AppResult<Vec<String>>;
}

/// Everything the handlers need from persistence.
pub trait Store:
    ConnectionStore + UserStore + ConversationStore + MessageStore + RoomStore + SocialStore + QueryStore
{
}
impl<T> Store for T where
    T: ConnectionStore + UserStore + ConversationStore + MessageStore + RoomStore + SocialStore + QueryStore
{
}

/// Usernames are unique regardless of case; this is the form used for uniqueness and lookup.
pub fn username_key(username: &str) -> String {
    username.to_lowercase()
}

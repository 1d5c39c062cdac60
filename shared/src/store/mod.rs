//! Persistence ports. Handlers depend on these traits only; [`dynamo::DynamoDbStore`] serves them in AWS and on
//! the emulator, [`memory::InMemoryStore`] in handler unit tests. Both must behave the same, including the
//! atomic guarantees (unique usernames, one private conversation per pair, gap-free `seq`, idempotent sends).

use async_trait::async_trait;

use crate::error::AppResult;
use crate::model::{Connection, Conversation, Message, NewMessage, User, UserRecord};

pub mod dynamo;
mod dynamo_queries;
pub mod memory;
mod memory_queries;
pub mod queries;

pub use queries::QueryStore;

#[async_trait]
pub trait ConnectionStore: Send + Sync {
    async fn put_connection(&self, connection: &Connection) -> AppResult<()>;
    async fn get_connection(&self, connection_id: &str) -> AppResult<Option<Connection>>;
    /// Idempotent: deleting a connection that is already gone succeeds.
    async fn delete_connection(&self, connection_id: &str, user_id: &str) -> AppResult<()>;
    async fn connection_ids_of_user(&self, user_id: &str) -> AppResult<Vec<String>>;
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
}

/// Everything the handlers need from persistence.
pub trait Store: ConnectionStore + UserStore + ConversationStore + MessageStore + QueryStore {}
impl<T: ConnectionStore + UserStore + ConversationStore + MessageStore + QueryStore> Store for T {}

/// Usernames are unique regardless of case; this is the form used for uniqueness and lookup.
pub fn username_key(username: &str) -> String {
    username.to_lowercase()
}

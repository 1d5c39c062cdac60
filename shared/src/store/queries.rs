//! Read models for the REST API (conversation lists, history pages, user search) and the conversation
//! management writes that go with them. Kept apart from the write paths in [`super`] so each can evolve alone.
//!
//! Business rules (who may do what, caps, error codes) live in [`crate::conversations`]; the writes here only
//! guarantee atomicity. Each conditional write answers `None` when its precondition no longer holds (the actor
//! left, the group filled up meanwhile), and the caller re-reads and decides again, so a race never bypasses a
//! rule and never surfaces as a 500.

use async_trait::async_trait;

use crate::error::AppResult;
use crate::model::{Conversation, Message, User};

/// A user's side of a membership: the read pointer that unread counts come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub conversation_id: String,
    /// Seq of the newest message the user has read; 0 before the first.
    pub last_read_seq: u64,
}

/// Where a username search page starts: strictly after this user in search order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserKey {
    /// The lowercased username (the index sort key).
    pub name: String,
    pub id: String,
}

/// Which messages of a conversation a history read returns. Bounds are exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqRange {
    /// Newest first, every seq below this one.
    Before(u64),
    /// Oldest first, every seq above this one (catch-up after a reconnect).
    After(u64),
}

/// New values for a group's name and avatar; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConversationChanges {
    pub name: Option<String>,
    pub avatar: Option<String>,
}

#[async_trait]
pub trait QueryStore: Send + Sync {
    /// Users whose lowercased username starts with `prefix` (lowercased, non-empty), in lowercased-username
    /// order, strictly after `after`, at most `limit`.
    async fn search_users(&self, prefix: &str, after: Option<&UserKey>, limit: usize) -> AppResult<Vec<User>>;

    /// Every conversation the user belongs to, in no particular order.
    async fn memberships(&self, user_id: &str) -> AppResult<Vec<Membership>>;

    async fn membership(&self, user_id: &str, conversation_id: &str) -> AppResult<Option<Membership>>;

    /// The conversations that exist among `ids`, in no particular order.
    async fn get_conversations(&self, ids: &[String]) -> AppResult<Vec<Conversation>>;

    /// At most `limit` messages of `range`, with their reactions: newest first for `Before`, oldest first for
    /// `After`.
    async fn messages(&self, conversation_id: &str, range: SeqRange, limit: usize) -> AppResult<Vec<Message>>;

    /// Applies `changes` to a group, if `actor_id` is still a member. Returns the updated conversation.
    async fn update_conversation(
        &self,
        conversation_id: &str,
        actor_id: &str,
        changes: &ConversationChanges,
        updated_at: &str,
    ) -> AppResult<Option<Conversation>>;

    /// Adds `new_ids` (none of them a member yet) to `conversation` together with their memberships, whose read
    /// pointer starts at the conversation's current `last_seq` so earlier history does not count as unread.
    /// Applies only if `actor_id` is still a member and the group still has room for all of them.
    async fn add_members(
        &self,
        conversation: &Conversation,
        actor_id: &str,
        new_ids: &[String],
        max_members: usize,
        now: &str,
    ) -> AppResult<Option<Conversation>>;

    /// Removes `user_id` and their membership, if both `actor_id` and `user_id` are still members.
    async fn remove_member(
        &self,
        conversation_id: &str,
        actor_id: &str,
        user_id: &str,
        now: &str,
    ) -> AppResult<Option<Conversation>>;
}

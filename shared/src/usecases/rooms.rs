//! Rooms and typing: which connections have a conversation open, and who is typing in it. Typing indicators go
//! only to connections that joined the room, so a user with a conversation closed is not woken by them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::membership::member_conversation;
use crate::delivery::Delivery;
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::model::{Actor, Connection, ConversationId, ConversationKind, UserId};
use crate::ports::{ConnectionStore, ConversationStore, RateLimit, RateStore, RoomStore, Store, Target};

/// `isTyping: true` is broadcast at most once per user per conversation per this window.
pub const TYPING_WINDOW_MS: u64 = 2000;
/// Typing frames one user may send, across conversations (a keystroke sends far fewer: see the throttle above).
pub const TYPING_LIMIT: RateLimit = RateLimit { kind: "typing", max: 30, window_secs: 10 };
/// `join_conversations` takes at most this many ids per frame.
const MAX_JOIN_IDS: usize = 100;

/// `{conversationIds: [...]}`: join_conversations.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinConversations {
    pub conversation_ids: Vec<ConversationId>,
}

/// `{conversationId}`: join_conversation, leave_conversation.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationRef {
    pub conversation_id: ConversationId,
}

/// `{conversationId, isTyping}`: typing.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    pub conversation_id: ConversationId,
    pub is_typing: bool,
}

/// Result of join_conversations.
#[derive(Clone, Debug, Serialize)]
pub struct Joined {
    pub joined: Vec<ConversationId>,
    /// Ids that are not conversations of this user (unknown ones look the same).
    pub rejected: Vec<ConversationId>,
}

pub struct Rooms {
    rooms: Arc<dyn RoomStore>,
    conversations: Arc<dyn ConversationStore>,
    rates: Arc<dyn RateStore>,
    connections: Arc<dyn ConnectionStore>,
    delivery: Delivery,
}

impl Rooms {
    pub fn new(store: &Arc<dyn Store>, delivery: Delivery) -> Self {
        Rooms {
            rooms: store.clone(),
            conversations: store.clone(),
            rates: store.clone(),
            connections: store.clone(),
            delivery,
        }
    }

    /// Opens conversations on this connection (it then receives typing indicators for them). Ids the user is
    /// not a member of are rejected without saying whether they exist.
    pub async fn join(&self, connection: &Connection, ids: &[ConversationId]) -> AppResult<Joined> {
        if ids.len() > MAX_JOIN_IDS {
            return Err(AppError::Validation(format!("at most {MAX_JOIN_IDS} conversationIds per call")));
        }
        let mine: Vec<ConversationId> =
            self.conversations.memberships(&connection.user_id).await?.into_iter().map(|m| m.conversation_id).collect();
        let (mut joined, mut rejected) = (Vec::new(), Vec::new());
        for id in ids {
            if !mine.contains(id) {
                rejected.push(id.clone());
            } else if !joined.contains(id) {
                self.rooms.join(connection, id).await?;
                joined.push(id.clone());
            }
        }
        Ok(Joined { joined, rejected })
    }

    /// Opens one conversation; `not_found` unless the user is a member.
    pub async fn join_one(&self, connection: &Connection, id: &ConversationId) -> AppResult<()> {
        let joined = self.join(connection, std::slice::from_ref(id)).await?;
        if joined.joined.is_empty() { Err(AppError::NotFound("conversation not found")) } else { Ok(()) }
    }

    pub async fn leave(&self, connection: &Connection, conversation_id: &ConversationId) -> AppResult<()> {
        self.rooms.leave(&connection.connection_id, conversation_id).await
    }

    /// Tells the connections that joined the conversation (except the typer's own) that the actor is typing.
    /// Returns whether a frame went out: `isTyping: true` is throttled per user and conversation.
    pub async fn typing(&self, actor: &Actor, input: Typing) -> AppResult<bool> {
        let (conversation, _) =
            member_conversation(self.conversations.as_ref(), &input.conversation_id, actor.id()).await?;
        conversation.refuse_if_closed()?;
        self.rates.take(actor.id(), &TYPING_LIMIT).await?;
        if input.is_typing {
            let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
            if !self.rooms.claim_typing(&conversation.id, actor.id(), now_ms, TYPING_WINDOW_MS).await? {
                return Ok(false);
            }
        } else {
            // Stopping frees the slot, so typing again right away is shown.
            self.rooms.release_typing(&conversation.id, actor.id()).await?;
        }
        let targets: Vec<Target> = self
            .rooms
            .joined(&conversation.id)
            .await?
            .into_iter()
            // Only current members hear it: a room item may outlive a membership by a moment. (A large group's
            // room items are forgotten with the membership; its roster is not at hand to check.)
            .filter(|(user, _)| {
                user != actor.id() && conversation.roster.listed().is_none_or(|members| members.contains(user))
            })
            .map(|(user_id, connection)| Target { user_id, connection })
            .collect();
        let targets = match conversation.kind {
            ConversationKind::Private => targets,
            ConversationKind::Group => self.without_blockers_of(actor.id(), targets).await?,
        };
        let event = Event::TypingStatus {
            user_id: actor.id().clone(),
            username: actor.user.username.clone(),
            conversation_id: conversation.id,
            is_typing: input.is_typing,
        };
        self.delivery.to_connections(targets, &[event.frame()]).await;
        Ok(true)
    }

    /// `targets` but the connections of users who blocked `author`: one `BatchGetItem` of their presences (a
    /// private conversation with a block refuses typing before).
    async fn without_blockers_of(&self, author: &UserId, targets: Vec<Target>) -> AppResult<Vec<Target>> {
        if targets.is_empty() {
            return Ok(targets);
        }
        let users: Vec<UserId> = targets.iter().map(|t| t.user_id.clone()).collect();
        let presences = self.connections.presences(&users).await?;
        Ok(targets.into_iter().filter(|t| !presences.get(&t.user_id).is_some_and(|p| p.blocks(author))).collect())
    }
}

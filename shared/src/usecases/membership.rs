//! Membership rules every use case on an existing conversation shares: who may see it (members only; others
//! get the same `not_found` as for an id that does not exist, so ids cannot be probed) and who hears about its
//! events (the roster of a listed conversation, the member items of a large group).

use std::collections::BTreeSet;

use crate::error::{AppError, AppResult};
use crate::model::{Conversation, ConversationId, Roster, UserId};
use crate::ports::{ConversationStore, Membership};

/// The conversation and the user's membership, if `user_id` is a member. Non-members and unknown ids get the
/// same `NotFound`.
pub(crate) async fn member_conversation(
    conversations: &dyn ConversationStore,
    conversation_id: &ConversationId,
    user_id: &UserId,
) -> AppResult<(Conversation, Membership)> {
    conversations
        .member_conversation(conversation_id, user_id)
        .await?
        .ok_or(AppError::NotFound("conversation not found"))
}

/// Everyone who hears about a conversation's events: its roster, or a large group's member items.
pub(crate) async fn conversation_audience(
    conversations: &dyn ConversationStore,
    roster: &Roster,
    id: &ConversationId,
) -> AppResult<Vec<UserId>> {
    match roster {
        Roster::Listed(members) => Ok(members.iter().cloned().collect()),
        Roster::Large { .. } => conversations.large_members(id, None, usize::MAX).await,
    }
}

/// Which of `user_ids` are members of `conversation`.
pub(crate) async fn members_among(
    conversations: &dyn ConversationStore,
    conversation: &Conversation,
    user_ids: &BTreeSet<UserId>,
) -> AppResult<BTreeSet<UserId>> {
    Ok(match &conversation.roster {
        Roster::Listed(members) => members.intersection(user_ids).cloned().collect(),
        Roster::Large { .. } => {
            let ids: Vec<UserId> = user_ids.iter().cloned().collect();
            conversations.members_among(&conversation.id, &ids).await?.into_iter().collect()
        }
    })
}

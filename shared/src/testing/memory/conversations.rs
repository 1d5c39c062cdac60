//! [`ConversationStore`] in memory: conversations, members and read pointers, with the same conditional
//! membership writes as the DynamoDB store.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;

use crate::error::{AppError, AppResult};
use crate::model::{Conversation, ConversationId, ConversationKind, ConversationNotifications, Roles, UserId};
use crate::ports::{ConversationChanges, ConversationStore, Created, Membership};

use super::InMemoryStore;

#[async_trait]
impl ConversationStore for InMemoryStore {
    async fn create_conversation(&self, conversation: &Conversation) -> AppResult<Created<Conversation>> {
        let mut state = self.lock();
        let Some(members) = conversation.roster.listed().cloned() else {
            return Err(AppError::internal("a conversation is created with its members listed"));
        };
        if let Some(pair) = conversation.private_pair_key() {
            if let Some(existing) = state.pairs.get(&pair).cloned() {
                return Ok(Created::Existing(state.conversation(&existing).expect("pairs point at conversations")));
            }
            let pair_members: Vec<&UserId> = members.iter().collect();
            if state.either_blocked(pair_members[0], pair_members[1]) {
                return Err(AppError::Forbidden("one of you blocked the other: you cannot start a conversation"));
            }
            state.pairs.insert(pair, conversation.id.clone());
        }
        for member in &members {
            state.read_seqs.insert((member.clone(), conversation.id.clone()), 0);
            state.joined_at.insert((member.clone(), conversation.id.clone()), conversation.created_at.clone());
        }
        state.members.insert(conversation.id.clone(), members);
        state.conversations.insert(conversation.id.clone(), conversation.clone());
        Ok(Created::New(state.conversation(&conversation.id).expect("just stored")))
    }

    async fn get_conversation(&self, conversation_id: &ConversationId) -> AppResult<Option<Conversation>> {
        self.injected("get_conversation")?;
        Ok(self.lock().conversation(conversation_id))
    }

    async fn find_private(&self, a: &UserId, b: &UserId) -> AppResult<Option<Conversation>> {
        let state = self.lock();
        Ok(state.pairs.get(&Conversation::pair_key_of(a, b)).and_then(|id| state.conversation(id)))
    }

    async fn get_conversations(&self, ids: &[ConversationId]) -> AppResult<Vec<Conversation>> {
        let state = self.lock();
        let ids: BTreeSet<&ConversationId> = ids.iter().collect();
        Ok(ids.into_iter().filter_map(|id| state.conversation(id)).collect())
    }

    async fn member_conversation(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> AppResult<Option<(Conversation, Membership)>> {
        self.injected("get_conversation")?;
        let state = self.lock();
        Ok(state.membership(conversation_id, user_id).and_then(|m| Some((state.conversation(conversation_id)?, m))))
    }

    async fn memberships(&self, user_id: &UserId) -> AppResult<Vec<Membership>> {
        let state = self.lock();
        Ok(state.members.keys().filter_map(|id| state.membership(id, user_id)).collect())
    }

    async fn set_notifications(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        setting: &ConversationNotifications,
    ) -> AppResult<bool> {
        let mut state = self.lock();
        if !state.is_member(conversation_id, user_id) {
            return Ok(false);
        }
        state.notify.insert((user_id.clone(), conversation_id.clone()), setting.clone());
        Ok(true)
    }

    async fn listed_members_of(&self, conversation_ids: &[ConversationId]) -> AppResult<Vec<UserId>> {
        let state = self.lock();
        let members: BTreeSet<UserId> = conversation_ids
            .iter()
            .filter_map(|id| state.conversation(id))
            .filter_map(|c| c.roster.listed().cloned())
            .flatten()
            .collect();
        Ok(members.into_iter().collect())
    }

    async fn large_members(
        &self,
        conversation_id: &ConversationId,
        after: Option<&UserId>,
        limit: usize,
    ) -> AppResult<Vec<UserId>> {
        self.injected("large_members")?;
        let state = self.lock();
        let members = state.members.get(conversation_id).into_iter().flatten();
        Ok(members.filter(|id| after.is_none_or(|a| *id > a)).take(limit).cloned().collect())
    }

    async fn notification_settings(
        &self,
        conversation_id: &ConversationId,
        user_ids: &[UserId],
    ) -> AppResult<HashMap<UserId, ConversationNotifications>> {
        let state = self.lock();
        Ok(user_ids
            .iter()
            .filter_map(|id| Some((id.clone(), state.membership(conversation_id, id)?.notifications)))
            .collect())
    }

    async fn members_among(&self, conversation_id: &ConversationId, user_ids: &[UserId]) -> AppResult<Vec<UserId>> {
        let state = self.lock();
        Ok(user_ids.iter().filter(|id| state.is_member(conversation_id, id)).cloned().collect())
    }

    async fn readers(&self, conversation_id: &ConversationId, seq: u64) -> AppResult<u64> {
        let state = self.lock();
        let members = state.members.get(conversation_id).into_iter().flatten();
        Ok(members.filter(|id| state.membership(conversation_id, id).is_some_and(|m| m.last_read_seq >= seq)).count()
            as u64)
    }

    async fn update_conversation(
        &self,
        conversation: &Conversation,
        changes: &ConversationChanges,
        updated_at: &str,
    ) -> AppResult<Option<Conversation>> {
        let mut state = self.lock();
        let Some(c) = state.unchanged(conversation).filter(|c| c.kind == ConversationKind::Group) else {
            return Ok(None);
        };
        if let Some(name) = &changes.name {
            c.name = Some(name.clone());
        }
        if let Some(avatar) = &changes.avatar {
            c.avatar = Some(avatar.clone());
        }
        c.updated_at = updated_at.to_owned();
        Ok(state.conversation(&conversation.id))
    }

    /// Takes every candidate at once (no transaction limit here), unless a page size was set with
    /// [`InMemoryStore::limit_member_writes`].
    async fn add_members(
        &self,
        conversation: &Conversation,
        candidates: &[UserId],
        now: &str,
    ) -> AppResult<Option<(Conversation, usize)>> {
        let page = *self.member_page.lock().unwrap();
        let mut state = self.lock();
        let Some(c) = state.unchanged(conversation) else { return Ok(None) };
        c.roster_version += 1;
        c.updated_at = now.to_owned();
        let last_seq = c.last_seq;
        let taken = &candidates[..candidates.len().min(page)];
        for id in taken {
            state.read_seqs.insert((id.clone(), conversation.id.clone()), last_seq);
            state.joined_at.insert((id.clone(), conversation.id.clone()), now.to_owned());
        }
        state.members.entry(conversation.id.clone()).or_default().extend(taken.iter().cloned());
        Ok(state.conversation(&conversation.id).map(|c| (c, taken.len())))
    }

    async fn remove_member(
        &self,
        conversation: &Conversation,
        user_id: &UserId,
        roles: &Roles,
        now: &str,
    ) -> AppResult<Option<Conversation>> {
        let mut state = self.lock();
        if !state.is_member(&conversation.id, user_id) {
            return Ok(None);
        }
        let Some(c) = state.unchanged(conversation) else { return Ok(None) };
        c.roster_version += 1;
        c.updated_at = now.to_owned();
        if c.kind == ConversationKind::Group {
            c.roles = roles.clone();
        }
        state.members.get_mut(&conversation.id).expect("a member was found").remove(user_id);
        state.forget_membership(&conversation.id, user_id);
        Ok(state.conversation(&conversation.id))
    }

    async fn set_roles(
        &self,
        conversation: &Conversation,
        roles: &Roles,
        now: &str,
    ) -> AppResult<Option<Conversation>> {
        let mut state = self.lock();
        let Some(c) = state.unchanged(conversation) else { return Ok(None) };
        c.roster_version += 1;
        c.updated_at = now.to_owned();
        c.roles = roles.clone();
        Ok(state.conversation(&conversation.id))
    }

    async fn longest_standing(
        &self,
        conversation_id: &ConversationId,
        candidates: &[UserId],
    ) -> AppResult<Option<UserId>> {
        let state = self.lock();
        Ok(candidates
            .iter()
            .filter_map(|id| Some((state.joined_at.get(&(id.clone(), conversation_id.clone()))?, id)))
            .min()
            .map(|(_, id)| id.clone()))
    }
}

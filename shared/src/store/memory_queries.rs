//! [`QueryStore`](super::QueryStore) in memory, for handler tests: the same answers and preconditions as the
//! DynamoDB implementation, computed from the in-memory state under one lock.

use std::ops::Bound;

use async_trait::async_trait;

use super::QueryStore;
use super::memory::InMemoryStore;
use super::queries::{ConversationChanges, Membership, SeqRange, UserKey};
use super::username_key;
use crate::error::AppResult;
use crate::model::{Conversation, ConversationKind, Message, User};

#[async_trait]
impl QueryStore for InMemoryStore {
    async fn search_users(&self, prefix: &str, after: Option<&UserKey>, limit: usize) -> AppResult<Vec<User>> {
        let state = self.lock();
        let mut found: Vec<(UserKey, User)> = state
            .users
            .values()
            .map(|r| (UserKey { name: username_key(&r.user.username), id: r.user.id.clone() }, r.user.clone()))
            .filter(|(key, _)| key.name.starts_with(prefix))
            .filter(|(key, _)| after.is_none_or(|a| (&key.name, &key.id) > (&a.name, &a.id)))
            .collect();
        found.sort_by(|(a, _), (b, _)| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(found.into_iter().take(limit).map(|(_, user)| user).collect())
    }

    async fn memberships(&self, user_id: &str) -> AppResult<Vec<Membership>> {
        let state = self.lock();
        Ok(state
            .conversations
            .values()
            .filter(|c| c.is_member(user_id))
            .map(|c| Membership {
                conversation_id: c.id.clone(),
                last_read_seq: state.read_seqs.get(&(user_id.to_owned(), c.id.clone())).copied().unwrap_or(0),
            })
            .collect())
    }

    async fn membership(&self, user_id: &str, conversation_id: &str) -> AppResult<Option<Membership>> {
        let state = self.lock();
        let member = state.conversations.get(conversation_id).is_some_and(|c| c.is_member(user_id));
        Ok(member.then(|| Membership {
            conversation_id: conversation_id.to_owned(),
            last_read_seq: state.read_seqs.get(&(user_id.to_owned(), conversation_id.to_owned())).copied().unwrap_or(0),
        }))
    }

    async fn get_conversations(&self, ids: &[String]) -> AppResult<Vec<Conversation>> {
        let state = self.lock();
        let mut ids: Vec<&String> = ids.iter().collect();
        ids.sort();
        ids.dedup();
        Ok(ids.into_iter().filter_map(|id| state.conversations.get(id).cloned()).collect())
    }

    async fn messages(&self, conversation_id: &str, range: SeqRange, limit: usize) -> AppResult<Vec<Message>> {
        let state = self.lock();
        let key = |seq: u64| (conversation_id.to_owned(), seq);
        let page = match range {
            SeqRange::Before(before) => {
                state.messages.range(key(0)..key(before)).rev().take(limit).map(|(_, m)| m.clone()).collect()
            }
            SeqRange::After(after) => state
                .messages
                .range((Bound::Excluded(key(after)), Bound::Included(key(u64::MAX))))
                .take(limit)
                .map(|(_, m)| m.clone())
                .collect(),
        };
        Ok(page)
    }

    async fn update_conversation(
        &self,
        conversation_id: &str,
        actor_id: &str,
        changes: &ConversationChanges,
        updated_at: &str,
    ) -> AppResult<Option<Conversation>> {
        let mut state = self.lock();
        let Some(c) = state
            .conversations
            .get_mut(conversation_id)
            .filter(|c| c.is_member(actor_id) && c.kind == ConversationKind::Group)
        else {
            return Ok(None);
        };
        if let Some(name) = &changes.name {
            c.name = Some(name.clone());
        }
        if let Some(avatar) = &changes.avatar {
            c.avatar = Some(avatar.clone());
        }
        c.updated_at = updated_at.to_owned();
        Ok(Some(c.clone()))
    }

    async fn add_members(
        &self,
        conversation: &Conversation,
        actor_id: &str,
        new_ids: &[String],
        max_members: usize,
        now: &str,
    ) -> AppResult<Option<Conversation>> {
        let mut state = self.lock();
        let Some(c) = state
            .conversations
            .get_mut(&conversation.id)
            .filter(|c| c.is_member(actor_id) && c.member_ids.len() + new_ids.len() <= max_members)
        else {
            return Ok(None);
        };
        c.member_ids.extend(new_ids.iter().cloned());
        c.updated_at = now.to_owned();
        let updated = c.clone();
        for id in new_ids {
            state.read_seqs.insert((id.clone(), updated.id.clone()), updated.last_seq);
        }
        Ok(Some(updated))
    }

    async fn remove_member(
        &self,
        conversation_id: &str,
        actor_id: &str,
        user_id: &str,
        now: &str,
    ) -> AppResult<Option<Conversation>> {
        let mut state = self.lock();
        let Some(c) =
            state.conversations.get_mut(conversation_id).filter(|c| c.is_member(actor_id) && c.is_member(user_id))
        else {
            return Ok(None);
        };
        c.member_ids.remove(user_id);
        c.updated_at = now.to_owned();
        let updated = c.clone();
        state.read_seqs.remove(&(user_id.to_owned(), conversation_id.to_owned()));
        Ok(Some(updated))
    }
}

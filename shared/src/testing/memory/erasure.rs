//! [`ErasureStore`] in memory: the tombstone, message erasure in pages, presence removal.

use async_trait::async_trait;

use crate::error::AppResult;
use crate::model::{Conversation, ConversationId, DELETED_ACCOUNT, UserId, now_iso};
use crate::ports::{ErasureStore, MessageStore, SenderPage, username_key};

use super::InMemoryStore;

#[async_trait]
impl ErasureStore for InMemoryStore {
    async fn tombstone_user(&self, user_id: &UserId, username: &str, _at: &str) -> AppResult<bool> {
        let mut state = self.lock();
        let key = username_key(username);
        let claimed = state.usernames.get(&key) == Some(user_id);
        let Some(record) = state.users.get_mut(user_id).filter(|r| claimed && !r.standing.deleted) else {
            return Ok(false);
        };
        record.user.username = DELETED_ACCOUNT.to_owned();
        record.user.avatar = None;
        record.password_hash = String::new();
        record.standing.deleted = true;
        record.standing.operator = false;
        state.usernames.remove(&key);
        Ok(true)
    }

    async fn erase_messages(
        &self,
        conversation: &Conversation,
        sender: &UserId,
        after_seq: u64,
        limit: usize,
    ) -> AppResult<SenderPage> {
        let page = self.sent_messages(&conversation.id, sender, after_seq, limit).await?;
        let at = now_iso();
        let mut state = self.lock();
        for message in &page.messages {
            let after = message.clone().erased(&at);
            if let Some(stored) = state.conversations.get_mut(&conversation.id)
                && stored.last_message.as_ref().is_some_and(|last| last.seq == message.seq)
            {
                stored.last_message = Some(after.clone());
            }
            state.messages.insert((conversation.id.clone(), message.seq), after);
        }
        Ok(page)
    }

    async fn close_for_deleted_member(&self, conversation_id: &ConversationId, _deleted: &UserId) -> AppResult<()> {
        if let Some(conversation) = self.lock().conversations.get_mut(conversation_id) {
            conversation.member_deleted = true;
        }
        Ok(())
    }

    async fn delete_presence(&self, user_id: &UserId) -> AppResult<()> {
        let mut state = self.lock();
        state.presence.remove(user_id);
        state.statuses.remove(user_id);
        state.last_seen.remove(user_id);
        state.contactable_by.remove(user_id);
        state.push.remove(user_id);
        Ok(())
    }
}

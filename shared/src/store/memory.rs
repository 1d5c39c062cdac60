//! An in-memory [`Store`](super::Store) for handler tests: same contract as DynamoDB, no network.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Appended, ConnectionStore, ConversationStore, Created, MessageStore, UserStore, username_key};
use crate::error::{AppError, AppResult};
use crate::model::{Connection, Conversation, Message, NewMessage, User, UserRecord, now_iso};

#[derive(Default)]
pub(super) struct State {
    pub(super) connections: BTreeMap<String, Connection>,
    pub(super) users: HashMap<String, UserRecord>,
    pub(super) usernames: HashMap<String, String>,
    pub(super) conversations: HashMap<String, Conversation>,
    pub(super) pairs: HashMap<String, String>,
    /// (conversation id, seq) → message
    pub(super) messages: BTreeMap<(String, u64), Message>,
    /// (user id, conversation id) → seq of the newest message the user has read
    pub(super) read_seqs: HashMap<(String, String), u64>,
    /// (conversation id, sender id, client message id) → seq
    pub(super) client_ids: HashMap<(String, String, String), u64>,
}

#[derive(Default)]
pub struct InMemoryStore {
    state: Mutex<State>,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Messages of a conversation in `seq` order (test inspection).
    pub fn messages(&self, conversation_id: &str) -> Vec<Message> {
        self.lock().messages.iter().filter(|((c, _), _)| c == conversation_id).map(|(_, m)| m.clone()).collect()
    }
}

#[async_trait]
impl ConnectionStore for InMemoryStore {
    async fn put_connection(&self, connection: &Connection) -> AppResult<()> {
        self.lock().connections.insert(connection.connection_id.clone(), connection.clone());
        Ok(())
    }

    async fn get_connection(&self, connection_id: &str) -> AppResult<Option<Connection>> {
        Ok(self.lock().connections.get(connection_id).cloned())
    }

    async fn delete_connection(&self, connection_id: &str, _user_id: &str) -> AppResult<()> {
        self.lock().connections.remove(connection_id);
        Ok(())
    }

    async fn connection_ids_of_user(&self, user_id: &str) -> AppResult<Vec<String>> {
        Ok(self.lock().connections.values().filter(|c| c.user_id == user_id).map(|c| c.connection_id.clone()).collect())
    }
}

#[async_trait]
impl UserStore for InMemoryStore {
    async fn create_user(&self, record: &UserRecord) -> AppResult<()> {
        let mut state = self.lock();
        let key = username_key(&record.user.username);
        if state.usernames.contains_key(&key) {
            return Err(AppError::Conflict("username is already taken"));
        }
        state.usernames.insert(key, record.user.id.clone());
        state.users.insert(record.user.id.clone(), record.clone());
        Ok(())
    }

    async fn get_user(&self, user_id: &str) -> AppResult<Option<User>> {
        Ok(self.lock().users.get(user_id).map(|r| r.user.clone()))
    }

    async fn get_users(&self, user_ids: &[String]) -> AppResult<Vec<User>> {
        let state = self.lock();
        Ok(user_ids.iter().filter_map(|id| state.users.get(id).map(|r| r.user.clone())).collect())
    }

    async fn find_by_username(&self, username: &str) -> AppResult<Option<UserRecord>> {
        let state = self.lock();
        Ok(state.usernames.get(&username_key(username)).and_then(|id| state.users.get(id)).cloned())
    }
}

#[async_trait]
impl ConversationStore for InMemoryStore {
    async fn create_conversation(&self, conversation: &Conversation) -> AppResult<Created<Conversation>> {
        let mut state = self.lock();
        if let Some(pair) = conversation.private_pair_key() {
            if let Some(existing) = state.pairs.get(&pair) {
                return Ok(Created::Existing(state.conversations[existing].clone()));
            }
            state.pairs.insert(pair, conversation.id.clone());
        }
        state.conversations.insert(conversation.id.clone(), conversation.clone());
        Ok(Created::New(conversation.clone()))
    }

    async fn get_conversation(&self, conversation_id: &str) -> AppResult<Option<Conversation>> {
        Ok(self.lock().conversations.get(conversation_id).cloned())
    }
}

#[async_trait]
impl MessageStore for InMemoryStore {
    async fn append_message(&self, new: NewMessage) -> AppResult<Created<Appended>> {
        let mut state = self.lock();
        let conversation = state
            .conversations
            .get(&new.conversation_id)
            .filter(|c| c.is_member(&new.sender.id))
            .cloned()
            .ok_or(AppError::NotFound("conversation not found"))?;
        let member_ids: Vec<String> = conversation.member_ids.iter().cloned().collect();
        let dedupe_key =
            new.client_message_id.clone().map(|cmid| (new.conversation_id.clone(), new.sender.id.clone(), cmid));
        if let Some(seq) = dedupe_key.as_ref().and_then(|k| state.client_ids.get(k)) {
            let message = state.messages[&(new.conversation_id.clone(), *seq)].clone();
            return Ok(Created::Existing(Appended { message, member_ids }));
        }
        let seq = conversation.last_seq + 1;
        let message = new.into_message(seq, now_iso());
        let conv = state.conversations.get_mut(&message.conversation_id).expect("checked above");
        conv.last_seq = seq;
        conv.updated_at = message.created_at.clone();
        conv.last_message = Some(message.clone());
        if let Some(key) = dedupe_key {
            state.client_ids.insert(key, seq);
        }
        state.read_seqs.insert((message.sender.id.clone(), message.conversation_id.clone()), seq);
        state.messages.insert((message.conversation_id.clone(), seq), message.clone());
        Ok(Created::New(Appended { message, member_ids }))
    }
}

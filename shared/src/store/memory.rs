//! An in-memory [`Store`](super::Store) for handler tests: same contract as DynamoDB, no network.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    Appended, ConnectionStore, ConversationStore, Created, MessageStore, PendingRequest, Relation, RoomStore,
    SocialStore, UserGraph, UserStore, username_key,
};
use crate::error::{AppError, AppResult};
use crate::model::{
    Connection, Conversation, LiveConnection, Message, NewMessage, Presence, User, UserRecord, now_epoch_seconds,
    now_iso,
};

#[derive(Default)]
pub(super) struct State {
    pub(super) connections: BTreeMap<String, Connection>,
    /// user id → the connections listed in their presence, by connection id
    presence: HashMap<String, BTreeMap<String, LiveConnection>>,
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
    /// (conversation id, connection id) → (user id, connection)
    joins: BTreeMap<(String, String), (String, LiveConnection)>,
    /// (conversation id, user id) → when the typing slot was taken, ms
    typing: HashMap<(String, String), u64>,
    /// both directions of every friendship
    friends: BTreeSet<(String, String)>,
    /// (from, to) → created at
    requests: BTreeMap<(String, String), String>,
    statuses: HashMap<String, String>,
    last_seen: HashMap<String, String>,
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

    /// Moves every connection's connect time `seconds` into the past (tests of the handshake grace).
    pub fn backdate_connections(&self, seconds: u64) {
        let mut state = self.lock();
        for connection in state.connections.values_mut() {
            connection.connected_at -= seconds;
        }
        for listed in state.presence.values_mut() {
            for connection in listed.values_mut() {
                connection.connected_at -= seconds;
            }
        }
    }

    /// Ids of the connections listed in a user's presence, sorted (test inspection).
    pub fn connection_ids(&self, user_id: &str) -> Vec<String> {
        let mut ids: Vec<String> =
            self.lock().presence_of(user_id).connections.into_iter().map(|c| c.connection_id).collect();
        ids.sort();
        ids
    }

    /// Messages of a conversation in `seq` order (test inspection).
    pub fn messages(&self, conversation_id: &str) -> Vec<Message> {
        self.lock().messages.iter().filter(|((c, _), _)| c == conversation_id).map(|(_, m)| m.clone()).collect()
    }
}

impl State {
    fn presence_of(&self, user_id: &str) -> Presence {
        let now = now_epoch_seconds();
        Presence {
            connections: self
                .presence
                .get(user_id)
                .into_iter()
                .flat_map(|connections| connections.values())
                .filter(|c| c.expires_at > now)
                .cloned()
                .collect(),
            status: self.statuses.get(user_id).cloned(),
            last_seen: self.last_seen.get(user_id).cloned(),
        }
    }
}

#[async_trait]
impl ConnectionStore for InMemoryStore {
    async fn add_connection(&self, connection: &Connection) -> AppResult<Presence> {
        let mut state = self.lock();
        state.connections.insert(connection.connection_id.clone(), connection.clone());
        state
            .presence
            .entry(connection.user_id.clone())
            .or_default()
            .insert(connection.connection_id.clone(), connection.live());
        Ok(state.presence_of(&connection.user_id))
    }

    async fn get_connection(&self, connection_id: &str) -> AppResult<Option<Connection>> {
        let now = now_epoch_seconds();
        Ok(self.lock().connections.get(connection_id).filter(|c| c.expires_at > now).cloned())
    }

    async fn remove_connection(&self, connection: &Connection, last_seen: &str) -> AppResult<Presence> {
        let mut state = self.lock();
        state.connections.remove(&connection.connection_id);
        let now = now_epoch_seconds();
        if let Some(listed) = state.presence.get_mut(&connection.user_id) {
            listed.remove(&connection.connection_id);
            listed.retain(|_, c| c.expires_at > now);
        }
        state.last_seen.insert(connection.user_id.clone(), last_seen.to_owned());
        Ok(state.presence_of(&connection.user_id))
    }

    async fn drop_gone_connection(&self, user_id: &str, connection: &LiveConnection) -> AppResult<()> {
        if let Some(listed) = self.lock().presence.get_mut(user_id) {
            listed.remove(&connection.connection_id);
        }
        Ok(())
    }

    async fn presence(&self, user_id: &str) -> AppResult<Presence> {
        Ok(self.lock().presence_of(user_id))
    }

    async fn presences(&self, user_ids: &[String]) -> AppResult<HashMap<String, Presence>> {
        let state = self.lock();
        Ok(user_ids.iter().map(|id| (id.clone(), state.presence_of(id))).collect())
    }

    async fn set_status(&self, user_id: &str, status: &str) -> AppResult<()> {
        self.lock().statuses.insert(user_id.to_owned(), status.to_owned());
        Ok(())
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

    async fn get_message(&self, conversation_id: &str, seq: u64) -> AppResult<Option<Message>> {
        Ok(self.lock().messages.get(&(conversation_id.to_owned(), seq)).cloned())
    }

    async fn edit_message(
        &self,
        conversation_id: &str,
        seq: u64,
        editor_id: &str,
        content: &str,
        at: &str,
    ) -> AppResult<Message> {
        let mut state = self.lock();
        let message = editable(&mut state, conversation_id, seq, editor_id)?;
        message.content = content.to_owned();
        message.edited = true;
        message.edited_at = Some(at.to_owned());
        Ok(message.clone())
    }

    async fn delete_message(&self, conversation_id: &str, seq: u64, user_id: &str, at: &str) -> AppResult<Message> {
        let mut state = self.lock();
        let message = editable(&mut state, conversation_id, seq, user_id)?;
        message.content = crate::model::DELETED_CONTENT.to_owned();
        message.deleted = true;
        message.deleted_at = Some(at.to_owned());
        message.file_url = None;
        message.file_name = None;
        Ok(message.clone())
    }

    async fn add_reaction(&self, conversation_id: &str, seq: u64, user_id: &str, emoji: &str) -> AppResult<bool> {
        let mut state = self.lock();
        let message = state
            .messages
            .get_mut(&(conversation_id.to_owned(), seq))
            .ok_or(AppError::NotFound("message not found"))?;
        let users = message.reactions.entry(emoji.to_owned()).or_default();
        if users.iter().any(|u| u == user_id) {
            return Ok(false);
        }
        users.push(user_id.to_owned());
        Ok(true)
    }

    async fn remove_reaction(&self, conversation_id: &str, seq: u64, user_id: &str, emoji: &str) -> AppResult<bool> {
        let mut state = self.lock();
        let Some(message) = state.messages.get_mut(&(conversation_id.to_owned(), seq)) else { return Ok(false) };
        let Some(users) = message.reactions.get_mut(emoji) else { return Ok(false) };
        let before = users.len();
        users.retain(|u| u != user_id);
        let removed = users.len() != before;
        if users.is_empty() {
            message.reactions.remove(emoji);
        }
        Ok(removed)
    }

    async fn advance_read(&self, user_id: &str, conversation_id: &str, seq: u64) -> AppResult<Option<u64>> {
        let mut state = self.lock();
        let pointer = state.read_seqs.entry((user_id.to_owned(), conversation_id.to_owned())).or_insert(0);
        if *pointer >= seq {
            return Ok(None);
        }
        Ok(Some(std::mem::replace(pointer, seq)))
    }
}

/// The message, if `user_id` sent it and it is not deleted.
fn editable<'a>(state: &'a mut State, conversation_id: &str, seq: u64, user_id: &str) -> AppResult<&'a mut Message> {
    let message =
        state.messages.get_mut(&(conversation_id.to_owned(), seq)).ok_or(AppError::NotFound("message not found"))?;
    if message.sender.id != user_id || message.deleted {
        return Err(AppError::Conflict("message cannot be changed"));
    }
    Ok(message)
}

#[async_trait]
impl RoomStore for InMemoryStore {
    async fn join(&self, connection: &Connection, conversation_id: &str) -> AppResult<()> {
        let mut state = self.lock();
        if !state.connections.contains_key(&connection.connection_id) {
            return Err(AppError::Unauthorized("connection is not registered, reconnect"));
        }
        let key = (conversation_id.to_owned(), connection.connection_id.clone());
        state.joins.insert(key, (connection.user_id.clone(), connection.live()));
        Ok(())
    }

    async fn leave(&self, connection_id: &str, conversation_id: &str) -> AppResult<()> {
        self.lock().joins.remove(&(conversation_id.to_owned(), connection_id.to_owned()));
        Ok(())
    }

    async fn leave_all(&self, connection_id: &str) -> AppResult<()> {
        self.lock().joins.retain(|(_, c), _| c != connection_id);
        Ok(())
    }

    async fn joined(&self, conversation_id: &str) -> AppResult<Vec<(String, LiveConnection)>> {
        let state = self.lock();
        Ok(state.joins.iter().filter(|((c, _), _)| c == conversation_id).map(|(_, joined)| joined.clone()).collect())
    }

    async fn claim_typing(&self, conversation_id: &str, user_id: &str, now_ms: u64, window_ms: u64) -> AppResult<bool> {
        let mut state = self.lock();
        let slot = state.typing.entry((conversation_id.to_owned(), user_id.to_owned())).or_insert(0);
        if *slot != 0 && now_ms < *slot + window_ms {
            return Ok(false);
        }
        *slot = now_ms;
        Ok(true)
    }

    async fn release_typing(&self, conversation_id: &str, user_id: &str) -> AppResult<()> {
        self.lock().typing.remove(&(conversation_id.to_owned(), user_id.to_owned()));
        Ok(())
    }
}

#[async_trait]
impl SocialStore for InMemoryStore {
    async fn user_graph(&self, user_id: &str) -> AppResult<UserGraph> {
        let state = self.lock();
        let pending = |mine: bool| {
            state
                .requests
                .iter()
                .filter(|((from, to), _)| if mine { from == user_id } else { to == user_id })
                .map(|((from, to), at)| PendingRequest {
                    user_id: if mine { to.clone() } else { from.clone() },
                    created_at: at.clone(),
                })
                .collect()
        };
        Ok(UserGraph {
            conversation_ids: state
                .conversations
                .values()
                .filter(|c| c.is_member(user_id))
                .map(|c| c.id.clone())
                .collect(),
            friend_ids: state.friends.iter().filter(|(a, _)| a == user_id).map(|(_, b)| b.clone()).collect(),
            incoming: pending(false),
            outgoing: pending(true),
        })
    }

    async fn relation(&self, user_id: &str, other_id: &str) -> AppResult<Relation> {
        let state = self.lock();
        let pair = (user_id.to_owned(), other_id.to_owned());
        Ok(if state.friends.contains(&pair) {
            Relation::Friends
        } else if state.requests.contains_key(&pair) {
            Relation::RequestSent
        } else if state.requests.contains_key(&(other_id.to_owned(), user_id.to_owned())) {
            Relation::RequestReceived
        } else {
            Relation::None
        })
    }

    async fn create_friend_request(&self, from: &str, to: &str, at: &str) -> AppResult<()> {
        let mut state = self.lock();
        let (ab, ba) = ((from.to_owned(), to.to_owned()), (to.to_owned(), from.to_owned()));
        if state.friends.contains(&ab) || state.requests.contains_key(&ab) || state.requests.contains_key(&ba) {
            return Err(AppError::Conflict("already friends or a request is pending"));
        }
        state.requests.insert(ab, at.to_owned());
        Ok(())
    }

    async fn delete_friend_request(&self, from: &str, to: &str) -> AppResult<bool> {
        Ok(self.lock().requests.remove(&(from.to_owned(), to.to_owned())).is_some())
    }

    async fn accept_friend_request(&self, from: &str, to: &str, _at: &str) -> AppResult<bool> {
        let mut state = self.lock();
        if state.requests.remove(&(from.to_owned(), to.to_owned())).is_none() {
            return Ok(false);
        }
        state.friends.insert((from.to_owned(), to.to_owned()));
        state.friends.insert((to.to_owned(), from.to_owned()));
        Ok(true)
    }

    async fn delete_friendship(&self, a: &str, b: &str) -> AppResult<bool> {
        let mut state = self.lock();
        let removed = state.friends.remove(&(a.to_owned(), b.to_owned()));
        state.friends.remove(&(b.to_owned(), a.to_owned()));
        Ok(removed)
    }

    async fn members_of(&self, conversation_ids: &[String]) -> AppResult<Vec<String>> {
        let state = self.lock();
        let members: BTreeSet<String> = conversation_ids
            .iter()
            .filter_map(|id| state.conversations.get(id))
            .flat_map(|c| c.member_ids.iter().cloned())
            .collect();
        Ok(members.into_iter().collect())
    }
}

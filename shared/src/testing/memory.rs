//! Every store port in memory, for handler tests: the same answers and preconditions as the DynamoDB
//! implementation, computed from one state under one lock (so each call is atomic, like a conditional write).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{AppError, AppResult};
use crate::model::{
    Connection, ConnectionId, Conversation, ConversationId, ConversationKind, LiveConnection, Message, NewMessage,
    Roster, User, UserId, UserPresence, UserRecord, now_epoch_seconds, now_iso,
};
use crate::ports::{
    Appended, ConnectionStore, ConversationChanges, ConversationStore, Created, FriendStore, Membership, MessageStore,
    PendingRequest, RateLimit, RateStore, Relation, Relations, RoomStore, SeqRange, UserKey, UserStore, username_key,
};

#[derive(Default)]
struct State {
    connections: BTreeMap<ConnectionId, Connection>,
    /// user → the connections listed in their presence
    presence: HashMap<UserId, BTreeMap<ConnectionId, LiveConnection>>,
    statuses: HashMap<UserId, String>,
    last_seen: HashMap<UserId, String>,
    users: HashMap<UserId, UserRecord>,
    usernames: HashMap<String, UserId>,
    /// Conversation records; their roster is rebuilt from `members` when read.
    conversations: HashMap<ConversationId, Conversation>,
    members: HashMap<ConversationId, BTreeSet<UserId>>,
    pairs: HashMap<String, ConversationId>,
    /// (conversation, seq) → message
    messages: BTreeMap<(ConversationId, u64), Message>,
    /// (user, conversation) → seq of the newest message the user has read
    read_seqs: HashMap<(UserId, ConversationId), u64>,
    /// (conversation, sender, client message id) → seq
    client_ids: HashMap<(ConversationId, UserId, String), u64>,
    /// (conversation, connection) → (user, connection)
    joins: BTreeMap<(ConversationId, ConnectionId), (UserId, LiveConnection)>,
    /// (user, kind, window start) → requests counted
    rates: HashMap<(UserId, &'static str, u64), u32>,
    /// (conversation, user) → when the typing slot was taken, ms
    typing: HashMap<(ConversationId, UserId), u64>,
    /// both directions of every friendship
    friends: BTreeSet<(UserId, UserId)>,
    /// (from, to) → created at
    requests: BTreeMap<(UserId, UserId), String>,
}

impl State {
    /// A conversation as the store answers it: its roster from the members.
    fn conversation(&self, id: &ConversationId) -> Option<Conversation> {
        let mut conversation = self.conversations.get(id)?.clone();
        conversation.roster = Roster::of(self.members.get(id).cloned().unwrap_or_default());
        Some(conversation)
    }

    fn is_member(&self, id: &ConversationId, user_id: &UserId) -> bool {
        self.members.get(id).is_some_and(|members| members.contains(user_id))
    }

    fn membership(&self, id: &ConversationId, user_id: &UserId) -> Option<Membership> {
        self.is_member(id, user_id).then(|| Membership {
            conversation_id: id.clone(),
            last_read_seq: self.read_seqs.get(&(user_id.clone(), id.clone())).copied().unwrap_or(0),
        })
    }

    /// The record of `conversation` if its roster is still at the version read, for a write.
    fn unchanged(&mut self, conversation: &Conversation) -> Option<&mut Conversation> {
        self.conversations.get_mut(&conversation.id).filter(|c| c.roster_version == conversation.roster_version)
    }

    /// Counts one request against `limit`, as the conditional counter update does.
    fn count(&mut self, user_id: &UserId, limit: &RateLimit) -> AppResult<()> {
        let now = now_epoch_seconds();
        let hits = self.rates.entry((user_id.clone(), limit.kind, limit.window_start(now))).or_insert(0);
        if *hits >= limit.max {
            return Err(limit.exceeded(now));
        }
        *hits += 1;
        Ok(())
    }

    fn presence_of(&self, user_id: &UserId) -> UserPresence {
        let now = now_epoch_seconds();
        UserPresence {
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

pub struct InMemoryStore {
    state: Mutex<State>,
    /// Members one `add_members` call takes (DynamoDB's is bounded by the transaction size).
    member_page: Mutex<usize>,
    /// Operations that fail with an internal error until cleared (fault injection).
    failing: Mutex<BTreeSet<&'static str>>,
}

impl Default for InMemoryStore {
    fn default() -> Self {
        InMemoryStore { state: Mutex::default(), member_page: Mutex::new(usize::MAX), failing: Mutex::default() }
    }
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `add_members` take at most `page` candidates per call, as a transaction limit would.
    pub fn limit_member_writes(&self, page: usize) {
        *self.member_page.lock().unwrap() = page.max(1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes `operation` (a store method's name: `append_message`, `presences`, …) fail as DynamoDB failing
    /// would, before it changes anything, until [`InMemoryStore::heal`].
    pub fn fail(&self, operation: &'static str) {
        self.failing.lock().unwrap().insert(operation);
    }

    pub fn heal(&self) {
        self.failing.lock().unwrap().clear();
    }

    fn injected(&self, operation: &'static str) -> AppResult<()> {
        if self.failing.lock().unwrap().contains(operation) {
            return Err(AppError::internal(format!("injected failure of {operation}")));
        }
        Ok(())
    }

    /// Messages of a conversation in `seq` order (test inspection).
    pub fn messages_of(&self, conversation_id: &ConversationId) -> Vec<Message> {
        self.lock().messages.iter().filter(|((c, _), _)| c == conversation_id).map(|(_, m)| m.clone()).collect()
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
    pub fn connection_ids(&self, user_id: &UserId) -> Vec<String> {
        let mut ids: Vec<String> =
            self.lock().presence_of(user_id).connections.into_iter().map(|c| c.connection_id.to_string()).collect();
        ids.sort();
        ids
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

    async fn get_user(&self, user_id: &UserId) -> AppResult<Option<User>> {
        Ok(self.lock().users.get(user_id).map(|r| r.user.clone()))
    }

    async fn get_users(&self, user_ids: &[UserId]) -> AppResult<Vec<User>> {
        let state = self.lock();
        let ids: BTreeSet<&UserId> = user_ids.iter().collect();
        Ok(ids.into_iter().filter_map(|id| state.users.get(id).map(|r| r.user.clone())).collect())
    }

    async fn find_by_username(&self, username: &str) -> AppResult<Option<UserRecord>> {
        let state = self.lock();
        Ok(state.usernames.get(&username_key(username)).and_then(|id| state.users.get(id)).cloned())
    }

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
}

#[async_trait]
impl ConnectionStore for InMemoryStore {
    async fn add_connection(&self, connection: &Connection) -> AppResult<UserPresence> {
        let mut state = self.lock();
        state.connections.insert(connection.connection_id.clone(), connection.clone());
        let listed = state.presence.entry(connection.user_id.clone()).or_default();
        listed.insert(connection.connection_id.clone(), connection.live());
        Ok(state.presence_of(&connection.user_id))
    }

    async fn get_connection(&self, connection_id: &ConnectionId) -> AppResult<Option<Connection>> {
        let now = now_epoch_seconds();
        Ok(self.lock().connections.get(connection_id).filter(|c| c.expires_at > now).cloned())
    }

    async fn remove_connection(&self, connection: &Connection, last_seen: &str) -> AppResult<UserPresence> {
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

    async fn drop_gone_connection(&self, user_id: &UserId, connection: &LiveConnection) -> AppResult<()> {
        if let Some(listed) = self.lock().presence.get_mut(user_id) {
            listed.remove(&connection.connection_id);
        }
        Ok(())
    }

    async fn presence(&self, user_id: &UserId) -> AppResult<UserPresence> {
        Ok(self.lock().presence_of(user_id))
    }

    async fn presences(&self, user_ids: &[UserId]) -> AppResult<HashMap<UserId, UserPresence>> {
        self.injected("presences")?;
        let state = self.lock();
        Ok(user_ids.iter().map(|id| (id.clone(), state.presence_of(id))).collect())
    }

    async fn set_status(&self, user_id: &UserId, status: &str) -> AppResult<()> {
        self.lock().statuses.insert(user_id.clone(), status.to_owned());
        Ok(())
    }
}

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
            state.pairs.insert(pair, conversation.id.clone());
        }
        for member in &members {
            state.read_seqs.insert((member.clone(), conversation.id.clone()), 0);
        }
        state.members.insert(conversation.id.clone(), members);
        state.conversations.insert(conversation.id.clone(), conversation.clone());
        Ok(Created::New(state.conversation(&conversation.id).expect("just stored")))
    }

    async fn get_conversation(&self, conversation_id: &ConversationId) -> AppResult<Option<Conversation>> {
        self.injected("get_conversation")?;
        Ok(self.lock().conversation(conversation_id))
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
        }
        state.members.entry(conversation.id.clone()).or_default().extend(taken.iter().cloned());
        Ok(state.conversation(&conversation.id).map(|c| (c, taken.len())))
    }

    async fn remove_member(
        &self,
        conversation: &Conversation,
        user_id: &UserId,
        now: &str,
    ) -> AppResult<Option<Conversation>> {
        let mut state = self.lock();
        if !state.is_member(&conversation.id, user_id) {
            return Ok(None);
        }
        let Some(c) = state.unchanged(conversation) else { return Ok(None) };
        c.roster_version += 1;
        c.updated_at = now.to_owned();
        state.members.get_mut(&conversation.id).expect("a member was found").remove(user_id);
        state.read_seqs.remove(&(user_id.clone(), conversation.id.clone()));
        Ok(state.conversation(&conversation.id))
    }
}

#[async_trait]
impl MessageStore for InMemoryStore {
    async fn append_message(
        &self,
        _read: &Conversation,
        new: NewMessage,
        limit: &RateLimit,
    ) -> AppResult<Option<Created<Appended>>> {
        self.injected("append_message")?;
        let mut state = self.lock();
        // Under the lock the state is current: the caller's read is not needed.
        let Some(conversation) =
            state.conversation(&new.conversation_id).filter(|_| state.is_member(&new.conversation_id, &new.sender.id))
        else {
            return Ok(None);
        };
        let roster = conversation.roster.clone();
        let dedupe_key =
            new.client_message_id.clone().map(|cmid| (new.conversation_id.clone(), new.sender.id.clone(), cmid));
        if let Some(seq) = dedupe_key.as_ref().and_then(|k| state.client_ids.get(k)) {
            let message = state.messages[&(new.conversation_id.clone(), *seq)].clone();
            return Ok(Some(Created::Existing(Appended { message, roster })));
        }
        state.count(&new.sender.id, limit)?;
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
        Ok(Some(Created::New(Appended { message, roster })))
    }

    async fn get_message(&self, conversation_id: &ConversationId, seq: u64) -> AppResult<Option<Message>> {
        Ok(self.lock().messages.get(&(conversation_id.clone(), seq)).cloned())
    }

    async fn edit_message(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        editor_id: &UserId,
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

    async fn delete_message(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        user_id: &UserId,
        at: &str,
    ) -> AppResult<Message> {
        let mut state = self.lock();
        let message = editable(&mut state, conversation_id, seq, user_id)?;
        message.content = crate::model::DELETED_CONTENT.to_owned();
        message.deleted = true;
        message.deleted_at = Some(at.to_owned());
        message.file_url = None;
        message.file_name = None;
        Ok(message.clone())
    }

    async fn add_reaction(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        user_id: &UserId,
        emoji: &str,
    ) -> AppResult<bool> {
        let mut state = self.lock();
        let message =
            state.messages.get_mut(&(conversation_id.clone(), seq)).ok_or(AppError::NotFound("message not found"))?;
        if message.deleted {
            return Err(AppError::Conflict("message was deleted"));
        }
        let users = message.reactions.entry(emoji.to_owned()).or_default();
        if users.contains(user_id) {
            return Ok(false);
        }
        users.push(user_id.clone());
        Ok(true)
    }

    async fn remove_reaction(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        user_id: &UserId,
        emoji: &str,
    ) -> AppResult<bool> {
        let mut state = self.lock();
        let Some(message) = state.messages.get_mut(&(conversation_id.clone(), seq)) else { return Ok(false) };
        let Some(users) = message.reactions.get_mut(emoji) else { return Ok(false) };
        let before = users.len();
        users.retain(|u| u != user_id);
        let removed = users.len() != before;
        if users.is_empty() {
            message.reactions.remove(emoji);
        }
        Ok(removed)
    }

    async fn advance_read(
        &self,
        user_id: &UserId,
        conversation_id: &ConversationId,
        seq: u64,
    ) -> AppResult<Option<u64>> {
        let mut state = self.lock();
        // Like the conditional update on the membership item: no membership, nothing to move.
        if !state.is_member(conversation_id, user_id) {
            return Ok(None);
        }
        let pointer = state.read_seqs.entry((user_id.clone(), conversation_id.clone())).or_insert(0);
        if *pointer >= seq {
            return Ok(None);
        }
        Ok(Some(std::mem::replace(pointer, seq)))
    }

    async fn messages(
        &self,
        conversation_id: &ConversationId,
        range: SeqRange,
        limit: usize,
    ) -> AppResult<Vec<Message>> {
        let state = self.lock();
        let key = |seq: u64| (conversation_id.clone(), seq);
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
}

/// The message, if `user_id` sent it and it is not deleted.
fn editable<'a>(
    state: &'a mut State,
    conversation_id: &ConversationId,
    seq: u64,
    user_id: &UserId,
) -> AppResult<&'a mut Message> {
    let message =
        state.messages.get_mut(&(conversation_id.clone(), seq)).ok_or(AppError::NotFound("message not found"))?;
    if message.sender.id != *user_id || message.deleted {
        return Err(AppError::Conflict("message cannot be changed"));
    }
    Ok(message)
}

#[async_trait]
impl RoomStore for InMemoryStore {
    async fn join(&self, connection: &Connection, conversation_id: &ConversationId) -> AppResult<()> {
        let mut state = self.lock();
        if !state.connections.contains_key(&connection.connection_id) {
            return Err(AppError::Unauthorized("connection is not registered, reconnect"));
        }
        let key = (conversation_id.clone(), connection.connection_id.clone());
        state.joins.insert(key, (connection.user_id.clone(), connection.live()));
        Ok(())
    }

    async fn leave(&self, connection_id: &ConnectionId, conversation_id: &ConversationId) -> AppResult<()> {
        self.lock().joins.remove(&(conversation_id.clone(), connection_id.clone()));
        Ok(())
    }

    async fn leave_all(&self, connection_id: &ConnectionId) -> AppResult<()> {
        self.lock().joins.retain(|(_, c), _| c != connection_id);
        Ok(())
    }

    async fn forget_member(&self, conversation_id: &ConversationId, user_id: &UserId) -> AppResult<()> {
        self.lock().joins.retain(|(c, _), (user, _)| c != conversation_id || user != user_id);
        Ok(())
    }

    async fn joined(&self, conversation_id: &ConversationId) -> AppResult<Vec<(UserId, LiveConnection)>> {
        let state = self.lock();
        Ok(state.joins.iter().filter(|((c, _), _)| c == conversation_id).map(|(_, joined)| joined.clone()).collect())
    }

    async fn claim_typing(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        now_ms: u64,
        window_ms: u64,
    ) -> AppResult<bool> {
        let mut state = self.lock();
        let slot = state.typing.entry((conversation_id.clone(), user_id.clone())).or_insert(0);
        if *slot != 0 && now_ms < *slot + window_ms {
            return Ok(false);
        }
        *slot = now_ms;
        Ok(true)
    }

    async fn release_typing(&self, conversation_id: &ConversationId, user_id: &UserId) -> AppResult<()> {
        self.lock().typing.remove(&(conversation_id.clone(), user_id.clone()));
        Ok(())
    }
}

#[async_trait]
impl RateStore for InMemoryStore {
    async fn take(&self, user_id: &UserId, limit: &RateLimit) -> AppResult<()> {
        self.lock().count(user_id, limit)
    }
}

#[async_trait]
impl FriendStore for InMemoryStore {
    async fn relations(&self, user_id: &UserId) -> AppResult<Relations> {
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
        Ok(Relations {
            conversation_ids: state
                .members
                .iter()
                .filter(|(_, members)| members.contains(user_id))
                .map(|(id, _)| id.clone())
                .collect(),
            friend_ids: state.friends.iter().filter(|(a, _)| a == user_id).map(|(_, b)| b.clone()).collect(),
            incoming: pending(false),
            outgoing: pending(true),
        })
    }

    async fn relation(&self, user_id: &UserId, other_id: &UserId) -> AppResult<Relation> {
        let state = self.lock();
        let pair = (user_id.clone(), other_id.clone());
        Ok(if state.friends.contains(&pair) {
            Relation::Friends
        } else if state.requests.contains_key(&pair) {
            Relation::RequestSent
        } else if state.requests.contains_key(&(other_id.clone(), user_id.clone())) {
            Relation::RequestReceived
        } else {
            Relation::None
        })
    }

    async fn create_friend_request(&self, from: &UserId, to: &UserId, at: &str) -> AppResult<()> {
        let mut state = self.lock();
        let (ab, ba) = ((from.clone(), to.clone()), (to.clone(), from.clone()));
        if state.friends.contains(&ab) || state.requests.contains_key(&ab) || state.requests.contains_key(&ba) {
            return Err(AppError::Conflict("already friends or a request is pending"));
        }
        state.requests.insert(ab, at.to_owned());
        Ok(())
    }

    async fn delete_friend_request(&self, from: &UserId, to: &UserId) -> AppResult<bool> {
        Ok(self.lock().requests.remove(&(from.clone(), to.clone())).is_some())
    }

    async fn accept_friend_request(&self, from: &UserId, to: &UserId, _at: &str) -> AppResult<bool> {
        let mut state = self.lock();
        if state.requests.remove(&(from.clone(), to.clone())).is_none() {
            return Ok(false);
        }
        state.friends.insert((from.clone(), to.clone()));
        state.friends.insert((to.clone(), from.clone()));
        Ok(true)
    }

    async fn delete_friendship(&self, a: &UserId, b: &UserId) -> AppResult<bool> {
        let mut state = self.lock();
        let removed = state.friends.remove(&(a.clone(), b.clone()));
        state.friends.remove(&(b.clone(), a.clone()));
        Ok(removed)
    }
}

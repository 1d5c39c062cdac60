//! Every store port in memory, for handler tests: the same answers and preconditions as the DynamoDB
//! implementation, computed from one state under one lock (so each call is atomic, like a conditional write).
//! One file per port, like `aws::dynamo`; the state they share is here.

mod connections;
mod conversations;
mod erasure;
mod exports;
mod friends;
mod messages;
mod moderation;
mod push;
mod rates;
mod rooms;
mod sessions;
mod uploads;
mod users;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use crate::error::{AppError, AppResult};
use crate::model::{
    AuditEntry, Connection, ConnectionId, ContactableBy, Conversation, ConversationId, ConversationNotifications,
    ExportRecord, LiveConnection, Message, NotificationPreferences, PushSubscription, Report, Roster, SessionId,
    SessionRecord, Upload, UploadId, UserId, UserPresence, UserRecord, now_epoch_seconds,
};
use crate::ports::{Membership, RateLimit};

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
    /// (user, conversation) → when they joined
    joined_at: HashMap<(UserId, ConversationId), String>,
    /// (user, conversation) → seqs of the messages that mentioned the user
    mentions: HashMap<(UserId, ConversationId), BTreeSet<u64>>,
    /// (user, conversation) → their notification setting, once changed
    notify: HashMap<(UserId, ConversationId), ConversationNotifications>,
    /// (conversation, sender, client message id) → seq
    client_ids: HashMap<(ConversationId, UserId, String), u64>,
    /// (conversation, connection) → (user, connection)
    joins: BTreeMap<(ConversationId, ConnectionId), (UserId, LiveConnection)>,
    uploads: HashMap<UploadId, Upload>,
    /// (user, kind, window start) → requests counted
    rates: HashMap<(UserId, &'static str, u64), u32>,
    /// (conversation, user) → when the typing slot was taken, ms
    typing: HashMap<(ConversationId, UserId), u64>,
    /// both directions of every friendship
    friends: BTreeSet<(UserId, UserId)>,
    /// (from, to) → created at
    requests: BTreeMap<(UserId, UserId), String>,
    /// (blocker, blocked) → created at
    blocks: BTreeMap<(UserId, UserId), String>,
    contactable_by: HashMap<UserId, ContactableBy>,
    notification_preferences: HashMap<UserId, NotificationPreferences>,
    sessions: HashMap<(UserId, SessionId), SessionRecord>,
    /// (target, reporter) → report
    reports: BTreeMap<(String, UserId), Report>,
    audit: Vec<AuditEntry>,
    exports: HashMap<UserId, ExportRecord>,
    /// user → their connections whose app is in the background
    background: HashMap<UserId, BTreeSet<ConnectionId>>,
    /// user → their push subscriptions by id
    push: HashMap<UserId, BTreeMap<String, PushSubscription>>,
}

impl State {
    /// A conversation as the store answers it: its roster from the members.
    fn conversation(&self, id: &ConversationId) -> Option<Conversation> {
        let mut conversation = self.conversations.get(id)?.clone();
        conversation.roster = Roster::of(self.members.get(id).cloned().unwrap_or_default());
        if conversation.private_pair_key().is_some() {
            let pair: Vec<&UserId> = conversation.roster.listed().into_iter().flatten().collect();
            conversation.blocked = self.either_blocked(pair[0], pair[1]);
        }
        Some(conversation)
    }

    fn either_blocked(&self, a: &UserId, b: &UserId) -> bool {
        self.blocks.contains_key(&(a.clone(), b.clone())) || self.blocks.contains_key(&(b.clone(), a.clone()))
    }

    fn is_member(&self, id: &ConversationId, user_id: &UserId) -> bool {
        self.members.get(id).is_some_and(|members| members.contains(user_id))
    }

    fn membership(&self, id: &ConversationId, user_id: &UserId) -> Option<Membership> {
        let key = (user_id.clone(), id.clone());
        self.is_member(id, user_id).then(|| Membership {
            conversation_id: id.clone(),
            last_read_seq: self.read_seqs.get(&key).copied().unwrap_or(0),
            mention_seqs: self.mentions.get(&key).into_iter().flatten().copied().collect(),
            notifications: self.notify.get(&key).cloned().unwrap_or_default(),
        })
    }

    /// Forgets everything kept on a membership, as deleting its item does.
    fn forget_membership(&mut self, id: &ConversationId, user_id: &UserId) {
        let key = (user_id.clone(), id.clone());
        self.read_seqs.remove(&key);
        self.joined_at.remove(&key);
        self.mentions.remove(&key);
        self.notify.remove(&key);
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
            blocked: self.blocks.keys().filter(|(blocker, _)| blocker == user_id).map(|(_, b)| b.clone()).collect(),
            contactable_by: self.contactable_by.get(user_id).copied().unwrap_or_default(),
            notifications: self.notification_preferences.get(user_id).cloned().unwrap_or_default(),
            push_subscriptions: self.push.get(user_id).map_or(0, |subs| subs.len() as u32),
            background: self.background.get(user_id).cloned().unwrap_or_default(),
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

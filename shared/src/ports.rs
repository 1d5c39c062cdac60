//! The ports the use cases depend on: persistence, one small trait per resource, the attachments bucket, and
//! delivery of one frame to one connection. `aws::dynamo`, `aws::s3` and `aws::apigateway` implement them for AWS
//! and the emulator; `testing` (feature `test-util`) implements them in memory. Each use case holds only the
//! traits it needs.
//!
//! Both implementations must behave the same, including the atomic guarantees (unique usernames, one private
//! conversation per pair, gap-free `seq`, idempotent sends, presence read atomically with each change).

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{AppError, AppResult};
use crate::model::{
    Attachment, AuditEntry, Connection, ConnectionId, ContactableBy, Conversation, ConversationId,
    ConversationNotifications, ErasureJob, ExportId, ExportJob, ExportRecord, LiveConnection, Message, NewMessage,
    NotificationPreferences, Processed, PushSubscription, ReadyExport, Report, ReportStatus, ReportTarget, Roles,
    Roster, SessionId, SessionRecord, Standing, Upload, UploadId, User, UserId, UserPresence, UserRecord,
};

// ---------------------------------------------------------------------------------------------- accounts

/// Where a username search page starts: strictly after this user in search order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserKey {
    /// The lowercased username (the index sort key).
    pub name: String,
    pub id: UserId,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with `Conflict` when the username (case-insensitively) is taken.
    async fn create_user(&self, record: &UserRecord) -> AppResult<()>;
    async fn get_user(&self, user_id: &UserId) -> AppResult<Option<User>>;
    /// Users that exist among `user_ids`, in no particular order.
    async fn get_users(&self, user_ids: &[UserId]) -> AppResult<Vec<User>>;
    async fn find_by_username(&self, username: &str) -> AppResult<Option<UserRecord>>;
    /// Users whose lowercased username starts with `prefix` (lowercased, non-empty), in lowercased-username
    /// order, strictly after `after`, at most `limit`.
    async fn search_users(&self, prefix: &str, after: Option<&UserKey>, limit: usize) -> AppResult<Vec<User>>;
    /// The user with their password hash.
    async fn user_record(&self, user_id: &UserId) -> AppResult<Option<UserRecord>>;
    async fn set_password_hash(&self, user_id: &UserId, password_hash: &str) -> AppResult<()>;
}

// ---------------------------------------------------------------------------------------------- sessions

/// Logins. A session is one item under its user, read with the user's profile in one request by every
/// authenticated request, so ending it (deleting it) refuses its tokens on their next use.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, session: &SessionRecord) -> AppResult<()>;
    /// The user and their standing, if they and this session of theirs (unexpired) both exist: one read.
    async fn session_user(&self, user_id: &UserId, session_id: &SessionId) -> AppResult<Option<(User, Standing)>>;
    /// Moves the session from `generation` to the next (and its expiry to `expires_at`) if it exists, is
    /// unexpired and still is at `generation`; `false` otherwise, and nothing changes.
    async fn rotate_session(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
        generation: u64,
        refreshed_at: &str,
        expires_at: u64,
    ) -> AppResult<bool>;
    /// `false` if there was no such session.
    async fn delete_session(&self, user_id: &UserId, session_id: &SessionId) -> AppResult<bool>;
    /// The user's unexpired sessions, in no particular order.
    async fn sessions(&self, user_id: &UserId) -> AppResult<Vec<SessionRecord>>;
}

// ---------------------------------------------------------------------------------------------- moderation

/// Where a page of open reports starts: strictly after this report in the order they were made.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReportKey {
    pub created_at: String,
    pub target: String,
    pub reporter_id: UserId,
}

impl ReportKey {
    pub fn of(report: &Report) -> ReportKey {
        ReportKey {
            created_at: report.created_at.clone(),
            target: report.target.to_string(),
            reporter_id: report.reporter_id.clone(),
        }
    }
}

/// Where a page of the audit record starts: strictly before this entry (newest first).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditKey {
    pub at: String,
    pub id: String,
}

/// Reports, the operator and suspension flags on profiles, and the audit record.
#[async_trait]
pub trait ModerationStore: Send + Sync {
    /// Stores the report and counts it against `limit`, atomically; `false` (nothing stored or counted) if this
    /// reporter already reported this target; `RateLimited` once the window's budget is spent.
    async fn create_report(&self, report: &Report, limit: &RateLimit) -> AppResult<bool>;
    /// Open reports, oldest first, strictly after `after`, at most `limit`.
    async fn open_reports(&self, after: Option<&ReportKey>, limit: usize) -> AppResult<Vec<Report>>;
    /// Closes every open report of `target` with `status`; how many it closed.
    async fn resolve_reports(
        &self,
        target: &ReportTarget,
        status: ReportStatus,
        resolved_by: &UserId,
        at: &str,
    ) -> AppResult<usize>;
    /// `false` if there is no such user.
    async fn set_operator(&self, user_id: &UserId, operator: bool) -> AppResult<bool>;
    /// `false` if there is no such user.
    async fn set_suspended(&self, user_id: &UserId, suspended: bool) -> AppResult<bool>;
    async fn record_audit(&self, entry: &AuditEntry) -> AppResult<()>;
    /// The entries of one month (`YYYY-MM`), newest first, strictly before `before`, at most `limit`.
    async fn audit_entries(&self, month: &str, before: Option<&AuditKey>, limit: usize) -> AppResult<Vec<AuditEntry>>;
}

// ---------------------------------------------------------------------------------------------- erasure

/// One page of a user's messages in one conversation (an export reads them, an erasure erases them). There is
/// no index by sender: a page looks at up to a limit of the conversation's messages and keeps the user's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SenderPage {
    /// The user's messages among those looked at, oldest first, as they were before this page.
    pub messages: Vec<Message>,
    /// The highest seq this page looked at; `None` once the conversation has no message after `after_seq`.
    pub scanned_through: Option<u64>,
}

/// What erasing a deleted account needs beyond the other ports.
#[async_trait]
pub trait ErasureStore: Send + Sync {
    /// Closes the account in one atomic write: frees the username claim, makes the profile a tombstone (shown as
    /// [`crate::model::DELETED_ACCOUNT`], no avatar, no password, out of the search index, flagged `deleted`).
    /// `false` if there is no such (undeleted) user.
    async fn tombstone_user(&self, user_id: &UserId, username: &str, at: &str) -> AppResult<bool>;
    /// Erases the messages `sender` sent in `conversation` after `after_seq`, looking at up to `limit` messages:
    /// content replaced, marked deleted, the sender shown as deleted, the attachment dropped. The conversation's
    /// `lastMessage` copy follows when the newest message is erased. Idempotent.
    async fn erase_messages(
        &self,
        conversation: &Conversation,
        sender: &UserId,
        after_seq: u64,
        limit: usize,
    ) -> AppResult<SenderPage>;
    /// Closes a private conversation whose member `deleted` deleted their account: it stays readable, and
    /// [`Conversation::refuse_if_closed`] refuses writes to it. Idempotent.
    async fn close_for_deleted_member(&self, conversation_id: &ConversationId, deleted: &UserId) -> AppResult<()>;
    /// Deletes the user's presence record (status, blocks list, last seen) and their push subscriptions.
    async fn delete_presence(&self, user_id: &UserId) -> AppResult<()>;
}

/// The latest export of each user's data.
#[async_trait]
pub trait ExportStore: Send + Sync {
    /// Records `record` as the user's export unless the one they have was requested after `fresh_after`: then
    /// that one is `Existing`, so requests at the same moment start one export.
    async fn start_export(&self, record: &ExportRecord, fresh_after: &str) -> AppResult<Created<ExportRecord>>;
    async fn export_record(&self, user_id: &UserId) -> AppResult<Option<ExportRecord>>;
    /// Marks export `export_id` ready; `false` if the user's export is another one now (or none).
    async fn finish_export(&self, user_id: &UserId, export_id: &ExportId, ready: &ReadyExport) -> AppResult<bool>;
    /// Forgets the user's export record; the one forgotten, if any.
    async fn forget_export(&self, user_id: &UserId) -> AppResult<Option<ExportRecord>>;
}

/// A job of the account queue, consumed by the `account-worker` function: the job's own JSON, told apart by
/// `exportId` (which only an export has), so erasure jobs queued before exports existed still read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum AccountJob {
    Export(ExportJob),
    Erasure(ErasureJob),
}

impl<'de> serde::Deserialize<'de> for AccountJob {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        // Never a fallback from one kind to the other: a malformed export must not read as an erasure.
        if value.get("exportId").is_some() {
            serde_json::from_value(value).map(AccountJob::Export).map_err(D::Error::custom)
        } else {
            serde_json::from_value(value).map(AccountJob::Erasure).map_err(D::Error::custom)
        }
    }
}

impl From<ErasureJob> for AccountJob {
    fn from(job: ErasureJob) -> Self {
        AccountJob::Erasure(job)
    }
}

impl From<ExportJob> for AccountJob {
    fn from(job: ExportJob) -> Self {
        AccountJob::Export(job)
    }
}

/// Where account jobs go: an SQS queue.
#[async_trait]
pub trait AccountQueue: Send + Sync {
    /// Enqueues `job`, visible to the worker after `delay_secs`.
    async fn enqueue(&self, job: &AccountJob, delay_secs: u32) -> AppResult<()>;
}

/// Usernames are unique regardless of case; this is the form used for uniqueness and lookup.
pub fn username_key(username: &str) -> String {
    username.to_lowercase()
}

// ---------------------------------------------------------------------------------------------- presence

/// Connections and presence. A user's presence (live connections, status, last seen) is one record, so
/// fan-out reads the connections of 100 users with one request, and connecting or disconnecting learns the
/// presence right after its own change in the same atomic write.
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Stores the connection and adds it to its user's presence. Returns the presence right after this change:
    /// of several simultaneous first connections of a user, exactly one sees itself alone.
    async fn add_connection(&self, connection: &Connection) -> AppResult<UserPresence>;
    /// The connection, unless unknown or expired.
    async fn get_connection(&self, connection_id: &ConnectionId) -> AppResult<Option<Connection>>;
    /// The user's live connections with their records (which session opened each).
    async fn user_connections(&self, user_id: &UserId) -> AppResult<Vec<Connection>>;
    /// Deletes the connection, takes it out of its user's presence and records `last_seen`. Returns the presence
    /// right after this change: of several simultaneous last disconnections, at least one sees none left.
    /// Idempotent.
    async fn remove_connection(&self, connection: &Connection, last_seen: &str) -> AppResult<UserPresence>;
    /// Takes a connection API Gateway reported gone out of its user's presence, so fan-out stops posting to
    /// it. The connection record stays: the `$disconnect` that follows still needs to know whose it was.
    async fn drop_gone_connection(&self, user_id: &UserId, connection: &LiveConnection) -> AppResult<()>;
    async fn presence(&self, user_id: &UserId) -> AppResult<UserPresence>;
    /// UserPresence of each of `user_ids` (users never seen have the default presence).
    async fn presences(&self, user_ids: &[UserId]) -> AppResult<HashMap<UserId, UserPresence>>;
    async fn set_status(&self, user_id: &UserId, status: &str) -> AppResult<()>;
    /// Marks the connection's app as in the background (or in front again).
    async fn set_background(&self, user_id: &UserId, connection_id: &ConnectionId, background: bool) -> AppResult<()>;
    async fn set_contactable_by(&self, user_id: &UserId, setting: ContactableBy) -> AppResult<()>;
    /// Stored with the presence, which whoever decides to notify the user reads anyway.
    async fn set_notification_preferences(
        &self,
        user_id: &UserId,
        preferences: &NotificationPreferences,
    ) -> AppResult<()>;
}

// ---------------------------------------------------------------------------------------------- conversations

/// The result of creating something that may already exist.
#[derive(Debug, Clone, PartialEq)]
pub enum Created<T> {
    New(T),
    Existing(T),
}

impl<T> Created<T> {
    /// The value, and whether it already existed.
    pub fn into_parts(self) -> (T, bool) {
        match self {
            Created::New(value) => (value, false),
            Created::Existing(value) => (value, true),
        }
    }
}

/// A user's side of a membership: the read pointer that unread counts come from, the messages that mentioned
/// them, and how they want to be notified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub conversation_id: ConversationId,
    /// Seq of the newest message the user has read; 0 before the first.
    pub last_read_seq: u64,
    /// Seqs of messages that mentioned the user, ascending; those at or before the read pointer are removed when
    /// it moves past them.
    pub mention_seqs: Vec<u64>,
    pub notifications: ConversationNotifications,
}

impl Membership {
    pub fn new(conversation_id: ConversationId, last_read_seq: u64) -> Self {
        Membership { conversation_id, last_read_seq, mention_seqs: Vec::new(), notifications: Default::default() }
    }

    /// Mentions of the user after their read pointer.
    pub fn unread_mentions(&self) -> u64 {
        self.mention_seqs.iter().filter(|seq| **seq > self.last_read_seq).count() as u64
    }

    /// The mentions a read pointer moved to `up_to` has read: the seqs to remove.
    pub fn mentions_read_by(&self, up_to: u64) -> Vec<u64> {
        self.mention_seqs.iter().copied().filter(|seq| *seq <= up_to).collect()
    }
}

/// New values for a group's name and avatar; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConversationChanges {
    pub name: Option<String>,
    pub avatar: Option<String>,
}

/// Conversations, their members and the memberships. Membership writes are conditional on the roster the
/// caller read ([`Conversation::roster_version`]) and answer `None` when it changed meanwhile; the caller
/// re-reads and decides again, so a race never bypasses a rule and never surfaces as a 500.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Stores a new conversation (its roster listed) and its memberships. A private conversation is unique per
    /// pair of users: if one exists (even one created concurrently), that one is returned as `Existing`.
    async fn create_conversation(&self, conversation: &Conversation) -> AppResult<Created<Conversation>>;
    async fn get_conversation(&self, conversation_id: &ConversationId) -> AppResult<Option<Conversation>>;
    /// The private conversation of `a` and `b`, if they have one.
    async fn find_private(&self, a: &UserId, b: &UserId) -> AppResult<Option<Conversation>>;
    /// The conversations that exist among `ids`, in no particular order.
    async fn get_conversations(&self, ids: &[ConversationId]) -> AppResult<Vec<Conversation>>;
    /// The conversation and `user_id`'s membership of it, read together; `None` unless they are a member.
    async fn member_conversation(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> AppResult<Option<(Conversation, Membership)>>;
    /// Every conversation the user belongs to, in no particular order.
    async fn memberships(&self, user_id: &UserId) -> AppResult<Vec<Membership>>;
    /// Replaces the user's notification setting for the conversation; `false` if they are not a member.
    async fn set_notifications(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        setting: &ConversationNotifications,
    ) -> AppResult<bool>;
    /// Members of the listed conversations among `conversation_ids`, deduplicated; large groups contribute
    /// nobody (presence is never sent to every member of a large group).
    async fn listed_members_of(&self, conversation_ids: &[ConversationId]) -> AppResult<Vec<UserId>>;
    /// Members of a large group in id order, those after `after`, at most `limit` (listed conversations answer
    /// from their roster instead).
    async fn large_members(
        &self,
        conversation_id: &ConversationId,
        after: Option<&UserId>,
        limit: usize,
    ) -> AppResult<Vec<UserId>>;
    /// The notification settings of those of `user_ids` who are members (any number; absent: not a member).
    async fn notification_settings(
        &self,
        conversation_id: &ConversationId,
        user_ids: &[UserId],
    ) -> AppResult<HashMap<UserId, ConversationNotifications>>;
    /// Which of `user_ids` are members (at most 100 per call).
    async fn members_among(&self, conversation_id: &ConversationId, user_ids: &[UserId]) -> AppResult<Vec<UserId>>;
    /// How many members' read pointers are at or past `seq` (may lag writes by a moment).
    async fn readers(&self, conversation_id: &ConversationId, seq: u64) -> AppResult<u64>;
    /// Applies `changes` to a group if its roster is still the one read (so the actor is still a member).
    async fn update_conversation(
        &self,
        conversation: &Conversation,
        changes: &ConversationChanges,
        updated_at: &str,
    ) -> AppResult<Option<Conversation>>;
    /// Adds the first of `candidates` (none of them a member yet) that fit one atomic write, with memberships
    /// whose read pointer starts at the conversation's `last_seq` (earlier history is readable but not unread).
    /// Returns the conversation after the write and how many candidates it added.
    async fn add_members(
        &self,
        conversation: &Conversation,
        candidates: &[UserId],
        now: &str,
    ) -> AppResult<Option<(Conversation, usize)>>;
    /// Removes `user_id` (a member) and their membership, and leaves the group with `roles` (without them).
    async fn remove_member(
        &self,
        conversation: &Conversation,
        user_id: &UserId,
        roles: &Roles,
        now: &str,
    ) -> AppResult<Option<Conversation>>;
    /// Gives a group new roles if its roster is still the one read; moves the roster version, so a membership
    /// change read before this one is decided again.
    async fn set_roles(&self, conversation: &Conversation, roles: &Roles, now: &str)
    -> AppResult<Option<Conversation>>;
    /// Of `candidates` (members), the one who joined first (ties go to the smaller id); `None` if none is a
    /// member.
    async fn longest_standing(
        &self,
        conversation_id: &ConversationId,
        candidates: &[UserId],
    ) -> AppResult<Option<UserId>>;
}

// ---------------------------------------------------------------------------------------------- rate limits

/// At most `max` requests of one kind per user in each fixed window of `window_secs` (windows start at
/// multiples of `window_secs` since the epoch). Counted in the table, because one user's frames may be served by
/// any number of Lambda instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub kind: &'static str,
    pub max: u32,
    pub window_secs: u64,
}

impl RateLimit {
    /// The start of the window `now` falls in.
    pub fn window_start(&self, now: u64) -> u64 {
        now - now % self.window_secs
    }

    /// The error for a spent window: retry when the next one starts.
    pub fn exceeded(&self, now: u64) -> AppError {
        AppError::RateLimited { retry_after: (self.window_start(now) + self.window_secs - now).max(1) }
    }
}

#[async_trait]
pub trait RateStore: Send + Sync {
    /// Counts one request of `limit.kind` by `user_id`; `RateLimited` once this window's budget is spent.
    async fn take(&self, user_id: &UserId, limit: &RateLimit) -> AppResult<()>;
}

// ---------------------------------------------------------------------------------------------- messages

/// A stored message and the conversation's roster when it was stored (who receives it).
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    pub message: Message,
    pub roster: Roster,
}

/// Which messages of a conversation a history read returns. Bounds are exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqRange {
    /// Newest first, every seq below this one.
    Before(u64),
    /// Oldest first, every seq above this one (catch-up after a reconnect).
    After(u64),
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Appends a message to `conversation` (as the caller read it, so the store need not read it again) with the
    /// next `seq`, if `limit` allows the sender another one (else `RateLimited`; the count is part of the same
    /// atomic write). `None` when the sender is not a member at the moment of the write: the caller checked
    /// membership when it read `conversation`, and this keeps a removal in between from being bypassed. With a
    /// `client_message_id` already used by this sender in this conversation, nothing is written or counted and
    /// the original message is returned as `Existing`; membership is judged first, so a removed member's retry
    /// is refused like any other send.
    ///
    /// A message with an attachment also marks its upload attached, atomically, if the upload was made by the
    /// sender for this conversation, is not attached yet and is still as processed as the attachment says
    /// (else `Conflict`, and nothing is written: the caller re-reads the upload and decides again).
    ///
    /// Each of [`NewMessage::mentioned_others`] gets the message's seq in their membership's mentions, in the
    /// same write; a mentioned user who is not a member refuses the whole message (`Validation`).
    async fn append_message(
        &self,
        conversation: &Conversation,
        message: NewMessage,
        limit: &RateLimit,
    ) -> AppResult<Option<Created<Appended>>>;
    async fn get_message(&self, conversation_id: &ConversationId, seq: u64) -> AppResult<Option<Message>>;
    /// Replaces the content if `editor_id` sent the message and it is not deleted (`Conflict` otherwise).
    async fn edit_message(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        editor_id: &UserId,
        content: &str,
        at: &str,
    ) -> AppResult<Message>;
    /// Soft delete: keeps the item, replaces the content, marks it deleted. Only if `sender` sent it, when given
    /// (an operator deletes any message), and it is not deleted yet (`Conflict` otherwise).
    async fn delete_message(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        sender: Option<&UserId>,
        at: &str,
    ) -> AppResult<Message>;
    /// Takes the deleted message `seq` out of each of `members`' unread mentions in the conversation; a member who
    /// has left is skipped. Idempotent.
    async fn forget_mention(&self, conversation_id: &ConversationId, seq: u64, members: &[UserId]) -> AppResult<()>;
    /// Records a reaction; `false` if this user already reacted with this emoji.
    async fn add_reaction(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        user_id: &UserId,
        emoji: &str,
    ) -> AppResult<bool>;
    /// Removes a reaction; `false` if there was none.
    async fn remove_reaction(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        user_id: &UserId,
        emoji: &str,
    ) -> AppResult<bool>;
    /// Moves the user's read pointer forward to `seq` and forgets `read_mentions` (mentions at or before it, as
    /// the caller read them). Returns the previous pointer, or `None` if it already was at or past `seq` (read
    /// pointers never move back).
    async fn advance_read(
        &self,
        user_id: &UserId,
        conversation_id: &ConversationId,
        seq: u64,
        read_mentions: &[u64],
    ) -> AppResult<Option<u64>>;
    /// Replaces the attachment of a message that is not deleted; `None` if it is gone or deleted.
    async fn set_attachment(
        &self,
        conversation_id: &ConversationId,
        seq: u64,
        attachment: &Attachment,
    ) -> AppResult<Option<Message>>;
    /// At most `limit` messages of `range`, with their reactions: newest first for `Before`, oldest first for
    /// `After`.
    async fn messages(
        &self,
        conversation_id: &ConversationId,
        range: SeqRange,
        limit: usize,
    ) -> AppResult<Vec<Message>>;
    /// The messages `sender` sent in a conversation after `after_seq`, looking at up to `limit` messages (without
    /// their reactions).
    async fn sent_messages(
        &self,
        conversation_id: &ConversationId,
        sender: &UserId,
        after_seq: u64,
        limit: usize,
    ) -> AppResult<SenderPage>;
    /// The reactions `user_id` added to the messages of a conversation whose seq is in `seqs`, as `(seq, emoji)`
    /// ordered by seq: an export reads them for each page of history it looks at.
    async fn reactions_by(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        seqs: RangeInclusive<u64>,
    ) -> AppResult<Vec<(u64, String)>>;
}

// ---------------------------------------------------------------------------------------------- uploads

/// Upload records: what a member declared before uploading, which message attached it, what the processor made
/// of it. Attaching is part of [`MessageStore::append_message`] (one atomic write with the message).
#[async_trait]
pub trait UploadStore: Send + Sync {
    async fn create_upload(&self, upload: &Upload) -> AppResult<()>;
    async fn get_upload(&self, id: &UploadId) -> AppResult<Option<Upload>>;
    /// Records the processor's outcome; the upload after the write (with the message that attached it, if one
    /// did meanwhile), `None` if there is no such upload.
    async fn record_processed(&self, id: &UploadId, processed: &Processed) -> AppResult<Option<Upload>>;
    async fn delete_upload(&self, id: &UploadId) -> AppResult<()>;
}

// ---------------------------------------------------------------------------------------------- rooms and typing

/// Which connections have a conversation open ("joined the room"), and the typing throttle. Live-session
/// state: every item expires with the connection's TTL.
#[async_trait]
pub trait RoomStore: Send + Sync {
    /// Fails with `Unauthorized` when the connection is no longer registered.
    async fn join(&self, connection: &Connection, conversation_id: &ConversationId) -> AppResult<()>;
    async fn leave(&self, connection_id: &ConnectionId, conversation_id: &ConversationId) -> AppResult<()>;
    /// Forgets every room of a closing connection.
    async fn leave_all(&self, connection_id: &ConnectionId) -> AppResult<()>;
    /// Forgets every connection of `user_id` that joined the conversation (they left it or were removed).
    async fn forget_member(&self, conversation_id: &ConversationId, user_id: &UserId) -> AppResult<()>;
    /// `(user id, connection)` of the connections that joined the conversation.
    async fn joined(&self, conversation_id: &ConversationId) -> AppResult<Vec<(UserId, LiveConnection)>>;
    /// Takes the user's typing slot in the conversation unless it was taken less than `window_ms` ago.
    async fn claim_typing(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        now_ms: u64,
        window_ms: u64,
    ) -> AppResult<bool>;
    async fn release_typing(&self, conversation_id: &ConversationId, user_id: &UserId) -> AppResult<()>;
}

// ---------------------------------------------------------------------------------------------- friends

/// How two users relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    None,
    Friends,
    /// The first user asked the second.
    RequestSent,
    /// The second user asked the first.
    RequestReceived,
    /// The first user blocked the second (whatever else is true).
    Blocking,
    /// The second user blocked the first.
    BlockedBy,
}

/// A pending friend request as seen from one side: the other user and when it was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRequest {
    pub user_id: UserId,
    pub created_at: String,
}

/// A user's relations, kept under their partition and read with one Query: who sees their presence (friends
/// and the members of these conversations) and their pending requests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Relations {
    pub conversation_ids: Vec<ConversationId>,
    pub friend_ids: Vec<UserId>,
    pub incoming: Vec<PendingRequest>,
    pub outgoing: Vec<PendingRequest>,
    /// The users this user blocked, and when.
    pub blocked: Vec<PendingRequest>,
}

#[async_trait]
pub trait FriendStore: Send + Sync {
    async fn relations(&self, user_id: &UserId) -> AppResult<Relations>;
    async fn relation(&self, user_id: &UserId, other_id: &UserId) -> AppResult<Relation>;
    /// Which of `others` are friends of `user_id`.
    async fn friends_among(&self, user_id: &UserId, others: &[UserId]) -> AppResult<Vec<UserId>>;
    /// Fails with `Conflict` unless the two are strangers (no friendship, no request either way).
    async fn create_friend_request(&self, from: &UserId, to: &UserId, at: &str) -> AppResult<()>;
    /// Deletes the request `from` → `to`; `false` if there was none.
    async fn delete_friend_request(&self, from: &UserId, to: &UserId) -> AppResult<bool>;
    /// Turns the request `from` → `to` into a friendship; `false` if there was no such request.
    async fn accept_friend_request(&self, from: &UserId, to: &UserId, at: &str) -> AppResult<bool>;
    /// `false` if they were not friends.
    async fn delete_friendship(&self, a: &UserId, b: &UserId) -> AppResult<bool>;
    /// `blocker` blocks `blocked`, atomically: the block is recorded (and copied to the blocker's presence), any
    /// friendship or request between them ends, and their private conversation, if any, closes. `false` if
    /// already blocked; `Validation` past [`MAX_BLOCKED`].
    async fn block(&self, blocker: &UserId, blocked: &UserId, at: &str) -> AppResult<bool>;
    /// Undoes [`FriendStore::block`] (friendships stay ended); `false` if there was no such block.
    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> AppResult<bool>;
}

/// Users one user may block: the list is copied onto their presence item, which every delivery to them reads,
/// so it must stay small (1,000 ids are about 27 KB).
pub const MAX_BLOCKED: usize = 1_000;

/// Every store port at once: what one implementation serves and the composition root hands out, each use case
/// taking only its part.
pub trait Store:
    UserStore
    + SessionStore
    + ConnectionStore
    + ConversationStore
    + MessageStore
    + UploadStore
    + RoomStore
    + FriendStore
    + RateStore
    + ModerationStore
    + ErasureStore
    + ExportStore
    + PushStore
{
}
impl<T> Store for T where
    T: UserStore
        + SessionStore
        + ConnectionStore
        + ConversationStore
        + MessageStore
        + UploadStore
        + RoomStore
        + FriendStore
        + RateStore
        + ModerationStore
        + ErasureStore
        + ExportStore
        + PushStore
{
}

// ---------------------------------------------------------------------------------------------- files

/// What S3 holds under a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    pub content_type: Option<String>,
}

/// A browser-compatible upload: POST `url` as `multipart/form-data` with `fields` first and the file last (as
/// the field `file`). S3 itself refuses anything but the declared key, type and size, and after `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadForm {
    pub url: String,
    pub fields: std::collections::BTreeMap<String, String>,
    pub expires_at: String,
}

/// The attachments bucket. Bytes go between clients and S3 directly; functions only sign, check and derive.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// A form that uploads exactly `size` bytes of `content_type` to `key`, valid for `valid_for`. Objects
    /// uploaded with it are tagged pending until [`FileStore::mark_attached`].
    async fn upload_form(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        valid_for: std::time::Duration,
    ) -> AppResult<UploadForm>;
    /// A GET URL for `key`, valid for `valid_for`.
    async fn read_url(&self, key: &str, valid_for: std::time::Duration) -> AppResult<String>;
    /// A GET URL for `key` that a browser saves as `file_name`, valid for `valid_for`.
    async fn download_url(&self, key: &str, file_name: &str, valid_for: std::time::Duration) -> AppResult<String>;
    /// Size and type of the object at `key`, `None` if there is none.
    async fn head(&self, key: &str) -> AppResult<Option<StoredObject>>;
    /// The object's bytes, `None` if there is none.
    async fn get(&self, key: &str) -> AppResult<Option<Vec<u8>>>;
    /// Writes a derived object, tagged pending unless `attached`.
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str, attached: bool) -> AppResult<()>;
    /// Retags objects attached to a message, so the bucket's lifecycle rule for never-attached uploads spares
    /// them. Missing keys are skipped.
    async fn mark_attached(&self, keys: &[String]) -> AppResult<()>;
    /// Deletes the objects (missing ones are fine).
    async fn delete(&self, keys: &[String]) -> AppResult<()>;
}

// ---------------------------------------------------------------------------------------------- delivery

/// What happened to one PostToConnection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostOutcome {
    Delivered,
    /// 410: the client is gone, or still in its handshake.
    Gone,
    /// Account-level throttling or a full client buffer; worth retrying shortly.
    Throttled,
    /// Anything else (already logged).
    Failed,
}

/// PostToConnection calls in flight at once per delivery, unless configured (`POSTS_IN_FLIGHT`): the largest
/// value that did not slow the emulator down (docs/performance.md).
pub const DEFAULT_POSTS_IN_FLIGHT: usize = 64;

/// Posts one frame to one connection (API Gateway's PostToConnection).
#[async_trait]
pub trait Fanout: Send + Sync {
    async fn post(&self, connection_id: &ConnectionId, frame: &str) -> PostOutcome;

    /// Closes a connection from the server's side (its `$disconnect` follows); one already gone is no error.
    async fn disconnect(&self, connection_id: &ConnectionId) -> AppResult<()>;

    /// How many posts one delivery keeps in flight.
    fn max_in_flight(&self) -> usize {
        DEFAULT_POSTS_IN_FLIGHT
    }
}

/// One connection to deliver to, and whose it is (a 410 from it is judged by its connect time).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub user_id: UserId,
    #[serde(flatten)]
    pub connection: LiveConnection,
}

/// A share of one delivery handed to a worker: these frames, in order, to these connections.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutJob {
    pub frames: Vec<String>,
    pub targets: Vec<Target>,
    /// 1 for the first try; a retry of the connections that failed carries the next number.
    pub attempt: u32,
}

/// Where deliveries too big for one invocation go: an SQS queue consumed by the `fanout-worker` function.
#[async_trait]
pub trait FanoutQueue: Send + Sync {
    /// Enqueues every job, each after `delay_secs`; on an error some may have been enqueued.
    async fn enqueue(&self, jobs: &[FanoutJob], delay_secs: u32) -> AppResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ExportRecord;

    #[test]
    fn each_account_job_reads_back_as_its_kind() {
        let user_id = UserId::parse("u1").unwrap();
        let erasure = AccountJob::from(ErasureJob::new(user_id.clone(), "2026-12-04T00:00:00.000Z".into()));
        let record = ExportRecord {
            user_id,
            export_id: ExportId::parse("e1").unwrap(),
            requested_at: "2026-12-04T00:00:00.000Z".into(),
            ready: None,
        };
        let export = AccountJob::from(ExportJob::new(&record));
        for job in [erasure, export] {
            let text = serde_json::to_string(&job).unwrap();
            assert_eq!(serde_json::from_str::<AccountJob>(&text).unwrap(), job, "{text}");
        }
        let malformed = r#"{"userId":"u1","exportId":"not an id","requestedAt":"t","parts":0,"phase":"start"}"#;
        assert!(serde_json::from_str::<AccountJob>(malformed).is_err(), "a malformed export is not an erasure");
    }
}

// ---------------------------------------------------------------------------------------------- integrations

/// One event for integrators (docs/events.md): its kind (`message.sent`, …) and its JSON detail.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    pub detail_type: &'static str,
    pub detail: serde_json::Value,
}

/// Where integrators' events go: the stack's EventBridge bus.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes `events` in their order; an error means some were not accepted, and the caller has the whole
    /// batch tried again (integrators get each event at least once).
    async fn publish(&self, events: &[Published]) -> AppResult<()>;
}

// ---------------------------------------------------------------------------------------------- push

/// What registering a push subscription did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionAdded {
    New,
    /// The endpoint was registered already; its keys are replaced.
    Existing,
    /// The user holds [`crate::model::MAX_PUSH_SUBSCRIPTIONS`] already.
    Full,
}

/// Users' push subscriptions. Their number is kept on the presence item (`pushCount`), which whoever decides to
/// push reads anyway, so users without one cost no further read.
#[async_trait]
pub trait PushStore: Send + Sync {
    async fn add_push_subscription(
        &self,
        user_id: &UserId,
        subscription: &PushSubscription,
    ) -> AppResult<SubscriptionAdded>;
    /// `false` if the user has no subscription with this id.
    async fn remove_push_subscription(&self, user_id: &UserId, subscription_id: &str) -> AppResult<bool>;
    async fn push_subscriptions(&self, user_id: &UserId) -> AppResult<Vec<PushSubscription>>;
}

/// One notification to one browser: the push worker's unit of work (a message to an offline member with two
/// browsers is two jobs, retried independently).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushJob {
    pub user_id: UserId,
    pub subscription: PushSubscription,
    pub notification: crate::model::PushNotification,
    /// 1 for the first try.
    pub attempt: u32,
}

/// One push request (RFC 8030 section 5), ready to POST.
#[derive(Clone, Debug)]
pub struct PushRequest {
    pub endpoint: String,
    pub authorization: String,
    /// Seconds the push service keeps the message for an unreachable browser.
    pub ttl: u32,
    /// `high` for a message that mentions the recipient, else `normal` (RFC 8030 section 5.3).
    pub urgency: &'static str,
    pub body: Vec<u8>,
}

/// What a push service answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushResponse {
    /// 201 (or any 2xx): accepted.
    Accepted,
    /// 404 or 410: the subscription expired or was unsubscribed; it must be forgotten.
    Gone,
    /// 429 or 5xx, or no answer in time: try again later, after `retry_after` if the service said.
    Retry { retry_after: Option<Duration> },
    /// Any other status (400, 401, 413…): this request will never succeed.
    Refused(u16),
}

impl PushResponse {
    pub fn of_status(status: u16, retry_after: Option<Duration>) -> PushResponse {
        match status {
            200..=299 => PushResponse::Accepted,
            404 | 410 => PushResponse::Gone,
            429 | 500..=599 => PushResponse::Retry { retry_after },
            other => PushResponse::Refused(other),
        }
    }
}

/// Where push requests go: the browsers' push services over HTTPS.
#[async_trait]
pub trait PushService: Send + Sync {
    async fn send(&self, request: &PushRequest) -> PushResponse;
}

/// Phones' notifications: Amazon SNS mobile push, through the deployment's platform applications (FCM, APNs).
#[async_trait]
pub trait MobilePush: Send + Sync {
    /// The SNS platform endpoint of the device with `token` (made, or the one made before for it); a platform
    /// the deployment has no application for is a `Validation` error.
    async fn register(&self, platform: crate::model::PushPlatform, token: &str) -> AppResult<String>;
    /// Publishes `notification` to the endpoint; `Gone` when SNS says the endpoint is disabled or deleted.
    async fn send(&self, endpoint_arn: &str, notification: &crate::model::PushNotification) -> PushResponse;
    /// Deletes an endpoint that went away (best effort: SNS keeps disabled endpoints until deleted).
    async fn forget(&self, endpoint_arn: &str);
}

/// Where push jobs wait for the sender: an SQS queue consumed by `push-sender`.
#[async_trait]
pub trait PushQueue: Send + Sync {
    /// Enqueues every job, each after `delay_secs`.
    async fn enqueue(&self, jobs: &[PushJob], delay_secs: u32) -> AppResult<()>;
}

//! Erasing a deleted account (GDPR's right to erasure), in the background: `account-worker` runs an
//! [`ErasureJob`] in bounded steps and puts what is left back on the account queue before its invocation's time
//! is up, so no account is too big, and a failed step is simply run again (every step is idempotent).
//!
//! In order: the user's messages in every conversation they belong to are erased (content, attachments, their
//! name on each, the mentions they made), then they leave every group (ownership passes as when an owner leaves;
//! the members get `member_left`); a private conversation is closed to writes first and stays readable, its other
//! side now shows [`DELETED_ACCOUNT`]; then friendships, friend requests both ways and the user's blocks go, their
//! export of their data, and their presence record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conversations::Conversations;
use super::exports::Exports;
use super::uploads::Uploads;
use crate::error::{AppError, AppResult};
use crate::model::{
    Actor, ConversationId, ConversationKind, DELETED_ACCOUNT, ErasureJob, ErasurePhase, Sender, UserId,
    now_epoch_seconds,
};
use crate::ports::{
    AccountQueue, ConversationStore, ErasureStore, FriendStore, MessageStore, SessionStore, Store, UserStore,
};

/// Messages one step looks at in a conversation.
pub const ERASURE_PAGE: usize = 500;
/// How long after the deletion a job may find the profile not yet a tombstone (the job is enqueued first): it is
/// retried meanwhile, and dropped after.
const TOMBSTONE_GRACE_SECS: u64 = 600;

pub struct Erasure {
    store: Arc<dyn ErasureStore>,
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    conversations: Arc<dyn ConversationStore>,
    messages: Arc<dyn MessageStore>,
    friends: Arc<dyn FriendStore>,
    groups: Conversations,
    uploads: Arc<Uploads>,
    exports: Arc<Exports>,
    queue: Arc<dyn AccountQueue>,
}

impl Erasure {
    pub(crate) fn new(
        store: &Arc<dyn Store>,
        groups: Conversations,
        uploads: Arc<Uploads>,
        exports: Arc<Exports>,
        queue: Arc<dyn AccountQueue>,
    ) -> Self {
        Erasure {
            store: store.clone(),
            users: store.clone(),
            sessions: store.clone(),
            conversations: store.clone(),
            messages: store.clone(),
            friends: store.clone(),
            groups,
            uploads,
            exports,
            queue,
        }
    }

    /// Runs `job` step by step for at most `budget`, then puts what is left back on the queue.
    pub async fn run(&self, mut job: ErasureJob, budget: Duration) -> AppResult<()> {
        let started = Instant::now();
        loop {
            match self.step(job).await? {
                None => return Ok(()),
                Some(next) if started.elapsed() >= budget => return self.queue.enqueue(&next.into(), 0).await,
                Some(next) => job = next,
            }
        }
    }

    /// One bounded step; the job that continues it, or `None` when the account is erased.
    pub async fn step(&self, job: ErasureJob) -> AppResult<Option<ErasureJob>> {
        let user_id = job.user_id.clone();
        let phase = match job.phase {
            ErasurePhase::Start => {
                let record = self.users.user_record(&user_id).await?;
                if !record.is_some_and(|r| r.standing.deleted) {
                    let waited = now_epoch_seconds().saturating_sub(requested_epoch(&job.requested_at));
                    if waited < TOMBSTONE_GRACE_SECS {
                        return Err(AppError::internal("the account is not closed yet; the job is retried"));
                    }
                    tracing::warn!(%user_id, "an erasure job for an account that was never closed: dropped");
                    return Ok(None);
                }
                let mut remaining: Vec<ConversationId> =
                    self.conversations.memberships(&user_id).await?.into_iter().map(|m| m.conversation_id).collect();
                remaining.sort();
                ErasurePhase::Conversations { remaining, after_seq: 0 }
            }
            ErasurePhase::Conversations { mut remaining, after_seq } => {
                let Some(current) = remaining.first().cloned() else {
                    return Ok(Some(ErasureJob { phase: ErasurePhase::Relations, ..job }));
                };
                match self.erase_in(&user_id, &current, after_seq).await? {
                    Some(next_seq) => ErasurePhase::Conversations { remaining, after_seq: next_seq },
                    None => {
                        remaining.remove(0);
                        ErasurePhase::Conversations { remaining, after_seq: 0 }
                    }
                }
            }
            ErasurePhase::Relations => {
                self.forget_relations(&user_id).await?;
                let took = now_epoch_seconds().saturating_sub(requested_epoch(&job.requested_at));
                tracing::info!(%user_id, took_secs = took, "account erased");
                return Ok(None);
            }
        };
        Ok(Some(ErasureJob { phase, ..job }))
    }

    /// One page of the user's messages in a conversation; once there are no more, leaves it if it is a group.
    /// The seq to continue after, or `None` when the conversation is done.
    async fn erase_in(&self, user_id: &UserId, id: &ConversationId, after_seq: u64) -> AppResult<Option<u64>> {
        let Some(conversation) = self.conversations.get_conversation(id).await? else {
            return Ok(None);
        };
        if conversation.kind == ConversationKind::Private && after_seq == 0 {
            // First, so that nothing more is sent into it while its history is erased.
            self.store.close_for_deleted_member(id, user_id).await?;
        }
        let page = self.store.erase_messages(&conversation, user_id, after_seq, ERASURE_PAGE).await?;
        for message in page.messages.iter().filter(|m| !m.mentions.is_empty()) {
            self.messages.forget_mention(id, message.seq, &message.mentions).await?;
        }
        for attachment in page.messages.iter().filter_map(|m| m.attachment.as_ref()) {
            self.uploads.discard(attachment).await;
        }
        if let Some(seq) = page.scanned_through {
            return Ok(Some(seq));
        }
        if conversation.kind == ConversationKind::Group {
            let leaving = Actor {
                user: Sender { id: user_id.clone(), username: DELETED_ACCOUNT.to_owned(), avatar: None },
                origin: None,
            };
            match self.groups.remove_member(&leaving, id, user_id).await {
                // Already gone (an earlier run of this step left, or they were removed meanwhile).
                Ok(_) | Err(AppError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    async fn forget_relations(&self, user_id: &UserId) -> AppResult<()> {
        let relations = self.friends.relations(user_id).await?;
        for friend in &relations.friend_ids {
            self.friends.delete_friendship(user_id, friend).await?;
        }
        for request in &relations.incoming {
            self.friends.delete_friend_request(&request.user_id, user_id).await?;
        }
        for request in &relations.outgoing {
            self.friends.delete_friend_request(user_id, &request.user_id).await?;
        }
        for blocked in &relations.blocked {
            self.friends.unblock(user_id, &blocked.user_id).await?;
        }
        // Sessions ended when the account was closed; one opened by a login racing the close goes too.
        for session in self.sessions.sessions(user_id).await? {
            self.sessions.delete_session(user_id, &session.id).await?;
        }
        self.exports.forget(user_id).await?;
        self.store.delete_presence(user_id).await
    }
}

/// Epoch seconds of an RFC 3339 time (0 if it cannot be read, which makes any wait look long).
fn requested_epoch(at: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(at).map(|t| t.timestamp().max(0) as u64).unwrap_or(0)
}

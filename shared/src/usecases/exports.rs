//! A copy of one's data (GDPR's right of access): `POST /users/me/export` records the request and queues an
//! [`ExportJob`]; `account-worker` gathers the user's messages and reactions one conversation page at a time (there is
//! no index by sender, so it reads each of their conversations once, as an erasure does), then writes the document to
//! the attachments bucket; `GET /users/me/export` answers pending, or ready with a short-lived download link.
//!
//! An invocation that runs out of time writes what it gathered as a part object and puts the rest back on the queue, so
//! no account is too big; a re-delivered step gathers the same messages into the same part. One export per user per
//! [`REQUEST_INTERVAL`]: a request within it answers the export already made or being made.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;

use super::conversations::Conversations;
use crate::error::{AppError, AppResult};
use crate::model::{
    AccountExport, EXPORT_FORMAT, ExportGathered, ExportId, ExportJob, ExportPhase, ExportRecord, ExportedProfile,
    ExportedReaction, MessageId, ReadyExport, User, UserId, now_iso,
};
use crate::ports::{
    AccountQueue, ConnectionStore, ConversationStore, Created, ExportStore, FileStore, FriendStore, MessageStore,
    Store, UserStore,
};

/// How often a user may have a new export made: a request within this time of the last answers that one.
pub const REQUEST_INTERVAL: Duration = Duration::from_secs(3600);
/// How long a document stays downloadable after it is written (the bucket's expiry of untagged objects).
const AVAILABLE_FOR: Duration = Duration::from_secs(86_400);
/// How long a download link works.
const LINK_VALID_FOR: Duration = Duration::from_secs(900);
/// Messages one step looks at in a conversation.
pub const EXPORT_PAGE: usize = 500;
/// The name a browser saves the document as.
const FILE_NAME: &str = "chat-export.json";

/// Where an export is, as `POST`/`GET /users/me/export` answer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportState {
    Pending,
    Ready,
    /// Written, and no longer kept: ask for a new one.
    Expired,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportStatus {
    pub export_id: ExportId,
    pub status: ExportState,
    pub requested_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<String>,
    /// Bytes of the document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Where to download the document (a `GET` with no credentials), until `urlExpiresAt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_until: Option<String>,
}

pub struct Exports {
    store: Arc<dyn ExportStore>,
    users: Arc<dyn UserStore>,
    messages: Arc<dyn MessageStore>,
    presence: Arc<dyn ConnectionStore>,
    friends: Arc<dyn FriendStore>,
    memberships: Arc<dyn ConversationStore>,
    conversations: Conversations,
    files: Arc<dyn FileStore>,
    queue: Arc<dyn AccountQueue>,
}

impl Exports {
    pub(crate) fn new(
        store: &Arc<dyn Store>,
        conversations: Conversations,
        files: Arc<dyn FileStore>,
        queue: Arc<dyn AccountQueue>,
    ) -> Self {
        Exports {
            store: store.clone(),
            users: store.clone(),
            messages: store.clone(),
            presence: store.clone(),
            friends: store.clone(),
            memberships: store.clone(),
            conversations,
            files,
            queue,
        }
    }

    /// Starts an export of the user's data, unless one was asked for within [`REQUEST_INTERVAL`]: then that one
    /// is answered (`Existing`), pending or ready.
    pub async fn request(&self, user_id: &UserId) -> AppResult<Created<ExportStatus>> {
        let now = Utc::now();
        let record = ExportRecord {
            user_id: user_id.clone(),
            export_id: ExportId::random(),
            requested_at: iso(now),
            ready: None,
        };
        let fresh_after = iso(now - delta(REQUEST_INTERVAL));
        match self.store.start_export(&record, &fresh_after).await? {
            Created::New(record) => {
                if let Err(e) = self.queue.enqueue(&ExportJob::new(&record).into(), 0).await {
                    // Without its job the record would hold back the next request for an hour.
                    if let Err(forgetting) = self.store.forget_export(user_id).await {
                        tracing::error!(%user_id, error = ?forgetting, "an export without a job stays recorded");
                    }
                    return Err(e);
                }
                tracing::info!(%user_id, export_id = %record.export_id, "export requested");
                Ok(Created::New(self.status_of(record).await?))
            }
            Created::Existing(record) => Ok(Created::Existing(self.status_of(record).await?)),
        }
    }

    /// The user's latest export.
    pub async fn status(&self, user_id: &UserId) -> AppResult<ExportStatus> {
        let record = self.store.export_record(user_id).await?;
        self.status_of(record.ok_or(AppError::NotFound("no export was requested"))?).await
    }

    async fn status_of(&self, record: ExportRecord) -> AppResult<ExportStatus> {
        let mut status = ExportStatus {
            status: ExportState::Pending,
            ready_at: None,
            size: None,
            url: None,
            url_expires_at: None,
            available_until: None,
            export_id: record.export_id.clone(),
            requested_at: record.requested_at.clone(),
        };
        let Some(ready) = &record.ready else {
            return Ok(status);
        };
        let until = parse(&ready.ready_at)? + delta(AVAILABLE_FOR);
        let now = Utc::now();
        status.ready_at = Some(ready.ready_at.clone());
        status.size = Some(ready.size);
        if until <= now {
            status.status = ExportState::Expired;
            return Ok(status);
        }
        let link_valid_for = LINK_VALID_FOR.min((until - now).to_std().unwrap_or_default());
        status.status = ExportState::Ready;
        status.url = Some(self.files.download_url(&record.document_key(), FILE_NAME, link_valid_for).await?);
        status.url_expires_at = Some(iso(now + delta(link_valid_for)));
        status.available_until = Some(iso(until));
        Ok(status)
    }

    /// Runs `job` step by step for at most `budget`; then writes what it gathered as a part and puts the rest
    /// back on the queue.
    pub async fn run(&self, mut job: ExportJob, budget: Duration) -> AppResult<()> {
        let started = Instant::now();
        let mut gathered = ExportGathered::default();
        loop {
            match self.step(job, &mut gathered).await? {
                None => return Ok(()),
                Some(mut next) if started.elapsed() >= budget => {
                    if !gathered.is_empty() {
                        next.parts += 1;
                        let bytes = serde_json::to_vec(&gathered).map_err(AppError::internal)?;
                        self.files.put(&next.record().part_key(next.parts), bytes, "application/json", false).await?;
                    }
                    return self.queue.enqueue(&next.into(), 0).await;
                }
                Some(next) => job = next,
            }
        }
    }

    /// One bounded step, adding the messages and reactions it finds to `gathered`; the job that continues it, or
    /// `None` when the document is written (or no longer wanted).
    async fn step(&self, job: ExportJob, gathered: &mut ExportGathered) -> AppResult<Option<ExportJob>> {
        let phase = match job.phase {
            ExportPhase::Start => {
                let current = self.store.export_record(&job.user_id).await?;
                if !current.is_some_and(|r| r.export_id == job.export_id && r.ready.is_none()) {
                    tracing::info!(user_id = %job.user_id, export_id = %job.export_id, "export no longer wanted");
                    return Ok(None);
                }
                let mut remaining: Vec<_> =
                    self.memberships.memberships(&job.user_id).await?.into_iter().map(|m| m.conversation_id).collect();
                remaining.sort();
                ExportPhase::Conversations { remaining, after_seq: 0 }
            }
            ExportPhase::Conversations { mut remaining, after_seq } => {
                let Some(current) = remaining.first() else {
                    return Ok(Some(ExportJob { phase: ExportPhase::Finish, ..job }));
                };
                let page = self.messages.sent_messages(current, &job.user_id, after_seq, EXPORT_PAGE).await?;
                let looked_at = after_seq.saturating_add(1)..=page.scanned_through.unwrap_or(u64::MAX);
                let reactions = self.messages.reactions_by(current, &job.user_id, looked_at).await?;
                gathered.messages.extend(page.messages);
                gathered.reactions.extend(
                    reactions.into_iter().map(|(seq, emoji)| ExportedReaction {
                        message_id: MessageId::new(current.clone(), seq),
                        emoji,
                    }),
                );
                match page.scanned_through {
                    Some(seq) => ExportPhase::Conversations { remaining, after_seq: seq },
                    None => {
                        remaining.remove(0);
                        ExportPhase::Conversations { remaining, after_seq: 0 }
                    }
                }
            }
            ExportPhase::Finish => {
                self.finish(&job, std::mem::take(gathered)).await?;
                return Ok(None);
            }
        };
        Ok(Some(ExportJob { phase, ..job }))
    }

    /// Writes the document from the parts, `gathered` and what the user has now; marks the export ready.
    async fn finish(&self, job: &ExportJob, gathered: ExportGathered) -> AppResult<()> {
        let record = job.record();
        let Some(user) = self.users.user_record(&job.user_id).await?.filter(|r| !r.standing.deleted) else {
            tracing::info!(user_id = %job.user_id, "export of a deleted account dropped");
            return Ok(());
        };
        let part_keys: Vec<String> = (1..=job.parts).map(|n| record.part_key(n)).collect();
        let mut everything = ExportGathered::default();
        for key in &part_keys {
            let bytes = self
                .files
                .get(key)
                .await?
                .ok_or_else(|| AppError::internal(format!("export part {key} is missing")))?;
            everything.extend(ExportGathered::from_part(&bytes).map_err(AppError::internal)?);
        }
        everything.extend(gathered);
        let document = self.document(user.user, job, everything).await?;
        let bytes = serde_json::to_vec_pretty(&document).map_err(AppError::internal)?;
        let ready = ReadyExport { ready_at: now_iso(), size: bytes.len() as u64 };
        let key = record.document_key();
        self.files.put(&key, bytes, "application/json", false).await?;
        if !self.store.finish_export(&job.user_id, &job.export_id, &ready).await? {
            // The account was deleted meanwhile (its erasure forgot the export), or a new export replaced it.
            self.files.delete(std::slice::from_ref(&key)).await?;
        }
        if !part_keys.is_empty() {
            self.files.delete(&part_keys).await?;
        }
        let took = Utc::now().signed_duration_since(parse(&job.requested_at)?).num_milliseconds();
        let (messages, reactions) = (document.messages.len(), document.reactions.len());
        tracing::info!(user_id = %job.user_id, messages, reactions, took_ms = took, "export ready");
        Ok(())
    }

    async fn document(&self, user: User, job: &ExportJob, gathered: ExportGathered) -> AppResult<AccountExport> {
        let presence = self.presence.presence(&user.id).await?;
        let mut conversations = self.conversations.every_view(&user.id).await?;
        for conversation in &mut conversations {
            // Somebody else's words, maybe: the document holds the user's own messages.
            conversation.last_message = None;
        }
        let relations = self.friends.relations(&user.id).await?;
        let requested_by: Vec<UserId> = relations.incoming.iter().map(|r| r.user_id.clone()).collect();
        let requested: Vec<UserId> = relations.outgoing.iter().map(|r| r.user_id.clone()).collect();
        let blocked: Vec<UserId> = relations.blocked.iter().map(|r| r.user_id.clone()).collect();
        let everyone: BTreeSet<UserId> =
            relations.friend_ids.iter().chain(&requested_by).chain(&requested).chain(&blocked).cloned().collect();
        let profiles: HashMap<UserId, User> = self
            .users
            .get_users(&everyone.into_iter().collect::<Vec<_>>())
            .await?
            .into_iter()
            .map(|u| (u.id.clone(), u))
            .collect();
        let people = |ids: &[UserId]| ids.iter().filter_map(|id| profiles.get(id).cloned()).collect::<Vec<_>>();
        Ok(AccountExport {
            format: EXPORT_FORMAT.to_owned(),
            requested_at: job.requested_at.clone(),
            exported_at: now_iso(),
            friends: people(&relations.friend_ids),
            friend_requests_received: people(&requested_by),
            friend_requests_sent: people(&requested),
            blocked: people(&blocked),
            profile: ExportedProfile { user, status: presence.status, contactable_by: presence.contactable_by },
            conversations,
            messages: gathered.messages,
            reactions: gathered.reactions,
        })
    }

    /// Forgets the user's export and deletes its document (their account is being erased).
    pub(crate) async fn forget(&self, user_id: &UserId) -> AppResult<()> {
        if let Some(record) = self.store.forget_export(user_id).await? {
            self.files.delete(&[record.document_key()]).await?;
        }
        Ok(())
    }
}

/// Whole seconds of `duration` (this module's are minutes to a day).
fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX / 1000))
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse(at: &str) -> AppResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(at).map(|t| t.with_timezone(&Utc)).map_err(AppError::internal)
}

//! A copy of one's data (GDPR's right of access, `POST`/`GET /users/me/export`): asking only records the request and
//! queues an [`ExportJob`]; `account-worker` gathers the profile, conversations, relations, every message the user sent
//! and every reaction they added into one JSON document in the attachments bucket, in bounded steps like an erasure,
//! and the user fetches it through a short-lived link.

use serde::{Deserialize, Serialize};

use super::{ContactableBy, ConversationId, ConversationView, ExportId, Message, MessageId, User, UserId};

/// The document's format, so a reader knows which shape it holds.
pub const EXPORT_FORMAT: &str = "chat-export/1";

/// The latest export a user asked for, as stored (one per user; a new request replaces it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportRecord {
    pub user_id: UserId,
    pub export_id: ExportId,
    pub requested_at: String,
    /// Set once the document is written.
    pub ready: Option<ReadyExport>,
}

/// A written export document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyExport {
    pub ready_at: String,
    /// Bytes of the JSON document.
    pub size: u64,
}

impl ExportRecord {
    /// The bucket key of this export's document.
    pub fn document_key(&self) -> String {
        format!("exports/{}/{}.json", self.user_id, self.export_id)
    }

    /// The key of part `n` (from 1) of the messages an unfinished export gathered before its worker's time ran
    /// out.
    pub fn part_key(&self, n: u32) -> String {
        format!("exports/{}/{}/part-{n:05}.json", self.user_id, self.export_id)
    }
}

/// Where an export is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "camelCase")]
pub enum ExportPhase {
    /// Nothing gathered yet: the user's conversations are listed first.
    Start,
    /// Gathering the user's messages in `remaining[0]` after `after_seq`, then the next conversation.
    Conversations {
        remaining: Vec<ConversationId>,
        #[serde(rename = "afterSeq")]
        after_seq: u64,
    },
    /// Profile, conversations and relations are read, and the document written from them and the parts.
    Finish,
}

/// One export being produced: the queue message, and what a resumed step starts from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportJob {
    pub user_id: UserId,
    pub export_id: ExportId,
    pub requested_at: String,
    /// Parts of gathered messages already written to the bucket (an invocation writes one when its time is up).
    pub parts: u32,
    #[serde(flatten)]
    pub phase: ExportPhase,
}

impl ExportJob {
    pub fn new(record: &ExportRecord) -> Self {
        ExportJob {
            user_id: record.user_id.clone(),
            export_id: record.export_id.clone(),
            requested_at: record.requested_at.clone(),
            parts: 0,
            phase: ExportPhase::Start,
        }
    }

    /// The record this job produces (not yet ready).
    pub fn record(&self) -> ExportRecord {
        ExportRecord {
            user_id: self.user_id.clone(),
            export_id: self.export_id.clone(),
            requested_at: self.requested_at.clone(),
            ready: None,
        }
    }
}

/// The export document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountExport {
    pub format: String,
    pub requested_at: String,
    pub exported_at: String,
    pub profile: ExportedProfile,
    /// Every conversation the user is a member of (members listed as the conversation list shows them).
    pub conversations: Vec<ConversationView>,
    /// Every message the user sent that is still stored, by conversation then in order (a deleted one shows as
    /// deleted: its content is gone).
    pub messages: Vec<Message>,
    /// Every reaction the user added that is still stored, in the same order.
    pub reactions: Vec<ExportedReaction>,
    pub friends: Vec<User>,
    pub friend_requests_received: Vec<User>,
    pub friend_requests_sent: Vec<User>,
    pub blocked: Vec<User>,
}

/// A reaction the user added: to which message, with which emoji.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedReaction {
    pub message_id: MessageId,
    pub emoji: String,
}

/// What the steps of one export gathered from the conversations' history (kept as a part object between
/// invocations).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ExportGathered {
    pub messages: Vec<Message>,
    pub reactions: Vec<ExportedReaction>,
}

impl ExportGathered {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.reactions.is_empty()
    }

    pub fn extend(&mut self, more: ExportGathered) {
        self.messages.extend(more.messages);
        self.reactions.extend(more.reactions);
    }

    /// A part object as written by [`Serialize`], or by a version that exported no reactions (a list of messages).
    pub fn from_part(bytes: &[u8]) -> serde_json::Result<Self> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Part {
            Gathered(ExportGathered),
            Messages(Vec<Message>),
        }
        Ok(match serde_json::from_slice(bytes)? {
            Part::Gathered(gathered) => gathered,
            Part::Messages(messages) => ExportGathered { messages, reactions: Vec::new() },
        })
    }
}

/// The user's profile and settings.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedProfile {
    #[serde(flatten)]
    pub user: User,
    pub status: Option<String>,
    pub contactable_by: ContactableBy,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_survives_the_queue() {
        let job = ExportJob {
            user_id: UserId::parse("u1").unwrap(),
            export_id: ExportId::parse("e1").unwrap(),
            requested_at: "2026-12-04T00:00:00.000Z".into(),
            parts: 2,
            phase: ExportPhase::Conversations { remaining: vec![ConversationId::parse("c1").unwrap()], after_seq: 7 },
        };
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(
            text,
            r#"{"userId":"u1","exportId":"e1","requestedAt":"2026-12-04T00:00:00.000Z","parts":2,"phase":"conversations","remaining":["c1"],"afterSeq":7}"#
        );
        assert_eq!(serde_json::from_str::<ExportJob>(&text).unwrap(), job);
    }

    #[test]
    fn a_part_is_read_back_whether_or_not_it_holds_reactions() {
        let reaction = ExportedReaction {
            message_id: MessageId::new(ConversationId::parse("c1").unwrap(), 3),
            emoji: "👍".into(),
        };
        let part = ExportGathered { messages: Vec::new(), reactions: vec![reaction.clone()] };
        let text = serde_json::to_string(&part).unwrap();
        assert_eq!(text, r#"{"messages":[],"reactions":[{"messageId":"c1-3","emoji":"👍"}]}"#);
        assert_eq!(ExportGathered::from_part(text.as_bytes()).unwrap().reactions, [reaction]);
        // A part an earlier version wrote while the deployment changed: a list of messages.
        let earlier = ExportGathered::from_part(b"[]").unwrap();
        assert!(earlier.is_empty());
        assert!(ExportGathered::from_part(b"{\"messages\": 1}").is_err(), "anything else is an error");
    }
}

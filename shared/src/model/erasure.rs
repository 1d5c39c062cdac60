//! Erasing a deleted account, in the background: the request that deletes an account only closes it (the
//! profile becomes a tombstone, the username is freed, every session ends); an [`ErasureJob`] on the account queue
//! then erases what the user left behind, one bounded step at a time, so an account with any number of messages
//! is erased without a request or an invocation running long, and a step that fails is simply run again.

use serde::{Deserialize, Serialize};

use super::{ConversationId, DELETED_CONTENT, Message, UserId};

/// How a deleted user is shown wherever they still appear (their messages, a private chat's other side). Not a
/// valid username (it has a space), so nobody can register it.
pub const DELETED_ACCOUNT: &str = "Deleted account";

impl Message {
    /// The message as erasing its sender's account leaves it: no content, no attachment, the sender shown as
    /// [`DELETED_ACCOUNT`].
    pub fn erased(mut self, at: &str) -> Message {
        self.content = DELETED_CONTENT.to_owned();
        self.sender.username = DELETED_ACCOUNT.to_owned();
        self.sender.avatar = None;
        self.file_url = None;
        self.file_name = None;
        self.attachment = None;
        self.deleted_at = self.deleted_at.or_else(|| Some(at.to_owned()));
        self.deleted = true;
        self
    }
}

/// Where an erasure is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "camelCase")]
pub enum ErasurePhase {
    /// Nothing done yet: the user's conversations are listed first.
    Start,
    /// Erasing the user's messages in `remaining[0]` after `after_seq`, then leaving it if it is a group;
    /// then the next conversation.
    Conversations {
        remaining: Vec<ConversationId>,
        #[serde(rename = "afterSeq")]
        after_seq: u64,
    },
    /// Friendships, friend requests both ways, the user's blocks, presence.
    Relations,
}

/// One account being erased: the queue message, and what a resumed step starts from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureJob {
    pub user_id: UserId,
    /// When the account was deleted (the erasure's duration is measured from it).
    pub requested_at: String,
    #[serde(flatten)]
    pub phase: ErasurePhase,
}

impl ErasureJob {
    pub fn new(user_id: UserId, requested_at: String) -> Self {
        ErasureJob { user_id, requested_at, phase: ErasurePhase::Start }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_survives_the_queue() {
        let job = ErasureJob {
            user_id: UserId::parse("u1").unwrap(),
            requested_at: "2026-12-04T00:00:00.000Z".into(),
            phase: ErasurePhase::Conversations { remaining: vec![ConversationId::parse("c1").unwrap()], after_seq: 7 },
        };
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(
            text,
            r#"{"userId":"u1","requestedAt":"2026-12-04T00:00:00.000Z","phase":"conversations","remaining":["c1"],"afterSeq":7}"#
        );
        assert_eq!(serde_json::from_str::<ErasureJob>(&text).unwrap(), job);
    }
}

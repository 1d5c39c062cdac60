//! Reports of messages and users, what an operator decides about them, and the audit record of every operator
//! action: what app stores ask of an app with user-generated content.

use serde::{Deserialize, Serialize};

use super::{MessageId, UserId};

/// What a report (or an operator action) is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ReportTarget {
    Message {
        #[serde(rename = "messageId")]
        message_id: MessageId,
    },
    User {
        #[serde(rename = "userId")]
        user_id: UserId,
    },
}

impl std::fmt::Display for ReportTarget {
    /// `message:<id>` or `user:<id>`: one spelling per target, so reports of it share a key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportTarget::Message { message_id } => write!(f, "message:{message_id}"),
            ReportTarget::User { user_id } => write!(f, "user:{user_id}"),
        }
    }
}

impl std::str::FromStr for ReportTarget {
    type Err = crate::error::AppError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.split_once(':') {
            Some(("message", id)) => Ok(ReportTarget::Message { message_id: MessageId::parse(id)? }),
            Some(("user", id)) => Ok(ReportTarget::User { user_id: UserId::parse(id)? }),
            _ => Err(crate::error::AppError::Validation("a target is `message:<id>` or `user:<id>`".into())),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportReason {
    Spam,
    Harassment,
    Hate,
    Sexual,
    Violence,
    SelfHarm,
    Other,
}

/// Open until an operator resolves every report of its target one way or the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    Open,
    /// Looked at; nothing to do.
    Dismissed,
    /// Looked at and acted on (a message deleted, a user suspended).
    Actioned,
}

/// One user's report of one target, as stored and as operators see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub target: ReportTarget,
    pub reporter_id: UserId,
    pub reason: ReportReason,
    pub details: Option<String>,
    pub created_at: String,
    /// Who the report is about: the reported user, or the message's sender.
    pub subject_id: UserId,
    /// The message's text when it was reported: an edit or a delete afterwards hides nothing from the operator.
    pub excerpt: Option<String>,
    pub status: ReportStatus,
}

/// What an operator did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    ResolveReports,
    DeleteMessage,
    Suspend,
    Unsuspend,
}

/// One operator action, written before the action runs: nothing an operator does goes unrecorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: String,
    pub at: String,
    pub operator_id: UserId,
    pub action: AuditAction,
    pub target: ReportTarget,
    /// The operator's reason or note, if they gave one.
    pub note: Option<String>,
}

impl AuditEntry {
    /// The month (`YYYY-MM`) the entry is filed under.
    pub fn month(&self) -> &str {
        self.at.get(..7).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_and_print_one_way() {
        let target: ReportTarget =
            serde_json::from_value(serde_json::json!({"type": "message", "messageId": "abc-3"})).unwrap();
        assert_eq!(target.to_string(), "message:abc-3");
        assert_eq!("message:abc-3".parse::<ReportTarget>().unwrap(), target);
        assert_eq!(
            "user:u1".parse::<ReportTarget>().unwrap(),
            ReportTarget::User { user_id: UserId::parse("u1").unwrap() }
        );
        assert!("room:x".parse::<ReportTarget>().is_err());
        let extra = serde_json::json!({"type": "user", "userId": "u1", "messageId": "abc-3"});
        assert!(serde_json::from_value::<ReportTarget>(extra).is_err());
    }
}

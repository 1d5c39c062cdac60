//! Reports: a user flags a message they can see, or another user, for the operators, with a reason. One report
//! per reporter and target (a second one is answered `unchanged` and costs nothing), at most [`REPORT_LIMIT`] an
//! hour, and the message's text is kept with the report, so the sender editing or deleting it afterwards hides
//! nothing. The reported user is not told. Operators act on reports through [`super::moderation`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};
use crate::model::{Actor, Report, ReportReason, ReportStatus, ReportTarget, now_iso};
use crate::ports::{ConversationStore, Created, MessageStore, ModerationStore, RateLimit, Store, UserStore};

/// Reports one user may make per hour.
pub const REPORT_LIMIT: RateLimit = RateLimit { kind: "report", max: 10, window_secs: 3600 };
/// Characters a reporter may add to the reason.
pub const MAX_DETAILS_CHARS: usize = 500;

/// `POST /reports` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewReport {
    pub target: ReportTarget,
    pub reason: ReportReason,
    pub details: Option<String>,
}

/// What a report did: `reported`, or `unchanged` when this reporter had already reported this target.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ReportOutcome {
    pub result: &'static str,
}

pub struct Reports {
    reports: Arc<dyn ModerationStore>,
    conversations: Arc<dyn ConversationStore>,
    messages: Arc<dyn MessageStore>,
    users: Arc<dyn UserStore>,
}

impl Reports {
    pub fn new(store: &Arc<dyn Store>) -> Self {
        Reports { reports: store.clone(), conversations: store.clone(), messages: store.clone(), users: store.clone() }
    }

    pub async fn report(&self, actor: &Actor, input: NewReport) -> AppResult<Created<ReportOutcome>> {
        let details = input.details.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
        if details.as_ref().is_some_and(|d| d.chars().count() > MAX_DETAILS_CHARS) {
            return Err(AppError::Validation(format!("details are limited to {MAX_DETAILS_CHARS} characters")));
        }
        let (subject_id, excerpt) = match &input.target {
            ReportTarget::Message { message_id } => {
                const UNSEEN: AppError = AppError::NotFound("message not found");
                // Only a message the reporter can see: a member of its conversation.
                let (conversation, _) = self
                    .conversations
                    .member_conversation(&message_id.conversation_id, actor.id())
                    .await?
                    .ok_or(UNSEEN)?;
                let message = self.messages.get_message(&conversation.id, message_id.seq).await?.ok_or(UNSEEN)?;
                (message.sender.id, Some(message.content))
            }
            ReportTarget::User { user_id } => {
                let user = self.users.get_user(user_id).await?.ok_or(AppError::NotFound("user not found"))?;
                (user.id, None)
            }
        };
        if subject_id == *actor.id() {
            return Err(AppError::Validation("you cannot report yourself".into()));
        }
        let report = Report {
            target: input.target,
            reporter_id: actor.id().clone(),
            reason: input.reason,
            details,
            created_at: now_iso(),
            subject_id,
            excerpt,
            status: ReportStatus::Open,
        };
        Ok(if self.reports.create_report(&report, &REPORT_LIMIT).await? {
            Created::New(ReportOutcome { result: "reported" })
        } else {
            Created::Existing(ReportOutcome { result: "unchanged" })
        })
    }
}

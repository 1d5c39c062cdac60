//! Moderation: what operators (users the deployment's operator flagged, `cargo xtask operator grant`) may do,
//! and nobody else: list open reports, resolve them, delete any message, suspend and unsuspend users, and read
//! the audit record. Every action is written to the audit record before it runs, so none goes unrecorded (an
//! action that then fails leaves the record of the attempt; its answer says it failed).
//!
//! Suspending flags the profile first, then ends every session: from that moment login is refused, every token
//! is refused (the flag is on the profile that each token check reads anyway) and the user's connections are
//! closed (DeleteConnection).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::accounts::{Authenticated, SessionCloser, SessionsEnded};
use super::messages::Messages;
use super::paging::{Page, Pager, page_size};
use crate::error::{AppError, AppResult};
use crate::model::{
    Actor, AuditAction, AuditEntry, Message, MessageId, Report, ReportStatus, ReportTarget, UserId, now_iso,
};
use crate::ports::{AuditKey, ModerationStore, ReportKey, Store};

/// Page sizes of the report list and the audit record: (default, maximum).
const MODERATION_PAGE: (u64, u64) = (50, 100);
/// Characters of an operator's note or reason.
pub const MAX_NOTE_CHARS: usize = 500;

/// `POST /moderation/reports/resolve` body: closes every open report of one target.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resolve {
    pub target: ReportTarget,
    pub outcome: Outcome,
    pub note: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Dismissed,
    Actioned,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Resolved {
    /// Open reports of the target this closed (0 when another operator closed them first).
    pub resolved: usize,
}

/// `PUT /moderation/users/:id/suspension` body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Suspend {
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Suspension {
    pub user_id: UserId,
    pub suspended: bool,
    /// Sessions ended and connections closed by suspending (none when lifting a suspension).
    #[serde(flatten)]
    pub ended: SessionsEnded,
}

/// `GET /moderation/reports` and `GET /moderation/audit` queries.
#[derive(Clone, Debug, Default)]
pub struct ModerationQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    /// Audit only: the month (`YYYY-MM`) to read, this month by default.
    pub month: Option<String>,
}

pub struct Moderation {
    store: Arc<dyn ModerationStore>,
    messages: Messages,
    closer: SessionCloser,
}

impl Moderation {
    pub(crate) fn new(store: &Arc<dyn Store>, messages: Messages, closer: SessionCloser) -> Self {
        Moderation { store: store.clone(), messages, closer }
    }

    /// Open reports, oldest first.
    pub async fn open_reports(
        &self,
        who: &Authenticated,
        query: ModerationQuery,
        pager: &Pager,
    ) -> AppResult<Page<Report>> {
        operator(who)?;
        let limit = page_size(query.limit, MODERATION_PAGE)?;
        const SCOPE: &str = "moderation:reports";
        let after: Option<ReportKey> = query.cursor.as_deref().map(|c| pager.position(SCOPE, c)).transpose()?;
        let mut reports = self.store.open_reports(after.as_ref(), limit + 1).await?;
        let next_cursor = pager.next_cursor(SCOPE, &mut reports, limit, ReportKey::of);
        Ok(Page { items: reports, next_cursor })
    }

    pub async fn resolve(&self, who: &Authenticated, input: Resolve) -> AppResult<Resolved> {
        let operator = operator(who)?;
        let note = checked_note(input.note)?;
        self.audit(&operator, AuditAction::ResolveReports, input.target.clone(), note).await?;
        let status = match input.outcome {
            Outcome::Dismissed => ReportStatus::Dismissed,
            Outcome::Actioned => ReportStatus::Actioned,
        };
        let resolved = self.store.resolve_reports(&input.target, status, operator.id(), &now_iso()).await?;
        Ok(Resolved { resolved })
    }

    /// Deletes any message, as its sender could: the members get `message_deleted`, the attachment goes.
    pub async fn delete_message(&self, who: &Authenticated, id: &MessageId) -> AppResult<Message> {
        let operator = operator(who)?;
        self.audit(&operator, AuditAction::DeleteMessage, ReportTarget::Message { message_id: id.clone() }, None)
            .await?;
        self.messages.delete_as_operator(&operator, id).await
    }

    pub async fn suspend(&self, who: &Authenticated, user_id: &UserId, input: Suspend) -> AppResult<Suspension> {
        let operator = operator(who)?;
        if user_id == operator.id() {
            return Err(AppError::Validation("an operator cannot suspend themselves".into()));
        }
        let note = checked_note(input.reason)?;
        self.audit(&operator, AuditAction::Suspend, ReportTarget::User { user_id: user_id.clone() }, note).await?;
        if !self.store.set_suspended(user_id, true).await? {
            return Err(AppError::NotFound("user not found"));
        }
        let ended = self.closer.end_all(user_id).await?;
        tracing::warn!(%user_id, operator = %operator.id(), ended.ended_sessions, "user suspended");
        Ok(Suspension { user_id: user_id.clone(), suspended: true, ended })
    }

    pub async fn unsuspend(&self, who: &Authenticated, user_id: &UserId) -> AppResult<Suspension> {
        let operator = operator(who)?;
        self.audit(&operator, AuditAction::Unsuspend, ReportTarget::User { user_id: user_id.clone() }, None).await?;
        if !self.store.set_suspended(user_id, false).await? {
            return Err(AppError::NotFound("user not found"));
        }
        let ended = SessionsEnded { ended_sessions: 0, closed_connections: 0 };
        Ok(Suspension { user_id: user_id.clone(), suspended: false, ended })
    }

    /// One month of the audit record, newest first.
    pub async fn audit_record(
        &self,
        who: &Authenticated,
        query: ModerationQuery,
        pager: &Pager,
    ) -> AppResult<Page<AuditEntry>> {
        operator(who)?;
        let month = match query.month {
            Some(month) if is_month(&month) => month,
            Some(_) => return Err(AppError::Validation("month must be YYYY-MM".into())),
            None => now_iso()[..7].to_owned(),
        };
        let limit = page_size(query.limit, MODERATION_PAGE)?;
        let scope = format!("moderation:audit:{month}");
        let before: Option<AuditKey> = query.cursor.as_deref().map(|c| pager.position(&scope, c)).transpose()?;
        let mut entries = self.store.audit_entries(&month, before.as_ref(), limit + 1).await?;
        let next_cursor =
            pager.next_cursor(&scope, &mut entries, limit, |e| AuditKey { at: e.at.clone(), id: e.id.clone() });
        Ok(Page { items: entries, next_cursor })
    }

    async fn audit(
        &self,
        operator: &Actor,
        action: AuditAction,
        target: ReportTarget,
        note: Option<String>,
    ) -> AppResult<()> {
        let entry = AuditEntry {
            id: uuid::Uuid::new_v4().simple().to_string(),
            at: now_iso(),
            operator_id: operator.id().clone(),
            action,
            target,
            note,
        };
        self.store.record_audit(&entry).await
    }
}

/// The operator acting, or `Forbidden` for everyone else.
fn operator(who: &Authenticated) -> AppResult<Actor> {
    if who.operator { Ok(Actor::http(&who.user)) } else { Err(AppError::Forbidden("operators only")) }
}

fn checked_note(note: Option<String>) -> AppResult<Option<String>> {
    let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
        return Err(AppError::Validation(format!("a note is limited to {MAX_NOTE_CHARS} characters")));
    }
    Ok(note)
}

fn is_month(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 7
        && bytes[4] == b'-'
        && bytes.iter().enumerate().all(|(i, b)| i == 4 || b.is_ascii_digit())
        && matches!(&value[5..], "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12")
}

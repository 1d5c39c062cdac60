//! `report` and `mod ...`: reporting a message or a user, and the operators' commands (docs/protocol.md, "Reports
//! and moderation"). Targets are written `message:<messageId>` or `user:<username or id>`.

use serde_json::{Value, json};

use crate::args::Moderation;
use crate::context::Context;
use crate::conversations::user_id_of;
use crate::error::{CliError, CliResult};
use crate::output::{items, json_line};
use crate::rest::Rest;

pub async fn report(context: &Context<'_>, target: &str, reason: &str, details: Option<&str>) -> CliResult<()> {
    let rest = context.rest().await?;
    json_line(&rest.report(target_of(&rest, target).await?, reason, details).await?)
}

pub async fn moderate(context: &Context<'_>, command: &Moderation) -> CliResult<()> {
    let rest = context.rest().await?;
    match command {
        Moderation::Reports { limit } => {
            // Every open report (paging through) unless a limit asks for one page.
            let mut cursor = None;
            loop {
                let page = rest.open_reports(*limit, cursor).await?;
                items(&page)?;
                match page["nextCursor"].as_str() {
                    Some(next) if limit.is_none() => cursor = Some(next.to_owned()),
                    _ => return Ok(()),
                }
            }
        }
        Moderation::Resolve { target, outcome, note } => {
            json_line(&rest.resolve_reports(target_of(&rest, target).await?, outcome, note.as_deref()).await?)
        }
        Moderation::DeleteMessage { message_id } => json_line(&rest.moderate_message(message_id).await?),
        Moderation::Suspend { user, reason } => {
            json_line(&rest.suspend(&user_id_of(&rest, user).await?, reason.as_deref()).await?)
        }
        Moderation::Unsuspend { user } => json_line(&rest.unsuspend(&user_id_of(&rest, user).await?).await?),
        Moderation::Audit { month, limit } => items(&rest.audit(month.as_deref(), *limit).await?),
    }
}

/// `message:<id>` or `user:<username or id>` as the API's target object.
async fn target_of(rest: &Rest, target: &str) -> CliResult<Value> {
    match target.split_once(':') {
        Some(("message", id)) if !id.is_empty() => Ok(json!({ "type": "message", "messageId": id })),
        Some(("user", user)) if !user.is_empty() => {
            Ok(json!({ "type": "user", "userId": user_id_of(rest, user).await? }))
        }
        _ => Err(CliError::Usage(format!("`{target}`: a target is message:<messageId> or user:<username>"))),
    }
}

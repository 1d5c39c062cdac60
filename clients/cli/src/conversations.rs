//! `users`, `conversations`, `create-private`, `create-group`, `history`, `notify`, `notifications`: the REST
//! side of conversations, one JSON document per line.

use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::{items, json_line};
use crate::rest::Rest;

pub async fn users(context: &Context<'_>, search: &str, limit: Option<u32>) -> CliResult<()> {
    items(&context.rest().await?.search_users(search, limit).await?)
}

pub async fn list(context: &Context<'_>, limit: Option<u32>) -> CliResult<()> {
    items(&context.rest().await?.conversations(limit).await?)
}

pub async fn create_private(context: &Context<'_>, user: &str) -> CliResult<()> {
    let rest = context.rest().await?;
    let participant = user_id_of(&rest, user).await?;
    json_line(&rest.create_private(&participant).await?)
}

pub async fn create_group(context: &Context<'_>, name: &str, members: &[String]) -> CliResult<()> {
    let rest = context.rest().await?;
    let mut ids = Vec::with_capacity(members.len());
    for member in members {
        ids.push(user_id_of(&rest, member).await?);
    }
    json_line(&rest.create_group(name, &ids).await?)
}

/// One page of messages, printed oldest first: the newest `limit`, or with `after_seq` the ones after it.
pub async fn history(
    context: &Context<'_>,
    conversation_id: &str,
    limit: Option<u32>,
    after_seq: Option<u64>,
) -> CliResult<()> {
    let page = context.rest().await?.history(conversation_id, limit, after_seq, None).await?;
    let mut messages = page["items"].as_array().cloned().unwrap_or_default();
    if after_seq.is_none() {
        messages.reverse(); // the server pages newest first
    }
    for message in &messages {
        json_line(message)?;
    }
    if page["nextCursor"].is_string() {
        eprintln!("(more messages: use --limit or --after-seq)");
    }
    Ok(())
}

pub async fn notify(context: &Context<'_>, conversation_id: &str, level: &str, until: Option<&str>) -> CliResult<()> {
    json_line(&context.rest().await?.set_conversation_notifications(conversation_id, level, until).await?)
}

/// Prints the preferences; with a change, sends the current ones with that change (a `PUT` replaces them all).
pub async fn notifications(
    context: &Context<'_>,
    dnd_until: Option<Option<&str>>,
    previews: Option<bool>,
) -> CliResult<()> {
    let rest = context.rest().await?;
    let mut preferences = rest.notification_preferences().await?;
    if dnd_until.is_none() && previews.is_none() {
        return json_line(&preferences);
    }
    if let Some(until) = dnd_until {
        preferences["doNotDisturbUntil"] = until.into();
    }
    if let Some(previews) = previews {
        preferences["previews"] = previews.into();
    }
    json_line(&rest.set_notification_preferences(preferences).await?)
}

/// A user id as given (32 hex digits), or the id of the user with exactly this username.
pub async fn user_id_of(rest: &Rest, user: &str) -> CliResult<String> {
    if is_user_id(user) {
        return Ok(user.to_owned());
    }
    let page = rest.search_users(user, Some(20)).await?;
    page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|candidate| candidate["username"].as_str().is_some_and(|name| name.eq_ignore_ascii_case(user)))
        .and_then(|found| found["_id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| CliError::Setup(format!("no user named `{user}`")))
}

/// Whether `text` has the shape of a user id (32 lowercase hex digits).
pub fn is_user_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_told_from_usernames() {
        assert!(is_user_id("0123456789abcdef0123456789abcdef"));
        assert!(!is_user_id("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_user_id("alice"));
        assert!(!is_user_id("0123456789abcdef0123456789abcde"));
    }
}

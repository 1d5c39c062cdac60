//! Items ↔ domain types: how users, conversations, messages and presence are laid out in attributes.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{
    DynamoDbStore, Item, get_bool, get_id, get_n, get_n_or_zero, get_opt_named, get_opt_s, get_s, id, keys, n, s,
};
use crate::error::{AppError, AppResult};
use crate::model::{
    Attachment, Conversation, ConversationId, ConversationKind, ConversationNotifications, LISTED_MEMBERS_MAX,
    LiveConnection, Message, MessageKind, MessageStatus, NotificationPreferences, Processed, Roles, Roster, Sender,
    Standing, Upload, User, UserId, UserPresence, now_epoch_seconds,
};
use crate::ports::Membership;

pub(crate) fn user_from_item(item: &Item) -> AppResult<User> {
    Ok(User {
        id: get_id(item, "userId")?,
        username: get_s(item, "username")?,
        avatar: get_opt_s(item, "avatar"),
        created_at: get_s(item, "createdAt")?,
    })
}

/// The operator's decisions on a profile item (absent flags are `false`).
pub(crate) fn standing_from_item(item: &Item) -> Standing {
    Standing {
        operator: get_bool(item, "operator"),
        suspended: get_bool(item, "suspended"),
        deleted: get_bool(item, "deleted"),
    }
}

pub(crate) fn conversation_from_item(item: &Item) -> AppResult<Conversation> {
    let kind = match get_s(item, "type")?.as_str() {
        "private" => ConversationKind::Private,
        "group" => ConversationKind::Group,
        other => return Err(AppError::internal(format!("stored conversation has unknown type {other:?}"))),
    };
    let last_message = get_opt_s(item, "lastMessage")
        .map(|json| serde_json::from_str::<Message>(&json).map_err(AppError::internal))
        .transpose()?;
    let listed: BTreeSet<UserId> = match item.get("members") {
        Some(AttributeValue::Ss(ids)) => ids
            .iter()
            .map(|m| m.parse().map_err(|_| AppError::internal("stored conversation has an invalid member id")))
            .collect::<AppResult<_>>()?,
        _ => BTreeSet::new(),
    };
    // Conversations stored before member counts existed are listed: their count is their list's size.
    let count = match item.get("memberCount") {
        Some(AttributeValue::N(_)) => get_n(item, "memberCount")? as usize,
        _ => listed.len(),
    };
    let roster = if count <= LISTED_MEMBERS_MAX { Roster::Listed(listed) } else { Roster::large(count) };
    let created_by: UserId = get_id(item, "createdBy")?;
    // Groups stored before roles existed are their creator's.
    let owner = if item.contains_key("ownerId") { get_id(item, "ownerId")? } else { created_by.clone() };
    let admins = match item.get("admins") {
        Some(AttributeValue::Ss(ids)) => ids
            .iter()
            .map(|a| a.parse().map_err(|_| AppError::internal("stored conversation has an invalid admin id")))
            .collect::<AppResult<_>>()?,
        _ => BTreeSet::new(),
    };
    Ok(Conversation {
        id: get_id(item, "conversationId")?,
        kind,
        name: get_opt_s(item, "name"),
        avatar: get_opt_s(item, "avatar"),
        roster,
        roster_version: get_n_or_zero(item, "rosterVersion"),
        created_by,
        roles: Roles { owner, admins },
        created_at: get_s(item, "createdAt")?,
        updated_at: get_s(item, "updatedAt")?,
        last_seq: get_n(item, "lastSeq")?,
        last_message,
        // DynamoDB drops a set emptied by the last unblock.
        blocked: item.contains_key("blockedBy"),
        member_deleted: item.contains_key("deletedMember"),
    })
}

pub(crate) fn kind_str(kind: ConversationKind) -> &'static str {
    match kind {
        ConversationKind::Private => "private",
        ConversationKind::Group => "group",
    }
}

pub(crate) fn message_to_item(m: &Message) -> Item {
    let mut item = DynamoDbStore::key(keys::conversation(&m.conversation_id), keys::message(m.seq));
    item.insert("messageId".into(), id(&m.id));
    item.insert("conversationId".into(), id(&m.conversation_id));
    item.insert("seq".into(), n(m.seq));
    item.insert("senderId".into(), id(&m.sender.id));
    item.insert("senderName".into(), s(&m.sender.username));
    if let Some(avatar) = &m.sender.avatar {
        item.insert("senderAvatar".into(), s(avatar));
    }
    item.insert("content".into(), s(&m.content));
    item.insert("type".into(), s(message_kind_str(m.kind)));
    if let Some(url) = &m.file_url {
        item.insert("fileUrl".into(), s(url));
    }
    if let Some(name) = &m.file_name {
        item.insert("fileName".into(), s(name));
    }
    if let Some(attachment) = &m.attachment {
        item.insert("attachment".into(), attachment_value(attachment));
    }
    item.insert("createdAt".into(), s(&m.created_at));
    item.insert("edited".into(), AttributeValue::Bool(m.edited));
    item.insert("deleted".into(), AttributeValue::Bool(m.deleted));
    if let Some(at) = &m.edited_at {
        item.insert("editedAt".into(), s(at));
    }
    if let Some(at) = &m.deleted_at {
        item.insert("deletedAt".into(), s(at));
    }
    if let Some(cmid) = &m.client_message_id {
        item.insert("clientMessageId".into(), s(cmid));
    }
    if !m.mentions.is_empty() {
        item.insert("mentions".into(), AttributeValue::Ss(m.mentions.iter().map(|u| u.to_string()).collect()));
    }
    item
}

/// The attributes of a membership item (`USER#<id>` / `CONV#<id>`) that [`membership_from_item`] reads.
pub(crate) const MEMBERSHIP_ATTRIBUTES: &str = "conversationId, lastReadSeq, mentionSeqs, notifyLevel, notifyUntil";

pub(crate) fn membership_from_item(conversation_id: ConversationId, item: &Item) -> Membership {
    let mut mention_seqs: Vec<u64> = match item.get("mentionSeqs") {
        Some(AttributeValue::Ns(seqs)) => seqs.iter().filter_map(|seq| seq.parse().ok()).collect(),
        _ => Vec::new(),
    };
    mention_seqs.sort_unstable();
    Membership {
        conversation_id,
        last_read_seq: get_n_or_zero(item, "lastReadSeq"),
        mention_seqs,
        // Absent until the member changes it.
        notifications: ConversationNotifications {
            level: get_opt_named(item, "notifyLevel").unwrap_or_default(),
            until: get_opt_s(item, "notifyUntil"),
        },
    }
}

/// A message's attachment as stored: JSON, without read URLs.
pub(crate) fn attachment_value(attachment: &Attachment) -> AttributeValue {
    s(serde_json::to_string(&attachment.unsigned()).expect("an attachment serialises"))
}

pub(crate) fn upload_to_item(upload: &Upload, expires_at: u64) -> Item {
    let mut item = DynamoDbStore::key(keys::upload(&upload.id), keys::UPLOAD);
    item.insert("uploadId".into(), id(&upload.id));
    item.insert("conversationId".into(), id(&upload.conversation_id));
    item.insert("uploader".into(), id(&upload.uploader));
    item.insert("fileName".into(), s(&upload.file_name));
    item.insert("contentType".into(), s(&upload.content_type));
    item.insert("size".into(), n(upload.size));
    item.insert("createdAt".into(), s(&upload.created_at));
    // Until a message attaches it; attaching removes the expiry.
    item.insert("ttl".into(), n(expires_at));
    item
}

pub(crate) fn upload_from_item(item: &Item) -> AppResult<Upload> {
    Ok(Upload {
        id: get_id(item, "uploadId")?,
        conversation_id: get_id(item, "conversationId")?,
        uploader: get_id(item, "uploader")?,
        file_name: get_s(item, "fileName")?,
        content_type: get_s(item, "contentType")?,
        size: get_n(item, "size")?,
        created_at: get_s(item, "createdAt")?,
        message_id: get_opt_s(item, "messageId")
            .map(|v| v.parse().map_err(|_| AppError::internal("stored upload has an invalid messageId")))
            .transpose()?,
        processed: get_opt_s(item, "processed")
            .map(|json| serde_json::from_str::<Processed>(&json).map_err(AppError::internal))
            .transpose()?,
    })
}

fn message_kind_str(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Text => "text",
        MessageKind::Image => "image",
        MessageKind::File => "file",
    }
}

pub(crate) fn message_from_item(item: &Item) -> AppResult<Message> {
    let kind = match get_s(item, "type")?.as_str() {
        "text" => MessageKind::Text,
        "image" => MessageKind::Image,
        "file" => MessageKind::File,
        other => return Err(AppError::internal(format!("stored message has unknown type {other:?}"))),
    };
    Ok(Message {
        id: get_id(item, "messageId")?,
        conversation_id: get_id(item, "conversationId")?,
        seq: get_n(item, "seq")?,
        sender: Sender {
            id: get_id(item, "senderId")?,
            username: get_s(item, "senderName")?,
            avatar: get_opt_s(item, "senderAvatar"),
        },
        content: get_s(item, "content")?,
        kind,
        file_url: get_opt_s(item, "fileUrl"),
        file_name: get_opt_s(item, "fileName"),
        attachment: get_opt_s(item, "attachment")
            .map(|json| serde_json::from_str::<Attachment>(&json).map_err(AppError::internal))
            .transpose()?,
        status: MessageStatus::Sent,
        created_at: get_s(item, "createdAt")?,
        edited: get_bool(item, "edited"),
        edited_at: get_opt_s(item, "editedAt"),
        deleted: get_bool(item, "deleted"),
        deleted_at: get_opt_s(item, "deletedAt"),
        client_message_id: get_opt_s(item, "clientMessageId"),
        reactions: Default::default(),
        mentions: match item.get("mentions") {
            Some(AttributeValue::Ss(ids)) => {
                let ids: BTreeSet<UserId> = ids.iter().filter_map(|id| id.parse().ok()).collect();
                ids.into_iter().collect()
            }
            _ => Vec::new(),
        },
    })
}

/// A connection's entry in its user's `conns` string set: `<connectionId> <connectedAt> <expiresAt>`. The entry
/// carries what fan-out needs (where to post, whether a 410 can be trusted, whether it expired), so fan-out
/// reads nothing but the set.
pub(crate) fn connection_entry(c: &LiveConnection) -> String {
    format!("{} {} {}", c.connection_id, c.connected_at, c.expires_at)
}

fn parse_connection_entry(entry: &str) -> Option<LiveConnection> {
    let mut parts = entry.split(' ');
    let connection = LiveConnection {
        connection_id: crate::model::ConnectionId::new(parts.next()?),
        connected_at: parts.next()?.parse().ok()?,
        expires_at: parts.next()?.parse().ok()?,
    };
    parts.next().is_none().then_some(connection)
}

/// The presence in an item, and the entries that expired (whose `$disconnect` never came).
pub(crate) fn presence_from_item(item: &Item) -> (UserPresence, Vec<String>) {
    let now = now_epoch_seconds();
    let mut presence = UserPresence {
        connections: Vec::new(),
        status: get_opt_s(item, "userStatus"),
        last_seen: get_opt_s(item, "lastSeen"),
        blocked: match item.get("blocked") {
            Some(AttributeValue::Ss(ids)) => ids.iter().filter_map(|id| id.parse().ok()).collect(),
            _ => Default::default(),
        },
        // Absent until the user changes it.
        contactable_by: get_opt_named(item, "contactableBy").unwrap_or_default(),
        notifications: NotificationPreferences {
            do_not_disturb_until: get_opt_s(item, "dndUntil"),
            previews: item.get("previews").and_then(|v| v.as_bool().ok()).copied().unwrap_or(true),
        },
        push_subscriptions: get_n_or_zero(item, "pushCount") as u32,
        background: match item.get("bgConns") {
            Some(AttributeValue::Ss(ids)) => ids.iter().map(crate::model::ConnectionId::new).collect(),
            _ => Default::default(),
        },
    };
    let mut expired = Vec::new();
    if let Some(AttributeValue::Ss(entries)) = item.get("conns") {
        for entry in entries {
            match parse_connection_entry(entry) {
                Some(c) if c.expires_at > now => presence.connections.push(c),
                _ => expired.push(entry.clone()),
            }
        }
    }
    (presence, expired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ConnectionId;

    #[test]
    fn presence_entries_round_trip_and_expire() {
        let now = now_epoch_seconds();
        let live = LiveConnection {
            connection_id: ConnectionId::new("L0SM9cOFvHcCIhw="),
            connected_at: now,
            expires_at: now + 60,
        };
        let old =
            LiveConnection { connection_id: ConnectionId::new("old"), connected_at: now - 120, expires_at: now - 60 };
        let item = Item::from([
            (
                "conns".to_owned(),
                AttributeValue::Ss(vec![connection_entry(&live), connection_entry(&old), "junk".into()]),
            ),
            ("userStatus".to_owned(), s("busy")),
        ]);
        let (presence, expired) = presence_from_item(&item);
        assert_eq!(presence.connections, vec![live]);
        assert_eq!(presence.status.as_deref(), Some("busy"));
        assert_eq!(expired.len(), 2, "expired and unreadable entries are both tidied away");
    }
}

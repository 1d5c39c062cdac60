//! REST use cases around conversations: user search, conversation lists with unread counts, history pages,
//! group management and posting a message over HTTP.
//!
//! They sit beside [`crate::service`] (accounts, WebSocket use cases) as further `impl Services` blocks, so both
//! transports share one set of rules. Every use case starts from [`Services::member_conversation`]:
//! a non-member gets the same 404 as for an id that does not exist, so ids cannot be probed.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{AppError, AppResult};
use crate::model::{Conversation, ConversationKind, Message, Sender, User, now_iso};
use crate::protocol::{SendMessageInput, event_frame, events};
use crate::service::{ConversationView, MAX_GROUP_MEMBERS, Services};
use crate::store::queries::{ConversationChanges, Membership, SeqRange, UserKey};
use crate::store::{Created, username_key};

/// Page sizes: (default, maximum) per list.
const USER_PAGE: (u64, u64) = (20, 50);
const CONVERSATION_PAGE: (u64, u64) = (20, 50);
const MESSAGE_PAGE: (u64, u64) = (50, 100);
/// Usernames have at most 32 characters, so a longer prefix can match nothing.
const MAX_SEARCH_CHARS: usize = 32;
const MAX_GROUP_NAME_CHARS: usize = 100;
const MAX_URL_LEN: usize = 2048;
/// Group writes are conditional (see [`crate::store::queries`]). When one finds the state changed since it was
/// read, the use case reads again and re-applies its rules, at most this many times: a race ends in the answer
/// the newer state deserves (404, 403, 422), never in a bypassed rule.
const WRITE_ATTEMPTS: u32 = 4;

/// One page of a list. `nextCursor` is absent on the last page.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A conversation as one user sees it in their list: the shared view plus their own unread count.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    #[serde(flatten)]
    pub conversation: ConversationView,
    /// Messages after the user's read pointer: `lastSeq - lastReadSeq`, never negative.
    pub unread_count: u64,
}

/// `GET /users` query.
#[derive(Clone, Debug, Default)]
pub struct UserSearch {
    pub search: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// `GET /conversations` query: either a `cursor` or a 1-based `page`.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub page: Option<u64>,
}

/// History query: at most one of `cursor` (continues the page it came from, in its direction), `page` (1-based,
/// newest first) and `after_seq` (oldest first, for catch-up).
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub page: Option<u64>,
    pub after_seq: Option<u64>,
}

/// `PATCH /conversations/:id` body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversation {
    pub name: Option<String>,
    pub avatar: Option<String>,
}

/// `POST /conversations/:id/members` body.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddMembers {
    pub user_ids: Vec<String>,
}

/// `member_left` payload, also the answer to `DELETE /conversations/:id/members/:userId`.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemberLeft {
    pub conversation_id: String,
    pub user_id: String,
    pub removed_by: String,
}

/// Cursor positions. Signed by [`crate::cursor::CursorCodec`], so these are never client-controlled.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConversationPosition {
    updated_at: String,
    id: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum HistoryPosition {
    Before(u64),
    After(u64),
}

impl Services {
    // ------------------------------------------------------------------ users

    /// Username prefix search, case-insensitive, in username order.
    pub async fn search_users(&self, me: &User, query: UserSearch) -> AppResult<Page<User>> {
        let search = query.search.as_deref().map(str::trim).unwrap_or_default();
        if search.is_empty() || search.chars().count() > MAX_SEARCH_CHARS {
            return Err(AppError::Validation(format!("search must have 1-{MAX_SEARCH_CHARS} characters")));
        }
        let prefix = username_key(search);
        let limit = page_size(query.limit, USER_PAGE)?;
        let scope = format!("users:{prefix}:{}", me.id);
        let after: Option<UserKey> = query.cursor.as_deref().map(|c| self.position(&scope, c)).transpose()?;
        let mut users = self.store.search_users(&prefix, after.as_ref(), limit + 1).await?;
        let next_cursor = self
            .next_cursor(&scope, &mut users, limit, |u| UserKey { name: username_key(&u.username), id: u.id.clone() });
        Ok(Page { items: users, next_cursor })
    }

    // ------------------------------------------------------------------ conversations

    /// The caller's conversations, newest activity first.
    pub async fn list_conversations(&self, me: &User, query: ListQuery) -> AppResult<Page<ConversationSummary>> {
        let limit = page_size(query.limit, CONVERSATION_PAGE)?;
        if query.cursor.is_some() && query.page.is_some() {
            return Err(AppError::Validation("use either cursor or page, not both".into()));
        }
        let skip = page_offset(query.page, limit)?;
        let scope = format!("conversations:{}", me.id);
        let after: Option<ConversationPosition> =
            query.cursor.as_deref().map(|c| self.position(&scope, c)).transpose()?;

        let memberships = self.store.memberships(&me.id).await?;
        let ids: Vec<String> = memberships.iter().map(|m| m.conversation_id.clone()).collect();
        let mut conversations: Vec<Conversation> =
            self.store.get_conversations(&ids).await?.into_iter().filter(|c| c.is_member(&me.id)).collect();
        // Activity order is computed here rather than kept in an index: see docs/data-model.md, pattern #17.
        conversations.sort_by(|a, b| (&b.updated_at, &b.id).cmp(&(&a.updated_at, &a.id)));
        let mut page: Vec<Conversation> = conversations
            .into_iter()
            .filter(|c| after.as_ref().is_none_or(|p| (&c.updated_at, &c.id) < (&p.updated_at, &p.id)))
            .skip(skip)
            .take(limit + 1)
            .collect();
        let next_cursor = self.next_cursor(&scope, &mut page, limit, |c| ConversationPosition {
            updated_at: c.updated_at.clone(),
            id: c.id.clone(),
        });
        let read: HashMap<String, u64> =
            memberships.into_iter().map(|m| (m.conversation_id, m.last_read_seq)).collect();
        let views = self.views(page).await?;
        let items = views
            .into_iter()
            .map(|view| {
                let last_read = read.get(&view.id).copied().unwrap_or(0);
                summary(view, last_read)
            })
            .collect();
        Ok(Page { items, next_cursor })
    }

    /// One conversation of the caller, with their unread count.
    pub async fn conversation_summary(&self, me: &User, conversation_id: &str) -> AppResult<ConversationSummary> {
        let conversation = self.member_conversation(conversation_id, &me.id).await?;
        let membership = self.store.membership(&me.id, conversation_id).await?;
        let last_read = membership.map_or(0, |m: Membership| m.last_read_seq);
        let view = self.views(vec![conversation]).await?.remove(0);
        Ok(summary(view, last_read))
    }

    /// Renames a group or changes its avatar; every member gets `conversation_updated`.
    pub async fn update_group(
        &self,
        me: &User,
        conversation_id: &str,
        input: UpdateConversation,
    ) -> AppResult<ConversationView> {
        let changes = ConversationChanges {
            name: input.name.map(|n| validate_group_name(&n)).transpose()?,
            avatar: input.avatar.map(|a| validate_url("avatar", a)).transpose()?,
        };
        if changes == ConversationChanges::default() {
            return Err(AppError::Validation("nothing to change: send name and/or avatar".into()));
        }
        let updated = 'write: {
            for _ in 0..WRITE_ATTEMPTS {
                require_group(&self.member_conversation(conversation_id, &me.id).await?)?;
                if let Some(updated) =
                    self.store.update_conversation(conversation_id, &me.id, &changes, &now_iso()).await?
                {
                    break 'write updated;
                }
            }
            return Err(AppError::RateLimited);
        };
        let view = self.views(vec![updated]).await?.remove(0);
        let frame = event_frame(events::CONVERSATION_UPDATED, json!({ "conversation": view }));
        self.notify(&view.member_ids(), &frame, None).await;
        Ok(view)
    }

    /// Adds users to a group. Users already in it are skipped; every member, old and new, gets `member_joined`.
    pub async fn add_members(
        &self,
        me: &User,
        conversation_id: &str,
        input: AddMembers,
    ) -> AppResult<ConversationView> {
        let wanted: BTreeSet<String> = input.user_ids.into_iter().collect();
        if wanted.is_empty() || wanted.len() > MAX_GROUP_MEMBERS {
            return Err(AppError::Validation(format!("userIds must list 1-{MAX_GROUP_MEMBERS} users")));
        }
        // Membership first, so a non-member learns nothing about the users either.
        let first_read = self.member_conversation(conversation_id, &me.id).await?;
        require_group(&first_read)?;
        let wanted: Vec<String> = wanted.into_iter().collect();
        let profiles = self.store.get_users(&wanted).await?;
        if profiles.len() != wanted.len() {
            return Err(AppError::NotFound("user not found"));
        }
        let mut fresh = Some(first_read);
        let (updated, mut joined) = 'write: {
            for _ in 0..WRITE_ATTEMPTS {
                // The first attempt decides on the read above; later ones on a new read.
                let conversation = match fresh.take() {
                    Some(conversation) => conversation,
                    None => self.member_conversation(conversation_id, &me.id).await?,
                };
                require_group(&conversation)?;
                let new_ids: Vec<String> = wanted.iter().filter(|id| !conversation.is_member(id)).cloned().collect();
                if new_ids.is_empty() {
                    break 'write (conversation, Vec::new());
                }
                if conversation.member_ids.len() + new_ids.len() > MAX_GROUP_MEMBERS {
                    return Err(AppError::Validation(format!("a group has at most {MAX_GROUP_MEMBERS} members")));
                }
                let now = now_iso();
                if let Some(updated) =
                    self.store.add_members(&conversation, &me.id, &new_ids, MAX_GROUP_MEMBERS, &now).await?
                {
                    // Only the users this request actually added are announced.
                    break 'write (updated, profiles.into_iter().filter(|p| new_ids.contains(&p.id)).collect());
                }
            }
            return Err(AppError::RateLimited);
        };
        let view = self.views(vec![updated]).await?.remove(0);
        if !joined.is_empty() {
            joined.sort_by(|a: &User, b: &User| a.username.cmp(&b.username));
            let frame = event_frame(
                events::MEMBER_JOINED,
                json!({ "conversationId": view.id, "members": joined, "addedBy": me.id }),
            );
            self.notify(&view.member_ids(), &frame, None).await;
        }
        Ok(view)
    }

    /// Leaves a group (`user_id` = the caller) or, for its creator only, removes someone else. The remaining
    /// members and the removed user get `member_left`.
    pub async fn remove_member(&self, me: &User, conversation_id: &str, user_id: &str) -> AppResult<MemberLeft> {
        let remaining = 'write: {
            for _ in 0..WRITE_ATTEMPTS {
                let conversation = self.member_conversation(conversation_id, &me.id).await?;
                require_group(&conversation)?;
                if !conversation.is_member(user_id) {
                    return Err(AppError::NotFound("member not found"));
                }
                if user_id != me.id && conversation.created_by != me.id {
                    return Err(AppError::Forbidden("only the group's creator may remove other members"));
                }
                if let Some(remaining) = self.store.remove_member(conversation_id, &me.id, user_id, &now_iso()).await? {
                    break 'write remaining;
                }
            }
            return Err(AppError::RateLimited);
        };
        let left = MemberLeft {
            conversation_id: conversation_id.to_owned(),
            user_id: user_id.to_owned(),
            removed_by: me.id.clone(),
        };
        let mut recipients: Vec<String> = remaining.member_ids.into_iter().collect();
        recipients.push(user_id.to_owned());
        self.notify(&recipients, &event_frame(events::MEMBER_LEFT, &left), None).await;
        Ok(left)
    }

    // ------------------------------------------------------------------ messages

    /// A page of history: newest first, or oldest first after `after_seq` (catch-up after a reconnect).
    pub async fn message_history(
        &self,
        me: &User,
        conversation_id: &str,
        query: HistoryQuery,
    ) -> AppResult<Page<Message>> {
        let limit = page_size(query.limit, MESSAGE_PAGE)?;
        let given = [query.cursor.is_some(), query.page.is_some(), query.after_seq.is_some()];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(AppError::Validation("use at most one of cursor, page and afterSeq".into()));
        }
        let conversation = self.member_conversation(conversation_id, &me.id).await?;
        // Bound to conversation and user: a cursor replayed elsewhere is a 400, never another history.
        let scope = format!("messages:{conversation_id}:{}", me.id);
        let range = if let Some(cursor) = &query.cursor {
            match self.position(&scope, cursor)? {
                HistoryPosition::Before(seq) => SeqRange::Before(seq),
                HistoryPosition::After(seq) => SeqRange::After(seq),
            }
        } else if let Some(after) = query.after_seq {
            SeqRange::After(after)
        } else {
            // `seq` is gap-free, so page p of size L is exactly the L seqs below lastSeq - (p-1)L + 1.
            let skip = page_offset(query.page, limit)? as u64;
            SeqRange::Before((conversation.last_seq + 1).saturating_sub(skip))
        };
        let messages = self.store.messages(conversation_id, range, limit).await?;
        let full = messages.len() == limit;
        let next = match (range, messages.last()) {
            // Gap-free seqs: below a full page there is more exactly when its oldest seq is above 1.
            (SeqRange::Before(_), Some(oldest)) if full && oldest.seq > 1 => Some(HistoryPosition::Before(oldest.seq)),
            // Messages may arrive while the client catches up, so a full page always offers a next one.
            (SeqRange::After(_), Some(newest)) if full => Some(HistoryPosition::After(newest.seq)),
            _ => None,
        };
        let next_cursor = next.map(|position| self.cursors.encode(&scope, json!(position)));
        Ok(Page { items: messages, next_cursor })
    }

    /// Stores a message sent over HTTP and broadcasts it exactly like one sent over the WebSocket. `body` is
    /// the `send_message` payload without `conversationId` (the path names the conversation).
    pub async fn post_message(&self, me: &User, conversation_id: &str, body: Value) -> AppResult<Created<Message>> {
        let Value::Object(mut fields) = body else {
            return Err(AppError::BadRequest("request body must be a JSON object".into()));
        };
        fields.insert("conversationId".into(), Value::String(conversation_id.to_owned()));
        let input: SendMessageInput = serde_json::from_value(Value::Object(fields))
            .map_err(|e| AppError::BadRequest(format!("invalid request body: {e}")))?;
        let sender = Sender { id: me.id.clone(), username: me.username.clone(), avatar: me.avatar.clone() };
        Ok(match self.send_message(sender, input).await? {
            Created::New(appended) => {
                self.broadcast_message(&appended, None).await;
                Created::New(appended.message)
            }
            Created::Existing(appended) => Created::Existing(appended.message),
        })
    }

    // ------------------------------------------------------------------ helpers

    /// Views of `conversations` with all their members' profiles read in one batch.
    async fn views(&self, conversations: Vec<Conversation>) -> AppResult<Vec<ConversationView>> {
        let ids: Vec<String> = conversations
            .iter()
            .flat_map(|c| c.member_ids.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let profiles: HashMap<String, User> =
            self.store.get_users(&ids).await?.into_iter().map(|u| (u.id.clone(), u)).collect();
        Ok(conversations.into_iter().map(|c| view(c, &profiles)).collect())
    }

    fn position<T: serde::de::DeserializeOwned>(&self, scope: &str, cursor: &str) -> AppResult<T> {
        serde_json::from_value(self.cursors.decode(scope, cursor)?)
            .map_err(|_| AppError::BadRequest("invalid cursor".into()))
    }

    /// Trims a page fetched with one extra item to `limit`; if the extra item was there, a cursor after the
    /// last kept item.
    fn next_cursor<T, P: Serialize>(
        &self,
        scope: &str,
        items: &mut Vec<T>,
        limit: usize,
        position: impl Fn(&T) -> P,
    ) -> Option<String> {
        if items.len() <= limit {
            return None;
        }
        items.truncate(limit);
        items.last().map(|last| self.cursors.encode(scope, json!(position(last))))
    }
}

/// Same shape as [`Services::view`] builds, from profiles read in bulk.
fn view(conversation: Conversation, profiles: &HashMap<String, User>) -> ConversationView {
    let members = conversation.member_ids.iter().filter_map(|id| profiles.get(id).cloned()).collect();
    ConversationView::new(conversation, members)
}

fn summary(conversation: ConversationView, last_read_seq: u64) -> ConversationSummary {
    let unread_count = conversation.last_seq.saturating_sub(last_read_seq);
    ConversationSummary { conversation, unread_count }
}

fn require_group(conversation: &Conversation) -> AppResult<()> {
    match conversation.kind {
        ConversationKind::Group => Ok(()),
        ConversationKind::Private => Err(AppError::Validation("only group conversations have this operation".into())),
    }
}

fn page_size(requested: Option<u64>, (default, max): (u64, u64)) -> AppResult<usize> {
    match requested.unwrap_or(default) {
        n @ 1.. if n <= max => Ok(n as usize),
        _ => Err(AppError::Validation(format!("limit must be between 1 and {max}"))),
    }
}

/// Items before 1-based page `page` of size `limit`.
fn page_offset(page: Option<u64>, limit: usize) -> AppResult<usize> {
    match page {
        None => Ok(0),
        Some(0) => Err(AppError::Validation("page starts at 1".into())),
        Some(p) => Ok(usize::try_from(p - 1).unwrap_or(usize::MAX).saturating_mul(limit)),
    }
}

pub(crate) fn validate_group_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_GROUP_NAME_CHARS {
        return Err(AppError::Validation(format!("group name must have 1-{MAX_GROUP_NAME_CHARS} characters")));
    }
    Ok(name.to_owned())
}

pub(crate) fn validate_url(field: &str, url: String) -> AppResult<String> {
    if (url.starts_with("https://") || url.starts_with("http://")) && url.len() <= MAX_URL_LEN {
        Ok(url)
    } else {
        Err(AppError::Validation(format!("{field} must be an http(s) URL of at most {MAX_URL_LEN} characters")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_and_offsets_are_validated() {
        assert_eq!(page_size(None, MESSAGE_PAGE).unwrap(), 50);
        assert_eq!(page_size(Some(100), MESSAGE_PAGE).unwrap(), 100);
        assert!(page_size(Some(0), MESSAGE_PAGE).is_err());
        assert!(page_size(Some(101), MESSAGE_PAGE).is_err());
        assert!(page_size(Some(51), USER_PAGE).is_err());
        assert_eq!(page_offset(None, 20).unwrap(), 0);
        assert_eq!(page_offset(Some(3), 20).unwrap(), 40);
        assert!(page_offset(Some(0), 20).is_err());
        assert_eq!(page_offset(Some(u64::MAX), 20).unwrap(), usize::MAX);
    }

    #[test]
    fn unread_counts_never_go_negative() {
        let view = |last_seq| ConversationView {
            id: "c".into(),
            kind: ConversationKind::Group,
            name: None,
            avatar: None,
            members: vec![],
            last_message: None,
            last_seq,
            created_by: "u".into(),
            created_at: now_iso(),
            updated_at: now_iso(),
        };
        assert_eq!(summary(view(7), 3).unread_count, 4);
        assert_eq!(summary(view(3), 7).unread_count, 0);
        let json = serde_json::to_value(summary(view(2), 0)).unwrap();
        assert_eq!(json["unreadCount"], 2);
        assert_eq!(json["_id"], "c", "the view's fields are flattened into the summary");
    }
}

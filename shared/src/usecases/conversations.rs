//! Conversations: creating private chats and groups, listing them with unread counts, renaming groups, paging
//! and changing their members (up to the deployment's `MAX_GROUP_MEMBERS`), and telling every member what
//! changed.
//!
//! Every operation on an existing conversation starts from [`member_conversation`]; who hears about it comes
//! from [`conversation_audience`] (both in [`super::membership`]). Who may change a group is [`roles`]' rule.

mod roles;

pub use roles::{AssignableRole, SetRole, TransferOwnership};

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::accounts::validate_url;
use super::membership::{conversation_audience, member_conversation, members_among};
use super::paging::{Page, Pager, page_offset, page_size};
use crate::delivery::Delivery;
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::model::{
    Actor, ContactableBy, Conversation, ConversationId, ConversationKind, ConversationNotifications, ConversationView,
    LISTED_MEMBERS_MAX, MemberLeft, MemberView, Role, Roles, Roster, User, UserId, now_iso,
};
use crate::ports::{
    ConnectionStore, ConversationChanges, ConversationStore, Created, FriendStore, Membership, RoomStore, Store,
    UserStore,
};

/// Users one request may add; a bigger group is built with several requests.
pub const MAX_ADDED_PER_REQUEST: usize = 100;
const CONVERSATION_PAGE: (u64, u64) = (20, 50);
const MEMBER_PAGE: (u64, u64) = (50, 100);
const MAX_GROUP_NAME_CHARS: usize = 100;
/// Group writes are conditional. When one finds the state changed since it was read, the use case reads again
/// and re-applies its rules, at most this many times: a race ends in the answer the newer state deserves (404,
/// 403, 422), never in a bypassed rule.
const WRITE_ATTEMPTS: u32 = 4;

/// Before attempt `attempt` (from 0) of a conditional group write: a jittered pause after a lost race, so that
/// writers racing on one popular group spread out instead of colliding again (and answering `rate_limited`).
async fn after_race(attempt: u32) {
    if attempt > 0 {
        crate::retry::pause(attempt).await;
    }
}

/// `POST /conversations` body.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CreateConversation {
    #[serde(rename_all = "camelCase")]
    Private { participant_id: UserId },
    #[serde(rename_all = "camelCase")]
    Group { participant_ids: Vec<UserId>, name: String },
}

/// A conversation as one user sees it in their list: the shared view plus their own unread counts and
/// notification setting.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    #[serde(flatten)]
    pub conversation: ConversationView,
    /// Messages after the user's read pointer: `lastSeq - lastReadSeq`, never negative.
    pub unread_count: u64,
    /// Of those, the messages that mention the user.
    pub unread_mention_count: u64,
    /// The user's setting in force now (a quieter level whose `until` passed shows as `all`).
    pub notifications: ConversationNotifications,
}

impl ConversationSummary {
    fn new(conversation: ConversationView, membership: &Membership) -> Self {
        ConversationSummary {
            unread_count: conversation.last_seq.saturating_sub(membership.last_read_seq),
            unread_mention_count: membership.unread_mentions(),
            notifications: membership.notifications.effective(&now_iso()),
            conversation,
        }
    }
}

/// `GET /conversations` query: either a `cursor` or a 1-based `page`.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub page: Option<u64>,
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
    pub user_ids: Vec<UserId>,
}

/// `GET /conversations/:id/members` query.
#[derive(Clone, Debug, Default)]
pub struct MembersQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// Where a page of the conversation list continues.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConversationPosition {
    updated_at: String,
    id: ConversationId,
}

pub struct Conversations {
    conversations: Arc<dyn ConversationStore>,
    users: Arc<dyn UserStore>,
    rooms: Arc<dyn RoomStore>,
    connections: Arc<dyn ConnectionStore>,
    friends: Arc<dyn FriendStore>,
    delivery: Delivery,
    max_members: usize,
}

impl Conversations {
    pub fn new(store: &Arc<dyn Store>, delivery: Delivery, max_members: usize) -> Self {
        Conversations {
            conversations: store.clone(),
            users: store.clone(),
            rooms: store.clone(),
            connections: store.clone(),
            friends: store.clone(),
            delivery,
            max_members,
        }
    }

    /// Refuses users who would not have the actor start a conversation with them or add them to a group: those who
    /// blocked the actor, and those whose privacy setting leaves the actor out (`nobody`, or `friends` and not a
    /// friend). One `BatchGetItem` of their presences, which carry both, and one of friendships if some of them
    /// accept friends only. The refusal does not say which rule applied.
    async fn refuse_unwilling(&self, actor: &Actor, user_ids: &[UserId], refusal: &'static str) -> AppResult<()> {
        let presences = self.connections.presences(user_ids).await?;
        let mut friends_only = Vec::new();
        for (user_id, presence) in &presences {
            match presence.contactable_by {
                _ if presence.blocks(actor.id()) => return Err(AppError::Forbidden(refusal)),
                ContactableBy::Nobody => return Err(AppError::Forbidden(refusal)),
                ContactableBy::Friends => friends_only.push(user_id.clone()),
                ContactableBy::Everyone => {}
            }
        }
        if !friends_only.is_empty()
            && self.friends.friends_among(actor.id(), &friends_only).await?.len() != friends_only.len()
        {
            return Err(AppError::Forbidden(refusal));
        }
        Ok(())
    }

    /// Everyone who hears about `conversation`'s events.
    async fn members_to_tell(&self, conversation: &Conversation) -> AppResult<Vec<UserId>> {
        conversation_audience(self.conversations.as_ref(), &conversation.roster, &conversation.id).await
    }

    /// Creates a conversation and tells its members. Private conversations are unique per pair: asking again
    /// returns the existing one (and notifies nobody). A group starts with at most [`LISTED_MEMBERS_MAX`]
    /// members (one atomic write); more are added with [`Conversations::add_members`].
    pub async fn create(&self, actor: &Actor, input: CreateConversation) -> AppResult<Created<ConversationView>> {
        let (kind, others, name) = match input {
            CreateConversation::Private { participant_id } => (ConversationKind::Private, vec![participant_id], None),
            CreateConversation::Group { participant_ids, name } => {
                (ConversationKind::Group, participant_ids, Some(validate_group_name(&name)?))
            }
        };
        let mut member_ids: BTreeSet<UserId> = others.into_iter().collect();
        member_ids.remove(actor.id());
        if member_ids.is_empty() {
            return Err(AppError::Validation("a conversation needs at least one other participant".into()));
        }
        if kind == ConversationKind::Private && member_ids.len() != 1 {
            return Err(AppError::Validation("a private conversation has exactly one other participant".into()));
        }
        let first_size = LISTED_MEMBERS_MAX.min(self.max_members);
        if member_ids.len() + 1 > first_size {
            return Err(AppError::Validation(format!(
                "a group starts with at most {first_size} members; add more with POST /conversations/{{id}}/members"
            )));
        }
        let wanted: Vec<UserId> = member_ids.iter().cloned().collect();
        if self.users.get_users(&wanted).await?.len() != wanted.len() {
            return Err(AppError::NotFound("participant not found"));
        }
        // (A block is also checked by the store in the transaction that creates a private pair, which a block
        // made meanwhile cannot slip past.)
        match kind {
            ConversationKind::Group => {
                self.refuse_unwilling(actor, &wanted, "some of these users do not accept being added by you").await?;
            }
            ConversationKind::Private => {
                let refused =
                    self.refuse_unwilling(actor, &wanted, "this user does not accept new conversations from you");
                if let Err(refusal) = refused.await {
                    // What the two already share stays theirs to open (and read): only a new one is refused.
                    return match self.conversations.find_private(actor.id(), &wanted[0]).await? {
                        Some(existing) => Ok(Created::Existing(self.view(existing).await?)),
                        None => Err(refusal),
                    };
                }
            }
        }
        member_ids.insert(actor.id().clone());
        let now = now_iso();
        let conversation = Conversation {
            id: ConversationId::random(),
            kind,
            name,
            avatar: None,
            roster: Roster::Listed(member_ids),
            roster_version: 1,
            created_by: actor.id().clone(),
            roles: Roles::owned_by(actor.id().clone()),
            created_at: now.clone(),
            updated_at: now,
            last_seq: 0,
            last_message: None,
            blocked: false,
            member_deleted: false,
        };
        match self.conversations.create_conversation(&conversation).await? {
            Created::New(created) => {
                let recipients = self.members_to_tell(&created).await?;
                let view = self.view(created).await?;
                let event = Event::ConversationCreated { conversation: view.clone() };
                self.delivery.event(&recipients, event.frame(), None).await;
                Ok(Created::New(view))
            }
            Created::Existing(existing) => Ok(Created::Existing(self.view(existing).await?)),
        }
    }

    /// The caller's conversations, newest activity first. Large groups cost no more to list than small ones:
    /// their members are not read.
    pub async fn list(&self, actor: &Actor, query: ListQuery, pager: &Pager) -> AppResult<Page<ConversationSummary>> {
        let limit = page_size(query.limit, CONVERSATION_PAGE)?;
        if query.cursor.is_some() && query.page.is_some() {
            return Err(AppError::Validation("use either cursor or page, not both".into()));
        }
        let skip = page_offset(query.page, limit)?;
        let scope = format!("conversations:{}", actor.id());
        let after: Option<ConversationPosition> =
            query.cursor.as_deref().map(|c| pager.position(&scope, c)).transpose()?;

        let memberships = self.conversations.memberships(actor.id()).await?;
        let ids: Vec<ConversationId> = memberships.iter().map(|m| m.conversation_id.clone()).collect();
        let mut conversations: Vec<Conversation> = self.conversations.get_conversations(&ids).await?;
        // Activity order is computed here rather than kept in an index: see docs/data-model.md, pattern #17.
        conversations.sort_by(|a, b| (&b.updated_at, &b.id).cmp(&(&a.updated_at, &a.id)));
        let mut page: Vec<Conversation> = conversations
            .into_iter()
            .filter(|c| after.as_ref().is_none_or(|p| (&c.updated_at, &c.id) < (&p.updated_at, &p.id)))
            .skip(skip)
            .take(limit + 1)
            .collect();
        let next_cursor = pager.next_cursor(&scope, &mut page, limit, |c| ConversationPosition {
            updated_at: c.updated_at.clone(),
            id: c.id.clone(),
        });
        let memberships: HashMap<ConversationId, Membership> =
            memberships.into_iter().map(|m| (m.conversation_id.clone(), m)).collect();
        let items = self
            .views(page)
            .await?
            .into_iter()
            .map(|view| {
                let membership =
                    memberships.get(&view.id).cloned().unwrap_or_else(|| Membership::new(view.id.clone(), 0));
                ConversationSummary::new(view, &membership)
            })
            .collect();
        Ok(Page { items, next_cursor })
    }

    /// One conversation of the caller, with their unread count.
    pub async fn summary(&self, actor: &Actor, conversation_id: &ConversationId) -> AppResult<ConversationSummary> {
        let (conversation, membership) =
            member_conversation(self.conversations.as_ref(), conversation_id, actor.id()).await?;
        Ok(ConversationSummary::new(self.view(conversation).await?, &membership))
    }

    /// A page of a conversation's members, in id order (the order their items are stored in).
    pub async fn members(
        &self,
        actor: &Actor,
        conversation_id: &ConversationId,
        query: MembersQuery,
        pager: &Pager,
    ) -> AppResult<Page<MemberView>> {
        let limit = page_size(query.limit, MEMBER_PAGE)?;
        let (conversation, _) = member_conversation(self.conversations.as_ref(), conversation_id, actor.id()).await?;
        let scope = format!("members:{conversation_id}:{}", actor.id());
        let after: Option<UserId> = query.cursor.as_deref().map(|c| pager.position(&scope, c)).transpose()?;
        let mut ids: Vec<UserId> = match &conversation.roster {
            Roster::Listed(members) => {
                members.iter().filter(|id| after.as_ref().is_none_or(|a| *id > a)).take(limit + 1).cloned().collect()
            }
            Roster::Large { .. } => {
                self.conversations.large_members(conversation_id, after.as_ref(), limit + 1).await?
            }
        };
        let next_cursor = pager.next_cursor(&scope, &mut ids, limit, Clone::clone);
        let mut profiles = self.users.get_users(&ids).await?;
        profiles.sort_by(|a, b| a.id.cmp(&b.id));
        let group = conversation.kind == ConversationKind::Group;
        let items = profiles
            .into_iter()
            .map(|user| MemberView { role: group.then(|| conversation.roles.of(&user.id)), user })
            .collect();
        Ok(Page { items, next_cursor })
    }

    /// Renames a group or changes its avatar; every member gets `conversation_updated`.
    pub async fn update_group(
        &self,
        actor: &Actor,
        conversation_id: &ConversationId,
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
            for attempt in 0..WRITE_ATTEMPTS {
                after_race(attempt).await;
                let (conversation, _) =
                    member_conversation(self.conversations.as_ref(), conversation_id, actor.id()).await?;
                require_group(&conversation)?;
                require_manager(
                    &conversation,
                    actor,
                    "only the group's owner and admins may rename it or change its avatar",
                )?;
                if let Some(updated) =
                    self.conversations.update_conversation(&conversation, &changes, &now_iso()).await?
                {
                    break 'write updated;
                }
            }
            return Err(AppError::BUSY);
        };
        let recipients = self.members_to_tell(&updated).await?;
        let view = self.view(updated).await?;
        let event = Event::ConversationUpdated { conversation: view.clone() };
        self.delivery.event(&recipients, event.frame(), None).await;
        Ok(view)
    }

    /// Adds users to a group, as many atomic writes as the store needs. Users already in it are skipped; every
    /// member, old and new, gets one `member_joined` listing the users this request added.
    pub async fn add_members(
        &self,
        actor: &Actor,
        conversation_id: &ConversationId,
        input: AddMembers,
    ) -> AppResult<ConversationView> {
        let wanted: BTreeSet<UserId> = input.user_ids.into_iter().collect();
        if wanted.is_empty() || wanted.len() > MAX_ADDED_PER_REQUEST {
            return Err(AppError::Validation(format!("userIds must list 1-{MAX_ADDED_PER_REQUEST} users")));
        }
        // Membership first, so a non-member learns nothing about the users either.
        let (mut conversation, _) =
            member_conversation(self.conversations.as_ref(), conversation_id, actor.id()).await?;
        require_group(&conversation)?;
        require_manager(&conversation, actor, ADD_REFUSED)?;
        let profiles = self.users.get_users(&wanted.iter().cloned().collect::<Vec<_>>()).await?;
        if profiles.len() != wanted.len() {
            return Err(AppError::NotFound("user not found"));
        }
        let ids: Vec<UserId> = profiles.iter().map(|p| p.id.clone()).collect();
        self.refuse_unwilling(actor, &ids, "some of these users do not accept being added by you").await?;
        let mut added: BTreeSet<UserId> = BTreeSet::new();
        let mut races = 0;
        let outcome = loop {
            let remaining: BTreeSet<UserId> = wanted.difference(&added).cloned().collect();
            let already = members_among(self.conversations.as_ref(), &conversation, &remaining).await?;
            let pending: Vec<UserId> = remaining.difference(&already).cloned().collect();
            if pending.is_empty() {
                break Ok(());
            }
            if conversation.roster.count() as usize + pending.len() > self.max_members {
                break Err(AppError::Validation(format!("a group has at most {} members", self.max_members)));
            }
            match self.conversations.add_members(&conversation, &pending, &now_iso()).await? {
                Some((updated, taken)) => {
                    added.extend(pending.into_iter().take(taken));
                    conversation = updated;
                }
                None if races + 1 < WRITE_ATTEMPTS => {
                    races += 1;
                    after_race(races).await;
                    conversation =
                        member_conversation(self.conversations.as_ref(), conversation_id, actor.id()).await?.0;
                    require_group(&conversation)?;
                    require_manager(&conversation, actor, ADD_REFUSED)?;
                }
                None => break Err(AppError::BUSY),
            }
        };
        // Whoever was added is announced, even if a later page failed.
        if !added.is_empty() {
            let mut joined: Vec<User> = profiles.into_iter().filter(|p| added.contains(&p.id)).collect();
            joined.sort_by(|a, b| a.username.cmp(&b.username));
            let event = Event::MemberJoined {
                conversation_id: conversation.id.clone(),
                members: joined,
                added_by: actor.id().clone(),
            };
            let recipients = self.members_to_tell(&conversation).await?;
            self.delivery.event(&recipients, event.frame(), None).await;
        }
        outcome?;
        self.view(conversation).await
    }

    /// Leaves a group (`user_id` = the caller) or removes someone else: the owner may remove anyone, an admin
    /// members only. The remaining members and the removed user get `member_left`, the removed user's open rooms
    /// close at once, and when the owner leaves the next owner is chosen in the same write and announced with
    /// `member_role_changed`.
    pub async fn remove_member(
        &self,
        actor: &Actor,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> AppResult<MemberLeft> {
        let (remaining, next_owner) = 'write: {
            for attempt in 0..WRITE_ATTEMPTS {
                after_race(attempt).await;
                let (conversation, _) =
                    member_conversation(self.conversations.as_ref(), conversation_id, actor.id()).await?;
                require_group(&conversation)?;
                self.require_member(&conversation, user_id).await?;
                if user_id != actor.id() {
                    roles::require_may_remove(&conversation.roles, actor.id(), user_id)?;
                }
                let (roles, next_owner) = self.roles_without(&conversation, user_id).await?;
                if let Some(remaining) =
                    self.conversations.remove_member(&conversation, user_id, &roles, &now_iso()).await?
                {
                    break 'write (remaining, next_owner);
                }
            }
            return Err(AppError::BUSY);
        };
        self.rooms.forget_member(conversation_id, user_id).await?;
        let left = MemberLeft {
            conversation_id: conversation_id.clone(),
            user_id: user_id.clone(),
            removed_by: actor.id().clone(),
        };
        let members = self.members_to_tell(&remaining).await?;
        let mut recipients = members.clone();
        recipients.push(user_id.clone());
        self.delivery.event(&recipients, Event::MemberLeft(left.clone()).frame(), None).await;
        if let Some(owner) = next_owner {
            self.announce_role(&remaining, &members, owner, Role::Owner, user_id).await;
        }
        Ok(left)
    }

    /// Every conversation of the user as the conversation list shows it, in no particular order (an export).
    pub(crate) async fn every_view(&self, user_id: &UserId) -> AppResult<Vec<ConversationView>> {
        let ids: Vec<ConversationId> =
            self.conversations.memberships(user_id).await?.into_iter().map(|m| m.conversation_id).collect();
        self.views(self.conversations.get_conversations(&ids).await?).await
    }

    async fn view(&self, conversation: Conversation) -> AppResult<ConversationView> {
        Ok(self.views(vec![conversation]).await?.remove(0))
    }

    /// Views of `conversations` with the profiles of listed members read in one batch.
    async fn views(&self, conversations: Vec<Conversation>) -> AppResult<Vec<ConversationView>> {
        let ids: Vec<UserId> = conversations
            .iter()
            .filter_map(|c| c.roster.listed())
            .flatten()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let profiles: HashMap<UserId, User> =
            self.users.get_users(&ids).await?.into_iter().map(|u| (u.id.clone(), u)).collect();
        Ok(conversations.into_iter().map(|c| ConversationView::new(c, &profiles)).collect())
    }
}

/// Why a member who is neither owner nor admin cannot add members.
const ADD_REFUSED: &str = "only the group's owner and admins may add members";

fn require_manager(conversation: &Conversation, actor: &Actor, refusal: &'static str) -> AppResult<()> {
    if conversation.roles.manages(actor.id()) { Ok(()) } else { Err(AppError::Forbidden(refusal)) }
}

fn require_group(conversation: &Conversation) -> AppResult<()> {
    match conversation.kind {
        ConversationKind::Group => Ok(()),
        ConversationKind::Private => Err(AppError::Validation("only group conversations have this operation".into())),
    }
}

fn validate_group_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_GROUP_NAME_CHARS {
        return Err(AppError::Validation(format!("group name must have 1-{MAX_GROUP_NAME_CHARS} characters")));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unread_counts_never_go_negative_and_count_only_unread_mentions() {
        let view = |last_seq| ConversationView {
            id: ConversationId::parse("c").unwrap(),
            kind: ConversationKind::Group,
            name: None,
            avatar: None,
            members: Some(vec![]),
            member_count: 2,
            large: false,
            last_message: None,
            last_seq,
            created_by: UserId::parse("u").unwrap(),
            owner_id: None,
            admins: None,
            created_at: now_iso(),
            updated_at: now_iso(),
        };
        let read_up_to = |seq| Membership::new(ConversationId::parse("c").unwrap(), seq);
        assert_eq!(ConversationSummary::new(view(7), &read_up_to(3)).unread_count, 4);
        assert_eq!(ConversationSummary::new(view(3), &read_up_to(7)).unread_count, 0);
        let mentioned = Membership { mention_seqs: vec![2, 3, 5], ..read_up_to(3) };
        assert_eq!(ConversationSummary::new(view(7), &mentioned).unread_mention_count, 1);
        let json = serde_json::to_value(ConversationSummary::new(view(2), &read_up_to(0))).unwrap();
        assert_eq!((&json["unreadCount"], &json["unreadMentionCount"]), (&json!(2), &json!(0)));
        assert_eq!(json["notifications"], json!({"level": "all", "until": null}));
        assert_eq!(json["_id"], "c", "the view's fields are flattened into the summary");
    }
}

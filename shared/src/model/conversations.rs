//! Conversations: private pairs and groups, their rosters (listed or large), and the view clients get.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::{ConversationId, Message, User, UserId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationKind {
    Private,
    Group,
}

/// Conversations of up to this many members carry their member list on the conversation record, so every
/// operation gets the recipients with the read it makes anyway. Larger groups keep their members only as
/// items, read page by page, and follow the large-room rules (docs/protocol.md, "Large groups").
pub const LISTED_MEMBERS_MAX: usize = 50;
/// Members a group may have unless the deployment says otherwise (`MaxGroupMembers` in the template).
pub const DEFAULT_MAX_GROUP_MEMBERS: usize = 10_000;

/// Admins a group may have besides its owner: the roles ride on the conversation record, which every operation
/// reads anyway, so checking a role costs no request, and this keeps the record small.
pub const MAX_ADMINS: usize = 50;

/// What a member may do in a group. Owner and admins manage members, name and avatar; the owner alone changes
/// roles and hands the group over. Private conversations have no roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

/// A group's owner and admins; everyone else is a member. Groups stored before roles existed read as owned by
/// their creator, with no admins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roles {
    pub owner: UserId,
    pub admins: BTreeSet<UserId>,
}

impl Roles {
    pub fn owned_by(owner: UserId) -> Roles {
        Roles { owner, admins: BTreeSet::new() }
    }

    pub fn of(&self, user_id: &UserId) -> Role {
        if *user_id == self.owner {
            Role::Owner
        } else if self.admins.contains(user_id) {
            Role::Admin
        } else {
            Role::Member
        }
    }

    /// Owner and admins add and remove members, rename the group and change its avatar.
    pub fn manages(&self, user_id: &UserId) -> bool {
        self.of(user_id) != Role::Member
    }
}

/// Who is in a conversation, as far as the conversation record knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roster {
    /// Every member: conversations of up to [`LISTED_MEMBERS_MAX`].
    Listed(BTreeSet<UserId>),
    /// Only how many: a large group.
    Large { count: u64 },
}

impl Roster {
    /// The roster a conversation with exactly `members` has.
    pub fn of(members: BTreeSet<UserId>) -> Roster {
        if members.len() <= LISTED_MEMBERS_MAX { Roster::Listed(members) } else { Roster::large(members.len()) }
    }

    pub fn large(count: usize) -> Roster {
        Roster::Large { count: count as u64 }
    }

    pub fn count(&self) -> u64 {
        match self {
            Roster::Listed(members) => members.len() as u64,
            Roster::Large { count } => *count,
        }
    }

    pub fn listed(&self) -> Option<&BTreeSet<UserId>> {
        match self {
            Roster::Listed(members) => Some(members),
            Roster::Large { .. } => None,
        }
    }

    pub fn is_large(&self) -> bool {
        matches!(self, Roster::Large { .. })
    }
}

/// A conversation as stored. Membership of a large group is not visible here: ask the store
/// (`ConversationStore::member_conversation`).
#[derive(Clone, Debug, PartialEq)]
pub struct Conversation {
    pub id: ConversationId,
    pub kind: ConversationKind,
    pub name: Option<String>,
    pub avatar: Option<String>,
    pub roster: Roster,
    /// Moves with every change of the members: membership writes are conditional on it, so two changes that
    /// read the same roster cannot both apply.
    pub roster_version: u64,
    pub created_by: UserId,
    /// A group's owner and admins (a private conversation's are unused: its creator, nobody).
    pub roles: Roles,
    pub created_at: String,
    pub updated_at: String,
    /// Sequence number of the newest message; 0 before the first.
    pub last_seq: u64,
    pub last_message: Option<Message>,
    /// A private conversation one of whose two members blocked the other: it stays readable, nobody writes to it.
    pub blocked: bool,
    /// A private conversation whose other member deleted their account: it stays readable, nobody writes to it.
    pub member_deleted: bool,
}

impl Conversation {
    /// Refuses a write (message, reaction, typing) into a private conversation closed by a block or by the other
    /// member's account deletion.
    pub fn refuse_if_closed(&self) -> crate::error::AppResult<()> {
        use crate::error::AppError::Forbidden;
        if self.member_deleted {
            return Err(Forbidden("the other account was deleted: this conversation is closed"));
        }
        if self.blocked {
            return Err(Forbidden("one of you blocked the other: this conversation is closed"));
        }
        Ok(())
    }

    /// The key that makes a private conversation unique per pair of users, whoever creates it first.
    pub fn private_pair_key(&self) -> Option<String> {
        let members = self.roster.listed().filter(|_| self.kind == ConversationKind::Private)?;
        Some(members.iter().map(UserId::as_str).collect::<Vec<_>>().join("#"))
    }

    /// The pair key of `a` and `b`'s private conversation (see [`Conversation::private_pair_key`]).
    pub fn pair_key_of(a: &UserId, b: &UserId) -> String {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        format!("{first}#{second}")
    }
}

/// A conversation as clients see it: members as profiles (up to [`LISTED_MEMBERS_MAX`]; a large group's are
/// paged with `GET /conversations/:id/members`), newest message.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConversationView {
    #[serde(rename = "_id")]
    pub id: ConversationId,
    #[serde(rename = "type")]
    pub kind: ConversationKind,
    pub name: Option<String>,
    pub avatar: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<User>>,
    pub member_count: u64,
    /// Set on groups of more than [`LISTED_MEMBERS_MAX`]: the large-room rules apply.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub large: bool,
    pub last_message: Option<Message>,
    pub last_seq: u64,
    pub created_by: UserId,
    /// A group's owner (see [`Role`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<UserId>,
    /// A group's admins, in id order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admins: Option<Vec<UserId>>,
    pub created_at: String,
    pub updated_at: String,
}

impl ConversationView {
    /// `conversation` with the profiles of its members (those found among `profiles`), sorted by username.
    pub fn new(conversation: Conversation, profiles: &HashMap<UserId, User>) -> Self {
        let members = conversation.roster.listed().map(|ids| {
            let mut members: Vec<User> = ids.iter().filter_map(|id| profiles.get(id).cloned()).collect();
            members.sort_by(|a, b| a.username.cmp(&b.username));
            members
        });
        let group = conversation.kind == ConversationKind::Group;
        ConversationView {
            owner_id: group.then(|| conversation.roles.owner.clone()),
            admins: group.then(|| conversation.roles.admins.iter().cloned().collect()),
            id: conversation.id,
            kind: conversation.kind,
            name: conversation.name,
            avatar: conversation.avatar,
            members,
            member_count: conversation.roster.count(),
            large: conversation.roster.is_large(),
            last_message: conversation.last_message,
            last_seq: conversation.last_seq,
            created_by: conversation.created_by,
            created_at: conversation.created_at,
            updated_at: conversation.updated_at,
        }
    }
}

/// A group member as the member list shows them: their profile and their role.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    #[serde(flatten)]
    pub user: User,
    /// Set in groups only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// Someone left a group or was removed from it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MemberLeft {
    pub conversation_id: ConversationId,
    pub user_id: UserId,
    pub removed_by: UserId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{now_iso, test_user as user};

    #[test]
    fn pair_key_is_order_independent() {
        let mk = |a: &str, b: &str| Conversation {
            id: ConversationId::parse("c").unwrap(),
            kind: ConversationKind::Private,
            name: None,
            avatar: None,
            roster: Roster::Listed([user(a), user(b)].into_iter().collect()),
            roster_version: 1,
            created_by: user(a),
            roles: Roles::owned_by(user(a)),
            created_at: now_iso(),
            updated_at: now_iso(),
            last_seq: 0,
            last_message: None,
            blocked: false,
            member_deleted: false,
        };
        assert_eq!(mk("u1", "u2").private_pair_key(), mk("u2", "u1").private_pair_key());
        assert_eq!(mk("u2", "u1").private_pair_key().unwrap(), Conversation::pair_key_of(&user("u2"), &user("u1")));
        let mut group = mk("u1", "u2");
        group.kind = ConversationKind::Group;
        assert_eq!(Roster::of((0..51).map(|i| user(&format!("u{i}"))).collect()), Roster::Large { count: 51 });
        assert!(Roster::of((0..50).map(|i| user(&format!("u{i}"))).collect()).listed().is_some());
        assert_eq!(group.private_pair_key(), None);
    }
}

//! Group roles: the owner and admins manage the group, the owner alone changes roles and hands it over, and a
//! group whose owner leaves passes to its longest-standing admin (else member) in the same write, so it never
//! stays without one. The roles ride on the conversation record, so every check costs no request; only
//! choosing a successor reads (the candidates' memberships).

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{Conversations, WRITE_ATTEMPTS, after_race, members_among, require_group};
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::model::{
    Actor, Conversation, ConversationId, ConversationView, MAX_ADMINS, Role, Roles, Roster, UserId, now_iso,
};
use crate::usecases::membership::member_conversation;

/// A role the owner can give: ownership itself changes hands with [`TransferOwnership`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssignableRole {
    Admin,
    Member,
}

/// `PUT /conversations/:id/members/:userId/role` body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    pub role: AssignableRole,
}

/// `PUT /conversations/:id/owner` body.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferOwnership {
    pub user_id: UserId,
}

/// The owner removes anyone; an admin removes members, not other admins or the owner.
pub(super) fn require_may_remove(roles: &Roles, actor: &UserId, target: &UserId) -> AppResult<()> {
    match (roles.of(actor), roles.of(target)) {
        (Role::Owner, _) | (Role::Admin, Role::Member) => Ok(()),
        (Role::Admin, _) => Err(AppError::Forbidden("admins may remove members, not other admins or the owner")),
        (Role::Member, _) => Err(AppError::Forbidden("only the group's owner and admins may remove members")),
    }
}

fn require_owner(conversation: &Conversation, actor: &Actor) -> AppResult<()> {
    if conversation.roles.of(actor.id()) == Role::Owner {
        Ok(())
    } else {
        Err(AppError::Forbidden("only the group's owner may change roles"))
    }
}

impl Conversations {
    /// Makes a member an admin or a member again (owner only). Giving someone the role they have changes
    /// nothing and tells nobody; a change tells every member with `member_role_changed`.
    pub async fn set_role(
        &self,
        actor: &Actor,
        conversation_id: &ConversationId,
        user_id: &UserId,
        input: SetRole,
    ) -> AppResult<ConversationView> {
        let role = match input.role {
            AssignableRole::Admin => Role::Admin,
            AssignableRole::Member => Role::Member,
        };
        let updated = 'write: {
            for attempt in 0..WRITE_ATTEMPTS {
                after_race(attempt).await;
                let conversation = self.owned_group(actor, conversation_id).await?;
                if user_id == actor.id() {
                    return Err(AppError::Validation(
                        "the owner's role changes by handing the group over: PUT /conversations/{id}/owner".into(),
                    ));
                }
                self.require_member(&conversation, user_id).await?;
                let mut roles = conversation.roles.clone();
                let changed = match role {
                    Role::Admin => roles.admins.insert(user_id.clone()),
                    _ => roles.admins.remove(user_id),
                };
                if !changed {
                    return self.view(conversation).await;
                }
                if roles.admins.len() > MAX_ADMINS {
                    return Err(AppError::Validation(format!("a group has at most {MAX_ADMINS} admins")));
                }
                if let Some(updated) = self.conversations.set_roles(&conversation, &roles, &now_iso()).await? {
                    break 'write updated;
                }
            }
            return Err(AppError::BUSY);
        };
        let members = self.members_to_tell(&updated).await?;
        self.announce_role(&updated, &members, user_id.clone(), role, actor.id()).await;
        self.view(updated).await
    }

    /// Hands the group to another member (owner only). The former owner stays on as an admin (as a member if the
    /// group already has [`MAX_ADMINS`]); both changes are announced.
    pub async fn transfer_ownership(
        &self,
        actor: &Actor,
        conversation_id: &ConversationId,
        input: TransferOwnership,
    ) -> AppResult<ConversationView> {
        let new_owner = input.user_id;
        let (updated, former_role) = 'write: {
            for attempt in 0..WRITE_ATTEMPTS {
                after_race(attempt).await;
                let conversation = self.owned_group(actor, conversation_id).await?;
                if new_owner == *actor.id() {
                    return Err(AppError::Validation("you already own this group".into()));
                }
                self.require_member(&conversation, &new_owner).await?;
                let mut roles = conversation.roles.clone();
                roles.admins.remove(&new_owner);
                roles.owner = new_owner.clone();
                let former_role = if roles.admins.len() < MAX_ADMINS {
                    roles.admins.insert(actor.id().clone());
                    Role::Admin
                } else {
                    Role::Member
                };
                if let Some(updated) = self.conversations.set_roles(&conversation, &roles, &now_iso()).await? {
                    break 'write (updated, former_role);
                }
            }
            return Err(AppError::BUSY);
        };
        let members = self.members_to_tell(&updated).await?;
        self.announce_role(&updated, &members, new_owner, Role::Owner, actor.id()).await;
        self.announce_role(&updated, &members, actor.id().clone(), former_role, actor.id()).await;
        self.view(updated).await
    }

    /// The roles once `leaving` is gone, and the new owner if they owned the group: the admin who joined first,
    /// else the member who did. The last member leaving leaves the roles as they were (nobody is left to own it).
    pub(super) async fn roles_without(
        &self,
        conversation: &Conversation,
        leaving: &UserId,
    ) -> AppResult<(Roles, Option<UserId>)> {
        let mut roles = conversation.roles.clone();
        roles.admins.remove(leaving);
        if roles.owner != *leaving {
            return Ok((roles, None));
        }
        let admins: Vec<UserId> = roles.admins.iter().cloned().collect();
        let mut successor = self.conversations.longest_standing(&conversation.id, &admins).await?;
        if successor.is_none() {
            // Rare (an owner leaving a group without admins), so reading a large group's members here is fine.
            let members: Vec<UserId> = match &conversation.roster {
                Roster::Listed(members) => members.iter().cloned().collect(),
                Roster::Large { .. } => self.conversations.large_members(&conversation.id, None, usize::MAX).await?,
            };
            let others: Vec<UserId> = members.into_iter().filter(|member| member != leaving).collect();
            successor = self.conversations.longest_standing(&conversation.id, &others).await?;
        }
        if let Some(next) = &successor {
            roles.admins.remove(next);
            roles.owner = next.clone();
        }
        Ok((roles, successor))
    }

    /// Tells `members` that `user_id` now has `role`.
    pub(super) async fn announce_role(
        &self,
        conversation: &Conversation,
        members: &[UserId],
        user_id: UserId,
        role: Role,
        changed_by: &UserId,
    ) {
        let event = Event::MemberRoleChanged {
            conversation_id: conversation.id.clone(),
            user_id,
            role,
            changed_by: changed_by.clone(),
        };
        self.delivery.event(members, event.frame(), None).await;
    }

    /// The group, read for a change only its owner may make.
    async fn owned_group(&self, actor: &Actor, conversation_id: &ConversationId) -> AppResult<Conversation> {
        let (conversation, _) = member_conversation(self.conversations.as_ref(), conversation_id, actor.id()).await?;
        require_group(&conversation)?;
        require_owner(&conversation, actor)?;
        Ok(conversation)
    }

    pub(super) async fn require_member(&self, conversation: &Conversation, user_id: &UserId) -> AppResult<()> {
        let target = BTreeSet::from([user_id.clone()]);
        if members_among(self.conversations.as_ref(), conversation, &target).await?.is_empty() {
            return Err(AppError::NotFound("member not found"));
        }
        Ok(())
    }
}

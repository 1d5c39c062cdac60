//! Blocking, and the privacy setting of who may start a conversation with a user or add them to a group.
//!
//! Blocking: a user stops another from reaching them. The blocked user cannot open a private conversation with,
//! befriend, write into a private conversation with, or add to a group the blocker; in shared groups the blocker's
//! connections get none of their messages, reactions or typing, and neither sees the other's presence.
//!
//! The rules cost nothing per message: a block is copied onto the blocker's presence item, which every delivery
//! reads anyway to find the recipients' connections ([`crate::delivery`] skips a recipient who blocked the
//! author), and it closes the pair's private conversation on its `META` item, which every send reads anyway.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::delivery::Delivery;
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::model::{Actor, ContactableBy, User, UserId, now_iso};
use crate::ports::{ConnectionStore, FriendStore, Relation, Store, UserStore};

/// `GET`/`PUT /users/me/privacy`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Privacy {
    /// Who may start a private conversation with the user or add them to a group (`everyone` by default). Those
    /// who already share a conversation with them keep it.
    pub contactable_by: ContactableBy,
}

/// `{userId}`: the block actions.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRef {
    pub user_id: UserId,
}

/// What a block action did, for the actor's ack.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockOutcome {
    pub user: User,
    /// `blocked`, `unblocked`, or `unchanged` when it already was so (both actions are idempotent).
    pub result: &'static str,
}

/// A blocked user and since when.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockedUser {
    pub user: User,
    pub blocked_at: String,
}

pub struct Blocks {
    friends: Arc<dyn FriendStore>,
    users: Arc<dyn UserStore>,
    connections: Arc<dyn ConnectionStore>,
    delivery: Delivery,
}

impl Blocks {
    pub fn new(store: &Arc<dyn Store>, delivery: Delivery) -> Self {
        Blocks { friends: store.clone(), users: store.clone(), connections: store.clone(), delivery }
    }

    pub async fn privacy(&self, actor: &Actor) -> AppResult<Privacy> {
        Ok(Privacy { contactable_by: self.connections.presence(actor.id()).await?.contactable_by })
    }

    /// Stored on the user's presence record, which the checks read with the block list.
    pub async fn set_privacy(&self, actor: &Actor, input: Privacy) -> AppResult<Privacy> {
        self.connections.set_contactable_by(actor.id(), input.contactable_by).await?;
        Ok(input)
    }

    async fn other(&self, actor: &Actor, user_id: &UserId) -> AppResult<User> {
        if user_id == actor.id() {
            return Err(AppError::Validation("you cannot block yourself".into()));
        }
        self.users.get_user(user_id).await?.ok_or(AppError::NotFound("user not found"))
    }

    /// Blocks `input.user_id`. A friendship or pending request between them ends, and the other side hears it
    /// as an unfriend, a cancelled or a rejected request would be heard: never that they were blocked.
    pub async fn block(&self, actor: &Actor, input: UserRef) -> AppResult<BlockOutcome> {
        let other = self.other(actor, &input.user_id).await?;
        let before = self.friends.relation(actor.id(), &other.id).await?;
        if !self.friends.block(actor.id(), &other.id, &now_iso()).await? {
            return Ok(BlockOutcome { user: other, result: "unchanged" });
        }
        let mut to_actor = vec![Event::UserBlocked { user: other.summary() }.frame()];
        let to_other = match before {
            Relation::Friends => {
                to_actor.push(
                    Event::FriendshipDeleted { user_id: other.id.clone(), username: other.username.clone() }.frame(),
                );
                Some(Event::FriendshipDeleted { user_id: actor.id().clone(), username: actor.user.username.clone() })
            }
            Relation::RequestSent => Some(Event::FriendRequestCancelled { from: actor.user.clone() }),
            Relation::RequestReceived => Some(Event::FriendRequestRejected { by: actor.user.clone() }),
            Relation::None | Relation::Blocking | Relation::BlockedBy => None,
        };
        let tell_other = async {
            if let Some(event) = to_other {
                self.delivery.event(std::slice::from_ref(&other.id), event.frame(), None).await;
            }
        };
        tokio::join!(self.delivery.to_users(std::slice::from_ref(actor.id()), &to_actor, actor.origin()), tell_other);
        Ok(BlockOutcome { user: other, result: "blocked" })
    }

    pub async fn unblock(&self, actor: &Actor, input: UserRef) -> AppResult<BlockOutcome> {
        let other = self.other(actor, &input.user_id).await?;
        if !self.friends.unblock(actor.id(), &other.id).await? {
            return Ok(BlockOutcome { user: other, result: "unchanged" });
        }
        let event = Event::UserUnblocked { user: other.summary() };
        self.delivery.event(std::slice::from_ref(actor.id()), event.frame(), actor.origin()).await;
        Ok(BlockOutcome { user: other, result: "unblocked" })
    }

    /// The users the actor blocked, newest first.
    pub async fn list(&self, actor: &Actor) -> AppResult<Vec<BlockedUser>> {
        let mut blocked = self.friends.relations(actor.id()).await?.blocked;
        blocked.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        let ids: Vec<UserId> = blocked.iter().map(|b| b.user_id.clone()).collect();
        let users = self.users.get_users(&ids).await?;
        Ok(blocked
            .into_iter()
            .filter_map(|b| {
                let user = users.iter().find(|u| u.id == b.user_id)?.clone();
                Some(BlockedUser { user, blocked_at: b.created_at })
            })
            .collect())
    }
}

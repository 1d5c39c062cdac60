//! Friends: requests, friendships and the friend list with each friend's visible presence.
//!
//! Who hears about whom is always derived on the server from stored relations, never taken from the client.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::accounts::is_username;
use crate::delivery::Delivery;
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::model::{Actor, Sender, User, UserPresence, VisiblePresence, now_iso};
use crate::ports::{ConnectionStore, FriendStore, PendingRequest, Relation, Store, UserStore};

/// `{username}`: the friend actions.
#[derive(Clone, Debug, Deserialize)]
pub struct UsernameRef {
    pub username: String,
}

/// What a friend action did, for the actor's ack.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FriendOutcome {
    pub user: Sender,
    /// `requested`, `cancelled`, `accepted`, `rejected`, `unfriended`, or `accepted` when a request crossed one
    /// from the other user.
    pub result: &'static str,
}

/// A friend with their visible presence.
#[derive(Clone, Debug, Serialize)]
pub struct Friend {
    #[serde(flatten)]
    pub user: User,
    #[serde(flatten)]
    pub presence: VisiblePresence,
}

/// A pending request with the other user's profile.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FriendRequestView {
    pub user: User,
    pub created_at: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct FriendRequests {
    pub incoming: Vec<FriendRequestView>,
    pub outgoing: Vec<FriendRequestView>,
}

pub struct Friends {
    friends: Arc<dyn FriendStore>,
    users: Arc<dyn UserStore>,
    connections: Arc<dyn ConnectionStore>,
    delivery: Delivery,
}

impl Friends {
    pub fn new(store: &Arc<dyn Store>, delivery: Delivery) -> Self {
        Friends { friends: store.clone(), users: store.clone(), connections: store.clone(), delivery }
    }

    /// The other user of a friend action, who may not be the actor.
    async fn other(&self, actor: &Actor, username: &str) -> AppResult<User> {
        if !is_username(username) {
            return Err(AppError::NotFound("user not found"));
        }
        let other = self.users.find_by_username(username).await?.ok_or(AppError::NotFound("user not found"))?.user;
        if other.id == *actor.id() {
            return Err(AppError::Validation("you cannot be your own friend".into()));
        }
        Ok(other)
    }

    /// Sends a request, or accepts theirs if they had already asked.
    pub async fn send_request(&self, actor: &Actor, input: UsernameRef) -> AppResult<FriendOutcome> {
        let other = self.other(actor, &input.username).await?;
        match self.friends.relation(actor.id(), &other.id).await? {
            Relation::Friends => Err(AppError::Conflict("already friends")),
            Relation::RequestSent => Err(AppError::Conflict("friend request already sent")),
            Relation::RequestReceived => self.accept(actor, input).await,
            Relation::Blocking => Err(AppError::Forbidden("you blocked this user: unblock them first")),
            Relation::BlockedBy => Err(AppError::Forbidden("this user does not accept friend requests from you")),
            Relation::None => {
                let at = now_iso();
                self.friends.create_friend_request(actor.id(), &other.id, &at).await?;
                let event = Event::FriendRequestReceived { from: actor.user.clone(), created_at: at };
                self.delivery.event(std::slice::from_ref(&other.id), event.frame(), None).await;
                Ok(FriendOutcome { user: other.summary(), result: "requested" })
            }
        }
    }

    pub async fn cancel_request(&self, actor: &Actor, input: UsernameRef) -> AppResult<FriendOutcome> {
        let other = self.other(actor, &input.username).await?;
        if !self.friends.delete_friend_request(actor.id(), &other.id).await? {
            return Err(AppError::NotFound("no pending friend request"));
        }
        let event = Event::FriendRequestCancelled { from: actor.user.clone() };
        self.delivery.event(std::slice::from_ref(&other.id), event.frame(), None).await;
        Ok(FriendOutcome { user: other.summary(), result: "cancelled" })
    }

    /// Accepts the request `username` sent: both become friends and hear of it.
    pub async fn accept(&self, actor: &Actor, input: UsernameRef) -> AppResult<FriendOutcome> {
        let other = self.other(actor, &input.username).await?;
        if !self.friends.accept_friend_request(&other.id, actor.id(), &now_iso()).await? {
            return Err(AppError::NotFound("no pending friend request"));
        }
        let to_requester = [
            Event::FriendRequestAccepted { by: actor.user.clone() }.frame(),
            Event::FriendshipCreated { friend: actor.user.clone() }.frame(),
        ];
        let to_actor = Event::FriendshipCreated { friend: other.summary() }.frame();
        tokio::join!(
            self.delivery.to_users(std::slice::from_ref(&other.id), &to_requester, None),
            self.delivery.event(std::slice::from_ref(actor.id()), to_actor, actor.origin())
        );
        Ok(FriendOutcome { user: other.summary(), result: "accepted" })
    }

    pub async fn reject(&self, actor: &Actor, input: UsernameRef) -> AppResult<FriendOutcome> {
        let other = self.other(actor, &input.username).await?;
        if !self.friends.delete_friend_request(&other.id, actor.id()).await? {
            return Err(AppError::NotFound("no pending friend request"));
        }
        let event = Event::FriendRequestRejected { by: actor.user.clone() };
        self.delivery.event(std::slice::from_ref(&other.id), event.frame(), None).await;
        Ok(FriendOutcome { user: other.summary(), result: "rejected" })
    }

    pub async fn unfriend(&self, actor: &Actor, input: UsernameRef) -> AppResult<FriendOutcome> {
        let other = self.other(actor, &input.username).await?;
        if !self.friends.delete_friendship(actor.id(), &other.id).await? {
            return Err(AppError::NotFound("not friends"));
        }
        let to_other = Event::FriendshipDeleted { user_id: actor.id().clone(), username: actor.user.username.clone() };
        let to_actor = Event::FriendshipDeleted { user_id: other.id.clone(), username: other.username.clone() };
        tokio::join!(
            self.delivery.event(std::slice::from_ref(&other.id), to_other.frame(), None),
            self.delivery.event(std::slice::from_ref(actor.id()), to_actor.frame(), actor.origin())
        );
        Ok(FriendOutcome { user: other.summary(), result: "unfriended" })
    }

    /// Friends with their presence as others may see it (invisible looks offline).
    pub async fn list(&self, actor: &Actor) -> AppResult<Vec<Friend>> {
        let ids = self.friends.relations(actor.id()).await?.friend_ids;
        let users = self.users.get_users(&ids).await?;
        let ids: Vec<_> = users.iter().map(|u| u.id.clone()).collect();
        let presences = self.connections.presences(&ids).await?;
        let mut friends: Vec<Friend> = users
            .into_iter()
            .map(|user| {
                let presence =
                    presences.get(&user.id).map_or_else(|| UserPresence::default().visible(), UserPresence::visible);
                Friend { user, presence }
            })
            .collect();
        friends.sort_by(|a, b| a.user.username.cmp(&b.user.username));
        Ok(friends)
    }

    pub async fn requests(&self, actor: &Actor) -> AppResult<FriendRequests> {
        let relations = self.friends.relations(actor.id()).await?;
        let ids: Vec<_> = relations.incoming.iter().chain(&relations.outgoing).map(|r| r.user_id.clone()).collect();
        let users = self.users.get_users(&ids).await?;
        let view = |requests: &[PendingRequest]| -> Vec<FriendRequestView> {
            requests
                .iter()
                .filter_map(|r| {
                    let user = users.iter().find(|u| u.id == r.user_id)?.clone();
                    Some(FriendRequestView { user, created_at: r.created_at.clone() })
                })
                .collect()
        };
        Ok(FriendRequests { incoming: view(&relations.incoming), outgoing: view(&relations.outgoing) })
    }
}

//! Friendships and friend requests.
//!
//! Who hears about whom is always derived on the server from stored relations, never taken from the client.

use serde::Serialize;
use serde_json::json;

use crate::error::{AppError, AppResult};
use crate::model::{Sender, User, now_iso};
use crate::protocol::{event_frame, events};
use crate::service::Services;
use crate::store::{PendingRequest, Relation};

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
#[serde(rename_all = "camelCase")]
pub struct Friend {
    #[serde(flatten)]
    pub user: User,
    pub online: bool,
    pub status: String,
    pub last_seen: Option<String>,
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

fn user_ref(user: &User) -> Sender {
    Sender { id: user.id.clone(), username: user.username.clone(), avatar: user.avatar.clone() }
}

impl Services {
    async fn user_named(&self, username: &str) -> AppResult<User> {
        Ok(self.store.find_by_username(username).await?.ok_or(AppError::NotFound("user not found"))?.user)
    }

    /// Sends a request, or accepts theirs if they had already asked.
    pub async fn send_friend_request(
        &self,
        me: &Sender,
        username: &str,
        origin: Option<&str>,
    ) -> AppResult<FriendOutcome> {
        let other = self.user_named(username).await?;
        if other.id == me.id {
            return Err(AppError::Validation("you cannot befriend yourself".into()));
        }
        match self.store.relation(&me.id, &other.id).await? {
            Relation::Friends => Err(AppError::Conflict("already friends")),
            Relation::RequestSent => Err(AppError::Conflict("friend request already sent")),
            Relation::RequestReceived => self.accept_friend_request(me, username, origin).await,
            Relation::None => {
                let at = now_iso();
                self.store.create_friend_request(&me.id, &other.id, &at).await?;
                let frame = event_frame(events::FRIEND_REQUEST_RECEIVED, json!({ "from": me, "createdAt": at }));
                self.notify(std::slice::from_ref(&other.id), &frame, None).await;
                Ok(FriendOutcome { user: user_ref(&other), result: "requested" })
            }
        }
    }

    pub async fn cancel_friend_request(&self, me: &Sender, username: &str) -> AppResult<FriendOutcome> {
        let other = self.user_named(username).await?;
        if !self.store.delete_friend_request(&me.id, &other.id).await? {
            return Err(AppError::NotFound("no pending friend request"));
        }
        let frame = event_frame(events::FRIEND_REQUEST_CANCELLED, json!({ "from": me }));
        self.notify(std::slice::from_ref(&other.id), &frame, None).await;
        Ok(FriendOutcome { user: user_ref(&other), result: "cancelled" })
    }

    pub async fn accept_friend_request(
        &self,
        me: &Sender,
        username: &str,
        origin: Option<&str>,
    ) -> AppResult<FriendOutcome> {
        let other = self.user_named(username).await?;
        if !self.store.accept_friend_request(&other.id, &me.id, &now_iso()).await? {
            return Err(AppError::NotFound("no pending friend request"));
        }
        let to_requester = [
            event_frame(events::FRIEND_REQUEST_ACCEPTED, json!({ "by": me })),
            event_frame(events::FRIENDSHIP_CREATED, json!({ "friend": me })),
        ];
        let to_me = event_frame(events::FRIENDSHIP_CREATED, json!({ "friend": user_ref(&other) }));
        tokio::join!(
            self.notify_all(std::slice::from_ref(&other.id), &to_requester, None),
            self.notify(std::slice::from_ref(&me.id), &to_me, origin)
        );
        Ok(FriendOutcome { user: user_ref(&other), result: "accepted" })
    }

    pub async fn reject_friend_request(&self, me: &Sender, username: &str) -> AppResult<FriendOutcome> {
        let other = self.user_named(username).await?;
        if !self.store.delete_friend_request(&other.id, &me.id).await? {
            return Err(AppError::NotFound("no pending friend request"));
        }
        let frame = event_frame(events::FRIEND_REQUEST_REJECTED, json!({ "by": me }));
        self.notify(std::slice::from_ref(&other.id), &frame, None).await;
        Ok(FriendOutcome { user: user_ref(&other), result: "rejected" })
    }

    pub async fn unfriend(&self, me: &Sender, username: &str, origin: Option<&str>) -> AppResult<FriendOutcome> {
        let other = self.user_named(username).await?;
        if !self.store.delete_friendship(&me.id, &other.id).await? {
            return Err(AppError::NotFound("not friends"));
        }
        let to_other = event_frame(events::FRIENDSHIP_DELETED, json!({ "userId": me.id, "username": me.username }));
        let to_me = event_frame(events::FRIENDSHIP_DELETED, json!({ "userId": other.id, "username": other.username }));
        tokio::join!(
            self.notify(std::slice::from_ref(&other.id), &to_other, None),
            self.notify(std::slice::from_ref(&me.id), &to_me, origin)
        );
        Ok(FriendOutcome { user: user_ref(&other), result: "unfriended" })
    }

    /// Friends with their presence as others may see it (invisible looks offline).
    pub async fn friends(&self, me: &str) -> AppResult<Vec<Friend>> {
        let ids = self.store.user_graph(me).await?.friend_ids;
        let users = self.store.get_users(&ids).await?;
        let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
        let presences = self.presence_of_users(&ids).await?;
        let mut friends: Vec<Friend> = users
            .into_iter()
            .zip(presences)
            .map(|(user, p)| Friend { user, online: p.online, status: p.status, last_seen: p.last_seen })
            .collect();
        friends.sort_by(|a, b| a.user.username.cmp(&b.user.username));
        Ok(friends)
    }

    pub async fn friend_requests(&self, me: &str) -> AppResult<FriendRequests> {
        let graph = self.store.user_graph(me).await?;
        let ids: Vec<String> = graph.incoming.iter().chain(&graph.outgoing).map(|r| r.user_id.clone()).collect();
        let users = self.store.get_users(&ids).await?;
        let view = |requests: &[PendingRequest]| -> Vec<FriendRequestView> {
            requests
                .iter()
                .filter_map(|r| {
                    let user = users.iter().find(|u| u.id == r.user_id)?.clone();
                    Some(FriendRequestView { user, created_at: r.created_at.clone() })
                })
                .collect()
        };
        Ok(FriendRequests { incoming: view(&graph.incoming), outgoing: view(&graph.outgoing) })
    }
}

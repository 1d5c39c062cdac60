//! [`FriendStore`] in memory: friendships in both directions and pending requests.

use async_trait::async_trait;

use crate::error::{AppError, AppResult};
use crate::model::UserId;
use crate::ports::{FriendStore, MAX_BLOCKED, PendingRequest, Relation, Relations};

use super::InMemoryStore;

#[async_trait]
impl FriendStore for InMemoryStore {
    async fn relations(&self, user_id: &UserId) -> AppResult<Relations> {
        let state = self.lock();
        let pending = |mine: bool| {
            state
                .requests
                .iter()
                .filter(|((from, to), _)| if mine { from == user_id } else { to == user_id })
                .map(|((from, to), at)| PendingRequest {
                    user_id: if mine { to.clone() } else { from.clone() },
                    created_at: at.clone(),
                })
                .collect()
        };
        Ok(Relations {
            conversation_ids: state
                .members
                .iter()
                .filter(|(_, members)| members.contains(user_id))
                .map(|(id, _)| id.clone())
                .collect(),
            friend_ids: state.friends.iter().filter(|(a, _)| a == user_id).map(|(_, b)| b.clone()).collect(),
            incoming: pending(false),
            outgoing: pending(true),
            blocked: state
                .blocks
                .iter()
                .filter(|((blocker, _), _)| blocker == user_id)
                .map(|((_, blocked), at)| PendingRequest { user_id: blocked.clone(), created_at: at.clone() })
                .collect(),
        })
    }

    async fn relation(&self, user_id: &UserId, other_id: &UserId) -> AppResult<Relation> {
        let state = self.lock();
        let pair = (user_id.clone(), other_id.clone());
        Ok(if state.blocks.contains_key(&pair) {
            Relation::Blocking
        } else if state.blocks.contains_key(&(other_id.clone(), user_id.clone())) {
            Relation::BlockedBy
        } else if state.friends.contains(&pair) {
            Relation::Friends
        } else if state.requests.contains_key(&pair) {
            Relation::RequestSent
        } else if state.requests.contains_key(&(other_id.clone(), user_id.clone())) {
            Relation::RequestReceived
        } else {
            Relation::None
        })
    }

    async fn friends_among(&self, user_id: &UserId, others: &[UserId]) -> AppResult<Vec<UserId>> {
        let state = self.lock();
        Ok(others
            .iter()
            .filter(|other| state.friends.contains(&(user_id.clone(), (*other).clone())))
            .cloned()
            .collect())
    }

    async fn create_friend_request(&self, from: &UserId, to: &UserId, at: &str) -> AppResult<()> {
        let mut state = self.lock();
        let (ab, ba) = ((from.clone(), to.clone()), (to.clone(), from.clone()));
        if state.friends.contains(&ab)
            || state.requests.contains_key(&ab)
            || state.requests.contains_key(&ba)
            || state.either_blocked(from, to)
        {
            return Err(AppError::Conflict("already friends or a request is pending"));
        }
        state.requests.insert(ab, at.to_owned());
        Ok(())
    }

    async fn delete_friend_request(&self, from: &UserId, to: &UserId) -> AppResult<bool> {
        Ok(self.lock().requests.remove(&(from.clone(), to.clone())).is_some())
    }

    async fn accept_friend_request(&self, from: &UserId, to: &UserId, _at: &str) -> AppResult<bool> {
        let mut state = self.lock();
        if state.requests.remove(&(from.clone(), to.clone())).is_none() {
            return Ok(false);
        }
        state.friends.insert((from.clone(), to.clone()));
        state.friends.insert((to.clone(), from.clone()));
        Ok(true)
    }

    async fn delete_friendship(&self, a: &UserId, b: &UserId) -> AppResult<bool> {
        let mut state = self.lock();
        let removed = state.friends.remove(&(a.clone(), b.clone()));
        state.friends.remove(&(b.clone(), a.clone()));
        Ok(removed)
    }

    async fn block(&self, blocker: &UserId, blocked: &UserId, at: &str) -> AppResult<bool> {
        let mut state = self.lock();
        let (ab, ba) = ((blocker.clone(), blocked.clone()), (blocked.clone(), blocker.clone()));
        if state.blocks.contains_key(&ab) {
            return Ok(false);
        }
        if state.blocks.keys().filter(|(b, _)| b == blocker).count() >= MAX_BLOCKED {
            return Err(AppError::Validation(format!("you can block at most {MAX_BLOCKED} users")));
        }
        state.blocks.insert(ab.clone(), at.to_owned());
        for pair in [&ab, &ba] {
            state.friends.remove(pair);
            state.requests.remove(pair);
        }
        Ok(true)
    }

    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> AppResult<bool> {
        Ok(self.lock().blocks.remove(&(blocker.clone(), blocked.clone())).is_some())
    }
}

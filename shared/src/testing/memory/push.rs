//! [`PushStore`] in memory: each user's subscriptions by id, at most [`MAX_PUSH_SUBSCRIPTIONS`].

use async_trait::async_trait;

use crate::error::AppResult;
use crate::model::{MAX_PUSH_SUBSCRIPTIONS, PushSubscription, UserId};
use crate::ports::{PushStore, SubscriptionAdded};

use super::InMemoryStore;

#[async_trait]
impl PushStore for InMemoryStore {
    async fn add_push_subscription(
        &self,
        user_id: &UserId,
        subscription: &PushSubscription,
    ) -> AppResult<SubscriptionAdded> {
        self.injected("add_push_subscription")?;
        let mut state = self.lock();
        let subscriptions = state.push.entry(user_id.clone()).or_default();
        if let Some(existing) = subscriptions.get_mut(&subscription.id) {
            *existing = subscription.clone();
            return Ok(SubscriptionAdded::Existing);
        }
        if subscriptions.len() >= MAX_PUSH_SUBSCRIPTIONS as usize {
            return Ok(SubscriptionAdded::Full);
        }
        subscriptions.insert(subscription.id.clone(), subscription.clone());
        Ok(SubscriptionAdded::New)
    }

    async fn remove_push_subscription(&self, user_id: &UserId, subscription_id: &str) -> AppResult<bool> {
        let mut state = self.lock();
        Ok(state.push.get_mut(user_id).is_some_and(|subs| subs.remove(subscription_id).is_some()))
    }

    async fn push_subscriptions(&self, user_id: &UserId) -> AppResult<Vec<PushSubscription>> {
        Ok(self.lock().push.get(user_id).map(|subs| subs.values().cloned().collect()).unwrap_or_default())
    }
}

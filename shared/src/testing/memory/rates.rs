//! [`RateStore`] in memory: the per-user windows, counted by [`super::State`].

use async_trait::async_trait;

use crate::error::AppResult;
use crate::model::UserId;
use crate::ports::{RateLimit, RateStore};

use super::InMemoryStore;

#[async_trait]
impl RateStore for InMemoryStore {
    async fn take(&self, user_id: &UserId, limit: &RateLimit) -> AppResult<()> {
        self.lock().count(user_id, limit)
    }
}

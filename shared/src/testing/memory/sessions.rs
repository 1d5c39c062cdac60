//! [`SessionStore`] in memory: sessions by user and id, with the same expiry and generation rules.

use async_trait::async_trait;

use crate::error::AppResult;
use crate::model::{SessionId, SessionRecord, Standing, User, UserId, now_epoch_seconds};
use crate::ports::SessionStore;

use super::InMemoryStore;

#[async_trait]
impl SessionStore for InMemoryStore {
    async fn create_session(&self, session: &SessionRecord) -> AppResult<()> {
        self.lock().sessions.insert((session.user_id.clone(), session.id.clone()), session.clone());
        Ok(())
    }

    async fn session_user(&self, user_id: &UserId, session_id: &SessionId) -> AppResult<Option<(User, Standing)>> {
        let state = self.lock();
        let live = state
            .sessions
            .get(&(user_id.clone(), session_id.clone()))
            .is_some_and(|s| s.expires_at > now_epoch_seconds());
        Ok(state.users.get(user_id).filter(|_| live).map(|record| (record.user.clone(), record.standing)))
    }

    async fn rotate_session(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
        generation: u64,
        refreshed_at: &str,
        expires_at: u64,
    ) -> AppResult<bool> {
        let mut state = self.lock();
        let now = now_epoch_seconds();
        let Some(session) = state
            .sessions
            .get_mut(&(user_id.clone(), session_id.clone()))
            .filter(|s| s.generation == generation && s.expires_at > now)
        else {
            return Ok(false);
        };
        session.generation += 1;
        session.refreshed_at = refreshed_at.to_owned();
        session.expires_at = expires_at;
        Ok(true)
    }

    async fn delete_session(&self, user_id: &UserId, session_id: &SessionId) -> AppResult<bool> {
        Ok(self.lock().sessions.remove(&(user_id.clone(), session_id.clone())).is_some())
    }

    async fn sessions(&self, user_id: &UserId) -> AppResult<Vec<SessionRecord>> {
        let now = now_epoch_seconds();
        Ok(self.lock().sessions.values().filter(|s| s.user_id == *user_id && s.expires_at > now).cloned().collect())
    }
}

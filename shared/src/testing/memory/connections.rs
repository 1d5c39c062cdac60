//! [`ConnectionStore`] in memory: connection records and each user's presence, changed under one lock.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::error::AppResult;
use crate::model::{
    Connection, ConnectionId, ContactableBy, LiveConnection, NotificationPreferences, UserId, UserPresence,
    now_epoch_seconds,
};
use crate::ports::ConnectionStore;

use super::InMemoryStore;

#[async_trait]
impl ConnectionStore for InMemoryStore {
    async fn add_connection(&self, connection: &Connection) -> AppResult<UserPresence> {
        let mut state = self.lock();
        state.connections.insert(connection.connection_id.clone(), connection.clone());
        let listed = state.presence.entry(connection.user_id.clone()).or_default();
        listed.insert(connection.connection_id.clone(), connection.live());
        Ok(state.presence_of(&connection.user_id))
    }

    async fn get_connection(&self, connection_id: &ConnectionId) -> AppResult<Option<Connection>> {
        let now = now_epoch_seconds();
        Ok(self.lock().connections.get(connection_id).filter(|c| c.expires_at > now).cloned())
    }

    async fn user_connections(&self, user_id: &UserId) -> AppResult<Vec<Connection>> {
        let state = self.lock();
        let live = state.presence_of(user_id).connections;
        Ok(live.iter().filter_map(|c| state.connections.get(&c.connection_id).cloned()).collect())
    }

    async fn remove_connection(&self, connection: &Connection, last_seen: &str) -> AppResult<UserPresence> {
        let mut state = self.lock();
        state.connections.remove(&connection.connection_id);
        let now = now_epoch_seconds();
        if let Some(listed) = state.presence.get_mut(&connection.user_id) {
            listed.remove(&connection.connection_id);
            listed.retain(|_, c| c.expires_at > now);
        }
        state.last_seen.insert(connection.user_id.clone(), last_seen.to_owned());
        if let Some(background) = state.background.get_mut(&connection.user_id) {
            background.remove(&connection.connection_id);
        }
        Ok(state.presence_of(&connection.user_id))
    }

    async fn drop_gone_connection(&self, user_id: &UserId, connection: &LiveConnection) -> AppResult<()> {
        if let Some(listed) = self.lock().presence.get_mut(user_id) {
            listed.remove(&connection.connection_id);
        }
        Ok(())
    }

    async fn presence(&self, user_id: &UserId) -> AppResult<UserPresence> {
        Ok(self.lock().presence_of(user_id))
    }

    async fn presences(&self, user_ids: &[UserId]) -> AppResult<HashMap<UserId, UserPresence>> {
        self.injected("presences")?;
        let state = self.lock();
        Ok(user_ids.iter().map(|id| (id.clone(), state.presence_of(id))).collect())
    }

    async fn set_background(&self, user_id: &UserId, connection_id: &ConnectionId, background: bool) -> AppResult<()> {
        let mut state = self.lock();
        let set = state.background.entry(user_id.clone()).or_default();
        if background {
            set.insert(connection_id.clone());
        } else {
            set.remove(connection_id);
        }
        Ok(())
    }

    async fn set_status(&self, user_id: &UserId, status: &str) -> AppResult<()> {
        self.lock().statuses.insert(user_id.clone(), status.to_owned());
        Ok(())
    }

    async fn set_contactable_by(&self, user_id: &UserId, setting: ContactableBy) -> AppResult<()> {
        self.lock().contactable_by.insert(user_id.clone(), setting);
        Ok(())
    }

    async fn set_notification_preferences(
        &self,
        user_id: &UserId,
        preferences: &NotificationPreferences,
    ) -> AppResult<()> {
        self.lock().notification_preferences.insert(user_id.clone(), preferences.clone());
        Ok(())
    }
}

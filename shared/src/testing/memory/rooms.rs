//! [`RoomStore`] in memory: joined rooms and the typing throttle.

use async_trait::async_trait;

use crate::error::{AppError, AppResult};
use crate::model::{Connection, ConnectionId, ConversationId, LiveConnection, UserId};
use crate::ports::RoomStore;

use super::InMemoryStore;

#[async_trait]
impl RoomStore for InMemoryStore {
    async fn join(&self, connection: &Connection, conversation_id: &ConversationId) -> AppResult<()> {
        let mut state = self.lock();
        if !state.connections.contains_key(&connection.connection_id) {
            return Err(AppError::Unauthorized("connection is not registered, reconnect"));
        }
        let key = (conversation_id.clone(), connection.connection_id.clone());
        state.joins.insert(key, (connection.user_id.clone(), connection.live()));
        Ok(())
    }

    async fn leave(&self, connection_id: &ConnectionId, conversation_id: &ConversationId) -> AppResult<()> {
        self.lock().joins.remove(&(conversation_id.clone(), connection_id.clone()));
        Ok(())
    }

    async fn leave_all(&self, connection_id: &ConnectionId) -> AppResult<()> {
        self.lock().joins.retain(|(_, c), _| c != connection_id);
        Ok(())
    }

    async fn forget_member(&self, conversation_id: &ConversationId, user_id: &UserId) -> AppResult<()> {
        self.lock().joins.retain(|(c, _), (user, _)| c != conversation_id || user != user_id);
        Ok(())
    }

    async fn joined(&self, conversation_id: &ConversationId) -> AppResult<Vec<(UserId, LiveConnection)>> {
        let state = self.lock();
        Ok(state.joins.iter().filter(|((c, _), _)| c == conversation_id).map(|(_, joined)| joined.clone()).collect())
    }

    async fn claim_typing(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
        now_ms: u64,
        window_ms: u64,
    ) -> AppResult<bool> {
        let mut state = self.lock();
        let slot = state.typing.entry((conversation_id.clone(), user_id.clone())).or_insert(0);
        if *slot != 0 && now_ms < *slot + window_ms {
            return Ok(false);
        }
        *slot = now_ms;
        Ok(true)
    }

    async fn release_typing(&self, conversation_id: &ConversationId, user_id: &UserId) -> AppResult<()> {
        self.lock().typing.remove(&(conversation_id.clone(), user_id.clone()));
        Ok(())
    }
}

//! WebSocket connections: the record `$connect` stores and the short form listed in a user's presence.

use serde::{Deserialize, Serialize};

use super::{ConnectionId, SessionId, UserId};

/// A live WebSocket connection of a user. A user may hold several (tabs, devices).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub connection_id: ConnectionId,
    pub user_id: UserId,
    pub username: String,
    pub avatar: Option<String>,
    /// Epoch seconds when `$connect` stored it.
    pub connected_at: u64,
    /// Epoch seconds after which DynamoDB's TTL may remove the record if `$disconnect` never came.
    pub expires_at: u64,
    /// The login whose token opened it: ending that session closes it. `None` for connections stored before
    /// sessions existed.
    pub session_id: Option<SessionId>,
}

impl Connection {
    /// How this connection appears in its user's presence.
    pub fn live(&self) -> LiveConnection {
        LiveConnection {
            connection_id: self.connection_id.clone(),
            connected_at: self.connected_at,
            expires_at: self.expires_at,
        }
    }
}

/// One connection as listed in its user's presence: enough to post to it and to judge a 410 for it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveConnection {
    pub connection_id: ConnectionId,
    /// Epoch seconds when `$connect` stored it. API Gateway answers 410 for a connection whose `$connect` has
    /// not returned yet, so a 410 soon after this time proves nothing (see [`crate::delivery`]).
    pub connected_at: u64,
    pub expires_at: u64,
}

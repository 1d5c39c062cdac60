//! Sessions: one per login, so that a device can be logged out (or every device), a stolen refresh token is
//! caught when it is used twice, and a password change ends every other login.

use serde::Serialize;

use super::{SessionId, UserId};

/// A session as stored: whose it is and which refresh-token generation is current.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    /// Moves with every refresh: only the refresh token of this generation is accepted.
    pub generation: u64,
    pub created_at: String,
    pub refreshed_at: String,
    /// Epoch seconds after which the session is over (and DynamoDB's TTL removes it).
    pub expires_at: u64,
}

/// A session as its owner sees it in `GET /users/me/sessions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub session_id: SessionId,
    pub created_at: String,
    pub refreshed_at: String,
    /// The session of the token that asked.
    pub current: bool,
}

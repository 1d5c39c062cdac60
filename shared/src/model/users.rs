//! Users as others see them, the secret that logs them in, and who is acting in a request.

use serde::{Deserialize, Serialize};

use super::{Connection, ConnectionId, UserId};

/// A user as other users see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    #[serde(rename = "_id")]
    pub id: UserId,
    pub username: String,
    pub avatar: Option<String>,
    #[serde(rename = "createdAt")]
    pub created_at: String,
}

impl User {
    /// The short form messages and friend events carry.
    pub fn summary(&self) -> Sender {
        Sender { id: self.id.clone(), username: self.username.clone(), avatar: self.avatar.clone() }
    }
}

/// A user plus the secret needed to log them in. Never serialised to clients.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
    pub standing: Standing,
}

/// What the operator decided about an account, read with the profile wherever a token is checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    /// May act on reports, delete any message and suspend users. Set outside the API
    /// (`cargo xtask operator grant`), never by the user.
    pub operator: bool,
    /// Refused at login and on every request; their connections were closed when it was set.
    pub suspended: bool,
    /// The account was deleted: the profile is a tombstone until its erasure is done, and stays one after.
    pub deleted: bool,
}

impl Standing {
    /// Whether the account may act at all (not suspended, not deleted).
    pub fn may_act(&self) -> bool {
        !self.suspended && !self.deleted
    }
}

/// Who is acting: the authenticated user and, over the WebSocket, the connection the request came from. That
/// connection gets the `ack`, so broadcasts skip it; the user's other connections do receive them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user: Sender,
    pub origin: Option<ConnectionId>,
}

impl Actor {
    /// A request over HTTP: no connection to skip.
    pub fn http(user: &User) -> Actor {
        Actor { user: user.summary(), origin: None }
    }

    /// A frame from a registered WebSocket connection.
    pub fn connection(connection: &Connection) -> Actor {
        Actor {
            user: Sender {
                id: connection.user_id.clone(),
                username: connection.username.clone(),
                avatar: connection.avatar.clone(),
            },
            origin: Some(connection.connection_id.clone()),
        }
    }

    pub fn id(&self) -> &UserId {
        &self.user.id
    }

    pub fn origin(&self) -> Option<&ConnectionId> {
        self.origin.as_ref()
    }
}

/// The short form of a user that messages and friend events carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    #[serde(rename = "_id")]
    pub id: UserId,
    pub username: String,
    pub avatar: Option<String>,
}

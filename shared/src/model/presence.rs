//! Presence: what is stored about a user's connections and status, and what others may see of it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{ConnectionId, LiveConnection, NotificationPreferences, UserId};

/// Who may start a private conversation with a user or add them to a group: their privacy setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactableBy {
    #[default]
    Everyone,
    Friends,
    Nobody,
}

/// A status that makes a user look offline to everyone else.
pub const INVISIBLE: &str = "invisible";

/// What is stored about a user's presence: their live connections, chosen status and last disconnect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPresence {
    /// Connections that have not expired, in no particular order.
    pub connections: Vec<LiveConnection>,
    /// `online`, `away`, `busy`, `invisible` or custom text; `None` until the user sets one.
    pub status: Option<String>,
    pub last_seen: Option<String>,
    /// The users this user blocked. Kept on the presence because every delivery reads the recipients' presence
    /// anyway: a recipient who blocked the author is skipped at no extra request.
    pub blocked: BTreeSet<UserId>,
    /// Their privacy setting, kept here for the same reason: adding users to a group reads their presence.
    pub contactable_by: ContactableBy,
    /// Do not disturb and previews, kept here because whoever decides to notify an offline user reads their
    /// presence anyway to find out that they are offline.
    pub notifications: NotificationPreferences,
    /// How many push subscriptions the user holds: a user without one is never looked up to be pushed to.
    pub push_subscriptions: u32,
    /// Connections whose app said it went to the background (`set_app_state`): the user is pushed to as if they
    /// were offline while every live connection is in here.
    pub background: BTreeSet<ConnectionId>,
}

impl UserPresence {
    /// Whether this user blocked `user_id`.
    pub fn blocks(&self, user_id: &UserId) -> bool {
        self.blocked.contains(user_id)
    }

    /// Whether none of the user's live connections has the app in front: no connection, or all in the
    /// background.
    pub fn away_from_every_app(&self) -> bool {
        self.connections.iter().all(|c| self.background.contains(&c.connection_id))
    }

    /// Whether others should see the user online: connected, and not invisible.
    pub fn visible_online(&self) -> bool {
        !self.connections.is_empty() && self.status.as_deref() != Some(INVISIBLE)
    }

    /// The status others see: the chosen one (default `online`) while visible online, else `offline`.
    pub fn visible_status(&self) -> String {
        if self.visible_online() { self.status.clone().unwrap_or_else(|| "online".into()) } else { "offline".into() }
    }

    /// The presence as others may see it.
    pub fn visible(&self) -> VisiblePresence {
        VisiblePresence {
            online: self.visible_online(),
            status: self.visible_status(),
            last_seen: self.last_seen.clone(),
        }
    }
}

/// A user's presence as others may see it (invisible looks offline), as it appears in friend lists and
/// `get_presence`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VisiblePresence {
    pub online: bool,
    /// The chosen status while online, else `offline`.
    pub status: String,
    pub last_seen: Option<String>,
}

//! The use cases, one per resource: each decides what happens, what is stored, and which event goes to whom.
//! Both transports call the same functions, so a message sent over HTTP is stored and delivered exactly like one
//! sent over the WebSocket. Each use case holds only the store ports it needs.

pub mod accounts;
pub mod conversations;
pub mod friends;
mod membership;
pub mod messages;
pub mod paging;
pub mod presence;
pub mod rooms;

use std::sync::Arc;
use std::time::Duration;

use crate::delivery::Delivery;
use crate::ports::Store;

pub use accounts::Accounts;
pub use conversations::Conversations;
pub use friends::Friends;
pub use messages::Messages;
pub use paging::Pager;
pub use presence::Presence;
pub use rooms::Rooms;

/// The use cases every function can run without the deployment's signing key. [`Accounts`] (tokens) and
/// [`Pager`] (cursors) need it and are built only where it is loaded.
pub struct App {
    pub conversations: Conversations,
    pub messages: Messages,
    pub rooms: Rooms,
    pub friends: Friends,
    pub presence: Presence,
    /// Answers to the connection a request came from.
    pub delivery: Delivery,
}

/// The deployment's limits the use cases enforce.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How long a connection record lives if `$disconnect` never arrives.
    pub connection_ttl: Duration,
    /// Members a group may have.
    pub max_group_members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { connection_ttl: Duration::from_secs(7800), max_group_members: crate::model::DEFAULT_MAX_GROUP_MEMBERS }
    }
}

impl App {
    /// Every use case over one store, each taking only its ports, and one delivery.
    pub fn new<S: Store + 'static>(store: Arc<S>, delivery: Delivery, limits: Limits) -> App {
        App {
            conversations: Conversations::new(
                store.clone(),
                store.clone(),
                store.clone(),
                delivery.clone(),
                limits.max_group_members,
            ),
            messages: Messages::new(store.clone(), store.clone(), delivery.clone()),
            rooms: Rooms::new(store.clone(), store.clone(), store.clone(), delivery.clone()),
            friends: Friends::new(store.clone(), store.clone(), store.clone(), delivery.clone()),
            presence: Presence::new(
                store.clone(),
                store.clone(),
                store.clone(),
                store,
                delivery.clone(),
                limits.connection_ttl,
            ),
            delivery,
        }
    }
}

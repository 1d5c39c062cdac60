//! The use cases, one per resource: each decides what happens, what is stored, and which event goes to whom.
//! Both transports call the same functions, so a message sent over HTTP is stored and delivered exactly like one
//! sent over the WebSocket. Each use case holds only the store ports it needs.

pub mod accounts;
pub mod conversations;
pub mod friends;
pub mod messages;
pub mod paging;
pub mod presence;
pub mod rooms;

use std::sync::Arc;
use std::time::Duration;

use crate::delivery::Delivery;
use crate::ports::{Fanout, Store};

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

impl App {
    /// Every use case over one store, each taking only its ports, and one fan-out.
    pub fn new<S: Store + 'static>(store: Arc<S>, fanout: Arc<dyn Fanout>, connection_ttl: Duration) -> App {
        let delivery = Delivery::new(store.clone(), fanout);
        App {
            conversations: Conversations::new(store.clone(), store.clone(), store.clone(), delivery.clone()),
            messages: Messages::new(store.clone(), store.clone(), delivery.clone()),
            rooms: Rooms::new(store.clone(), store.clone(), store.clone(), delivery.clone()),
            friends: Friends::new(store.clone(), store.clone(), store.clone(), delivery.clone()),
            presence: Presence::new(
                store.clone(),
                store.clone(),
                store.clone(),
                store,
                delivery.clone(),
                connection_ttl,
            ),
            delivery,
        }
    }
}

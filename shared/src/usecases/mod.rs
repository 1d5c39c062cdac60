//! The use cases, one per resource: each decides what happens, what is stored, and which event goes to whom.
//! Both transports call the same functions, so a message sent over HTTP is stored and delivered exactly like one
//! sent over the WebSocket. Each use case holds only the store ports it needs.

pub mod accounts;
pub mod blocks;
pub mod conversations;
pub mod erasure;
pub mod exports;
pub mod friends;
mod membership;
pub mod messages;
pub mod moderation;
pub mod notifications;
pub mod paging;
pub mod presence;
pub mod push;
pub mod reports;
pub mod rooms;
pub mod uploads;

use std::sync::Arc;
use std::time::Duration;

use crate::auth::TokenKeys;
use crate::delivery::Delivery;
use crate::ports::{AccountQueue, Fanout, FanoutQueue, FileStore, Store};

pub use crate::model::UploadRules;
pub use accounts::Accounts;
use accounts::SessionCloser;
pub use blocks::Blocks;
pub use conversations::Conversations;
pub use erasure::Erasure;
pub use exports::Exports;
pub use friends::Friends;
pub use messages::Messages;
pub use moderation::Moderation;
pub use notifications::Notifications;
pub use paging::Pager;
pub use presence::Presence;
pub use reports::Reports;
pub use rooms::Rooms;
pub use uploads::Uploads;

/// The use cases every function can run without the deployment's signing key. [`Accounts`] (tokens) and
/// [`Pager`] (cursors) need it and are built only where it is loaded.
pub struct App {
    pub conversations: Conversations,
    pub messages: Messages,
    pub uploads: Arc<Uploads>,
    pub rooms: Rooms,
    pub friends: Friends,
    pub blocks: Blocks,
    pub notifications: Notifications,
    pub presence: Presence,
    pub reports: Reports,
    pub moderation: Moderation,
    /// Runs the erasure jobs of deleted accounts (`account-worker`).
    pub erasure: Erasure,
    /// Exports of users' data: requested over REST, produced by `account-worker`.
    pub exports: Arc<Exports>,
    /// Answers to the connection a request came from.
    pub delivery: Delivery,
}

/// The deployment's limits the use cases enforce.
#[derive(Clone, Debug)]
pub struct Limits {
    /// How long a connection record lives if `$disconnect` never arrives.
    pub connection_ttl: Duration,
    /// Members a group may have.
    pub max_group_members: usize,
    /// The most connections one delivery posts to itself before handing them to the fan-out workers.
    pub fanout_inline_max: usize,
    pub uploads: UploadRules,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connection_ttl: Duration::from_secs(7800),
            max_group_members: crate::model::DEFAULT_MAX_GROUP_MEMBERS,
            fanout_inline_max: crate::config::DEFAULT_FANOUT_INLINE_MAX,
            uploads: UploadRules::default(),
        }
    }
}

/// What the use cases are built from: one store serving every port, the attachments bucket, where frames go, and
/// the limits. The
/// functions ([`crate::app::Root`]), the in-memory test app and the end-to-end request counter all build their
/// use cases here, so there is one way they are wired.
pub struct Wiring {
    store: Arc<dyn Store>,
    files: Arc<dyn FileStore>,
    delivery: Delivery,
    accounts_queue: Arc<dyn AccountQueue>,
    limits: Limits,
}

impl Wiring {
    pub fn new(
        store: Arc<dyn Store>,
        files: Arc<dyn FileStore>,
        fanout: Arc<dyn Fanout>,
        queue: Arc<dyn FanoutQueue>,
        accounts_queue: Arc<dyn AccountQueue>,
        limits: Limits,
    ) -> Wiring {
        let delivery = Delivery::new(store.clone(), fanout, queue, limits.fanout_inline_max);
        Wiring { store, files, delivery, accounts_queue, limits }
    }

    /// The store, for use cases built outside [`App`] (push).
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Frames out: posted inline, or through the fan-out queue when a delivery is big.
    pub fn delivery(&self) -> Delivery {
        self.delivery.clone()
    }

    /// Every use case that needs no signing key, each taking only its ports of the store.
    pub fn app(&self) -> App {
        let (store, delivery, limits) = (&self.store, &self.delivery, &self.limits);
        let uploads = Arc::new(Uploads::new(store, self.files.clone(), delivery.clone(), limits.uploads.clone()));
        let conversations = || Conversations::new(store, delivery.clone(), limits.max_group_members);
        let exports = Arc::new(Exports::new(store, conversations(), self.files.clone(), self.accounts_queue.clone()));
        App {
            conversations: conversations(),
            messages: Messages::new(store, uploads.clone(), delivery.clone()),
            uploads: uploads.clone(),
            rooms: Rooms::new(store, delivery.clone()),
            friends: Friends::new(store, delivery.clone()),
            blocks: Blocks::new(store, delivery.clone()),
            notifications: Notifications::new(store, delivery.clone()),
            presence: Presence::new(store, delivery.clone(), limits.connection_ttl),
            reports: Reports::new(store),
            moderation: Moderation::new(
                store,
                Messages::new(store, uploads.clone(), delivery.clone()),
                SessionCloser::new(store, delivery.clone()),
            ),
            erasure: Erasure::new(
                store,
                conversations(),
                uploads.clone(),
                exports.clone(),
                self.accounts_queue.clone(),
            ),
            exports,
            delivery: delivery.clone(),
        }
    }

    /// Accounts, issuing and verifying tokens signed with `tokens`.
    pub fn accounts(&self, tokens: TokenKeys) -> Accounts {
        Accounts::new(&self.store, self.delivery.clone(), self.accounts_queue.clone(), tokens)
    }
}

//! Presence: connecting, disconnecting, and telling friends and conversation peers who is online.
//!
//! Users connect and disconnect at the same moment (every morning, after a network blip, after a deploy), and
//! each `$connect`/`$disconnect` runs in its own Lambda. Two rules keep what peers see true:
//!
//! - **Decide on the atomic result.** Adding or removing a connection returns the user's presence right after
//!   that very write, so of several simultaneous first connections exactly one sees itself alone and
//!   announces `user_online`, and of several simultaneous last disconnections at least one sees none left.
//! - **Settle after announcing.** Two announcements about one user can cross on the way (an `offline` posted
//!   before a reconnect's `online` may arrive after it). Whoever announced re-reads the presence after
//!   posting and announces again until what it last said is the truth, so the last event every peer
//!   receives about a user matches whether the user is online.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::delivery::Delivery;
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::model::{Actor, Connection, ConnectionId, INVISIBLE, UserId, VisiblePresence, now_epoch_seconds, now_iso};
use crate::ports::{ConnectionStore, ConversationStore, FriendStore, RoomStore, SessionStore, Store};
use crate::usecases::accounts::Authenticated;

/// How many times an announcer re-reads the presence after posting before leaving the rest to later ones.
const SETTLE_ROUNDS: usize = 3;

/// `{status}`: set_status.
#[derive(Clone, Debug, Deserialize)]
pub struct SetStatus {
    pub status: String,
}

/// Whether the app of a connection is in front of its user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppState {
    Foreground,
    Background,
}

/// `{state}`: set_app_state.
#[derive(Clone, Debug, Deserialize)]
pub struct SetAppState {
    pub state: AppState,
}

/// A peer's presence as the caller may see it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PeerPresence {
    pub user_id: UserId,
    #[serde(flatten)]
    pub presence: VisiblePresence,
}

/// The caller's own status.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OwnStatus {
    pub status: String,
    pub last_seen: Option<String>,
}

pub struct Presence {
    connections: Arc<dyn ConnectionStore>,
    sessions: Arc<dyn SessionStore>,
    friends: Arc<dyn FriendStore>,
    conversations: Arc<dyn ConversationStore>,
    rooms: Arc<dyn RoomStore>,
    delivery: Delivery,
    connection_ttl: Duration,
}

impl Presence {
    pub fn new(store: &Arc<dyn Store>, delivery: Delivery, connection_ttl: Duration) -> Self {
        Presence {
            connections: store.clone(),
            sessions: store.clone(),
            friends: store.clone(),
            conversations: store.clone(),
            rooms: store.clone(),
            delivery,
            connection_ttl,
        }
    }

    /// `$connect` of an authenticated user: stores the connection and, if it is their first, announces them.
    pub async fn connect(&self, connection_id: ConnectionId, who: Authenticated) -> AppResult<Connection> {
        let now = now_epoch_seconds();
        let connection = Connection {
            connection_id,
            user_id: who.user.id,
            username: who.user.username,
            avatar: who.user.avatar,
            connected_at: now,
            expires_at: now + self.connection_ttl.as_secs(),
            session_id: Some(who.session_id.clone()),
        };
        let presence = self.connections.add_connection(&connection).await?;
        // A session that ended (or an account suspended) while this connection was being stored may have looked
        // for its connections before this one was there: look at the session again, now that it is (one more
        // read per `$connect`).
        let still = self.sessions.session_user(&connection.user_id, &who.session_id).await?;
        if still.is_none_or(|(_, standing)| !standing.may_act()) {
            self.connections.remove_connection(&connection, &now_iso()).await?;
            return Err(AppError::Unauthorized("session ended"));
        }
        let alone = presence.connections.iter().all(|c| c.connection_id == connection.connection_id);
        if alone && presence.visible_online() {
            // Presence is best effort: failing to announce must not refuse the connection.
            if let Err(e) = self.announce(&connection.user_id, &connection.username, true, None).await {
                e.log();
            }
        }
        Ok(connection)
    }

    /// The user behind a connection; a connection unknown to the store (expired, or closed) must reconnect.
    pub async fn connection(&self, connection_id: &ConnectionId) -> AppResult<Connection> {
        self.connections
            .get_connection(connection_id)
            .await?
            .ok_or(AppError::Unauthorized("connection is not registered, reconnect"))
    }

    /// `$disconnect`: forgets the connection and its rooms and, if it was the user's last, announces them
    /// offline. An unknown connection (already gone) changes nothing.
    pub async fn disconnect(&self, connection_id: &ConnectionId) -> AppResult<Option<Connection>> {
        let Some(connection) = self.connections.get_connection(connection_id).await? else { return Ok(None) };
        self.rooms.leave_all(connection_id).await?;
        let last_seen = now_iso();
        let presence = self.connections.remove_connection(&connection, &last_seen).await?;
        if presence.connections.is_empty()
            && presence.status.as_deref() != Some(INVISIBLE)
            && let Err(e) = self.announce(&connection.user_id, &connection.username, false, Some(&last_seen)).await
        {
            e.log();
        }
        Ok(Some(connection))
    }

    /// Tells the user's presence watchers they are `online` (or not), then settles: re-reads the presence and says
    /// it again while what was last said is no longer true.
    async fn announce(&self, user_id: &UserId, username: &str, online: bool, last_seen: Option<&str>) -> AppResult<()> {
        let audience = self.presence_watchers(user_id).await?;
        if audience.is_empty() {
            return Ok(());
        }
        self.delivery
            .event_by(user_id, &audience, Event::presence(user_id, username, online, last_seen).frame(), None)
            .await;
        let mut said = online;
        for _ in 0..SETTLE_ROUNDS {
            let truth = self.connections.presence(user_id).await?;
            if truth.visible_online() == said {
                return Ok(());
            }
            said = truth.visible_online();
            tracing::info!(%user_id, online = said, "presence changed while announcing; announcing again");
            let event = Event::presence(user_id, username, said, truth.last_seen.as_deref());
            self.delivery.event_by(user_id, &audience, event.frame(), None).await;
        }
        Ok(())
    }

    /// Who sees a user's presence: their friends and the members of their private chats and listed groups
    /// (never every member of a large group), but not the users they blocked. (Those who blocked them are left
    /// out when the presence is delivered or read: their block lists come with their presence.)
    async fn presence_watchers(&self, user_id: &UserId) -> AppResult<Vec<UserId>> {
        let relations = self.friends.relations(user_id).await?;
        let mut audience: BTreeSet<UserId> = relations.friend_ids.into_iter().collect();
        audience.extend(self.conversations.listed_members_of(&relations.conversation_ids).await?);
        audience.remove(user_id);
        for blocked in relations.blocked {
            audience.remove(&blocked.user_id);
        }
        Ok(audience.into_iter().collect())
    }

    /// The presence of everyone whose presence the caller is told about (friends and conversation peers): what
    /// a client asks right after connecting, since announcements made during its handshake did not reach it.
    pub async fn peers(&self, actor: &Actor) -> AppResult<Vec<PeerPresence>> {
        let audience = self.presence_watchers(actor.id()).await?;
        let presences = self.connections.presences(&audience).await?;
        let mut peers: Vec<PeerPresence> = presences
            .into_iter()
            .filter(|(_, presence)| !presence.blocks(actor.id()))
            .map(|(user_id, presence)| PeerPresence { user_id, presence: presence.visible() })
            .collect();
        peers.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Ok(peers)
    }

    /// The caller's own status and last-seen time.
    pub async fn own_status(&self, actor: &Actor) -> AppResult<OwnStatus> {
        let presence = self.connections.presence(actor.id()).await?;
        Ok(OwnStatus { status: presence.status.unwrap_or_else(|| "online".into()), last_seen: presence.last_seen })
    }

    /// Records whether this connection's app is in the background: while all of a user's connections are, they
    /// are pushed to as if offline (their sockets still get every frame). Told to nobody; WebSocket only.
    pub async fn set_app_state(&self, actor: &Actor, input: SetAppState) -> AppResult<AppState> {
        let connection_id =
            actor.origin().ok_or_else(|| AppError::BadRequest("set_app_state is a WebSocket action".into()))?;
        self.connections.set_background(actor.id(), connection_id, input.state == AppState::Background).await?;
        Ok(input.state)
    }

    /// Stores the status and tells friends `status_changed`. Going invisible (or leaving it) is also a presence
    /// change, told to the whole presence audience like a disconnect (or a connect) would be.
    pub async fn set_status(&self, actor: &Actor, input: SetStatus) -> AppResult<String> {
        let status = validate_status(&input.status)?;
        let previous = self.connections.presence(actor.id()).await?.status;
        self.connections.set_status(actor.id(), &status).await?;
        let (user_id, username) = (actor.id(), actor.user.username.as_str());
        let was_invisible = previous.as_deref() == Some(INVISIBLE);
        if status == INVISIBLE || was_invisible {
            let online = status != INVISIBLE;
            let last_seen = (!online).then(now_iso);
            let frame = Event::presence(user_id, username, online, last_seen.as_deref()).frame();
            self.delivery.event_by(user_id, &self.presence_watchers(user_id).await?, frame, None).await;
        }
        if status != INVISIBLE {
            let friends = self.friends.relations(actor.id()).await?.friend_ids;
            let changed = Event::StatusChanged {
                user_id: user_id.clone(),
                username: username.to_owned(),
                status: status.clone(),
            };
            self.delivery.event_by(user_id, &friends, changed.frame(), None).await;
        }
        Ok(status)
    }
}

/// The statuses a user can choose, or a short custom text.
pub const KNOWN_STATUSES: [&str; 4] = ["online", "away", "busy", "invisible"];

pub fn validate_status(status: &str) -> AppResult<String> {
    let status = status.trim();
    let chars = status.chars().count();
    if (1..=64).contains(&chars) && !status.chars().any(char::is_control) {
        Ok(status.to_owned())
    } else {
        Err(AppError::Validation("status must be online, away, busy, invisible or 1-64 characters of text".into()))
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::ports::{Fanout, PostOutcome};
    use crate::testing::{InMemoryStore, RecordingFanout, TestApp};
    use crate::usecases::accounts::{Credentials, Session};
    use crate::usecases::conversations::CreateConversation;

    type Hook = Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Records like [`RecordingFanout`], and runs a hook right after the first post: something that happens
    /// in another Lambda while this one is announcing.
    struct CrossingFanout {
        recording: RecordingFanout,
        after_first_post: Mutex<Option<Hook>>,
    }

    #[async_trait]
    impl Fanout for CrossingFanout {
        async fn post(&self, connection_id: &ConnectionId, frame: &str) -> PostOutcome {
            let outcome = self.recording.post(connection_id, frame).await;
            let hook = self.after_first_post.lock().unwrap().take();
            if let Some(hook) = hook {
                hook.await;
            }
            outcome
        }

        async fn disconnect(&self, connection_id: &ConnectionId) -> AppResult<()> {
            self.recording.disconnect(connection_id).await
        }
    }

    async fn register(t: &TestApp, name: &str) -> Session {
        let credentials = Credentials { username: name.into(), password: "password123".into(), avatar: None };
        t.accounts.register(credentials).await.unwrap()
    }

    /// Alice and Bob, logged in, in a private conversation.
    async fn pair(t: &TestApp) -> (Authenticated, Authenticated) {
        let (alice, bob) = (register(t, "alice").await, register(t, "bob").await);
        let private = CreateConversation::Private { participant_id: bob.user.id.clone() };
        t.app.conversations.create(&Actor::http(&alice.user), private).await.unwrap();
        let alice = t.accounts.authenticate(Some(&alice.token)).await.unwrap();
        (alice, t.accounts.authenticate(Some(&bob.token)).await.unwrap())
    }

    fn events(fanout: &RecordingFanout, connection_id: &str) -> Vec<(String, String)> {
        fanout
            .frames(connection_id)
            .iter()
            .map(|f| (f["event"].as_str().unwrap().to_owned(), f["data"]["userId"].as_str().unwrap().to_owned()))
            .collect()
    }

    #[tokio::test]
    async fn an_announcement_that_became_false_while_posting_is_corrected() {
        let t = TestApp::new();
        let (alice, bob) = pair(&t).await;
        let store: Arc<InMemoryStore> = t.store.clone();
        let fanout = Arc::new(CrossingFanout { recording: RecordingFanout::new(), after_first_post: Mutex::new(None) });
        let limits = crate::usecases::Limits { connection_ttl: Duration::from_secs(600), ..Default::default() };
        let queue = Arc::new(crate::testing::RecordingQueue::new());
        let wiring =
            crate::usecases::Wiring::new(store.clone(), t.files.clone(), fanout.clone(), queue.clone(), queue, limits);
        let presence = wiring.app().presence;
        presence.connect(ConnectionId::new("a1"), alice).await.unwrap();
        let b1 = presence.connect(ConnectionId::new("b1"), bob.clone()).await.unwrap();
        fanout.recording.clear();

        // Bob's last tab closes; while `user_offline` is being posted, he reconnects in another Lambda whose
        // `user_online` reached Alice first.
        let mut b2 = b1.clone();
        b2.connection_id = ConnectionId::new("b2");
        let reconnect: Hook = Box::pin(async move {
            store.add_connection(&b2).await.unwrap();
        });
        *fanout.after_first_post.lock().unwrap() = Some(reconnect);
        presence.disconnect(&ConnectionId::new("b1")).await.unwrap();

        let bob_id = bob.user.id.to_string();
        assert_eq!(
            events(&fanout.recording, "a1"),
            [("user_offline".to_owned(), bob_id.clone()), ("user_online".to_owned(), bob_id)],
            "the last word about Bob is that he is online"
        );
    }

    #[test]
    fn status_rules() {
        assert_eq!(validate_status("  away ").unwrap(), "away");
        assert_eq!(validate_status("in a meeting").unwrap(), "in a meeting");
        assert!(validate_status("").is_err());
        assert!(validate_status(&"x".repeat(65)).is_err());
        assert!(validate_status("a\u{7}b").is_err());
    }

    #[tokio::test]
    async fn only_the_first_connection_announces_and_only_the_last_disconnection() {
        let t = TestApp::new();
        let (alice, bob) = pair(&t).await;
        let presence = &t.app.presence;
        presence.connect(ConnectionId::new("a1"), alice.clone()).await.unwrap();
        for tab in ["b1", "b2", "b3"] {
            presence.connect(ConnectionId::new(tab), bob.clone()).await.unwrap();
        }
        for tab in ["b1", "b2", "b3"] {
            presence.disconnect(&ConnectionId::new(tab)).await.unwrap();
        }
        let heard: Vec<String> = events(&t.fanout, "a1").into_iter().map(|(event, _)| event).collect();
        assert_eq!(heard, ["user_online", "user_offline"]);
        let peers = presence.peers(&Actor::http(&alice.user)).await.unwrap();
        assert_eq!(peers.len(), 1);
        assert!(!peers[0].presence.online);
        assert!(peers[0].presence.last_seen.is_some());
    }
}

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

use serde::Serialize;
use serde_json::json;

use crate::error::{AppError, AppResult};
use crate::model::{Connection, INVISIBLE, Presence, Sender, now_epoch_seconds, now_iso};
use crate::protocol::{event_frame, events, validate_status};
use crate::service::Services;

/// How many times an announcer re-reads the presence after posting before leaving the rest to later ones.
const SETTLE_ROUNDS: usize = 3;

/// A peer's presence as the caller may see it (invisible looks offline).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PeerPresence {
    pub user_id: String,
    pub online: bool,
    /// The chosen status while online, else `offline`.
    pub status: String,
    pub last_seen: Option<String>,
}

impl PeerPresence {
    fn new(user_id: String, presence: &Presence) -> Self {
        PeerPresence {
            user_id,
            online: presence.visible_online(),
            status: presence.visible_status(),
            last_seen: presence.last_seen.clone(),
        }
    }
}

fn presence_frame(user_id: &str, username: &str, online: bool, last_seen: Option<&str>) -> String {
    if online {
        event_frame(events::USER_ONLINE, json!({ "userId": user_id, "username": username }))
    } else {
        event_frame(events::USER_OFFLINE, json!({ "userId": user_id, "username": username, "lastSeen": last_seen }))
    }
}

impl Services {
    /// `$connect`: stores the connection of the token's user and, if it is their first, announces them.
    pub async fn open_connection(&self, connection_id: &str, token: Option<&str>) -> AppResult<Connection> {
        let user = self.authenticate(token).await?;
        let now = now_epoch_seconds();
        let connection = Connection {
            connection_id: connection_id.to_owned(),
            user_id: user.id,
            username: user.username,
            avatar: user.avatar,
            connected_at: now,
            expires_at: now + self.connection_ttl.as_secs(),
        };
        let presence = self.store.add_connection(&connection).await?;
        let alone = presence.connections.iter().all(|c| c.connection_id == connection.connection_id);
        if alone && presence.visible_online() {
            // Presence is best effort: failing to announce must not refuse the connection.
            if let Err(e) = self.announce(&connection.user_id, &connection.username, true, None).await {
                e.log();
            }
        }
        Ok(connection)
    }

    /// `$disconnect`: forgets the connection and its rooms and, if it was the user's last, announces them
    /// offline. An unknown connection (already gone) changes nothing.
    pub async fn close_connection(&self, connection_id: &str) -> AppResult<Option<Connection>> {
        let Some(connection) = self.store.get_connection(connection_id).await? else { return Ok(None) };
        self.store.leave_all(connection_id).await?;
        let last_seen = now_iso();
        let presence = self.store.remove_connection(&connection, &last_seen).await?;
        if presence.connections.is_empty()
            && presence.status.as_deref() != Some(INVISIBLE)
            && let Err(e) = self.announce(&connection.user_id, &connection.username, false, Some(&last_seen)).await
        {
            e.log();
        }
        Ok(Some(connection))
    }

    /// Tells the user's audience they are `online` (or not), then settles: re-reads the presence and says
    /// it again while what was last said is no longer true.
    async fn announce(&self, user_id: &str, username: &str, online: bool, last_seen: Option<&str>) -> AppResult<()> {
        let audience = self.presence_audience(user_id).await?;
        if audience.is_empty() {
            return Ok(());
        }
        self.notify(&audience, &presence_frame(user_id, username, online, last_seen), None).await;
        let mut said = online;
        for _ in 0..SETTLE_ROUNDS {
            let truth = self.store.presence(user_id).await?;
            if truth.visible_online() == said {
                return Ok(());
            }
            said = truth.visible_online();
            tracing::info!(%user_id, online = said, "presence changed while announcing; announcing again");
            self.notify(&audience, &presence_frame(user_id, username, said, truth.last_seen.as_deref()), None).await;
        }
        Ok(())
    }

    /// Who sees a user's presence: their friends and the members of their conversations.
    async fn presence_audience(&self, user_id: &str) -> AppResult<Vec<String>> {
        let graph = self.store.user_graph(user_id).await?;
        let mut audience: BTreeSet<String> = graph.friend_ids.into_iter().collect();
        audience.extend(self.store.members_of(&graph.conversation_ids).await?);
        audience.remove(user_id);
        Ok(audience.into_iter().collect())
    }

    /// The presence of everyone whose presence the caller is told about (friends and conversation peers): what
    /// a client asks right after connecting, since announcements made during its handshake did not reach it.
    pub async fn peers_presence(&self, me: &str) -> AppResult<Vec<PeerPresence>> {
        let audience = self.presence_audience(me).await?;
        let presences = self.store.presences(&audience).await?;
        let mut peers: Vec<PeerPresence> =
            presences.iter().map(|(user_id, presence)| PeerPresence::new(user_id.clone(), presence)).collect();
        peers.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Ok(peers)
    }

    /// The caller's own status and last-seen time.
    pub async fn own_status(&self, me: &str) -> AppResult<(String, Option<String>)> {
        let presence = self.store.presence(me).await?;
        Ok((presence.status.unwrap_or_else(|| "online".into()), presence.last_seen))
    }

    /// Stores the status and tells friends: `status_changed`, or `user_offline` for invisible (and
    /// `user_online` first when leaving invisible).
    pub async fn set_status(&self, me: &Sender, status: &str) -> AppResult<String> {
        let status = validate_status(status)?;
        let previous = self.store.presence(&me.id).await?.status;
        self.store.set_status(&me.id, &status).await?;
        let friends = self.store.user_graph(&me.id).await?.friend_ids;
        let mut frames = Vec::new();
        if status == INVISIBLE {
            frames.push(presence_frame(&me.id, &me.username, false, Some(&now_iso())));
        } else {
            if previous.as_deref() == Some(INVISIBLE) {
                frames.push(presence_frame(&me.id, &me.username, true, None));
            }
            frames.push(event_frame(
                events::STATUS_CHANGED,
                json!({ "userId": me.id, "username": me.username, "status": status }),
            ));
        }
        self.notify_all(&friends, &frames, None).await;
        Ok(status)
    }

    /// The visible presence of each of `user_ids`, in the given order.
    pub(crate) async fn presence_of_users(&self, user_ids: &[String]) -> AppResult<Vec<PeerPresence>> {
        let presences = self.store.presences(user_ids).await?;
        user_ids
            .iter()
            .map(|id| {
                let presence = presences.get(id).ok_or_else(|| AppError::internal("presence lookup lost a user"))?;
                Ok(PeerPresence::new(id.clone(), presence))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::fanout::{Fanout, PostOutcome, RecordingFanout};
    use crate::service::{CreateConversation, Credentials, Session};
    use crate::store::ConnectionStore;

    type Hook = Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Records like [`RecordingFanout`], and runs a hook right after the first post: something that happens
    /// in another Lambda while this one is announcing.
    struct CrossingFanout {
        recording: RecordingFanout,
        after_first_post: Mutex<Option<Hook>>,
    }

    #[async_trait]
    impl Fanout for CrossingFanout {
        async fn post(&self, connection_id: &str, frame: &str) -> PostOutcome {
            let outcome = self.recording.post(connection_id, frame).await;
            let hook = self.after_first_post.lock().unwrap().take();
            if let Some(hook) = hook {
                hook.await;
            }
            outcome
        }
    }

    async fn register(services: &Services, name: &str) -> Session {
        let credentials = Credentials { username: name.into(), password: "password123".into(), avatar: None };
        services.register(credentials).await.unwrap()
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
        let (plain, store, _) = Services::in_memory();
        let fanout = Arc::new(CrossingFanout { recording: RecordingFanout::new(), after_first_post: Mutex::new(None) });
        let services = Services { fanout: fanout.clone(), ..plain };
        let (alice, bob) = (register(&services, "alice").await, register(&services, "bob").await);
        let private = CreateConversation::Private { participant_id: bob.user.id.clone() };
        services.create_conversation(&alice.user, private).await.unwrap();
        services.open_connection("a1", Some(&alice.token)).await.unwrap();
        let b1 = services.open_connection("b1", Some(&bob.token)).await.unwrap();
        fanout.recording.clear();

        // Bob's last tab closes; while `user_offline` is being posted, he reconnects in another Lambda whose
        // `user_online` reached Alice first.
        let mut b2 = b1.clone();
        b2.connection_id = "b2".into();
        let reconnect = {
            let store = store.clone();
            Box::pin(async move {
                store.add_connection(&b2).await.unwrap();
            })
        };
        *fanout.after_first_post.lock().unwrap() = Some(reconnect);
        services.close_connection("b1").await.unwrap();

        let bob_id = bob.user.id.clone();
        assert_eq!(
            events(&fanout.recording, "a1"),
            [("user_offline".to_owned(), bob_id.clone()), ("user_online".to_owned(), bob_id)],
            "the last word about Bob is that he is online"
        );
    }

    #[tokio::test]
    async fn only_the_first_connection_announces_and_only_the_last_disconnection() {
        let (services, _, fanout) = Services::in_memory();
        let (alice, bob) = (register(&services, "alice").await, register(&services, "bob").await);
        let private = CreateConversation::Private { participant_id: bob.user.id.clone() };
        services.create_conversation(&alice.user, private).await.unwrap();
        services.open_connection("a1", Some(&alice.token)).await.unwrap();
        for tab in ["b1", "b2", "b3"] {
            services.open_connection(tab, Some(&bob.token)).await.unwrap();
        }
        for tab in ["b1", "b2", "b3"] {
            services.close_connection(tab).await.unwrap();
        }
        let heard: Vec<String> = events(&fanout, "a1").into_iter().map(|(event, _)| event).collect();
        assert_eq!(heard, ["user_online", "user_offline"]);
        let peers = services.peers_presence(&alice.user.id).await.unwrap();
        assert_eq!(peers.len(), 1);
        assert!(!peers[0].online);
        assert!(peers[0].last_seen.is_some());
    }
}

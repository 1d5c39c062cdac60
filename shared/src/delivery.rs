//! Delivering frames to connected clients: the policy over the [`Fanout`] port. Read the recipients'
//! connections from their presence records (one `BatchGetItem` per 100 users, never a Scan), post concurrently
//! with a bound, retry throttling with backoff, and stop posting to connections API Gateway reports gone.
//!
//! **A 410 is not always a dead connection.** API Gateway answers 410 for a connection whose `$connect` has not
//! returned yet, and users who connect together post to each other during their handshakes. So a connection is
//! only dropped when it answered 410 more than [`HANDSHAKE_GRACE_SECS`] after it was stored; a younger one just
//! misses this frame (the client catches up after connecting).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use futures_util::{StreamExt, stream};

use crate::model::{ConnectionId, LiveConnection, UserId, now_epoch_seconds};
use crate::ports::{ConnectionStore, Fanout, PostOutcome};
use crate::retry;

/// How long after `$connect` stored a connection a 410 for it is not trusted. It must exceed the time
/// `$connect` may take: the connect function's timeout (`Timeout` in infra/template.yaml, checked by a test).
pub const HANDSHAKE_GRACE_SECS: u64 = 30;

const POST_ATTEMPTS: u32 = 4;

/// One connection to deliver to, and whose it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub user_id: UserId,
    pub connection: LiveConnection,
}

/// Counts of one delivery, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Frames accepted by API Gateway.
    pub delivered: usize,
    /// Connections found gone (and dropped from their user's presence).
    pub gone: usize,
    /// Connections that answered 410 during their handshake grace: kept, this frame missed.
    pub handshaking: usize,
    /// Frames that could not be delivered for another reason.
    pub failed: usize,
    /// Users with at least one connection that accepted every frame.
    pub reached: BTreeSet<UserId>,
    /// The live connections found per recipient, including a skipped one, so follow-up frames to the same
    /// users need no second lookup.
    pub found: BTreeMap<UserId, Vec<LiveConnection>>,
}

impl DeliveryReport {
    /// The connections found for `user_id`, as targets.
    pub fn targets_of(&self, user_id: &UserId) -> Vec<Target> {
        self.found
            .get(user_id)
            .into_iter()
            .flatten()
            .map(|connection| Target { user_id: user_id.clone(), connection: connection.clone() })
            .collect()
    }
}

/// Delivers frames to users and connections. Never fails: delivery is best effort, and what was stored stays
/// available for catch-up.
#[derive(Clone)]
pub struct Delivery {
    connections: Arc<dyn ConnectionStore>,
    fanout: Arc<dyn Fanout>,
}

impl Delivery {
    pub fn new(connections: Arc<dyn ConnectionStore>, fanout: Arc<dyn Fanout>) -> Self {
        Delivery { connections, fanout }
    }

    /// Sends `frames`, in order, to every live connection of every user in `user_ids`, except `skip` (the
    /// actor's own connection, which gets an ack instead).
    pub async fn to_users(
        &self,
        user_ids: &[UserId],
        frames: &[String],
        skip: Option<&ConnectionId>,
    ) -> DeliveryReport {
        let unique: Vec<UserId> = user_ids.iter().cloned().collect::<HashSet<_>>().into_iter().collect();
        let presences = self.connections.presences(&unique).await.unwrap_or_else(|e| {
            tracing::warn!(recipients = unique.len(), error = ?e, "could not look up connections");
            HashMap::new()
        });
        let found: BTreeMap<UserId, Vec<LiveConnection>> =
            presences.into_iter().map(|(user_id, presence)| (user_id, presence.connections)).collect();
        let targets: Vec<Target> = found
            .iter()
            .flat_map(|(user_id, live)| {
                live.iter().map(move |connection| Target { user_id: user_id.clone(), connection: connection.clone() })
            })
            .filter(|target| Some(&target.connection.connection_id) != skip)
            .collect();
        let mut report = self.to_connections(targets, frames).await;
        report.found = found;
        tracing::info!(
            recipients = unique.len(),
            delivered = report.delivered,
            gone = report.gone,
            handshaking = report.handshaking,
            failed = report.failed,
            "fan-out"
        );
        report
    }

    /// Sends one frame to each of `user_ids`' connections.
    pub async fn event(&self, user_ids: &[UserId], frame: String, skip: Option<&ConnectionId>) -> DeliveryReport {
        self.to_users(user_ids, &[frame], skip).await
    }

    /// Sends `frames`, in order, to each target, concurrently across targets.
    pub async fn to_connections(&self, targets: Vec<Target>, frames: &[String]) -> DeliveryReport {
        let fanout = self.fanout.as_ref();
        let outcomes: Vec<(Target, usize, PostOutcome)> = stream::iter(targets)
            .map(|target| async move {
                let mut delivered = 0;
                for frame in frames {
                    match post_with_retry(fanout, &target.connection.connection_id, frame).await {
                        PostOutcome::Delivered => delivered += 1,
                        other => return (target, delivered, other),
                    }
                }
                (target, delivered, PostOutcome::Delivered)
            })
            .buffer_unordered(fanout.max_in_flight().max(1))
            .collect()
            .await;

        let now = now_epoch_seconds();
        let mut report = DeliveryReport::default();
        for (target, delivered, last) in outcomes {
            report.delivered += delivered;
            match last {
                PostOutcome::Delivered => {
                    report.reached.insert(target.user_id);
                }
                PostOutcome::Gone if now < target.connection.connected_at.saturating_add(HANDSHAKE_GRACE_SECS) => {
                    report.handshaking += 1;
                }
                PostOutcome::Gone => {
                    report.gone += 1;
                    if let Err(e) = self.connections.drop_gone_connection(&target.user_id, &target.connection).await {
                        let connection_id = &target.connection.connection_id;
                        tracing::warn!(%connection_id, error = ?e, "could not drop gone connection");
                    }
                }
                PostOutcome::Throttled | PostOutcome::Failed => report.failed += frames.len() - delivered,
            }
        }
        report
    }

    /// Answers the connection a request came from (an `ack`, an `error`, a `pong`).
    pub async fn reply(&self, connection_id: &ConnectionId, frame: &str) {
        let outcome = post_with_retry(self.fanout.as_ref(), connection_id, frame).await;
        if outcome != PostOutcome::Delivered {
            tracing::info!(%connection_id, ?outcome, "reply not delivered");
        }
    }
}

/// Posts with retries on throttling.
async fn post_with_retry(fanout: &dyn Fanout, connection_id: &ConnectionId, frame: &str) -> PostOutcome {
    let mut attempt = 0;
    loop {
        let outcome = fanout.post(connection_id, frame).await;
        attempt += 1;
        if outcome != PostOutcome::Throttled || attempt >= POST_ATTEMPTS {
            return outcome;
        }
        retry::pause(attempt + 2).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Connection;
    use crate::testing::{InMemoryStore, RecordingFanout};

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    /// Connects `connection` of `user`, stored `age` seconds ago.
    async fn connect_aged(store: &InMemoryStore, name: &str, connection: &str, age: u64) {
        let connected_at = now_epoch_seconds() - age;
        store
            .add_connection(&Connection {
                connection_id: ConnectionId::new(connection),
                user_id: user(name),
                username: name.into(),
                avatar: None,
                connected_at,
                expires_at: connected_at + 3600,
            })
            .await
            .unwrap();
    }

    async fn connect(store: &InMemoryStore, name: &str, connection: &str) {
        connect_aged(store, name, connection, HANDSHAKE_GRACE_SECS + 5).await;
    }

    fn setup() -> (Arc<InMemoryStore>, Arc<RecordingFanout>, Delivery) {
        let (store, fanout) = (Arc::new(InMemoryStore::new()), Arc::new(RecordingFanout::new()));
        let delivery = Delivery::new(store.clone(), fanout.clone());
        (store, fanout, delivery)
    }

    #[tokio::test]
    async fn delivers_to_every_connection_of_every_user_except_the_skipped_one() {
        let (store, fanout, delivery) = setup();
        connect(&store, "alice", "a1").await;
        connect(&store, "alice", "a2").await;
        connect(&store, "bob", "b1").await;
        connect(&store, "carol", "c1").await;
        let users = [user("alice"), user("bob"), user("alice")];
        let frames = [r#"{"event":"x"}"#.to_string(), r#"{"event":"y"}"#.to_string()];
        let report = delivery.to_users(&users, &frames, Some(&ConnectionId::new("a1"))).await;
        assert_eq!((report.delivered, report.gone, report.failed), (4, 0, 0));
        assert_eq!(report.reached, BTreeSet::from([user("alice"), user("bob")]));
        assert_eq!(report.found[&user("alice")].len(), 2, "the skipped connection is still reported as found");
        assert_eq!(fanout.frames("b1"), vec![serde_json::json!({"event":"x"}), serde_json::json!({"event":"y"})]);
        assert!(fanout.frames("a1").is_empty());
        assert_eq!(fanout.frames("a2").len(), 2);
        assert!(fanout.frames("c1").is_empty(), "non-recipients get nothing");
    }

    #[tokio::test]
    async fn drops_exactly_the_gone_connections_but_keeps_their_records() {
        let (store, fanout, delivery) = setup();
        connect(&store, "alice", "a1").await;
        connect(&store, "bob", "b1").await;
        connect(&store, "bob", "b2").await;
        fanout.mark_gone("b1");
        let report =
            delivery.to_users(&[user("alice"), user("bob")], &["{}".into()], Some(&ConnectionId::new("a1"))).await;
        assert_eq!((report.delivered, report.gone, report.failed), (1, 1, 0));
        assert_eq!(store.connection_ids(&user("bob")), vec!["b2".to_string()]);
        assert_eq!(store.connection_ids(&user("alice")), vec!["a1".to_string()], "sender kept");
        let record = store.get_connection(&ConnectionId::new("b1")).await.unwrap();
        assert!(record.is_some(), "the $disconnect that follows needs it");
    }

    #[tokio::test]
    async fn a_410_during_the_handshake_grace_keeps_the_connection() {
        let (store, fanout, delivery) = setup();
        connect_aged(&store, "bob", "handshaking", 0).await;
        connect_aged(&store, "bob", "almost", HANDSHAKE_GRACE_SECS - 2).await;
        connect_aged(&store, "bob", "dead", HANDSHAKE_GRACE_SECS + 1).await;
        for connection in ["handshaking", "almost", "dead"] {
            fanout.mark_gone(connection);
        }
        let report = delivery.to_users(&[user("bob")], &["{}".into()], None).await;
        assert_eq!((report.delivered, report.gone, report.handshaking), (0, 1, 2));
        assert_eq!(store.connection_ids(&user("bob")), vec!["almost".to_string(), "handshaking".to_string()]);
    }

    #[tokio::test]
    async fn retries_throttling_then_gives_up() {
        let (store, fanout, delivery) = setup();
        connect(&store, "bob", "b1").await;
        connect(&store, "carol", "c1").await;
        fanout.throttle("b1", 2);
        fanout.throttle("c1", 100);
        let report = delivery.to_users(&[user("bob"), user("carol")], &["{}".into()], None).await;
        assert_eq!((report.delivered, report.gone, report.failed), (1, 0, 1));
        assert_eq!(report.reached, BTreeSet::from([user("bob")]));
        assert_eq!(fanout.frames("b1").len(), 1);
        assert_eq!(store.connection_ids(&user("carol")).len(), 1, "throttled is not gone");
    }

    #[test]
    fn the_handshake_grace_outlasts_the_connect_function() {
        let template = include_str!("../../infra/template.yaml");
        let timeout: u64 = template
            .lines()
            .find_map(|line| line.trim().strip_prefix("Timeout: "))
            .and_then(|value| value.trim().parse().ok())
            .expect("Globals.Function.Timeout in the template");
        assert!(
            timeout < HANDSHAKE_GRACE_SECS,
            "a $connect may run {timeout} s, longer than the {HANDSHAKE_GRACE_SECS} s grace"
        );
    }
}

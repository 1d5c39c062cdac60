//! Delivering frames to connected clients through the API Gateway Management API.
//!
//! [`Fanout`] is the one-connection port (PostToConnection); [`deliver_to_users`] is the policy on top: read the
//! recipients' connections from their presence records (one `BatchGetItem` per 100 users, never a Scan), post
//! concurrently with a bound, retry throttling with backoff, and stop posting to connections API Gateway
//! reports gone.
//!
//! **A 410 is not always a dead connection.** API Gateway answers 410 for a connection whose `$connect` has not
//! returned yet, and users who connect together post to each other during their handshakes. So a connection is
//! only dropped when it answered 410 more than [`HANDSHAKE_GRACE_SECS`] after it was stored; a younger one just
//! misses this frame (the client catches up after connecting).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures_util::{StreamExt, stream};

use crate::model::{LiveConnection, now_epoch_seconds};
use crate::store::ConnectionStore;
use crate::store::dynamo::backoff;

/// How long after `$connect` stored a connection a 410 for it is not trusted. It must exceed the time
/// `$connect` may take: the connect function's timeout (`Timeout` in infra/template.yaml, checked by a test).
pub const HANDSHAKE_GRACE_SECS: u64 = 30;

/// What happened to one PostToConnection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostOutcome {
    Delivered,
    /// 410: the client is gone, or still in its handshake.
    Gone,
    /// Account-level throttling or a full client buffer; worth retrying shortly.
    Throttled,
    /// Anything else (already logged).
    Failed,
}

#[async_trait]
pub trait Fanout: Send + Sync {
    async fn post(&self, connection_id: &str, frame: &str) -> PostOutcome;

    /// How many posts one delivery keeps in flight.
    fn max_in_flight(&self) -> usize {
        DEFAULT_POSTS_IN_FLIGHT
    }
}

/// PostToConnection calls in flight at once per invocation, unless configured (`POSTS_IN_FLIGHT`).
pub const DEFAULT_POSTS_IN_FLIGHT: usize = 64;
const POST_ATTEMPTS: u32 = 4;

/// Posts with retries on throttling.
pub async fn post_with_retry(fanout: &dyn Fanout, connection_id: &str, frame: &str) -> PostOutcome {
    let mut attempt = 0;
    loop {
        let outcome = fanout.post(connection_id, frame).await;
        attempt += 1;
        if outcome != PostOutcome::Throttled || attempt >= POST_ATTEMPTS {
            return outcome;
        }
        tokio::time::sleep(backoff(attempt + 2)).await;
    }
}

/// One connection to deliver to, and whose it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub user_id: String,
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
    pub reached: BTreeSet<String>,
    /// The live connections found per recipient, including a skipped one, so follow-up frames to the same
    /// users need no second lookup.
    pub found: BTreeMap<String, Vec<LiveConnection>>,
}

/// Sends `frames`, in order, to every live connection of every user in `user_ids`, except `skip_connection`
/// (the sender's own connection, which gets an ack instead). Never fails: delivery is best effort, and what
/// was stored stays available for catch-up.
pub async fn deliver_to_users(
    connections: &dyn ConnectionStore,
    fanout: &dyn Fanout,
    user_ids: &[String],
    frames: &[String],
    skip_connection: Option<&str>,
) -> DeliveryReport {
    let unique: Vec<String> = user_ids.iter().cloned().collect::<HashSet<_>>().into_iter().collect();
    let presences = connections.presences(&unique).await.unwrap_or_else(|e| {
        tracing::warn!(recipients = unique.len(), error = ?e, "could not look up connections");
        HashMap::new()
    });
    let found: BTreeMap<String, Vec<LiveConnection>> =
        presences.into_iter().map(|(user_id, presence)| (user_id, presence.connections)).collect();
    let targets: Vec<Target> = found
        .iter()
        .flat_map(|(user_id, live)| {
            live.iter().map(move |connection| Target { user_id: user_id.clone(), connection: connection.clone() })
        })
        .filter(|target| Some(target.connection.connection_id.as_str()) != skip_connection)
        .collect();
    let mut report = deliver_to_connections(connections, fanout, targets, frames).await;
    report.found = found;
    report
}

/// Sends `frames`, in order, to each target, concurrently across targets.
pub async fn deliver_to_connections(
    connections: &dyn ConnectionStore,
    fanout: &dyn Fanout,
    targets: Vec<Target>,
    frames: &[String],
) -> DeliveryReport {
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
                if let Err(e) = connections.drop_gone_connection(&target.user_id, &target.connection).await {
                    tracing::warn!(connection_id = %target.connection.connection_id, error = ?e, "could not drop gone connection");
                }
            }
            PostOutcome::Throttled | PostOutcome::Failed => report.failed += frames.len() - delivered,
        }
    }
    report
}

/// [`Fanout`] over the API Gateway Management API.
pub struct ApiGatewayFanout {
    client: aws_sdk_apigatewaymanagement::Client,
    max_in_flight: usize,
}

impl ApiGatewayFanout {
    pub fn new(client: aws_sdk_apigatewaymanagement::Client, max_in_flight: usize) -> Self {
        ApiGatewayFanout { client, max_in_flight }
    }
}

#[async_trait]
impl Fanout for ApiGatewayFanout {
    async fn post(&self, connection_id: &str, frame: &str) -> PostOutcome {
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(frame.as_bytes()))
            .send()
            .await;
        match result {
            Ok(_) => PostOutcome::Delivered,
            Err(err) => match err.as_service_error() {
                Some(PostToConnectionError::GoneException(_)) => PostOutcome::Gone,
                Some(PostToConnectionError::LimitExceededException(_)) => PostOutcome::Throttled,
                _ if err.raw_response().is_some_and(|r| r.status().as_u16() == 429) => PostOutcome::Throttled,
                _ if err.raw_response().is_some_and(|r| r.status().as_u16() == 410) => PostOutcome::Gone,
                _ => {
                    tracing::warn!(%connection_id, error = ?err, "PostToConnection failed");
                    PostOutcome::Failed
                }
            },
        }
    }

    fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }
}

/// A [`Fanout`] that records frames per connection, for handler tests. Connections can be marked gone or
/// made to throttle a number of times first.
#[derive(Default)]
pub struct RecordingFanout {
    sent: Mutex<Vec<(String, String)>>,
    gone: Mutex<HashSet<String>>,
    throttles: Mutex<HashMap<String, u32>>,
}

impl RecordingFanout {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn mark_gone(&self, connection_id: &str) {
        self.gone.lock().unwrap().insert(connection_id.to_owned());
    }

    /// The connection accepts frames again (its handshake completed).
    pub fn mark_alive(&self, connection_id: &str) {
        self.gone.lock().unwrap().remove(connection_id);
    }

    pub fn throttle(&self, connection_id: &str, times: u32) {
        self.throttles.lock().unwrap().insert(connection_id.to_owned(), times);
    }

    /// Frames delivered to a connection, parsed, in order.
    pub fn frames(&self, connection_id: &str) -> Vec<serde_json::Value> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| c == connection_id)
            .map(|(_, f)| serde_json::from_str(f).expect("frames are JSON"))
            .collect()
    }

    /// Forgets what was sent so far (after a test's setup).
    pub fn clear(&self) {
        self.sent.lock().unwrap().clear();
    }

    pub fn total_posts(&self) -> usize {
        self.sent.lock().unwrap().len()
    }
}

#[async_trait]
impl Fanout for RecordingFanout {
    async fn post(&self, connection_id: &str, frame: &str) -> PostOutcome {
        if self.gone.lock().unwrap().contains(connection_id) {
            return PostOutcome::Gone;
        }
        if let Some(left) = self.throttles.lock().unwrap().get_mut(connection_id).filter(|n| **n > 0) {
            *left -= 1;
            return PostOutcome::Throttled;
        }
        self.sent.lock().unwrap().push((connection_id.to_owned(), frame.to_owned()));
        PostOutcome::Delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Connection;
    use crate::store::memory::InMemoryStore;

    /// Connects `connection` of `user`, stored `age` seconds ago.
    async fn connect_aged(store: &InMemoryStore, user: &str, connection: &str, age: u64) {
        let connected_at = now_epoch_seconds() - age;
        store
            .add_connection(&Connection {
                connection_id: connection.into(),
                user_id: user.into(),
                username: user.into(),
                avatar: None,
                connected_at,
                expires_at: connected_at + 3600,
            })
            .await
            .unwrap();
    }

    async fn connect(store: &InMemoryStore, user: &str, connection: &str) {
        connect_aged(store, user, connection, HANDSHAKE_GRACE_SECS + 5).await;
    }

    async fn connection_ids(store: &InMemoryStore, user: &str) -> Vec<String> {
        let mut ids: Vec<String> =
            store.presence(user).await.unwrap().connections.into_iter().map(|c| c.connection_id).collect();
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn delivers_to_every_connection_of_every_user_except_the_skipped_one() {
        let store = InMemoryStore::new();
        let fanout = RecordingFanout::new();
        connect(&store, "alice", "a1").await;
        connect(&store, "alice", "a2").await;
        connect(&store, "bob", "b1").await;
        connect(&store, "carol", "c1").await;
        let users = vec!["alice".to_string(), "bob".to_string(), "alice".to_string()];
        let frames = [r#"{"event":"x"}"#.to_string(), r#"{"event":"y"}"#.to_string()];
        let report = deliver_to_users(&store, &fanout, &users, &frames, Some("a1")).await;
        assert_eq!((report.delivered, report.gone, report.failed), (4, 0, 0));
        assert_eq!(report.reached, BTreeSet::from(["alice".to_string(), "bob".to_string()]));
        assert_eq!(report.found["alice"].len(), 2, "the skipped connection is still reported as found");
        assert_eq!(fanout.frames("b1"), vec![serde_json::json!({"event":"x"}), serde_json::json!({"event":"y"})]);
        assert!(fanout.frames("a1").is_empty());
        assert_eq!(fanout.frames("a2").len(), 2);
        assert!(fanout.frames("c1").is_empty(), "non-recipients get nothing");
    }

    #[tokio::test]
    async fn drops_exactly_the_gone_connections_but_keeps_their_records() {
        let store = InMemoryStore::new();
        let fanout = RecordingFanout::new();
        connect(&store, "alice", "a1").await;
        connect(&store, "bob", "b1").await;
        connect(&store, "bob", "b2").await;
        fanout.mark_gone("b1");
        let report =
            deliver_to_users(&store, &fanout, &["alice".into(), "bob".into()], &["{}".into()], Some("a1")).await;
        assert_eq!((report.delivered, report.gone, report.failed), (1, 1, 0));
        assert_eq!(connection_ids(&store, "bob").await, vec!["b2".to_string()]);
        assert_eq!(connection_ids(&store, "alice").await, vec!["a1".to_string()], "sender kept");
        assert!(store.get_connection("b1").await.unwrap().is_some(), "the $disconnect that follows needs it");
    }

    #[tokio::test]
    async fn a_410_during_the_handshake_grace_keeps_the_connection() {
        let store = InMemoryStore::new();
        let fanout = RecordingFanout::new();
        connect_aged(&store, "bob", "handshaking", 0).await;
        connect_aged(&store, "bob", "almost", HANDSHAKE_GRACE_SECS - 2).await;
        connect_aged(&store, "bob", "dead", HANDSHAKE_GRACE_SECS + 1).await;
        for connection in ["handshaking", "almost", "dead"] {
            fanout.mark_gone(connection);
        }
        let report = deliver_to_users(&store, &fanout, &["bob".into()], &["{}".into()], None).await;
        assert_eq!((report.delivered, report.gone, report.handshaking), (0, 1, 2));
        assert_eq!(connection_ids(&store, "bob").await, vec!["almost".to_string(), "handshaking".to_string()]);
    }

    #[tokio::test]
    async fn retries_throttling_then_gives_up() {
        let store = InMemoryStore::new();
        let fanout = RecordingFanout::new();
        connect(&store, "bob", "b1").await;
        connect(&store, "carol", "c1").await;
        fanout.throttle("b1", 2);
        fanout.throttle("c1", 100);
        let report = deliver_to_users(&store, &fanout, &["bob".into(), "carol".into()], &["{}".into()], None).await;
        assert_eq!((report.delivered, report.gone, report.failed), (1, 0, 1));
        assert_eq!(report.reached, BTreeSet::from(["bob".to_string()]));
        assert_eq!(fanout.frames("b1").len(), 1);
        assert_eq!(connection_ids(&store, "carol").await.len(), 1, "throttled is not gone");
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

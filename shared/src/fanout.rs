//! Delivering frames to connected clients through the API Gateway Management API.
//!
//! [`Fanout`] is the one-connection port (PostToConnection); [`deliver_to_users`] is the policy on top: look the
//! recipients' connections up with a Query per user (never a Scan), post concurrently with a bound, retry
//! throttling with backoff, and delete exactly the connections that answered 410 Gone.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures_util::{StreamExt, stream};

use crate::store::ConnectionStore;
use crate::store::dynamo::backoff;

/// What happened to one PostToConnection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostOutcome {
    Delivered,
    /// 410: the client is gone; its record must be deleted.
    Gone,
    /// Account-level throttling or a full client buffer; worth retrying shortly.
    Throttled,
    /// Anything else (already logged).
    Failed,
}

#[async_trait]
pub trait Fanout: Send + Sync {
    async fn post(&self, connection_id: &str, frame: &str) -> PostOutcome;
}

/// PostToConnection calls in flight at once per invocation: enough to reach a large group quickly while
/// staying far below the account's shared 10,000 RPS.
pub const MAX_CONCURRENT_POSTS: usize = 32;
/// Recipient connection lookups in flight at once.
const MAX_CONCURRENT_LOOKUPS: usize = 16;
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

/// Counts of one delivery, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Frames accepted by API Gateway.
    pub delivered: usize,
    /// Connections found gone (and deleted).
    pub gone: usize,
    /// Frames that could not be delivered for another reason.
    pub failed: usize,
    /// Users with at least one connection that accepted every frame.
    pub reached: BTreeSet<String>,
    /// The live connections found per recipient, including a skipped one, so follow-up frames to the same
    /// users need no second lookup.
    pub found: BTreeMap<String, Vec<String>>,
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
    let lookups: Vec<(String, Vec<String>)> = stream::iter(unique)
        .map(|user_id| async move {
            let ids = connections.connection_ids_of_user(&user_id).await.unwrap_or_else(|e| {
                tracing::warn!(%user_id, error = ?e, "could not look up connections");
                Vec::new()
            });
            (user_id, ids)
        })
        .buffer_unordered(MAX_CONCURRENT_LOOKUPS)
        .collect()
        .await;
    let targets: Vec<(String, String)> = lookups
        .iter()
        .flat_map(|(user_id, ids)| ids.iter().map(move |id| (user_id.clone(), id.clone())))
        .filter(|(_, connection_id)| Some(connection_id.as_str()) != skip_connection)
        .collect();
    let mut report = deliver_to_connections(connections, fanout, targets, frames).await;
    report.found = lookups.into_iter().collect();
    report
}

/// Sends `frames`, in order, to each `(user id, connection id)` target, concurrently across targets.
pub async fn deliver_to_connections(
    connections: &dyn ConnectionStore,
    fanout: &dyn Fanout,
    targets: Vec<(String, String)>,
    frames: &[String],
) -> DeliveryReport {
    let outcomes: Vec<(String, String, usize, PostOutcome)> = stream::iter(targets)
        .map(|(user_id, connection_id)| async move {
            let mut delivered = 0;
            for frame in frames {
                match post_with_retry(fanout, &connection_id, frame).await {
                    PostOutcome::Delivered => delivered += 1,
                    other => return (user_id, connection_id, delivered, other),
                }
            }
            (user_id, connection_id, delivered, PostOutcome::Delivered)
        })
        .buffer_unordered(MAX_CONCURRENT_POSTS)
        .collect()
        .await;

    let mut report = DeliveryReport::default();
    for (user_id, connection_id, delivered, last) in outcomes {
        report.delivered += delivered;
        match last {
            PostOutcome::Delivered => {
                report.reached.insert(user_id);
            }
            PostOutcome::Gone => {
                report.gone += 1;
                if let Err(e) = connections.delete_connection(&connection_id, &user_id).await {
                    tracing::warn!(%connection_id, error = ?e, "could not delete gone connection");
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
}

impl ApiGatewayFanout {
    pub fn new(client: aws_sdk_apigatewaymanagement::Client) -> Self {
        ApiGatewayFanout { client }
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

    async fn connect(store: &InMemoryStore, user: &str, connection: &str) {
        store
            .put_connection(&Connection {
                connection_id: connection.into(),
                user_id: user.into(),
                username: user.into(),
                avatar: None,
                connected_at: "t".into(),
                expires_at: u64::MAX,
            })
            .await
            .unwrap();
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
        assert_eq!(fanout.frames("b1"), vec![serde_json::json!({"event":"x"}), serde_json::json!({"event":"y"})]);
        assert!(fanout.frames("a1").is_empty());
        assert_eq!(fanout.frames("a2").len(), 2);
        assert!(fanout.frames("c1").is_empty(), "non-recipients get nothing");
    }

    #[tokio::test]
    async fn deletes_exactly_the_gone_connections() {
        let store = InMemoryStore::new();
        let fanout = RecordingFanout::new();
        connect(&store, "alice", "a1").await;
        connect(&store, "bob", "b1").await;
        connect(&store, "bob", "b2").await;
        fanout.mark_gone("b1");
        let report =
            deliver_to_users(&store, &fanout, &["alice".into(), "bob".into()], &["{}".into()], Some("a1")).await;
        assert_eq!((report.delivered, report.gone, report.failed), (1, 1, 0));
        assert_eq!(store.connection_ids_of_user("bob").await.unwrap(), vec!["b2".to_string()]);
        assert_eq!(store.connection_ids_of_user("alice").await.unwrap(), vec!["a1".to_string()], "sender kept");
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
        assert_eq!(store.connection_ids_of_user("carol").await.unwrap().len(), 1, "throttled is not gone");
    }
}

//! Delivering frames to connected clients: the policy over the [`Fanout`] and [`FanoutQueue`] ports. Read the
//! recipients' connections from their presence records (one `BatchGetItem` per 100 users, never a Scan), post
//! concurrently with a bound, retry throttling with backoff, and stop posting to connections API Gateway
//! reports gone.
//!
//! **Big deliveries go to workers.** Up to `inline_max` connections (`FANOUT_INLINE_MAX`) the invocation that stored the
//! change posts itself (lowest latency). Above that it splits the targets into [`FanoutJob`]s of
//! [`TARGETS_PER_JOB`] and enqueues them; `fanout-worker` invocations run them in parallel ([`Delivery::run_job`]),
//! so one room is not limited by what one process can post before API Gateway's 29-second integration timeout.
//! Connections that still fail after the in-process retries are re-enqueued alone, later, as a job of the next
//! attempt; after [`MAX_JOB_ATTEMPTS`] a job fails for good and SQS moves it to the dead-letter queue.
//!
//! **A 410 is not always a dead connection.** API Gateway answers 410 for a connection whose `$connect` has not
//! returned yet, and users who connect together post to each other during their handshakes. So a connection is
//! only dropped when it answered 410 more than [`HANDSHAKE_GRACE_SECS`] after it was stored; a younger one just
//! misses this frame (the client catches up after connecting).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use futures_util::{StreamExt, stream};

use crate::error::{AppError, AppResult};
use crate::model::{ConnectionId, LiveConnection, UserId, now_epoch_seconds};
use crate::ports::{ConnectionStore, Fanout, FanoutJob, FanoutQueue, PostOutcome, Target};
use crate::retry;

/// How long after `$connect` stored a connection a 410 for it is not trusted. It must exceed the time
/// `$connect` may take: the connect function's timeout (`Timeout` in infra/template.yaml, checked by a test).
pub const HANDSHAKE_GRACE_SECS: u64 = 30;
/// Connections per queued job: a job of this many posts takes a worker well under a second, and its JSON (with
/// the largest frames) stays far below SQS's 256 KB message limit.
pub const TARGETS_PER_JOB: usize = 250;
/// Tries of one connection through the queue before its job goes to the dead-letter queue.
pub const MAX_JOB_ATTEMPTS: u32 = 5;

const POST_ATTEMPTS: u32 = 4;

/// Counts of one delivery, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Frames accepted by API Gateway.
    pub delivered: usize,
    /// Connections found gone (and dropped from their user's presence).
    pub gone: usize,
    /// Connections that answered 410 during their handshake grace: kept, this frame missed.
    pub handshaking: usize,
    /// Frames that could not be delivered here (re-enqueued for a later attempt when possible).
    pub failed: usize,
    /// Connections handed to workers, whose outcome this report does not know.
    pub queued: usize,
    /// Users with at least one connection that accepted every frame here.
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
    queue: Arc<dyn FanoutQueue>,
    inline_max: usize,
}

impl Delivery {
    /// `inline_max`: the most connections one delivery posts to itself before handing them to workers.
    pub fn new(
        connections: Arc<dyn ConnectionStore>,
        fanout: Arc<dyn Fanout>,
        queue: Arc<dyn FanoutQueue>,
        inline_max: usize,
    ) -> Self {
        Delivery { connections, fanout, queue, inline_max }
    }

    /// Sends `frames`, in order, to every live connection of every user in `user_ids`, except `skip` (the
    /// actor's own connection, which gets an ack instead).
    pub async fn to_users(
        &self,
        user_ids: &[UserId],
        frames: &[String],
        skip: Option<&ConnectionId>,
    ) -> DeliveryReport {
        self.to_users_by(None, user_ids, frames, skip).await
    }

    /// [`Delivery::to_users`] of what `author` did (a message, a reaction, their presence): recipients who
    /// blocked the author are skipped. Their block list comes with the presence read that finds their
    /// connections, so the filter costs no request.
    pub async fn to_users_by(
        &self,
        author: Option<&UserId>,
        user_ids: &[UserId],
        frames: &[String],
        skip: Option<&ConnectionId>,
    ) -> DeliveryReport {
        let unique: Vec<UserId> = user_ids.iter().cloned().collect::<HashSet<_>>().into_iter().collect();
        let mut presences = self.connections.presences(&unique).await.unwrap_or_else(|e| {
            tracing::warn!(recipients = unique.len(), error = ?e, "could not look up connections");
            HashMap::new()
        });
        if let Some(author) = author {
            presences.retain(|_, presence| !presence.blocks(author));
        }
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
            queued = report.queued,
            "fan-out"
        );
        report
    }

    /// Sends one frame to each of `user_ids`' connections.
    pub async fn event(&self, user_ids: &[UserId], frame: String, skip: Option<&ConnectionId>) -> DeliveryReport {
        self.to_users(user_ids, &[frame], skip).await
    }

    /// Sends one frame about what `author` did to each of `user_ids`' connections, but not to those who blocked
    /// the author.
    pub async fn event_by(
        &self,
        author: &UserId,
        user_ids: &[UserId],
        frame: String,
        skip: Option<&ConnectionId>,
    ) -> DeliveryReport {
        self.to_users_by(Some(author), user_ids, &[frame], skip).await
    }

    /// Sends `frames`, in order, to each target: here, or through the queue when there are more than
    /// `inline_max` (here after all if the queue refuses them).
    /// Closes `connections` from the server's side (their `$disconnect`s clean up); every one is tried, the
    /// first failure is returned.
    pub async fn close(&self, connections: &[ConnectionId]) -> AppResult<()> {
        let results = futures_util::future::join_all(connections.iter().map(|c| self.fanout.disconnect(c))).await;
        results.into_iter().collect()
    }

    pub async fn to_connections(&self, targets: Vec<Target>, frames: &[String]) -> DeliveryReport {
        if targets.len() > self.inline_max {
            let queued = targets.len();
            let jobs: Vec<FanoutJob> = targets
                .chunks(TARGETS_PER_JOB)
                .map(|chunk| FanoutJob { frames: frames.to_vec(), targets: chunk.to_vec(), attempt: 1 })
                .collect();
            match self.queue.enqueue(&jobs, 0).await {
                Ok(()) => return DeliveryReport { queued, ..DeliveryReport::default() },
                Err(e) => tracing::warn!(targets = queued, error = ?e, "could not enqueue a delivery; posting it here"),
            }
        }
        let (report, unfinished) = self.post_all(targets, frames).await;
        if !unfinished.is_empty()
            && let Err(e) = self.requeue(unfinished, frames, 1).await
        {
            tracing::warn!(error = ?e, "could not enqueue the failed posts for another attempt");
        }
        report
    }

    /// Runs one queued job (the `fanout-worker` function). Connections that keep failing are enqueued again,
    /// alone and later, as the next attempt. An error means the job must be tried again as a whole: it could
    /// not be parsed, its attempts are spent, or its retry could not be enqueued.
    pub async fn run_job(&self, job: FanoutJob) -> AppResult<DeliveryReport> {
        if job.attempt > MAX_JOB_ATTEMPTS {
            return Err(AppError::internal(format!("fan-out job failed {MAX_JOB_ATTEMPTS} attempts")));
        }
        let (report, unfinished) = self.post_all(job.targets, &job.frames).await;
        self.requeue(unfinished, &job.frames, job.attempt).await?;
        Ok(report)
    }

    /// Enqueues, as attempt `attempt + 1`, the targets that did not take all of `frames` (each with the frames it
    /// still lacks), after a backoff that grows with the attempt.
    async fn requeue(&self, unfinished: Vec<(Target, usize)>, frames: &[String], attempt: u32) -> AppResult<()> {
        let mut by_progress: BTreeMap<usize, Vec<Target>> = BTreeMap::new();
        for (target, delivered) in unfinished {
            by_progress.entry(delivered).or_default().push(target);
        }
        let jobs: Vec<FanoutJob> = by_progress
            .into_iter()
            .flat_map(|(delivered, targets)| {
                targets
                    .chunks(TARGETS_PER_JOB)
                    .map(|chunk| FanoutJob {
                        frames: frames[delivered..].to_vec(),
                        targets: chunk.to_vec(),
                        attempt: attempt + 1,
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        if jobs.is_empty() {
            return Ok(());
        }
        self.queue.enqueue(&jobs, retry_delay_secs(attempt)).await
    }

    /// Posts `frames`, in order, to each target, concurrently across targets. Returns the report and the
    /// targets that failed (throttled past the retries, or another error) with how many frames each took.
    async fn post_all(&self, targets: Vec<Target>, frames: &[String]) -> (DeliveryReport, Vec<(Target, usize)>) {
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
        let mut unfinished = Vec::new();
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
                PostOutcome::Throttled | PostOutcome::Failed => {
                    report.failed += frames.len() - delivered;
                    unfinished.push((target, delivered));
                }
            }
        }
        (report, unfinished)
    }

    /// Answers the connection a request came from (an `ack`, an `error`, a `pong`).
    pub async fn reply(&self, connection_id: &ConnectionId, frame: &str) {
        let outcome = post_with_retry(self.fanout.as_ref(), connection_id, frame).await;
        if outcome != PostOutcome::Delivered {
            tracing::info!(%connection_id, ?outcome, "reply not delivered");
        }
    }
}

/// Seconds before attempt `attempt + 1` of a job: 2, 4, 8, 16.
fn retry_delay_secs(attempt: u32) -> u32 {
    2u32.saturating_pow(attempt.min(6))
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
    use crate::testing::{InMemoryStore, RecordingFanout, RecordingQueue};

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
                session_id: None,
            })
            .await
            .unwrap();
    }

    async fn connect(store: &InMemoryStore, name: &str, connection: &str) {
        connect_aged(store, name, connection, HANDSHAKE_GRACE_SECS + 5).await;
    }

    fn setup() -> (Arc<InMemoryStore>, Arc<RecordingFanout>, Delivery) {
        let (store, fanout, _, delivery) = setup_with_queue(1000);
        (store, fanout, delivery)
    }

    fn setup_with_queue(
        inline_max: usize,
    ) -> (Arc<InMemoryStore>, Arc<RecordingFanout>, Arc<RecordingQueue>, Delivery) {
        let (store, fanout, queue) =
            (Arc::new(InMemoryStore::new()), Arc::new(RecordingFanout::new()), Arc::new(RecordingQueue::new()));
        let delivery = Delivery::new(store.clone(), fanout.clone(), queue.clone(), inline_max);
        (store, fanout, queue, delivery)
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

    #[tokio::test]
    async fn deliveries_above_the_inline_limit_go_to_the_queue_in_jobs_that_reach_everyone_once() {
        let (store, fanout, queue, delivery) = setup_with_queue(3);
        let users: Vec<UserId> = (0..600).map(|i| user(&format!("u{i:03}"))).collect();
        for (i, id) in users.iter().enumerate() {
            connect(&store, id.as_str(), &format!("c{i:03}")).await;
        }
        let report = delivery.to_users(&users, &["{\"event\":\"x\"}".into()], None).await;
        assert_eq!((report.queued, report.delivered, fanout.total_posts()), (600, 0, 0), "nothing posted inline");
        let jobs = queue.take();
        assert_eq!(jobs.iter().map(|(job, _)| job.targets.len()).collect::<Vec<_>>(), [250, 250, 100]);
        assert!(jobs.iter().all(|(job, delay)| job.attempt == 1 && *delay == 0));
        for (job, _) in jobs {
            let done = delivery.run_job(job).await.unwrap();
            assert_eq!(done.failed, 0);
        }
        for i in 0..600 {
            assert_eq!(fanout.frames(&format!("c{i:03}")).len(), 1, "c{i:03} got the frame exactly once");
        }
        assert!(queue.take().is_empty(), "no retries");
    }

    #[tokio::test]
    async fn a_small_delivery_stays_inline() {
        let (store, fanout, queue, delivery) = setup_with_queue(3);
        for name in ["a", "b", "c"] {
            connect(&store, name, name).await;
        }
        let report = delivery.to_users(&[user("a"), user("b"), user("c")], &["{}".into()], None).await;
        assert_eq!((report.delivered, report.queued), (3, 0));
        assert_eq!(fanout.total_posts(), 3);
        assert_eq!(queue.enqueued(), 0);
    }

    #[tokio::test]
    async fn a_refused_enqueue_falls_back_to_posting_inline() {
        let (store, fanout, queue, delivery) = setup_with_queue(1);
        connect(&store, "a", "a1").await;
        connect(&store, "b", "b1").await;
        queue.refuse(true);
        let report = delivery.to_users(&[user("a"), user("b")], &["{}".into()], None).await;
        assert_eq!((report.delivered, report.queued), (2, 0));
        assert_eq!(fanout.total_posts(), 2);
    }

    #[tokio::test]
    async fn a_throttled_worker_retries_only_the_connections_that_failed_later_until_they_succeed() {
        let (store, fanout, queue, delivery) = setup_with_queue(0);
        connect(&store, "a", "a1").await;
        connect(&store, "b", "b1").await;
        // b1 throttles past the in-process retries twice over: two more attempts through the queue.
        fanout.throttle("b1", 2 * POST_ATTEMPTS);
        let frames = ["{\"n\":1}".to_string(), "{\"n\":2}".to_string()];
        delivery.to_users(&[user("a"), user("b")], &frames, None).await;
        let mut attempts = Vec::new();
        while let Some((job, delay)) = queue.take().pop() {
            attempts.push((job.attempt, job.targets.len(), delay));
            delivery.run_job(job).await.unwrap();
        }
        assert_eq!(attempts, [(1, 2, 0), (2, 1, 2), (3, 1, 4)], "(attempt, targets, delay) of each job");
        assert_eq!(fanout.frames("a1").len(), 2, "a1 got both frames once");
        assert_eq!(fanout.frames("b1"), vec![serde_json::json!({"n":1}), serde_json::json!({"n":2})]);
    }

    #[tokio::test]
    async fn a_job_past_its_attempts_fails_so_sqs_moves_it_to_the_dead_letter_queue() {
        let (store, fanout, queue, delivery) = setup_with_queue(0);
        connect(&store, "a", "a1").await;
        fanout.throttle("a1", u32::MAX);
        delivery.to_users(&[user("a")], &["{}".into()], None).await;
        let (attempt, outcome) = loop {
            let (job, _) = queue.take().pop().expect("a job or its retry is waiting");
            let attempt = job.attempt;
            if let Err(e) = delivery.run_job(job).await {
                break (attempt, e);
            }
        };
        assert_eq!(attempt, MAX_JOB_ATTEMPTS + 1);
        assert_eq!(outcome.code(), "internal");
        assert!(fanout.frames("a1").is_empty());
    }

    #[tokio::test]
    async fn a_job_retry_that_cannot_be_enqueued_fails_the_job_as_a_whole() {
        let (store, fanout, queue, delivery) = setup_with_queue(0);
        connect(&store, "a", "a1").await;
        delivery.to_users(&[user("a")], &["{}".into()], None).await;
        let (job, _) = queue.take().pop().unwrap();
        fanout.throttle("a1", u32::MAX);
        queue.refuse(true);
        assert!(delivery.run_job(job).await.is_err(), "SQS must redeliver it");
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

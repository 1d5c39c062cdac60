//! Fan-out: one message into a room whose members hold N connections, against the emulator's own ceiling (the
//! same number of PostToConnection calls made straight from here, no Lambda in between), plus the DynamoDB
//! requests and PostToConnection calls one such message costs, counted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_apigatewaymanagement::primitives::Blob;
use chat_e2e::TestUser;
use chat_e2e::counting::ws_event;
use chat_shared::adapters::ws;
use chat_shared::model::{ConnectionId, UserId};
use chat_shared::ports::ConnectionStore;
use futures_util::{StreamExt, stream};
use serde::Serialize;
use serde_json::json;

use crate::Bench;
use crate::sockets::{Arrivals, Socket, close_all, open_many};
use crate::stats::{Round, Summary};

/// Small rooms are groups of at most 50 members (listed rosters); bigger rooms are 50 members with several
/// connections each. Large rooms ([`Room::open_large`]) have as many members as asked.
const MAX_MEMBERS: usize = 50;
/// Users one add-members request may carry.
const ADD_PER_REQUEST: usize = 100;
/// How long one round may take before its missing frames count as lost.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);
/// Padding that makes a posted frame about as large as a `receive_message` frame.
const PAD: &str = "................................................................................................\
................................................................................................................\
................................................................................................................";

/// A group whose members hold `connections` sockets in all; `sockets[0]` (a connection of `users[0]`) sends.
pub struct Room {
    pub users: Vec<TestUser>,
    pub conversation_id: String,
    pub sockets: Vec<Socket>,
    pub arrivals: Arrivals,
    pub connection_ids: Vec<ConnectionId>,
}

impl Room {
    pub async fn open(bench: &Bench, connections: usize) -> Room {
        let members = connections.min(MAX_MEMBERS);
        let users = bench.users("fan", members).await;
        let conversation_id = bench.group(&users, "bench room").await;
        Room::connect(bench, users, conversation_id, connections).await
    }

    /// A large group of `members` users (created with 10, grown by requests of 100) holding `connections`
    /// sockets in all.
    pub async fn open_large(bench: &Bench, members: usize, connections: usize) -> Room {
        let users = bench.users("big", members).await;
        let conversation_id = bench.group(&users[..10], "large bench room").await;
        for chunk in users[10..].chunks(ADD_PER_REQUEST) {
            let ids: Vec<&str> = chunk.iter().map(|u| u.id.as_str()).collect();
            let path = format!("/conversations/{conversation_id}/members");
            let (status, body) =
                bench.api.call("POST", &path, Some(&users[0].token), Some(json!({ "userIds": ids }))).await;
            assert_eq!(status, 200, "add members: {body}");
        }
        Room::connect(bench, users, conversation_id, connections).await
    }

    async fn connect(bench: &Bench, users: Vec<TestUser>, conversation_id: String, connections: usize) -> Room {
        let members = users.len();
        // First connections first: only a user's first connection announces them, so the later 950 cost no
        // presence fan-out.
        let tokens: Vec<String> = (0..connections).map(|i| users[i % members].token.clone()).collect();
        let arrivals = Arrivals::new();
        let mut sockets = open_many(&bench.stack, &tokens[..members], members.min(50), &arrivals).await;
        sockets.extend(open_many(&bench.stack, &tokens[members..], 50, &arrivals).await);
        let ids: Vec<UserId> = users.iter().map(|u| UserId::parse(&u.id).expect("user id")).collect();
        let presences = bench.store.presences(&ids).await.expect("presence of the room");
        let connection_ids: Vec<ConnectionId> =
            presences.values().flat_map(|p| p.connections.iter().map(|c| c.connection_id.clone())).collect();
        assert_eq!(connection_ids.len(), connections, "every benchmark connection is registered");
        Room { users, conversation_id, sockets, arrivals, connection_ids }
    }

    /// Closes the sockets a few at a time and waits until every `$disconnect` has run, so the next scenario
    /// does not share the machine with hundreds of disconnecting Lambdas.
    pub async fn close(self, bench: &Bench) {
        let mut sockets = self.sockets;
        while !sockets.is_empty() {
            let batch: Vec<Socket> = sockets.drain(..sockets.len().min(25)).collect();
            close_all(batch).await;
        }
        bench.wait_until_offline(&self.users).await;
    }

    fn recipients(&self) -> usize {
        self.connection_ids.len() - 1
    }

    /// One message from `sockets[0]` through the stack, timed to each other connection.
    pub async fn send_round(&mut self, tag: &str) -> Round {
        self.arrivals.drain();
        let frame = json!({
            "action": "send_message",
            "conversationId": self.conversation_id,
            "content": format!("bench:{tag}"),
        });
        let started = Instant::now();
        self.sockets[0].send(&frame).await;
        let arrivals = self.arrivals.collect(tag, self.recipients(), ROUND_TIMEOUT).await;
        Round::new(started, arrivals, self.recipients())
    }

    /// The same number of frames posted straight to the management API, `in_flight` at a time.
    pub async fn ceiling_round(&mut self, bench: &Bench, tag: &str, in_flight: usize) -> Round {
        self.arrivals.drain();
        let frame = json!({"event": "bench", "data": {"tag": tag, "pad": PAD}}).to_string();
        let targets = &self.connection_ids[1..];
        let started = Instant::now();
        let posted = stream::iter(targets)
            .map(|id| {
                bench.management.post_to_connection().connection_id(id.as_str()).data(Blob::new(frame.clone())).send()
            })
            .buffer_unordered(in_flight)
            .filter(|result| std::future::ready(result.is_ok()))
            .count()
            .await;
        let arrivals = self.arrivals.collect(tag, posted, ROUND_TIMEOUT).await;
        Round::new(started, arrivals, targets.len())
    }

    /// DynamoDB requests (by operation), PostToConnection calls and queued jobs of one message, counted
    /// in-process (with the deployment's default inline limit).
    pub async fn count_one_message(&self, bench: &Bench) -> (BTreeMap<String, usize>, usize, usize) {
        let counting = &bench.counting;
        let sender_id = UserId::parse(&self.users[0].id).expect("user id");
        let sender = bench.store.presence(&sender_id).await.expect("sender presence");
        let connection_id = sender.connections[0].connection_id.as_str();
        let body = json!({"action":"send_message","conversationId":self.conversation_id,"content":"counted"});
        counting.counter.take();
        counting.fanout.clear();
        let jobs = counting.queue.enqueued();
        ws::message(&counting.app, ws_event("send_message", connection_id, Some(&body.to_string()), None)).await;
        (counting.counter.take(), counting.fanout.total_posts(), counting.queue.enqueued() - jobs)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FanoutResult {
    pub connections: usize,
    pub members: usize,
    pub ours: Summary,
    pub ceiling: Summary,
    /// Ours ÷ ceiling, last recipient p50.
    pub ratio: f64,
    pub ours_posts_per_second: f64,
    pub ceiling_posts_per_second: f64,
    pub dynamodb_requests: BTreeMap<String, usize>,
    pub dynamodb_total: usize,
    pub posts_per_message: usize,
    /// Fan-out jobs one message enqueues with the default inline limit (each one SQS message).
    pub jobs_per_message: usize,
}

/// Rounds of ours and of the ceiling, interleaved so both see the same machine load.
pub async fn measure(bench: &Bench, room: &mut Room, rounds: usize, ceiling_in_flight: usize) -> FanoutResult {
    let size = room.connection_ids.len();
    // Warm-up: the first invocations start processes and TCP connections.
    room.send_round(&format!("warm-{size}")).await;
    room.ceiling_round(bench, &format!("warm-c-{size}"), ceiling_in_flight).await;
    let (mut ours, mut ceiling) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        ours.push(room.send_round(&format!("{size}-{round}")).await);
        ceiling.push(room.ceiling_round(bench, &format!("c-{size}-{round}"), ceiling_in_flight).await);
    }
    let (ours, ceiling) = (Summary::of(&ours), Summary::of(&ceiling));
    let (dynamodb_requests, posts_per_message, jobs_per_message) = room.count_one_message(bench).await;
    let recipients = room.recipients() as f64;
    FanoutResult {
        connections: size,
        members: room.users.len(),
        ours,
        ceiling,
        ratio: ours.last_p50 / ceiling.last_p50,
        ours_posts_per_second: recipients / (ours.last_p50 / 1000.0),
        ceiling_posts_per_second: recipients / (ceiling.last_p50 / 1000.0),
        dynamodb_total: dynamodb_requests.values().sum(),
        dynamodb_requests,
        posts_per_message,
        jobs_per_message,
    }
}

/// The ceiling's best in-flight bound, and each candidate's last-recipient p50.
pub async fn best_ceiling_in_flight(
    bench: &Bench,
    room: &mut Room,
    candidates: &[usize],
) -> (usize, Vec<(usize, f64)>) {
    let mut results = Vec::new();
    for &in_flight in candidates {
        room.ceiling_round(bench, &format!("warm-sweep-{in_flight}"), in_flight).await;
        let rounds: Vec<Round> = {
            let mut rounds = Vec::new();
            for round in 0..5 {
                rounds.push(room.ceiling_round(bench, &format!("sweep-{in_flight}-{round}"), in_flight).await);
            }
            rounds
        };
        results.push((in_flight, Summary::of(&rounds).last_p50));
    }
    let best = results.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map_or(64, |r| r.0);
    (best, results)
}

/// One large room measured twice: posted by the message function itself, and through the queue.
#[derive(Clone, Debug, Serialize)]
pub struct LargeResult {
    pub inline: FanoutResult,
    pub queued: FanoutResult,
}

/// The room through each path in turn (the message function's `FANOUT_INLINE_MAX` reconfigured in place), then
/// back to the deployed value.
pub async fn measure_both_paths(
    bench: &Bench,
    room: &mut Room,
    rounds: usize,
    ceiling_in_flight: usize,
) -> LargeResult {
    bench.set_message_env("FANOUT_INLINE_MAX", "100000");
    let inline = measure(bench, room, rounds, ceiling_in_flight).await;
    bench.set_message_env("FANOUT_INLINE_MAX", "0");
    let queued = measure(bench, room, rounds, ceiling_in_flight).await;
    bench.restore_message_env("FANOUT_INLINE_MAX");
    LargeResult { inline, queued }
}

/// Our last-recipient p50 with each `POSTS_IN_FLIGHT` value (the message function reconfigured in place).
pub async fn sweep_posts_in_flight(bench: &Bench, room: &mut Room, values: &[usize]) -> Vec<(usize, Summary)> {
    let mut results = Vec::new();
    for &value in values {
        bench.set_message_env("POSTS_IN_FLIGHT", &value.to_string());
        room.send_round(&format!("warm-posts-{value}")).await;
        let mut rounds = Vec::new();
        for round in 0..8 {
            rounds.push(room.send_round(&format!("posts-{value}-{round}")).await);
        }
        results.push((value, Summary::of(&rounds)));
    }
    results
}

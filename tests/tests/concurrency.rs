//! Many users at once: real WebSocket clients connecting, sending, reading and leaving at the same moment.
//!
//! A stateless backend on a shared table breaks in ways one client never shows: members who connect together
//! post `user_online` to each other during their handshakes (API Gateway answers 410 then), writers race for
//! the next `seq`, and presence announcements about one user cross on the way. Every wait here is bounded;
//! where a test must conclude that nothing more will come it listens for a quiet period, and what it asserts
//! then holds however late a straggler would arrive (see `presence_settles_after_members_leave_and_return_together`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chat_e2e::{Api, FRAME_TIMEOUT, Stack, TestUser, WsClient};
use futures_util::future::join_all;
use serde_json::{Value, json};

const GROUP_SIZE: usize = 8;

/// `n` users in one group created by the first; returns them and the conversation id.
async fn group(api: &Api, prefix: &str, n: usize) -> (Vec<TestUser>, String) {
    let users: Vec<TestUser> = join_all((0..n).map(|_| api.register(prefix))).await;
    let others: Vec<&str> = users[1..].iter().map(|u| u.id.as_str()).collect();
    let (status, body) = api
        .call(
            "POST",
            "/conversations",
            Some(&users[0].token),
            Some(json!({"type": "group", "name": prefix, "participantIds": others})),
        )
        .await;
    assert_eq!(status, 201, "create group: {body}");
    (users, body["_id"].as_str().expect("conversation id").to_owned())
}

/// Connects every user at the same instant.
async fn connect_all(stack: &Stack, users: &[TestUser]) -> Vec<WsClient> {
    join_all(users.iter().map(|user| WsClient::connect(stack, user))).await
}

/// The `data` of the next `receive_message`, skipping presence and status events.
async fn next_message(ws: &mut WsClient) -> Value {
    loop {
        let frame = ws.next_frame().await;
        if frame["event"] == "receive_message" {
            return frame["data"]["message"].clone();
        }
        assert_ne!(frame["event"], "error", "unexpected error: {frame}");
    }
}

/// Asserts the client is registered: an action that needs its connection record is acknowledged.
async fn assert_live(ws: &mut WsClient, who: &TestUser) {
    let reply = ws.call(json!({"action": "get_status"})).await;
    assert_eq!(reply["event"], "ack", "{} lost its connection: {reply}", who.username);
}

#[tokio::test]
async fn members_who_connect_at_once_all_stay_live_and_receive_what_is_sent_next() {
    let stack = Stack::load();
    let api = stack.api();
    // The race lost every connection of every trial before it was fixed; three trials make a regression loud.
    for trial in 0..3 {
        let (users, conversation_id) = group(&api, "crowd", GROUP_SIZE).await;
        let mut clients = connect_all(&stack, &users).await;
        for (ws, user) in clients.iter_mut().zip(&users) {
            assert_live(ws, user).await;
        }
        let sent = clients[0]
            .call(json!({"action": "send_message", "conversationId": conversation_id, "content": format!("trial {trial}")}))
            .await;
        assert_eq!(sent["event"], "ack", "{sent}");
        let id = sent["data"]["message"]["_id"].clone();
        for (ws, user) in clients.iter_mut().zip(&users).skip(1) {
            let message = next_message(ws).await;
            assert_eq!(message["_id"], id, "{} got another message", user.username);
        }
        for ws in clients {
            ws.close().await;
        }
    }
}

#[tokio::test]
async fn concurrent_senders_reach_every_connection_exactly_once_with_gap_free_seq() {
    const PER_SENDER: usize = 5;
    let stack = Stack::load();
    let api = stack.api();
    let (users, conversation_id) = group(&api, "senders", GROUP_SIZE).await;
    let clients = connect_all(&stack, &users).await;
    let total = GROUP_SIZE * PER_SENDER;

    // Each client pipelines its five sends, then reads until it has its five acks and everyone else's messages.
    let outcomes = join_all(clients.into_iter().enumerate().map(|(index, mut ws)| {
        let conversation_id = conversation_id.clone();
        async move {
            for n in 0..PER_SENDER {
                ws.send(json!({
                    "action": "send_message",
                    "requestId": format!("s{index}-{n}"),
                    "conversationId": conversation_id,
                    "content": format!("from {index} #{n}"),
                }))
                .await;
            }
            let (mut acked, mut received) = (Vec::new(), Vec::new());
            let deadline = tokio::time::Instant::now() + FRAME_TIMEOUT * 4;
            while acked.len() < PER_SENDER || received.len() < total - PER_SENDER {
                let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
                let Some(frame) = ws.next_frame_within(wait).await else {
                    panic!("client {index}: {} acks, {} messages by the deadline", acked.len(), received.len())
                };
                match frame["event"].as_str() {
                    Some("ack") => acked.push(frame["data"]["message"].clone()),
                    Some("receive_message") => received.push(frame["data"]["message"].clone()),
                    Some("error") => panic!("client {index}: {frame}"),
                    _ => {} // presence, delivery statuses
                }
            }
            // Anything more would be a duplicate.
            while let Some(frame) = ws.next_frame_within(Duration::from_millis(1500)).await {
                assert_ne!(frame["event"], "receive_message", "client {index}: extra {frame}");
            }
            ws.close().await;
            (acked, received)
        }
    }))
    .await;

    let mut seqs_of_id: BTreeMap<String, u64> = BTreeMap::new();
    for (index, (acked, received)) in outcomes.iter().enumerate() {
        let own: BTreeSet<&str> = acked.iter().map(|m| m["_id"].as_str().unwrap()).collect();
        let seen: BTreeSet<&str> = received.iter().map(|m| m["_id"].as_str().unwrap()).collect();
        assert_eq!(seen.len(), received.len(), "client {index} received a message twice");
        assert!(own.is_disjoint(&seen), "client {index} received its own message");
        for message in acked.iter().chain(received) {
            let id = message["_id"].as_str().unwrap().to_owned();
            let seq = message["seq"].as_u64().unwrap();
            assert_eq!(*seqs_of_id.entry(id.clone()).or_insert(seq), seq, "{id} has two seqs");
        }
    }
    assert_eq!(seqs_of_id.len(), total, "every message stored once");
    let seqs: BTreeSet<u64> = seqs_of_id.values().copied().collect();
    assert_eq!(seqs, (1..=total as u64).collect(), "seq is unique and gap-free");
}

#[tokio::test]
async fn mark_read_racing_send_message_never_fails() {
    const ROUNDS: usize = 15;
    let stack = Stack::load();
    let api = stack.api();
    let (users, conversation_id) = group(&api, "readers", 3).await;
    // The sender writes its own read pointer in every append; a second tab of the sender and the other members
    // move theirs at the same time.
    let mut sender = WsClient::connect(&stack, &users[0]).await;
    let mut sender_tab = WsClient::connect(&stack, &users[0]).await;
    let mut readers = [WsClient::connect(&stack, &users[1]).await, WsClient::connect(&stack, &users[2]).await];
    let first = sender.call(json!({"action":"send_message","conversationId":conversation_id,"content":"0"})).await;
    let last_id = first["data"]["message"]["_id"].as_str().unwrap().to_owned();

    let sending = async {
        let mut replies = Vec::new();
        for n in 1..=ROUNDS {
            replies.push(
                sender
                    .call(json!({"action":"send_message","conversationId":conversation_id,"content":n.to_string()}))
                    .await,
            );
        }
        replies
    };
    let [r1, r2] = &mut readers[..] else { unreachable!() };
    let (sent, own_reads, reads1, reads2) = tokio::join!(
        sending,
        keep_reading(&mut sender_tab, &conversation_id, &last_id, ROUNDS),
        keep_reading(r1, &conversation_id, &last_id, ROUNDS),
        keep_reading(r2, &conversation_id, &last_id, ROUNDS)
    );
    for reply in sent.iter().chain(&own_reads).chain(&reads1).chain(&reads2) {
        assert_eq!(reply["event"], "ack", "{reply}");
    }
    let (status, page) = api
        .call("GET", &format!("/conversations/{conversation_id}/messages?limit=50"), Some(&users[0].token), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), ROUNDS + 1, "every send stored");
}

#[tokio::test]
async fn a_crowd_reacting_to_one_message_at_once_is_stored_and_heard_once_per_reaction() {
    const EMOJI: [&str; 2] = ["👍", "🎉"];
    let stack = Stack::load();
    let api = stack.api();
    let (users, conversation_id) = group(&api, "reactors", GROUP_SIZE).await;
    let mut clients = connect_all(&stack, &users).await;
    for (ws, user) in clients.iter_mut().zip(&users) {
        assert_live(ws, user).await;
    }
    let sent =
        clients[0].call(json!({"action":"send_message","conversationId":conversation_id,"content":"vote"})).await;
    let message_id = sent["data"]["message"]["_id"].as_str().expect("an id").to_owned();

    // Every member adds both reactions at the same moment: every reaction's write checks the one message item.
    join_all(clients.into_iter().zip(&users).map(|(mut ws, user)| {
        let message_id = message_id.clone();
        async move {
            for emoji in EMOJI {
                let react = json!({"action":"add_reaction","requestId":emoji,"messageId":message_id,"emoji":emoji});
                ws.send(react).await;
            }
            let expected_from_others = (GROUP_SIZE - 1) * EMOJI.len();
            let (mut acks, mut heard) = (0, BTreeSet::new());
            let deadline = tokio::time::Instant::now() + FRAME_TIMEOUT * 4;
            while acks < EMOJI.len() || heard.len() < expected_from_others {
                let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
                let Some(frame) = ws.next_frame_within(wait).await else {
                    panic!("{}: {acks} acks, {} reactions heard by the deadline", user.username, heard.len())
                };
                match frame["event"].as_str() {
                    Some("ack") => {
                        assert_eq!(frame["data"]["changed"], true, "{}: {frame}", user.username);
                        acks += 1;
                    }
                    Some("reaction_added") if frame["data"]["userId"] != user.id.as_str() => {
                        let reaction = (frame["data"]["userId"].to_string(), frame["data"]["emoji"].to_string());
                        assert!(heard.insert(reaction), "{}: heard twice: {frame}", user.username);
                    }
                    Some("error") => panic!("{}: {frame}", user.username),
                    _ => {}
                }
            }
            ws.close().await;
        }
    }))
    .await;

    let (status, page) =
        api.call("GET", &format!("/conversations/{conversation_id}/messages"), Some(&users[1].token), None).await;
    assert_eq!(status, 200, "{page}");
    let message = page["items"].as_array().unwrap().iter().find(|m| m["_id"] == message_id.as_str()).unwrap();
    let everyone: BTreeSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
    for emoji in EMOJI {
        let reactors: BTreeSet<&str> =
            message["reactions"][emoji].as_array().unwrap().iter().map(|id| id.as_str().unwrap()).collect();
        assert_eq!(reactors, everyone, "every member's {emoji} is stored once");
    }
}

/// Marks read `rounds` times, each time up to the newest message this connection has heard of.
async fn keep_reading(ws: &mut WsClient, conversation_id: &str, first_id: &str, rounds: usize) -> Vec<Value> {
    let mut replies = Vec::new();
    let mut newest = first_id.to_owned();
    for _ in 0..rounds {
        replies
            .push(ws.call(json!({"action":"mark_read","conversationId":conversation_id,"lastMessageId":newest})).await);
        while let Some(frame) = ws.next_frame_within(Duration::from_millis(1)).await {
            if frame["event"] == "receive_message" {
                newest = frame["data"]["message"]["_id"].as_str().unwrap().to_owned();
            }
        }
    }
    replies
}

/// The newest `user_online`/`user_offline` a client heard about each user.
#[derive(Default)]
struct PresenceLog {
    last: BTreeMap<String, bool>,
}

impl PresenceLog {
    fn observe(&mut self, frame: &Value) {
        match frame["event"].as_str() {
            Some("user_online") => self.last.insert(frame["data"]["userId"].as_str().unwrap().to_owned(), true),
            Some("user_offline") => self.last.insert(frame["data"]["userId"].as_str().unwrap().to_owned(), false),
            _ => None,
        };
    }

    /// Reads frames until every user in `expected` was last heard with the expected state, then until no
    /// presence event came for a quiet second, so a crossing announcement and its correction are both in.
    async fn settle(&mut self, ws: &mut WsClient, expected: &BTreeMap<String, bool>) {
        let deadline = tokio::time::Instant::now() + FRAME_TIMEOUT * 2;
        let mut quiet_since = tokio::time::Instant::now();
        loop {
            let agrees = expected.iter().all(|(user, online)| self.last.get(user) == Some(online));
            if agrees && quiet_since.elapsed() >= Duration::from_secs(1) {
                return;
            }
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
            if wait.is_zero() {
                let wrong: Vec<_> =
                    expected.iter().filter(|(user, online)| self.last.get(*user) != Some(*online)).collect();
                panic!("presence did not settle: expected {wrong:?}, last heard {:?}", self.last);
            }
            if let Some(frame) = ws.next_frame_within(wait.min(Duration::from_millis(250))).await {
                if frame["event"] == "user_online" || frame["event"] == "user_offline" {
                    quiet_since = tokio::time::Instant::now();
                }
                self.observe(&frame);
            }
        }
    }
}

#[tokio::test]
async fn presence_settles_after_members_leave_and_return_together() {
    let stack = Stack::load();
    let api = stack.api();
    let (users, _) = group(&api, "churn", GROUP_SIZE).await;
    let mut clients = Vec::new();
    for user in &users {
        clients.push(WsClient::connect(&stack, user).await); // one after another: the plain case
    }
    let (stay_users, churn_users) = users.split_at(GROUP_SIZE / 2);
    let churning: Vec<WsClient> = clients.split_off(GROUP_SIZE / 2);
    let mut staying = clients;
    let mut logs: Vec<PresenceLog> = staying.iter().map(|_| PresenceLog::default()).collect();
    let everyone_online: BTreeMap<String, bool> = users.iter().map(|u| (u.id.clone(), true)).collect();
    for (index, (ws, log)) in staying.iter_mut().zip(&mut logs).enumerate() {
        let mut expected = everyone_online.clone();
        expected.remove(&stay_users[index].id);
        // Members connected after this one announced themselves to it.
        expected.retain(|id, _| users.iter().position(|u| u.id == *id).unwrap() > index);
        log.settle(ws, &expected).await;
    }

    // Half of the group leaves at once...
    join_all(churning.into_iter().map(WsClient::close)).await;
    let away: BTreeMap<String, bool> = churn_users.iter().map(|u| (u.id.clone(), false)).collect();
    for (ws, log) in staying.iter_mut().zip(&mut logs) {
        log.settle(ws, &away).await;
    }
    // ...and comes back at once.
    let mut back = connect_all(&stack, churn_users).await;
    let returned: BTreeMap<String, bool> = churn_users.iter().map(|u| (u.id.clone(), true)).collect();
    for (ws, log) in staying.iter_mut().zip(&mut logs) {
        log.settle(ws, &returned).await;
    }
    // A client that connects learns who is online right now with one action.
    let reply = back[0].call(json!({"action": "get_presence"})).await;
    assert_eq!(reply["event"], "ack", "{reply}");
    let online: BTreeMap<String, bool> = reply["data"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["userId"].as_str().unwrap().to_owned(), p["online"].as_bool().unwrap()))
        .collect();
    let mut expected = everyone_online;
    expected.remove(&churn_users[0].id);
    assert_eq!(online, expected, "everyone but the caller, all online");
    for ws in staying.into_iter().chain(back) {
        ws.close().await;
    }
}

#[tokio::test]
async fn presence_settles_when_the_last_tabs_close_at_once() {
    let stack = Stack::load();
    let api = stack.api();
    let (users, _) = group(&api, "tabs", 2).await;
    let mut watcher = WsClient::connect(&stack, &users[0]).await;
    let mut log = PresenceLog::default();
    // Four tabs of one user open together: the watcher hears exactly that they are online...
    let tabs = connect_all(&stack, &[users[1].clone(), users[1].clone(), users[1].clone(), users[1].clone()]).await;
    let online = BTreeMap::from([(users[1].id.clone(), true)]);
    log.settle(&mut watcher, &online).await;
    // ...and when all four close together, that they are offline.
    join_all(tabs.into_iter().map(WsClient::close)).await;
    let offline = BTreeMap::from([(users[1].id.clone(), false)]);
    log.settle(&mut watcher, &offline).await;
    let reply = watcher.call(json!({"action": "get_presence"})).await;
    assert_eq!(reply["data"]["users"][0]["online"], false, "{reply}");
    watcher.close().await;
}

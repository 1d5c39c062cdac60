//! Fault drill: the emulator dies and comes back (with its persisted state) in the middle of a conversation.
//!
//! `cargo xtask test` runs this binary against a persistent test emulator and drives it over stdin/stdout:
//! the drill sets up a live group conversation, prints `READY` and waits for one line on stdin; meanwhile
//! xtask stops the emulator (all sockets die, no `$disconnect` runs) and starts it again on the same state,
//! then writes `RESTARTED`. The drill then checks what users of a chat backend rely on after an outage:
//! nothing acknowledged is lost, a retried send is stored once, reconnecting clients catch up with `afterSeq`,
//! stale connections of the dead sockets stop counting as presence, and live delivery works again.
//! Exit status 0 only if every check held; each wait is bounded.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::{Duration, Instant};

use chat_e2e::{Api, FRAME_TIMEOUT, Stack, TestUser, WsClient};
use chat_shared::delivery::HANDSHAKE_GRACE_SECS;
use futures_util::future::join_all;
use serde_json::{Value, json};

const PER_SENDER: usize = 10;
/// How long the drill waits for xtask to restart the emulator.
const RESTART_TIMEOUT: Duration = Duration::from_secs(300);
/// How long dead sockets may take to notice the emulator is gone.
const SOCKET_END_TIMEOUT: Duration = Duration::from_secs(30);

/// One acknowledged message, as the sender saw it.
#[derive(Clone, Debug, PartialEq)]
struct Acked {
    id: String,
    seq: u64,
    content: String,
}

impl Acked {
    fn of(message: &Value) -> Acked {
        Acked {
            id: message["_id"].as_str().expect("message id").to_owned(),
            seq: message["seq"].as_u64().expect("message seq"),
            content: message["content"].as_str().expect("message content").to_owned(),
        }
    }
}

#[tokio::main]
async fn main() {
    let stack = Stack::load();
    let api = stack.api();
    let started = Instant::now();

    // Before: a group of three, Alice on two tabs, twenty messages sent from two people at once.
    let users: Vec<TestUser> = join_all(["alice", "bob", "carol"].map(|name| api.register(name))).await;
    let (alice, bob, carol) = (&users[0], &users[1], &users[2]);
    let conversation = create_group(&api, alice, &[bob, carol]).await;
    let connected_at = Instant::now();
    let mut old_sockets = join_all([alice, alice, bob, carol].map(|user| WsClient::connect(&stack, user))).await;
    for ws in &mut old_sockets {
        let reply = ws.call(json!({"action": "get_status"})).await;
        assert_eq!(reply["event"], "ack", "a connection is not registered: {reply}");
    }
    let [alice_tab, _, bob_socket, carol_socket] = old_sockets.as_mut_slice() else { unreachable!() };
    let (from_alice, from_bob, seen_by_carol) = tokio::join!(
        send_all(alice_tab, &conversation, "a"),
        send_all(bob_socket, &conversation, "b"),
        receive(carol_socket, 2 * PER_SENDER),
    );
    let mut acked: BTreeMap<u64, Acked> = from_alice.iter().chain(&from_bob).map(|m| (m.seq, m.clone())).collect();
    assert_eq!(acked.keys().copied().collect::<Vec<_>>(), (1..=20).collect::<Vec<_>>(), "gap-free seq before");
    assert_eq!(seen_by_carol.len(), 2 * PER_SENDER);
    let last_seen_by_carol = seen_by_carol.iter().map(|m| m.seq).max().unwrap();
    println!("before: 3 users, 4 sockets, {} messages acknowledged ({:.1?})", acked.len(), started.elapsed());

    println!("READY");
    let restart = Instant::now();
    wait_for_restart();
    println!("emulator back after {:.1?}", restart.elapsed());

    // The dead sockets end; nothing ran `$disconnect` for them.
    for (n, ws) in old_sockets.iter_mut().enumerate() {
        assert!(ws.ends_within(SOCKET_END_TIMEOUT).await, "socket {n} stayed open across the restart");
    }
    // Their connection records are now older than the handshake grace, so a 410 drops them from presence.
    let grace = Duration::from_secs(HANDSHAKE_GRACE_SECS + 1);
    tokio::time::sleep(grace.saturating_sub(connected_at.elapsed())).await;

    // Bob comes back first and writes; everyone else's connections are dead.
    let mut bob_ws = WsClient::connect(&stack, bob).await;
    let first_after = send(&mut bob_ws, &conversation, "after the restart", None).await;
    assert_eq!(first_after.seq, 21, "seq continues after the restart");
    acked.insert(first_after.seq, first_after.clone());
    let offline = wait_for_presence(&mut bob_ws, &[&alice.id, &carol.id], false).await;
    println!("stale connections dropped from presence {offline:.1?} after the first send");

    // Alice retries her last send, whose ack she may never have seen: stored once, same id and seq.
    let mut alice_ws = WsClient::connect(&stack, alice).await;
    let last_of_alice = from_alice.last().unwrap();
    let retried =
        send(&mut alice_ws, &conversation, &last_of_alice.content, Some(format!("a-{}", PER_SENDER - 1))).await;
    assert_eq!(&retried, last_of_alice, "a retried clientMessageId must return the stored message");

    // Carol reconnects and catches up from the last seq she saw.
    let mut carol_ws = WsClient::connect(&stack, carol).await;
    let base = format!("/conversations/{conversation}/messages");
    let (status, caught_up) =
        api.call("GET", &format!("{base}?afterSeq={last_seen_by_carol}"), Some(&carol.token), None).await;
    assert_eq!(status, 200, "{caught_up}");
    let caught_up: Vec<Acked> = caught_up["items"].as_array().unwrap().iter().map(Acked::of).collect();
    assert_eq!(caught_up, vec![first_after], "catch-up after the restart");
    let (status, history) = api.call("GET", &format!("{base}?afterSeq=0&limit=100"), Some(&carol.token), None).await;
    assert_eq!(status, 200, "{history}");
    let history: Vec<Acked> = history["items"].as_array().unwrap().iter().map(Acked::of).collect();
    assert_eq!(history, acked.values().cloned().collect::<Vec<_>>(), "every acknowledged message, once, unchanged");

    // Live delivery works again, and the reconnected users are online.
    let live = send(&mut alice_ws, &conversation, "live again", None).await;
    assert_eq!(live.seq, 22);
    for (who, ws) in [("bob", &mut bob_ws), ("carol", &mut carol_ws)] {
        let received = next_message(ws).await;
        assert_eq!(received, live, "{who} did not receive the live message");
    }
    wait_for_presence(&mut carol_ws, &[&alice.id, &bob.id], true).await;
    for ws in [alice_ws, bob_ws, carol_ws] {
        ws.close().await;
    }
    println!(
        "after: {} messages kept, retry stored once, catch-up exact, presence and live delivery back ({:.1?} in all)",
        history.len(),
        started.elapsed()
    );
}

async fn create_group(api: &Api, owner: &TestUser, others: &[&TestUser]) -> String {
    let ids: Vec<&str> = others.iter().map(|u| u.id.as_str()).collect();
    let body = json!({"type": "group", "name": "restart drill", "participantIds": ids});
    let (status, body) = api.call("POST", "/conversations", Some(&owner.token), Some(body)).await;
    assert_eq!(status, 201, "create group: {body}");
    body["_id"].as_str().expect("conversation id").to_owned()
}

/// Sends `PER_SENDER` messages with client message ids `<tag>-<n>`; returns them as acknowledged.
async fn send_all(ws: &mut WsClient, conversation: &str, tag: &str) -> Vec<Acked> {
    let mut acked = Vec::new();
    for n in 0..PER_SENDER {
        acked.push(send(ws, conversation, &format!("{tag} #{n}"), Some(format!("{tag}-{n}"))).await);
    }
    acked
}

async fn send(ws: &mut WsClient, conversation: &str, content: &str, client_id: Option<String>) -> Acked {
    let mut frame = json!({"action": "send_message", "conversationId": conversation, "content": content});
    if let Some(id) = client_id {
        frame["clientMessageId"] = json!(id);
    }
    let reply = ws.call(frame).await;
    assert_eq!(reply["event"], "ack", "send {content:?}: {reply}");
    Acked::of(&reply["data"]["message"])
}

/// The next `count` messages delivered live.
async fn receive(ws: &mut WsClient, count: usize) -> Vec<Acked> {
    let mut received = Vec::new();
    while received.len() < count {
        received.push(next_message(ws).await);
    }
    received
}

/// The next `receive_message`, skipping presence and delivery statuses.
async fn next_message(ws: &mut WsClient) -> Acked {
    loop {
        let frame = ws.next_frame().await;
        match frame["event"].as_str() {
            Some("receive_message") => return Acked::of(&frame["data"]["message"]),
            Some("error") => panic!("unexpected error: {frame}"),
            _ => {}
        }
    }
}

/// Polls `get_presence` until every user in `ids` is `online`; returns how long that took.
async fn wait_for_presence(ws: &mut WsClient, ids: &[&str], online: bool) -> Duration {
    let started = Instant::now();
    loop {
        let reply = ws.call(json!({"action": "get_presence"})).await;
        assert_eq!(reply["event"], "ack", "{reply}");
        let users = reply["data"]["users"].as_array().expect("presence list");
        let settled = ids.iter().all(|id| users.iter().any(|p| p["userId"] == **id && p["online"] == online));
        if settled {
            return started.elapsed();
        }
        assert!(started.elapsed() < FRAME_TIMEOUT, "presence never showed {ids:?} online={online}: {reply}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Blocks until xtask writes a line (the emulator is back), at most [`RESTART_TIMEOUT`].
fn wait_for_restart() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = tx.send(std::io::stdin().lock().read_line(&mut line).map(|_| line));
    });
    match rx.recv_timeout(RESTART_TIMEOUT) {
        Ok(Ok(line)) if line.trim() == "RESTARTED" => {}
        other => panic!("expected RESTARTED on stdin within {RESTART_TIMEOUT:?}, got {other:?}"),
    }
}

//! Large groups on the deployed stack, whose fan-out threshold `cargo xtask test` lowers to 100 connections so
//! the queue path (SQS → `fanout-worker`) carries these rooms: a group of 200 built through the API in pages,
//! its members paged, one message reaching each of 199 live connections exactly once, five members writing at
//! the same moment and everyone getting each of the others' messages once, a removed member hearing
//! nothing more, the members leaving in waves with every `$disconnect` removing its connection, and a job that
//! keeps failing ending in the dead-letter queue.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chat_e2e::{Stack, WsClient};
use serde_json::{Value, json};

const MEMBERS: usize = 200;

/// How long a connection keeps listening after its last expected frame, for a duplicate.
const LINGER: Duration = Duration::from_secs(2);

/// The `receive_message` frames that arrive on `ws` until `expected` of them did (then [`LINGER`] more, to see
/// a duplicate), at most `wait`. A quiet window cannot end the wait: deliveries of one burst pause for many
/// seconds between frames when the functions run under qemu (arm64 on an x86_64 machine, the test command's
/// default) beside other tests, and a 5 s window once cut a member's collection short (2 of 8 frames) in a
/// fresh-clone run.
async fn messages_received(ws: &mut WsClient, expected: usize, wait: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut messages = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let listen = if messages.len() >= expected { left.min(LINGER) } else { left };
        match ws.next_frame_within(listen).await {
            Some(frame) if frame["event"] == "receive_message" => messages.push(frame["data"]["message"].clone()),
            Some(_) => {}
            None => return messages,
        }
    }
}

/// Every member's connection, concurrently: the ids of the messages each received, `expected(n)` on the n-th.
async fn received_by_all(sockets: &mut [WsClient], expected: impl Fn(usize) -> usize) -> Vec<Vec<String>> {
    let waits = sockets.iter_mut().enumerate().map(|(n, ws)| {
        let expected = expected(n);
        async move {
            messages_received(ws, expected, DELIVERY_WAIT)
                .await
                .iter()
                .map(|m| m["_id"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        }
    });
    futures_util::future::join_all(waits).await
}

/// How long a burst may take to reach every connection through the queue.
const DELIVERY_WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn a_group_of_200_built_in_pages_reaches_every_connection_once_and_forgets_a_removed_member() {
    let stack = Stack::load();
    let api = stack.api();
    let users = api.register_many("big", MEMBERS).await;
    let owner = &users[0];

    // Created with 10, grown with two requests of up to 100 (the store splits them into transactions).
    let first: Vec<&str> = users[1..10].iter().map(|u| u.id.as_str()).collect();
    let (status, created) = api
        .call(
            "POST",
            "/conversations",
            Some(&owner.token),
            Some(json!({"type": "group", "name": "town square", "participantIds": first})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["_id"].as_str().unwrap().to_owned();
    for chunk in users[10..].chunks(100) {
        let ids: Vec<&str> = chunk.iter().map(|u| u.id.as_str()).collect();
        let (status, body) = api
            .call("POST", &format!("/conversations/{id}/members"), Some(&owner.token), Some(json!({"userIds": ids})))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, summary) = api.call("GET", &format!("/conversations/{id}"), Some(&users[42].token), None).await;
    assert_eq!((summary["memberCount"].as_u64(), summary["large"].as_bool()), (Some(200), Some(true)), "{summary}");
    assert!(summary.get("members").is_none(), "a large group's view lists no members");

    // Members page by page, each once.
    let mut paged = Vec::new();
    let mut path = format!("/conversations/{id}/members?limit=100");
    loop {
        let (status, page) = api.call("GET", &path, Some(&users[7].token), None).await;
        assert_eq!(status, 200, "{page}");
        paged.extend(page["items"].as_array().unwrap().iter().map(|u| u["_id"].as_str().unwrap().to_owned()));
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/conversations/{id}/members?limit=100&cursor={cursor}"),
            None => break,
        }
    }
    let expected: BTreeSet<String> = users.iter().map(|u| u.id.clone()).collect();
    assert_eq!(paged.len(), MEMBERS, "no member twice");
    assert_eq!(paged.iter().cloned().collect::<BTreeSet<_>>(), expected);

    // Everyone online; the owner writes once. 199 connections exceed the stack's inline limit of 100.
    let sockets = stack.connect_all(&users).await;
    stack
        .run_then_close_in_waves(&users, sockets, async |sockets: &mut [WsClient]| {
            let sent = sockets[0]
                .call(json!({"action": "send_message", "conversationId": id, "content": "hello, square"}))
                .await;
            assert_eq!(sent["event"], "ack", "{sent}");
            let message_id = sent["data"]["message"]["_id"].as_str().unwrap().to_owned();
            let received = received_by_all(&mut sockets[1..], |_| 1).await;
            let wrong: HashMap<&str, &Vec<String>> = users[1..]
                .iter()
                .zip(&received)
                .filter(|(_, ids)| **ids != [message_id.clone()])
                .map(|(user, ids)| (user.username.as_str(), ids))
                .collect();
            assert!(wrong.is_empty(), "{} of 199 members did not get the message exactly once: {wrong:?}", wrong.len());

            // A crowd: five members write at the same moment, twice each, every delivery going through the queue.
            // Each connection gets each of the others' messages exactly once.
            const SENDERS: usize = 5;
            let writes = sockets[..SENDERS].iter_mut().enumerate().map(|(n, ws)| {
                let id = id.clone();
                async move {
                    let mut ids = Vec::new();
                    for k in 0..2 {
                        let content = format!("crowd {n}.{k}");
                        let ack =
                            ws.call(json!({"action": "send_message", "conversationId": id, "content": content})).await;
                        assert_eq!(ack["event"], "ack", "sender {n}: {ack}");
                        ids.push(ack["data"]["message"]["_id"].as_str().unwrap().to_owned());
                    }
                    ids
                }
            });
            let sent_by: Vec<Vec<String>> = futures_util::future::join_all(writes).await;
            let received = received_by_all(sockets, |n| 2 * if n < SENDERS { SENDERS - 1 } else { SENDERS }).await;
            for (n, ids) in received.iter().enumerate() {
                let expected: BTreeSet<String> = sent_by
                    .iter()
                    .enumerate()
                    .filter(|(sender, _)| *sender != n)
                    .flat_map(|(_, ids)| ids.clone())
                    .collect();
                let got: BTreeSet<String> = ids.iter().cloned().collect();
                assert_eq!(got.len(), ids.len(), "member {n} received a message twice: {ids:?}");
                assert_eq!(got, expected, "member {n}");
            }

            // A removed member hears that they were removed, then nothing; the others keep receiving.
            const REMOVED: usize = 150;
            let removed = &users[REMOVED];
            let (status, body) = api
                .call("DELETE", &format!("/conversations/{id}/members/{}", removed.id), Some(&owner.token), None)
                .await;
            assert_eq!(status, 200, "{body}");
            let left = sockets[REMOVED].expect_event("member_left").await;
            assert_eq!(left["userId"], removed.id.as_str());
            let after =
                sockets[0].call(json!({"action": "send_message", "conversationId": id, "content": "after"})).await;
            assert_eq!(after["event"], "ack", "{after}");
            let after_id = after["data"]["message"]["_id"].as_str().unwrap().to_owned();
            // The member_left frame came first; the message after it, once; then the removed member has nothing.
            const WATCHED: usize = 140;
            let (before, rest) = sockets.split_at_mut(REMOVED);
            let (removed_socket, after_removed) = rest.split_first_mut().expect("the removed member's socket");
            let (heard_before, heard_after) = futures_util::future::join(
                received_by_all(&mut before[WATCHED..], |_| 1),
                received_by_all(after_removed, |_| 1),
            )
            .await;
            for (member, ids) in
                (WATCHED..REMOVED).chain(REMOVED + 1..MEMBERS).zip(heard_before.iter().chain(&heard_after))
            {
                assert_eq!(ids, &vec![after_id.clone()], "member {member} got {ids:?}");
            }
            let heard = messages_received(removed_socket, 0, LINGER).await;
            assert!(heard.is_empty(), "the removed member still received {heard:?}");
        })
        .await;
}

#[tokio::test]
async fn a_job_that_keeps_failing_ends_in_the_dead_letter_queue() {
    let stack = Stack::load();
    let sqs = aws_sdk_sqs::Client::new(&stack.aws_config().await);
    let poison = format!("not a fan-out job {}", uuid::Uuid::new_v4());
    sqs.send_message().queue_url(&stack.fanout_queue_url).message_body(&poison).send().await.expect("enqueue");
    // The stack offers a job twice, 15 s apart, before dead-lettering it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&stack.fanout_dead_letter_queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(5)
            .send()
            .await
            .expect("read the dead-letter queue");
        for message in received.messages() {
            if message.body() == Some(poison.as_str()) {
                let receipt = message.receipt_handle().unwrap_or_default();
                sqs.delete_message()
                    .queue_url(&stack.fanout_dead_letter_queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .expect("tidy up");
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "the poison job never reached the dead-letter queue");
    }
}

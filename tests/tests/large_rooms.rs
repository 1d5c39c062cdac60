//! Large groups on the deployed stack, whose fan-out threshold `cargo xtask test` lowers to 100 connections so
//! the queue path (SQS → `fanout-worker`) carries these rooms: a group of 200 built through the API in pages,
//! its members paged, one message reaching each of 199 live connections exactly once, five members writing at
//! the same moment and everyone getting each of the others' messages once, a removed member hearing
//! nothing more, the members leaving in waves with every `$disconnect` removing its connection, and a job that
//! keeps failing ending in the dead-letter queue.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chat_e2e::{FRAME_TIMEOUT, SETUP_IN_FLIGHT, Stack, TestUser, WsClient};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

const MEMBERS: usize = 200;
async fn connect_all(stack: &Stack, users: &[TestUser]) -> Vec<WsClient> {
    stream::iter(users).map(|user| WsClient::connect(stack, user)).buffered(SETUP_IN_FLIGHT).collect().await
}

/// How long a connection stays silent before its burst counts as over.
const QUIET: Duration = Duration::from_secs(5);

/// The `receive_message` frames that arrive on `ws` until it has been quiet for [`QUIET`], at most `wait`.
async fn messages_received(ws: &mut WsClient, wait: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut messages = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        // Deliveries of one burst can pause for seconds between frames when the functions run under qemu
        // (arm64 on an x86_64 machine, the test command's default) beside other tests: a 1.5 s quiet window once
        // cut a member's collection short (2 of 10 frames) in a fresh-clone run.
        let quiet = if messages.is_empty() { left } else { left.min(QUIET) };
        match ws.next_frame_within(quiet).await {
            Some(frame) if frame["event"] == "receive_message" => messages.push(frame["data"]["message"].clone()),
            Some(_) => {}
            None => return messages,
        }
    }
}

/// Every member's connection, concurrently: the message ids each received.
async fn received_by_all(sockets: &mut [WsClient]) -> Vec<Vec<String>> {
    let waits = sockets.iter_mut().map(|ws| async move {
        messages_received(ws, FRAME_TIMEOUT * 2)
            .await
            .iter()
            .map(|m| m["_id"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    });
    futures_util::future::join_all(waits).await
}

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
    let mut sockets = connect_all(&stack, &users).await;
    let sent =
        sockets[0].call(json!({"action": "send_message", "conversationId": id, "content": "hello, square"})).await;
    assert_eq!(sent["event"], "ack", "{sent}");
    let message_id = sent["data"]["message"]["_id"].as_str().unwrap().to_owned();
    let received = received_by_all(&mut sockets[1..]).await;
    let wrong: HashMap<&str, &Vec<String>> = users[1..]
        .iter()
        .zip(&received)
        .filter(|(_, ids)| **ids != [message_id.clone()])
        .map(|(user, ids)| (user.username.as_str(), ids))
        .collect();
    assert!(wrong.is_empty(), "{} of 199 members did not get the message exactly once: {wrong:?}", wrong.len());

    // A crowd: five members write at the same moment, twice each, every delivery going through the queue.
    // Each connection gets each of the others' ten messages exactly once.
    const SENDERS: usize = 5;
    let writes = sockets[..SENDERS].iter_mut().enumerate().map(|(n, ws)| {
        let id = id.clone();
        async move {
            let mut ids = Vec::new();
            for k in 0..2 {
                let content = format!("crowd {n}.{k}");
                let ack = ws.call(json!({"action": "send_message", "conversationId": id, "content": content})).await;
                assert_eq!(ack["event"], "ack", "sender {n}: {ack}");
                ids.push(ack["data"]["message"]["_id"].as_str().unwrap().to_owned());
            }
            ids
        }
    });
    let sent_by: Vec<Vec<String>> = futures_util::future::join_all(writes).await;
    let received = received_by_all(&mut sockets).await;
    for (n, ids) in received.iter().enumerate() {
        let expected: BTreeSet<String> =
            sent_by.iter().enumerate().filter(|(sender, _)| *sender != n).flat_map(|(_, ids)| ids.clone()).collect();
        let got: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(got.len(), ids.len(), "member {n} received a message twice: {ids:?}");
        assert_eq!(got, expected, "member {n}");
    }

    // A removed member hears that they were removed, then nothing; the others keep receiving.
    let removed = &users[150];
    let (status, body) =
        api.call("DELETE", &format!("/conversations/{id}/members/{}", removed.id), Some(&owner.token), None).await;
    assert_eq!(status, 200, "{body}");
    let left = sockets[150].expect_event("member_left").await;
    assert_eq!(left["userId"], removed.id.as_str());
    let after = sockets[0].call(json!({"action": "send_message", "conversationId": id, "content": "after"})).await;
    assert_eq!(after["event"], "ack", "{after}");
    let after_id = after["data"]["message"]["_id"].as_str().unwrap().to_owned();
    let mut witnesses = sockets.split_off(149);
    let mut removed_socket = witnesses.remove(1);
    let others = received_by_all(&mut witnesses).await;
    for (n, ids) in others.iter().enumerate() {
        // The member_left frame came first; the message after it, once.
        assert_eq!(ids, &vec![after_id.clone()], "member {} got {ids:?}", 149 + if n == 0 { 0 } else { n + 1 });
    }
    let heard = messages_received(&mut removed_socket, Duration::from_secs(3)).await;
    assert!(heard.is_empty(), "the removed member still received {heard:?}");
    let open: Vec<WsClient> = sockets.into_iter().chain(witnesses).chain([removed_socket]).collect();
    stack.close_in_waves(&users, open).await;
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

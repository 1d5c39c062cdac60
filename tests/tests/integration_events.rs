//! Events for integrators on the deployed stack: a rule on the stack's bus copies every event to a queue (the
//! `EventTap` the test deploy enables) and this test reads it. A crowd writes at once (five senders, a member
//! leaving, reactions, an edit and a delete, an account deleted), and every change arrives as its documented
//! event, at least once, ordered per conversation by `streamSequence` as the changes were written.
//!
//! Only this test reads the tap (other tests' events arrive too and are set aside), so it is the file's only test.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chat_e2e::{Api, Stack, TestUser, WsClient};
use futures_util::future::join_all;
use serde_json::{Value, json};

/// How long every expected event has to arrive (the erasure waits 5 s before it starts).
const DEADLINE: Duration = Duration::from_secs(90);

/// `(detail-type, detail)` of the events the tap received that `mine` keeps, until `done` says all are there.
async fn drain(
    stack: &Stack,
    mine: impl Fn(&str, &Value) -> bool,
    done: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let url = stack.event_tap_queue_url.clone().expect("the stack is deployed with EventTap=enabled (cargo xtask)");
    let sqs = aws_sdk_sqs::Client::new(&stack.aws_config().await);
    let started = Instant::now();
    let mut kept = Vec::new();
    while !done(&kept) {
        assert!(started.elapsed() < DEADLINE, "events missing after {DEADLINE:?}; got {kept:#?}");
        let out = sqs.receive_message().queue_url(&url).max_number_of_messages(10).wait_time_seconds(1).send().await;
        for message in out.expect("receive from the tap").messages() {
            let event: Value = serde_json::from_str(message.body().unwrap_or_default()).expect("an EventBridge event");
            assert_eq!(event["source"], "chat", "{event}");
            let kind = event["detail-type"].as_str().expect("detail-type").to_owned();
            if mine(&kind, &event["detail"]) {
                kept.push((kind, event["detail"].clone()));
            }
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message().queue_url(&url).receipt_handle(handle).send().await.expect("delete from the tap");
            }
        }
    }
    kept
}

fn count(events: &[(String, Value)], kind: &str, field: &str, value: &str) -> usize {
    events.iter().filter(|(k, d)| k == kind && d[field] == value).count()
}

/// Stream sequence numbers are decimal strings of varying length: longer is later.
fn stream_order(detail: &Value) -> (usize, String) {
    let sequence = detail["streamSequence"].as_str().expect("streamSequence").to_owned();
    (sequence.len(), sequence)
}

async fn send(api: &Api, who: &TestUser, group: &str, content: String) -> Value {
    let path = format!("/conversations/{group}/messages");
    let (status, message) = api.call("POST", &path, Some(&who.token), Some(json!({"content": content}))).await;
    assert_eq!(status, 201, "{message}");
    message
}

#[tokio::test]
async fn every_change_of_a_crowd_reaches_the_bus_once_per_kind_in_conversation_order() {
    let stack = Stack::load();
    let api = stack.api();
    let people: Vec<TestUser> = join_all((0..7).map(|_| api.register("events"))).await;
    let group = api.group(&people[0], &people[1..]).await;
    let ids: BTreeSet<String> = people.iter().map(|p| p.id.clone()).collect();

    // Five senders, four messages each, at the same moment.
    let sent = join_all((0..5).flat_map(|s| (0..4).map(move |k| (s, k))).map(|(s, k)| {
        let (api, people, group) = (&api, &people, &group);
        async move { send(api, &people[s], group, format!("{s}.{k}")).await }
    }))
    .await;
    let by_seq: BTreeMap<u64, &Value> = sent.iter().map(|m| (m["seq"].as_u64().unwrap(), m)).collect();
    let (first, second, third) = (&by_seq[&1], &by_seq[&2], &by_seq[&3]);
    let author = |message: &Value| people.iter().find(|p| p.id == message["sender"]["_id"]).unwrap();
    let edit = json!({"newContent": "edited"});
    let path = |message: &Value| format!("/conversations/{group}/messages/{}", message["_id"].as_str().unwrap());
    let leaver = &people[6];
    // Reactions are WebSocket actions.
    let mut reactor = WsClient::connect(&stack, &people[5]).await;
    let react = |action: &str| json!({"action": action, "messageId": third["_id"], "emoji": "👍"});
    let (edit_path, delete_path) = (path(first), path(second));
    let leave_path = format!("/conversations/{group}/members/{}", leaver.id);
    let (edited, deleted, reacted, left, closed) = tokio::join!(
        api.call("PUT", &edit_path, Some(&author(first).token), Some(edit)),
        api.call("DELETE", &delete_path, Some(&author(second).token), None),
        reactor.call(react("add_reaction")),
        api.call("DELETE", &leave_path, Some(&leaver.token), None),
        api.call("DELETE", "/users/me", Some(&people[4].token), Some(json!({"password": chat_e2e::PASSWORD}))),
    );
    for (status, body) in [&edited, &deleted, &left, &closed] {
        assert!((200..300).contains(status), "{status} {body}");
    }
    assert_eq!(reacted["event"], "ack", "{reacted}");
    let unreacted = reactor.call(react("remove_reaction")).await;
    assert_eq!(unreacted["event"], "ack", "{unreacted}");
    reactor.close().await;

    let mine = |_: &str, detail: &Value| {
        detail["conversationId"] == group.as_str() || detail["userId"].as_str().is_some_and(|id| ids.contains(id))
    };
    let erased_author = people[4].id.clone();
    let erased_expected = sent.iter().filter(|m| m["sender"]["_id"] == erased_author.as_str()).count();
    let done = |events: &[(String, Value)]| {
        let seen = |kind: &str| events.iter().filter(|(k, _)| k == kind).count();
        let sent_seqs: BTreeSet<u64> =
            events.iter().filter(|(k, _)| k == "message.sent").filter_map(|(_, d)| d["seq"].as_u64()).collect();
        sent_seqs.len() == 20
            && seen("account.created") >= 7
            && seen("member.joined") >= 7
            && seen("message.edited") >= 1
            && seen("message.deleted") >= 1
            && seen("reaction.added") >= 1
            && seen("reaction.removed") >= 1
            && count(events, "member.left", "userId", &leaver.id) >= 1
            && count(events, "account.deleted", "userId", &erased_author) >= 1
            && seen("message.erased") >= erased_expected
    };
    let events = drain(&stack, mine, done).await;

    // The documented shapes (docs/events.md).
    for (kind, detail) in &events {
        let fields: &[&str] = match kind.as_str() {
            "message.sent" => {
                &["conversationId", "messageId", "seq", "senderId", "type", "content", "mentions", "createdAt"]
            }
            "message.edited" => &["conversationId", "messageId", "seq", "senderId", "content", "editedAt"],
            "message.deleted" => &["conversationId", "messageId", "seq", "senderId", "deletedAt"],
            "message.erased" => &["conversationId", "messageId", "seq"],
            "reaction.added" | "reaction.removed" => &["conversationId", "messageId", "seq", "userId", "emoji"],
            "member.joined" | "member.left" => &["conversationId", "userId"],
            "account.created" => &["userId", "username"],
            "account.deleted" => &["userId", "deletedAt"],
            other => panic!("undocumented event {other}: {detail}"),
        };
        for field in fields.iter().chain(&["streamSequence"]) {
            assert!(!detail[field].is_null(), "{kind} lacks {field}: {detail}");
        }
    }
    let edited = events.iter().find(|(k, _)| k == "message.edited").unwrap();
    assert_eq!((&edited.1["messageId"], &edited.1["content"]), (&first["_id"], &json!("edited")));
    assert_eq!(count(&events, "message.deleted", "messageId", second["_id"].as_str().unwrap()), 1);
    assert_eq!(count(&events, "reaction.added", "messageId", third["_id"].as_str().unwrap()), 1);
    for person in &people {
        assert_eq!(count(&events, "account.created", "userId", &person.id), 1, "{}", person.username);
    }

    // Per conversation, the stream's order is the order the messages were written: sorted by `streamSequence`,
    // the sends come in `seq` order (whatever order the queue handed them over in).
    let mut in_conversation: Vec<&Value> = events
        .iter()
        .filter(|(k, d)| k == "message.sent" && d["conversationId"] == group.as_str())
        .map(|(_, d)| d)
        .collect();
    in_conversation.sort_by_key(|d| stream_order(d));
    in_conversation.dedup_by_key(|d| stream_order(d));
    let seqs: Vec<u64> = in_conversation.iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    let sent_order: Vec<&str> = in_conversation.iter().map(|d| d["content"].as_str().unwrap()).collect();
    assert_eq!(sent_order, (1..=20).map(|seq| by_seq[&seq]["content"].as_str().unwrap()).collect::<Vec<_>>());
}

//! Exporting one's data on the deployed stack: `POST /users/me/export` answers at once (pending), `account-worker`
//! writes the document to the bucket, `GET /users/me/export` hands out a link that downloads it without credentials.
//! The document holds the user's profile, conversations, relations, every message they sent and every reaction they
//! added, and nobody else's words. And in a crowd: requests at the same moment start one export; a dozen members export
//! at once while the group keeps talking, and each gets exactly their own messages.

use std::time::{Duration, Instant};

use chat_e2e::files::fetch;
use chat_e2e::{Api, Stack, TestUser, WsClient};
use futures_util::future::join_all;
use serde_json::{Value, json};

/// Queue delay, a few reads and one write: far less than this on an idle emulator.
const READY_WITHIN: Duration = Duration::from_secs(120);

/// Sends a message over REST; its id.
async fn send(api: &Api, who: &TestUser, conversation: &str, content: impl Into<String>) -> String {
    let content = content.into();
    let path = format!("/conversations/{conversation}/messages");
    let (status, body) = api.call("POST", &path, Some(&who.token), Some(json!({"content": content}))).await;
    assert_eq!(status, 201, "{body}");
    body["_id"].as_str().expect("a message id").to_owned()
}

async fn react(stack: &Stack, who: &TestUser, message_id: &str, emoji: &str) {
    let mut ws = WsClient::connect(stack, who).await;
    // Presence frames about the other member may arrive before the answer.
    let ack = ws.call(json!({"action": "add_reaction", "messageId": message_id, "emoji": emoji})).await;
    assert_eq!(ack["data"]["changed"], true, "{ack}");
    ws.close().await;
}

async fn request_export(api: &Api, who: &TestUser) -> (u16, Value) {
    api.call("POST", "/users/me/export", Some(&who.token), None).await
}

/// Polls `GET /users/me/export` until it is ready; the answer and how long it took.
async fn ready_export(api: &Api, who: &TestUser) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let (status, body) = api.call("GET", "/users/me/export", Some(&who.token), None).await;
        assert_eq!(status, 200, "{body}");
        match body["status"].as_str() {
            Some("ready") => return (body, started.elapsed()),
            Some("pending") => {}
            other => panic!("unexpected export status {other:?}: {body}"),
        }
        assert!(started.elapsed() < READY_WITHIN, "no export after {READY_WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The document behind a ready export's link, fetched without credentials.
async fn download(ready: &Value) -> Value {
    let (status, bytes) = fetch(ready["url"].as_str().expect("download link")).await;
    assert_eq!(status, 200);
    assert_eq!(ready["size"], json!(bytes.len()), "the size given is the document's");
    serde_json::from_slice(&bytes).expect("the document is JSON")
}

fn contents_of(document: &Value) -> Vec<String> {
    let mut contents: Vec<String> = document["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    contents.sort();
    contents
}

#[tokio::test]
async fn an_export_holds_the_users_own_data_behind_a_link_and_is_made_once() {
    let stack = Stack::load();
    let api = stack.api();
    let (alice, bob, carol) = (api.register("alice").await, api.register("bob").await, api.register("carol").await);
    let club = api.group(&alice, [&bob, &carol]).await;
    let pair = api.private_conversation(&alice, &bob).await;
    let alices = send(&api, &alice, &club, "alice 1").await;
    let bobs = send(&api, &bob, &club, "bob's words").await;
    send(&api, &alice, &pair, "alice 2").await;
    react(&stack, &alice, &bobs, "👍").await;
    react(&stack, &bob, &alices, "🎉").await;
    let (status, _) =
        api.call("POST", "/friend-requests", Some(&alice.token), Some(json!({"username": bob.username}))).await;
    assert_eq!(status, 201);
    let (status, _) = api.call("POST", &format!("/users/{}/block", carol.id), Some(&alice.token), None).await;
    assert_eq!(status, 200);

    let (status, body) = api.call("GET", "/users/me/export", Some(&alice.token), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    // Eight requests at the same moment (a double click, several devices): one export. A request that arrives
    // once it is made (a slow cold start) answers it ready.
    let answers = join_all((0..8).map(|_| request_export(&api, &alice))).await;
    assert!(
        answers.iter().all(|(status, body)| (*status, body["status"].as_str()) == (202, Some("pending"))
            || (*status, body["status"].as_str()) == (200, Some("ready"))),
        "{answers:?}"
    );
    assert!(answers.iter().any(|(status, _)| *status == 202), "the first is pending: {answers:?}");
    let export_id = &answers[0].1["exportId"];
    assert!(answers.iter().all(|(_, body)| &body["exportId"] == export_id), "one export: {answers:?}");

    let (ready, took) = ready_export(&api, &alice).await;
    println!("a 2-message export was ready {took:?} after the request");
    assert_eq!(&ready["exportId"], export_id);
    let document = download(&ready).await;
    assert_eq!(document["format"], "chat-export/1");
    assert_eq!(
        (&document["profile"]["_id"], &document["profile"]["username"]),
        (&json!(alice.id), &json!(alice.username))
    );
    assert_eq!(contents_of(&document), ["alice 1", "alice 2"], "her messages, and only hers");
    assert!(document["messages"].as_array().unwrap().iter().all(|m| m["sender"]["_id"] == json!(alice.id)));
    let mut conversations: Vec<&str> =
        document["conversations"].as_array().unwrap().iter().map(|c| c["_id"].as_str().unwrap()).collect();
    conversations.sort();
    let mut expected = [club.as_str(), pair.as_str()];
    expected.sort();
    assert_eq!(conversations, expected);
    assert!(!document.to_string().contains("bob's words"), "nobody else's words, not even in a preview");
    assert_eq!(document["reactions"], json!([{"messageId": bobs, "emoji": "👍"}]), "her reactions, and only hers");
    assert_eq!(document["friendRequestsSent"][0]["username"], json!(bob.username));
    assert_eq!(document["blocked"][0]["username"], json!(carol.username));

    // Within the hour a new request answers the same export, ready.
    let (status, again) = request_export(&api, &alice).await;
    assert_eq!((status, &again["exportId"], &again["status"]), (200, export_id, &json!("ready")), "{again}");
    // Nobody else reads it: the link is the only way in, and another user's GET answers their own (none).
    let (status, _) = api.call("GET", "/users/me/export", Some(&bob.token), None).await;
    assert_eq!(status, 404);
    assert_eq!(api.call("GET", "/users/me/export", None, None).await.0, 401);
}

#[tokio::test]
async fn a_dozen_members_export_at_once_while_the_group_talks_and_each_gets_their_own() {
    const MEMBERS: usize = 12;
    const BEFORE: usize = 4;
    let stack = Stack::load();
    let api = stack.api();
    let members: Vec<TestUser> = join_all((0..MEMBERS).map(|_| api.register("exporter"))).await;
    let group = api.group(&members[0], &members[1..]).await;
    let (api, group) = (&api, &group);
    for round in 0..BEFORE {
        join_all(members.iter().map(|m| send(api, m, group, format!("{} before {round}", m.username)))).await;
    }

    // Everyone asks for their export while everyone keeps sending.
    let requests = join_all(members.iter().map(|m| request_export(api, m)));
    let talking = join_all(members.iter().map(|m| send(api, m, group, format!("{} during", m.username))));
    let (answers, _) = tokio::join!(requests, talking);
    assert!(answers.iter().all(|(status, _)| *status == 202), "{answers:?}");

    let started = Instant::now();
    let documents =
        join_all(members.iter().map(|m| async move { download(&ready_export(api, m).await.0).await })).await;
    println!("{MEMBERS} exports requested at once were all ready {:?} later", started.elapsed());
    for (member, document) in members.iter().zip(&documents) {
        let contents = contents_of(document);
        let before: Vec<String> = (0..BEFORE).map(|round| format!("{} before {round}", member.username)).collect();
        assert!(before.iter().all(|b| contents.contains(b)), "{}: {contents:?}", member.username);
        assert!(contents.len() <= BEFORE + 1, "{}: at most the one sent meanwhile more: {contents:?}", member.username);
        assert!(
            document["messages"].as_array().unwrap().iter().all(|m| m["sender"]["_id"] == json!(member.id)),
            "only {}'s messages",
            member.username
        );
    }
}

#[tokio::test]
async fn an_export_of_many_messages_holds_every_one_and_the_time_is_printed() {
    let messages: usize = std::env::var("CHAT_EXPORT_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000);
    const CONVERSATIONS: usize = 4;
    let stack = Stack::load();
    let api = stack.api();
    let alice = api.register("prolific").await;
    let bob = api.register("reader").await;
    let chats: Vec<String> = join_all((0..CONVERSATIONS).map(|_| api.group(&alice, [&bob]))).await;
    join_all(chats.iter().map(|chat| stack.seed_messages(chat, &alice, messages / CONVERSATIONS))).await;
    send(&api, &bob, &chats[0], "bob's words").await;

    let (status, _) = request_export(&api, &alice).await;
    assert_eq!(status, 202);
    let (ready, took) = ready_export(&api, &alice).await;
    let document = download(&ready).await;
    println!(
        "an export of {messages} messages in {CONVERSATIONS} conversations was ready {took:?} after the request \
         ({} bytes)",
        ready["size"]
    );
    let exported = document["messages"].as_array().unwrap();
    assert_eq!(exported.len(), messages / CONVERSATIONS * CONVERSATIONS, "every one of hers, nobody else's");
    for chat in &chats {
        let mut seqs: Vec<u64> = exported
            .iter()
            .filter(|m| m["conversationId"] == json!(chat))
            .map(|m| m["seq"].as_u64().unwrap())
            .collect();
        let sorted = seqs.windows(2).all(|w| w[0] < w[1]);
        seqs.dedup();
        assert!(sorted && seqs.len() == messages / CONVERSATIONS, "each conversation's in order, once");
    }
}

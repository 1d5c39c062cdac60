//! Deleting an account on the deployed stack, from the side of the people around it: the account closes at once
//! (sockets closed, tokens and login refused, the username free for someone else), and `account-worker` erases it
//! in the background: every message of theirs shows "Deleted account" with no content, the groups they were in
//! get a new owner and a `member_left`, their friends lose them from the list, their private chats take no more
//! messages. And in a crowd: ten friends keep sending to the user while the deletion runs (nothing internal, every
//! friend's stored message kept, every one of the user's erased). The account of `CHAT_ERASURE_MESSAGES` messages
//! (1,000 unless set) prints how long its erasure took, the figure the docs give for 10,000.

use std::time::{Duration, Instant};

use chat_e2e::{Api, PASSWORD, Stack, TestUser, WsClient};
use futures_util::future::join_all;
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

/// How long an erasure may take on the emulator before a test gives up on it.
const ERASED_WITHIN: Duration = Duration::from_secs(180);
const DELETED: &str = "Deleted account";

async fn delete_account(api: &Api, user: &TestUser) -> Value {
    let (status, body) = api.call("DELETE", "/users/me", Some(&user.token), Some(json!({"password": PASSWORD}))).await;
    assert_eq!(status, 202, "{body}");
    body
}

/// Every message of a conversation, oldest first, as `reader` reads it.
async fn all_messages(api: &Api, reader: &TestUser, conversation: &str) -> Vec<Value> {
    let mut messages = Vec::new();
    let mut after = 0;
    loop {
        let path = format!("/conversations/{conversation}/messages?afterSeq={after}&limit=100");
        let (status, page) = api.call("GET", &path, Some(&reader.token), None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap().clone();
        let Some(last) = items.last() else { return messages };
        after = last["seq"].as_u64().unwrap();
        messages.extend(items);
    }
}

/// Waits until every message `of` sent in `conversation` reads as erased; how long that took.
async fn erased_within(api: &Api, reader: &TestUser, conversation: &str, of: &TestUser) -> Duration {
    let started = Instant::now();
    loop {
        let messages = all_messages(api, reader, conversation).await;
        let theirs: Vec<&Value> = messages.iter().filter(|m| m["sender"]["_id"] == json!(of.id)).collect();
        if theirs.iter().all(|m| m["sender"]["username"] == DELETED && m["deleted"] == true) {
            return started.elapsed();
        }
        assert!(started.elapsed() < ERASED_WITHIN, "not erased after {ERASED_WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The `data` of the next `name` event, past any other frame.
async fn next_event(ws: &mut WsClient, name: &str) -> Value {
    let deadline = Instant::now() + ERASED_WITHIN;
    while Instant::now() < deadline {
        if let Some(frame) = ws.next_frame_within(Duration::from_secs(5)).await
            && frame["event"] == name
        {
            return frame["data"].clone();
        }
    }
    panic!("no `{name}` within {ERASED_WITHIN:?}");
}

async fn send(api: &Api, who: &TestUser, conversation: &str, content: &str) -> (u16, Value) {
    api.call(
        "POST",
        &format!("/conversations/{conversation}/messages"),
        Some(&who.token),
        Some(json!({"content": content})),
    )
    .await
}

async fn befriend(api: &Api, a: &TestUser, b: &TestUser) {
    let (status, body) =
        api.call("POST", "/friend-requests", Some(&a.token), Some(json!({"username": b.username}))).await;
    assert_eq!(status, 201, "{body}");
    let path = format!("/friend-requests/{}/accept", a.username);
    assert_eq!(api.call("POST", &path, Some(&b.token), None).await.0, 200);
}

#[tokio::test]
async fn a_deleted_account_closes_at_once_and_is_erased_in_the_background() {
    let stack = Stack::load();
    let api = stack.api();
    let (alice, bob, carol) = (api.register("alice").await, api.register("bob").await, api.register("carol").await);
    let club = api.group(&alice, [&bob, &carol]).await;
    let pair = api.private_conversation(&alice, &bob).await;
    assert_eq!(send(&api, &alice, &club, "alice in the club").await.0, 201);
    assert_eq!(send(&api, &bob, &club, "bob in the club").await.0, 201);
    assert_eq!(send(&api, &alice, &pair, "my secret").await.0, 201);
    befriend(&api, &alice, &bob).await;
    let mut alice_ws = WsClient::connect(&stack, &alice).await;
    let mut bob_ws = WsClient::connect(&stack, &bob).await;

    let wrong = api.call("DELETE", "/users/me", Some(&alice.token), Some(json!({"password": "wrong-horse-9"}))).await;
    assert_eq!((wrong.0, wrong.1["error"]["code"].as_str()), (403, Some("forbidden")), "{}", wrong.1);
    let deleted = delete_account(&api, &alice).await;
    assert_eq!((&deleted["status"], &deleted["closedConnections"]), (&json!("erasing"), &json!(1)), "{deleted}");
    assert!(alice_ws.ends_within(Duration::from_secs(10)).await, "her socket closes at once");
    assert_eq!(api.call("GET", "/users/me", Some(&alice.token), None).await.0, 401);
    assert!(WsClient::try_connect(&stack, &alice.token).await.is_err(), "a reconnect is refused");
    let login = json!({"username": alice.username, "password": PASSWORD});
    assert_eq!(api.call("POST", "/auth/login", None, Some(login.clone())).await.0, 401, "login is refused");
    assert_eq!(api.call("POST", "/auth/register", None, Some(login)).await.0, 201, "the username is free again");

    let took = erased_within(&api, &bob, &pair, &alice).await;
    erased_within(&api, &bob, &club, &alice).await;
    println!("erasing a 2-message account took {took:?} after the request");
    let others: Vec<Value> =
        all_messages(&api, &bob, &club).await.into_iter().filter(|m| m["sender"]["_id"] == json!(bob.id)).collect();
    assert_eq!(others[0]["content"], "bob in the club", "everyone else's messages stay");
    // She left the club (bob or carol, who joined together, owns it now; bob heard it), the private chat stays, the
    // friendship is gone.
    let left = next_event(&mut bob_ws, "member_left").await;
    assert_eq!(left["userId"], json!(alice.id), "{left}");
    let (_, club_view) = api.call("GET", &format!("/conversations/{club}"), Some(&bob.token), None).await;
    assert_eq!(club_view["memberCount"], json!(2), "{club_view}");
    assert!([json!(bob.id), json!(carol.id)].contains(&club_view["ownerId"]), "{club_view}");
    let (_, listed) = api.call("GET", "/conversations", Some(&bob.token), None).await;
    assert!(!listed.to_string().contains("my secret"), "no preview keeps her words: {listed}");
    let (_, friends) = api.call("GET", "/friends", Some(&bob.token), None).await;
    assert!(!friends.to_string().contains(&alice.id), "{friends}");
    // The private chat stays readable and takes nothing more: no message is stored for nobody to read.
    let (status, refused) = send(&api, &bob, &pair, "are you there?").await;
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("forbidden")), "{refused}");
    bob_ws.close().await;
}

#[tokio::test]
async fn ten_friends_sending_while_the_account_is_deleted_lose_nothing_of_theirs() {
    const FRIENDS: usize = 10;
    const ROUNDS: usize = 6;
    let stack = Stack::load();
    let api = stack.api();
    let alice = api.register("leaving").await;
    let friends: Vec<TestUser> = stream::iter(0..FRIENDS).map(|_| api.register("friend")).buffered(10).collect().await;
    let chats: Vec<String> = join_all(friends.iter().map(|f| api.private_conversation(&alice, f))).await;
    let group = api.group(&alice, &friends).await;
    for chat in &chats {
        assert_eq!(send(&api, &alice, chat, "from alice").await.0, 201);
    }

    // The friends send into their chats and the group while alice deletes her account.
    let (api, group) = (&api, &group);
    let sending = join_all(friends.iter().zip(&chats).map(|(friend, chat)| async move {
        let (mut to_alice, mut to_group) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            to_alice.push(send(api, friend, chat, &format!("to alice {round}")).await.0);
            to_group.push(send(api, friend, group, &format!("to the group {round}")).await.0);
        }
        (to_alice, to_group)
    }));
    let (statuses, _) = tokio::join!(sending, async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        delete_account(api, &alice).await
    });
    // The private chats close once the erasure reaches them: a send is stored (201) or refused (403), never lost.
    for (to_alice, to_group) in &statuses {
        assert!(to_alice.iter().all(|s| *s == 201 || *s == 403), "{to_alice:?}");
        assert!(to_group.iter().all(|s| *s == 201), "the group stays open: {to_group:?}");
    }

    for ((friend, chat), (to_alice, _)) in friends.iter().zip(&chats).zip(&statuses) {
        erased_within(api, friend, chat, &alice).await;
        let messages = all_messages(api, friend, chat).await;
        let kept = messages.iter().filter(|m| m["sender"]["_id"] == json!(friend.id)).count();
        let stored = to_alice.iter().filter(|s| **s == 201).count();
        assert_eq!(kept, stored, "every message the friend's send stored is there");
    }
    erased_within(api, &friends[0], group, &alice).await;
    let (_, view) = api.call("GET", &format!("/conversations/{group}"), Some(&friends[0].token), None).await;
    assert_eq!(view["memberCount"], json!(FRIENDS), "alice left, everyone else stayed: {view}");
    assert!(friends.iter().any(|f| view["ownerId"] == json!(f.id)), "a friend owns the group: {view}");
}

#[tokio::test]
async fn an_account_of_many_messages_is_erased_in_steps_and_the_time_is_printed() {
    let messages: usize = std::env::var("CHAT_ERASURE_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000);
    const CONVERSATIONS: usize = 4;
    let stack = Stack::load();
    let api = stack.api();
    let alice = api.register("prolific").await;
    let bob = api.register("reader").await;
    let chats: Vec<String> = join_all((0..CONVERSATIONS).map(|_| api.group(&alice, [&bob]))).await;

    // CONVERSATIONS writers at once.
    let seeded = Instant::now();
    join_all(chats.iter().map(|chat| stack.seed_messages(chat, &alice, messages / CONVERSATIONS))).await;
    println!("seeded {messages} messages in {:?}", seeded.elapsed());

    delete_account(&api, &alice).await;
    let started = Instant::now();
    for chat in &chats {
        erased_within(&api, &bob, chat, &alice).await;
    }
    let took = started.elapsed();
    println!("erasing an account of {messages} messages in {CONVERSATIONS} conversations took {took:?}");
    for chat in &chats {
        let all = all_messages(&api, &bob, chat).await;
        assert_eq!(all.len(), messages / CONVERSATIONS);
        assert!(all.iter().all(|m| m["content"] == chat_shared::model::DELETED_CONTENT), "every one erased");
    }
}

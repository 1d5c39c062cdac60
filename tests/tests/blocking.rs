//! Blocking on the deployed stack, from the side of the person it protects: a blocked user's private message,
//! friend request and new conversation are refused and never reach the blocker's socket; in a group the blocker
//! gets none of their messages; a crowd blocking at the same moment (two users blocking each other included)
//! ends with every block recorded and enforced, nothing internal; and the privacy setting (everyone, friends,
//! nobody) decides who may start a conversation with a user or add them to a group.

use std::time::Duration;

use chat_e2e::{Api, Stack, TestUser, WsClient};
use futures_util::future::join_all;
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

async fn block(api: &Api, blocker: &TestUser, blocked: &TestUser) -> Value {
    let (status, body) = api.call("POST", &format!("/users/{}/block", blocked.id), Some(&blocker.token), None).await;
    assert_eq!(status, 200, "block: {body}");
    body
}

async fn unblock(api: &Api, blocker: &TestUser, blocked: &TestUser) -> Value {
    let (status, body) = api.call("DELETE", &format!("/users/{}/block", blocked.id), Some(&blocker.token), None).await;
    assert_eq!(status, 200, "unblock: {body}");
    body
}

fn send_frame(conversation_id: &str, content: &str) -> Value {
    json!({"action": "send_message", "conversationId": conversation_id, "content": content})
}

#[tokio::test]
async fn a_blocked_users_private_message_is_refused_and_never_reaches_the_blocker() {
    let stack = Stack::load();
    let api = stack.api();
    let (alice, bob) = (api.register("alice").await, api.register("bob").await);
    let conversation_id = api.private_conversation(&alice, &bob).await;
    let mut a1 = WsClient::connect(&stack, &alice).await;
    let mut b1 = WsClient::connect(&stack, &bob).await;
    a1.expect_event("user_online").await;

    assert_eq!(block(&api, &bob, &alice).await["result"], "blocked");
    assert_eq!(block(&api, &bob, &alice).await["result"], "unchanged", "blocking again changes nothing");
    // Bob's devices learn it (once); Alice is not told.
    assert_eq!(b1.expect_event("user_blocked").await["user"]["_id"], alice.id.as_str());
    a1.expect_quiet().await;
    let (status, listed) = api.call("GET", "/users/me/blocked", Some(&bob.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"][0]["user"]["_id"], alice.id.as_str(), "{listed}");

    let refused = a1.request(send_frame(&conversation_id, "are you there?")).await;
    assert_eq!((refused["event"].as_str(), refused["data"]["code"].as_str()), (Some("error"), Some("forbidden")));
    let path = format!("/conversations/{conversation_id}/messages");
    let (status, body) = api.call("POST", &path, Some(&alice.token), Some(json!({"content": "over HTTP"}))).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) =
        api.call("POST", "/friend-requests", Some(&alice.token), Some(json!({"username": bob.username}))).await;
    assert_eq!(status, 403);
    let typing = a1.request(json!({"action":"typing","conversationId":conversation_id,"isTyping":true})).await;
    assert_eq!(typing["data"]["code"], "forbidden");
    // The blocker cannot write there either, and the history is still readable by both, with nothing new.
    let refused = b1.request(send_frame(&conversation_id, "bye")).await;
    assert_eq!(refused["data"]["code"], "forbidden");
    b1.expect_quiet().await;
    for user in [&alice, &bob] {
        let (status, history) = api.call("GET", &path, Some(&user.token), None).await;
        assert_eq!((status, history["items"].as_array().map(Vec::len)), (200, Some(0)), "{history}");
    }
    // Asking for the conversation again finds the existing one (readable), not a new one.
    let again = api.private_conversation(&alice, &bob).await;
    assert_eq!(again, conversation_id);

    assert_eq!(unblock(&api, &bob, &alice).await["result"], "unblocked");
    assert_eq!(b1.expect_event("user_unblocked").await["user"]["_id"], alice.id.as_str());
    let ack = a1.request(send_frame(&conversation_id, "hello again")).await;
    assert_eq!(ack["event"], "ack", "{ack}");
    assert_eq!(b1.expect_event("receive_message").await["message"]["content"], "hello again");
    a1.close().await;
    b1.close().await;
}

#[tokio::test]
async fn no_private_conversation_starts_after_a_block_and_a_group_cannot_take_the_blocker() {
    let stack = Stack::load();
    let api = stack.api();
    let (carol, dave, erin) = (api.register("carol").await, api.register("dave").await, api.register("erin").await);
    block(&api, &carol, &dave).await;
    for (from, to) in [(&dave, &carol), (&carol, &dave)] {
        let body = json!({"type": "private", "participantId": to.id});
        let (status, answer) = api.call("POST", "/conversations", Some(&from.token), Some(body)).await;
        assert_eq!(status, 403, "{answer}");
    }
    let group = json!({"type": "group", "name": "g", "participantIds": [carol.id, erin.id]});
    let (status, answer) = api.call("POST", "/conversations", Some(&dave.token), Some(group)).await;
    assert_eq!(status, 403, "{answer}");
    // Erin's group takes Dave; Dave cannot add Carol to it, Erin can.
    let group = json!({"type": "group", "name": "g", "participantIds": [dave.id]});
    let (status, created) = api.call("POST", "/conversations", Some(&erin.token), Some(group)).await;
    assert_eq!(status, 201, "{created}");
    let members = format!("/conversations/{}/members", created["_id"].as_str().unwrap());
    let (status, _) = api.call("POST", &members, Some(&dave.token), Some(json!({"userIds": [carol.id]}))).await;
    assert_eq!(status, 403);
    let (status, body) = api.call("POST", &members, Some(&erin.token), Some(json!({"userIds": [carol.id]}))).await;
    assert_eq!(status, 200, "{body}");
}

/// The `receive_message` contents on `ws` until it is quiet.
async fn contents_received(ws: &mut WsClient) -> Vec<String> {
    let mut contents = Vec::new();
    while let Some(frame) = ws.next_frame_within(Duration::from_secs(3)).await {
        if frame["event"] == "receive_message" {
            contents.push(frame["data"]["message"]["content"].as_str().unwrap_or_default().to_owned());
        }
    }
    contents
}

#[tokio::test]
async fn half_of_a_fifty_member_group_blocking_one_sender_at_once_stop_receiving_them() {
    const MEMBERS: usize = 49;
    let stack = Stack::load();
    let api = stack.api();
    let sender = api.register("sender").await;
    let members = api.register_many("member", MEMBERS).await;
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    let group = json!({"type": "group", "name": "crowd", "participantIds": ids});
    let (status, created) = api.call("POST", "/conversations", Some(&sender.token), Some(group)).await;
    assert_eq!(status, 201, "{created}");
    let conversation_id = created["_id"].as_str().unwrap().to_owned();
    let mut sockets = stack.connect_all(&members).await;
    let mut sender_socket = WsClient::connect(&stack, &sender).await;

    // Every other member blocks the sender at the same moment, while the sender keeps writing.
    let blockers: Vec<usize> = (0..MEMBERS).step_by(2).collect();
    let blocking = join_all(blockers.iter().map(|&n| block(&api, &members[n], &sender)));
    let writing = async {
        for n in 0..3 {
            let ack = sender_socket.call(send_frame(&conversation_id, &format!("during {n}"))).await;
            assert_eq!(ack["event"], "ack", "{ack}");
        }
    };
    let (outcomes, ()) = tokio::join!(blocking, writing);
    assert!(outcomes.iter().all(|o| o["result"] == "blocked"), "{outcomes:?}");
    // Drain what the race delivered (either way is right for a message sent while the block was landing).
    join_all(sockets.iter_mut().map(contents_received)).await;

    let ack = sender_socket.call(send_frame(&conversation_id, "after")).await;
    assert_eq!(ack["event"], "ack", "{ack}");
    let received = join_all(sockets.iter_mut().map(contents_received)).await;
    for (n, contents) in received.iter().enumerate() {
        let expected: Vec<String> = if n % 2 == 0 { vec![] } else { vec!["after".into()] };
        assert_eq!(contents, &expected, "member {n} (a blocker: {})", n % 2 == 0);
    }
    let path = format!("/conversations/{conversation_id}/messages");
    let (_, blocker_history) = api.call("GET", &path, Some(&members[0].token), None).await;
    let (_, other_history) = api.call("GET", &path, Some(&members[1].token), None).await;
    assert_eq!(blocker_history["items"].as_array().map(Vec::len), Some(0), "a blocker's history hides them");
    assert_eq!(other_history["items"].as_array().map(Vec::len), Some(4));

    sockets.push(sender_socket);
    let everyone: Vec<TestUser> = members.iter().cloned().chain([sender]).collect();
    stack.close_in_waves(&everyone, sockets).await;
}

#[tokio::test]
async fn two_users_blocking_each_other_at_once_both_hold_until_both_unblock() {
    let stack = Stack::load();
    let api = stack.api();
    let pairs: Vec<(TestUser, TestUser, String)> = stream::iter(0..10)
        .map(|_| async {
            let (a, b) = (api.register("mutual").await, api.register("mutual").await);
            let conversation_id = api.private_conversation(&a, &b).await;
            (a, b, conversation_id)
        })
        .buffered(5)
        .collect()
        .await;
    let both = pairs.iter().map(|(a, b, _)| async { tokio::join!(block(&api, a, b), block(&api, b, a)) });
    for (by_a, by_b) in join_all(both).await {
        assert_eq!((by_a["result"].as_str(), by_b["result"].as_str()), (Some("blocked"), Some("blocked")));
    }
    for (a, b, conversation_id) in &pairs {
        let path = format!("/conversations/{conversation_id}/messages");
        unblock(&api, a, b).await;
        let (status, _) = api.call("POST", &path, Some(&a.token), Some(json!({"content": "x"}))).await;
        assert_eq!(status, 403, "still blocked by the other");
        unblock(&api, b, a).await;
        let (status, body) = api.call("POST", &path, Some(&a.token), Some(json!({"content": "x"}))).await;
        assert_eq!(status, 201, "{body}");
    }
}

#[tokio::test]
async fn the_privacy_setting_decides_who_may_start_a_conversation_or_add_me() {
    let stack = Stack::load();
    let api = stack.api();
    let (frank, gina, hugo) = (api.register("frank").await, api.register("gina").await, api.register("hugo").await);
    let privacy = |setting: &str| json!({"contactableBy": setting});
    let (status, body) = api.call("GET", "/users/me/privacy", Some(&frank.token), None).await;
    assert_eq!((status, body), (200, privacy("everyone")), "everyone by default");
    let (status, body) = api.call("PUT", "/users/me/privacy", Some(&frank.token), Some(privacy("nobody"))).await;
    assert_eq!((status, body), (200, privacy("nobody")));
    let (status, _) = api.call("PUT", "/users/me/privacy", Some(&frank.token), Some(privacy("aliens"))).await;
    assert_eq!(status, 400);
    assert_eq!(api.call("GET", "/users/me/privacy", Some(&frank.token), None).await.1, privacy("nobody"));

    // Ten users try at once: nobody gets a conversation with Frank, or puts him in a group.
    let strangers: Vec<TestUser> = join_all((0..10).map(|_| api.register("stranger"))).await;
    let attempts = strangers.iter().enumerate().map(|(n, s)| {
        let body = if n % 2 == 0 {
            json!({"type": "private", "participantId": frank.id})
        } else {
            json!({"type": "group", "name": "g", "participantIds": [frank.id, hugo.id]})
        };
        api.call("POST", "/conversations", Some(&s.token), Some(body))
    });
    for (status, body) in join_all(attempts).await {
        assert_eq!(status, 403, "{body}");
    }

    // Friends only: Gina once she is his friend, Hugo not.
    api.call("PUT", "/users/me/privacy", Some(&frank.token), Some(privacy("friends"))).await;
    let to_frank = json!({"type": "private", "participantId": frank.id});
    assert_eq!(api.call("POST", "/conversations", Some(&gina.token), Some(to_frank.clone())).await.0, 403);
    let request = json!({"username": frank.username});
    assert_eq!(api.call("POST", "/friend-requests", Some(&gina.token), Some(request)).await.0, 201);
    let accept = format!("/friend-requests/{}/accept", gina.username);
    assert_eq!(api.call("POST", &accept, Some(&frank.token), None).await.0, 200);
    assert_eq!(api.call("POST", "/conversations", Some(&gina.token), Some(to_frank.clone())).await.0, 201);
    let ivan = api.register("ivan").await;
    let group = json!({"type": "group", "name": "g", "participantIds": [ivan.id]});
    let (_, group) = api.call("POST", "/conversations", Some(&hugo.token), Some(group)).await;
    let members = format!("/conversations/{}/members", group["_id"].as_str().unwrap());
    let add_frank = json!({"userIds": [frank.id]});
    assert_eq!(api.call("POST", &members, Some(&hugo.token), Some(add_frank.clone())).await.0, 403);
    assert_eq!(api.call("POST", "/conversations", Some(&hugo.token), Some(to_frank)).await.0, 403);
    let add_gina = json!({"userIds": [gina.id]});
    assert_eq!(api.call("POST", &members, Some(&hugo.token), Some(add_gina)).await.0, 200);
    // Gina, his friend, may add him to the group she is now an admin of.
    let gina_role = format!("{members}/{}/role", gina.id);
    let admin = json!({"role": "admin"});
    assert_eq!(api.call("PUT", &gina_role, Some(&hugo.token), Some(admin)).await.0, 200);
    assert_eq!(api.call("POST", &members, Some(&gina.token), Some(add_frank)).await.0, 200);
}

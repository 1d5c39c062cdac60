//! The WebSocket handlers against in-memory fakes: every action's ack or error, exactly which frames every other
//! party receives, and silence for outsiders. Fast (no network); the same behaviour on the deployed stack is
//! covered by tests/tests/protocol.rs.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use chat_shared::adapters::actions::ClientAction;
use chat_shared::adapters::ws::{connect, disconnect, message};
use chat_shared::delivery::HANDSHAKE_GRACE_SECS;
use chat_shared::model::{Actor, ConnectionId, ConversationId, MessageId, UserId};
use chat_shared::ports::{ConnectionStore, Created, FriendStore, MessageStore, Relation, SeqRange, UserStore};
use chat_shared::testing::{InMemoryStore, RecordingFanout, TestApp};
use chat_shared::usecases::accounts::Credentials;
use chat_shared::usecases::conversations::CreateConversation;
use serde_json::{Value, json};

fn ws_event(
    route: &str,
    connection_id: &str,
    body: Option<&str>,
    query: Option<Value>,
    headers: Value,
) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(json!({
        "headers": headers,
        "queryStringParameters": query,
        "requestContext": {
            "routeKey": route,
            "eventType": if route == "$connect" { "CONNECT" } else if route == "$disconnect" { "DISCONNECT" } else { "MESSAGE" },
            "connectionId": connection_id,
            "domainName": "abc.execute-api.us-east-1.amazonaws.com",
            "stage": "prod",
            "requestId": "req-1",
            "apiId": "abc",
            "connectedAt": 0,
            "requestTimeEpoch": 0
        },
        "body": body,
        "isBase64Encoded": false
    }))
    .expect("valid websocket event")
}

struct World {
    t: TestApp,
    store: Arc<InMemoryStore>,
    fanout: Arc<RecordingFanout>,
    alice: UserId,
    bob: UserId,
    conversation_id: ConversationId,
}

/// Alice and Bob with a private conversation; Alice connected as a1 and a2, Bob as b1, Mallory (no member) as m1.
async fn world() -> World {
    let t = TestApp::new();
    let (store, fanout) = (t.store.clone(), t.fanout.clone());
    let mut tokens = Vec::new();
    for name in ["alice", "bob", "mallory"] {
        let session = t
            .accounts
            .register(Credentials { username: name.into(), password: "password123".into(), avatar: None })
            .await
            .unwrap();
        tokens.push(session);
    }
    let conversation = t
        .app
        .conversations
        .create(
            &Actor::http(&tokens[0].user),
            CreateConversation::Private { participant_id: tokens[1].user.id.clone() },
        )
        .await
        .unwrap();
    let Created::New(conversation) = conversation else { panic!("first create is new") };
    for (connection, session) in [("a1", &tokens[0]), ("a2", &tokens[0]), ("b1", &tokens[1]), ("m1", &tokens[2])] {
        let query = json!({ "token": session.token });
        let res = connect(&t.app, &t.accounts, ws_event("$connect", connection, None, Some(query), json!({}))).await;
        assert_eq!(res.status_code, 200);
    }
    // Bob's connect told Alice's connections he is online; tests start from a clean slate.
    assert_eq!(fanout.frames("a1")[0]["event"], "user_online");
    fanout.clear();
    World {
        alice: tokens[0].user.id.clone(),
        bob: tokens[1].user.id.clone(),
        conversation_id: conversation.id,
        t,
        store,
        fanout,
    }
}

async fn send(w: &World, connection_id: &str, body: Value) {
    let res =
        message(&w.t.app, ws_event("send_message", connection_id, Some(&body.to_string()), None, json!({}))).await;
    assert_eq!(res.status_code, 200, "chat actions always answer 200");
}

#[tokio::test]
async fn connect_accepts_query_or_bearer_token_and_refuses_others() {
    let t = TestApp::new();
    let store = t.store.clone();
    let session = t
        .accounts
        .register(Credentials { username: "alice".into(), password: "password123".into(), avatar: None })
        .await
        .unwrap();
    let by_header = json!({ "Authorization": format!("Bearer {}", session.token) });
    assert_eq!(connect(&t.app, &t.accounts, ws_event("$connect", "c1", None, None, by_header)).await.status_code, 200);
    assert_eq!(store.connection_ids(&session.user.id), vec!["c1".to_string()]);

    for (query, headers) in [
        (None, json!({})),
        (Some(json!({ "token": "garbage" })), json!({})),
        (None, json!({ "Authorization": "Basic abc" })),
    ] {
        let res = connect(&t.app, &t.accounts, ws_event("$connect", "c2", None, query, headers)).await;
        assert_eq!(res.status_code, 401);
    }
    assert!(
        store.get_connection(&ConnectionId::new("c2")).await.unwrap().is_none(),
        "refused connections are not stored"
    );

    assert_eq!(disconnect(&t.app, ws_event("$disconnect", "c1", None, None, json!({}))).await.status_code, 200);
    assert!(store.connection_ids(&session.user.id).is_empty());
}

#[tokio::test]
async fn send_message_acks_the_sender_and_reaches_every_other_member_connection() {
    let w = world().await;
    send(&w, "a1", json!({"action":"send_message","requestId":"r1","conversationId":w.conversation_id,"content":"hi bob","type":"text"})).await;

    let ack = &w.fanout.frames("a1")[0];
    assert_eq!(ack["event"], "ack");
    assert_eq!(ack["requestId"], "r1");
    assert_eq!(ack["data"]["success"], true);
    assert_eq!(ack["data"]["message"]["content"], "hi bob");
    assert_eq!(ack["data"]["message"]["seq"], 1);
    assert_eq!(ack["data"]["message"]["sender"]["_id"], w.alice.as_str());
    let delivered = json!({"event":"message_status","data":{
        "conversationId": w.conversation_id, "messageId": ack["data"]["message"]["_id"],
        "status": "delivered", "userIds": [w.bob]}});
    assert_eq!(w.fanout.frames("a1")[1..], *std::slice::from_ref(&delivered), "the sender's connection gets no copy");

    for other in ["a2", "b1"] {
        let frames = w.fanout.frames(other);
        assert_eq!(frames[0]["event"], "receive_message");
        assert_eq!(frames[0]["data"]["conversationId"], w.conversation_id.as_str());
        assert_eq!(frames[0]["data"]["message"], ack["data"]["message"]);
    }
    assert_eq!(w.fanout.frames("a2")[1..], [delivered], "all the sender's connections learn of delivery");
    assert_eq!(w.fanout.frames("b1").len(), 1);
    assert!(w.fanout.frames("m1").is_empty(), "non-members receive nothing");
}

#[tokio::test]
async fn seq_increases_without_gaps() {
    let w = world().await;
    for i in 0..5 {
        let from = if i % 2 == 0 { "a1" } else { "b1" };
        send(&w, from, json!({"action":"send_message","conversationId":w.conversation_id,"content":format!("m{i}")}))
            .await;
    }
    let seqs: Vec<u64> = w
        .fanout
        .frames("a2")
        .iter()
        .filter(|f| f["event"] == "receive_message")
        .map(|f| f["data"]["message"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn a_retried_client_message_id_returns_the_original_and_broadcasts_nothing() {
    let w = world().await;
    let body = json!({"action":"send_message","requestId":"r1","conversationId":w.conversation_id,"content":"once","clientMessageId":"cm-1"});
    send(&w, "a1", body.clone()).await;
    send(&w, "a1", body).await;
    let acks: Vec<Value> = w.fanout.frames("a1").into_iter().filter(|f| f["event"] == "ack").collect();
    assert_eq!(acks.len(), 2);
    assert_eq!(acks[0]["data"]["message"], acks[1]["data"]["message"]);
    assert_eq!(acks[1]["data"]["duplicate"], true);
    assert_eq!(w.fanout.frames("b1").len(), 1, "one broadcast only");
}

#[tokio::test]
async fn non_members_get_not_found_and_nothing_is_stored() {
    let w = world().await;
    send(
        &w,
        "m1",
        json!({"action":"send_message","requestId":"x","conversationId":w.conversation_id,"content":"let me in"}),
    )
    .await;
    let err = &w.fanout.frames("m1")[0];
    assert_eq!(err["event"], "error");
    assert_eq!(err["requestId"], "x");
    assert_eq!(err["data"]["code"], "not_found");
    assert!(w.fanout.frames("b1").is_empty());
    assert!(w.fanout.frames("a1").is_empty());
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_connection_keeps_working() {
    let w = world().await;
    let cases = [
        ("not json", None, "bad_request"),
        (r#"{"action":"fly","requestId":"r2"}"#, Some("r2"), "unknown_action"),
        (r#"{"action":"send_message","requestId":"r3","conversationId":5}"#, Some("r3"), "bad_request"),
        (
            r#"{"action":"send_message","requestId":"r4","conversationId":"c","content":"  "}"#,
            Some("r4"),
            "validation_failed",
        ),
    ];
    for (i, (body, request_id, code)) in cases.iter().enumerate() {
        let res = message(&w.t.app, ws_event("$default", "b1", Some(body), None, json!({}))).await;
        assert_eq!(res.status_code, 200);
        let frame = &w.fanout.frames("b1")[i];
        assert_eq!(frame["event"], "error", "{body}");
        assert_eq!(frame["data"]["success"], false);
        assert_eq!(frame["data"]["code"], *code, "{body}");
        assert_eq!(frame["requestId"].as_str(), *request_id);
        assert!(frame["data"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    send(&w, "b1", json!({"action":"send_message","conversationId":w.conversation_id,"content":"still here"})).await;
    assert_eq!(w.fanout.frames("b1")[cases.len()]["event"], "ack");
    assert_eq!(w.fanout.frames("a1").last().unwrap()["data"]["message"]["sender"]["_id"], w.bob.as_str());
}

#[tokio::test]
async fn ping_answers_pong_with_the_request_id() {
    let w = world().await;
    message(&w.t.app, ws_event("ping", "b1", Some(r#"{"action":"ping","requestId":"p"}"#), None, json!({}))).await;
    assert_eq!(w.fanout.frames("b1"), vec![json!({"event":"pong","requestId":"p","data":{}})]);
}

#[tokio::test]
async fn a_gone_recipient_connection_is_removed_and_others_still_receive() {
    let w = world().await;
    w.store.backdate_connections(HANDSHAKE_GRACE_SECS + 1);
    w.fanout.mark_gone("a2");
    send(&w, "b1", json!({"action":"send_message","conversationId":w.conversation_id,"content":"hello"})).await;
    assert_eq!(w.fanout.frames("a1").len(), 1);
    assert_eq!(w.store.connection_ids(&w.alice), vec!["a1".to_string()]);
    assert_eq!(w.store.connection_ids(&w.bob), vec!["b1".to_string()]);
}

/// API Gateway answers 410 for a connection whose `$connect` has not returned yet. Members who connect
/// together post `user_online` to each other during their handshakes; that must not unregister them.
#[tokio::test]
async fn a_410_during_a_handshake_does_not_unregister_the_connection() {
    let t = TestApp::new();
    let (store, fanout) = (t.store.clone(), t.fanout.clone());
    let mut sessions = Vec::new();
    for name in ["alice", "bob"] {
        let credentials = Credentials { username: name.into(), password: "password123".into(), avatar: None };
        sessions.push(t.accounts.register(credentials).await.unwrap());
    }
    let (alice, bob) = (&sessions[0], &sessions[1]);
    let private = CreateConversation::Private { participant_id: bob.user.id.clone() };
    let Created::New(conversation) = t.app.conversations.create(&Actor::http(&alice.user), private).await.unwrap()
    else {
        panic!("first create is new")
    };
    // Bob's handshake is still running when Alice's $connect announces her.
    fanout.mark_gone("b1");
    let query = |token: &str| Some(json!({ "token": token }));
    assert_eq!(
        connect(&t.app, &t.accounts, ws_event("$connect", "b1", None, query(&bob.token), json!({}))).await.status_code,
        200
    );
    assert_eq!(
        connect(&t.app, &t.accounts, ws_event("$connect", "a1", None, query(&alice.token), json!({})))
            .await
            .status_code,
        200
    );
    assert_eq!(store.connection_ids(&bob.user.id), vec!["b1".to_string()], "bob is still registered");
    fanout.mark_alive("b1");
    let body = json!({"action":"send_message","conversationId":conversation.id,"content":"hi","requestId":"s"});
    message(&t.app, ws_event("send_message", "a1", Some(&body.to_string()), None, json!({}))).await;
    assert_eq!(fanout.frames("b1")[0]["event"], "receive_message", "and receives what is sent afterwards");
    let status = json!({"action":"get_status","requestId":"g"});
    message(&t.app, ws_event("get_status", "b1", Some(&status.to_string()), None, json!({}))).await;
    assert_eq!(fanout.frames("b1")[1]["event"], "ack", "and may act");
}

#[tokio::test]
async fn an_unregistered_connection_is_told_to_reconnect() {
    let w = world().await;
    send(
        &w,
        "ghost",
        json!({"action":"send_message","requestId":"g","conversationId":w.conversation_id,"content":"boo"}),
    )
    .await;
    assert_eq!(w.fanout.frames("ghost")[0]["data"]["code"], "unauthorized");
}

async fn act(w: &World, connection_id: &str, body: Value) {
    let res = message(&w.t.app, ws_event("$default", connection_id, Some(&body.to_string()), None, json!({}))).await;
    assert_eq!(res.status_code, 200);
}

fn events_of(w: &World, connection_id: &str) -> Vec<String> {
    w.fanout.frames(connection_id).iter().map(|f| f["event"].as_str().unwrap().to_owned()).collect()
}

/// Alice sends one message and the frames it caused are forgotten; returns its id.
async fn one_message(w: &World) -> String {
    send(w, "a1", json!({"action":"send_message","conversationId":w.conversation_id,"content":"original"})).await;
    let id = w.fanout.frames("b1")[0]["data"]["message"]["_id"].as_str().unwrap().to_owned();
    w.fanout.clear();
    id
}

#[tokio::test]
async fn only_the_sender_edits_and_members_hear_of_it() {
    let w = world().await;
    let id = one_message(&w).await;
    act(&w, "b1", json!({"action":"edit_message","requestId":"e0","messageId":id,"newContent":"hacked"})).await;
    assert_eq!(w.fanout.frames("b1")[0]["data"]["code"], "forbidden");
    act(&w, "m1", json!({"action":"edit_message","requestId":"e1","messageId":id,"newContent":"x"})).await;
    assert_eq!(w.fanout.frames("m1")[0]["data"]["code"], "not_found");
    act(&w, "a1", json!({"action":"edit_message","requestId":"e2","messageId":id,"newContent":" "})).await;
    assert_eq!(w.fanout.frames("a1")[0]["data"]["code"], "validation_failed");
    w.fanout.clear();

    act(&w, "a1", json!({"action":"edit_message","requestId":"e3","messageId":id,"newContent":"fixed"})).await;
    let ack = &w.fanout.frames("a1")[0];
    assert_eq!(ack["event"], "ack");
    assert_eq!(ack["data"]["message"]["content"], "fixed");
    assert_eq!(ack["data"]["message"]["edited"], true);
    for other in ["a2", "b1"] {
        let frame = &w.fanout.frames(other)[0];
        assert_eq!(frame["event"], "message_edited");
        assert_eq!(frame["data"]["messageId"], id.as_str());
        assert_eq!(frame["data"]["newContent"], "fixed");
        assert_eq!(frame["data"]["conversationId"], w.conversation_id.as_str());
        assert_eq!(frame["data"]["editedAt"], ack["data"]["message"]["editedAt"]);
    }
    assert!(w.fanout.frames("m1").is_empty());
}

#[tokio::test]
async fn soft_delete_replaces_content_and_freezes_the_message() {
    let w = world().await;
    let id = one_message(&w).await;
    act(&w, "a1", json!({"action":"delete_message","requestId":"d","messageId":id})).await;
    assert_eq!(w.fanout.frames("a1")[0]["data"]["messageId"], id.as_str());
    for other in ["a2", "b1"] {
        assert_eq!(
            w.fanout.frames(other),
            vec![json!({"event":"message_deleted","data":{"messageId":id,"conversationId":w.conversation_id}})]
        );
    }
    let id = MessageId::parse(&id).unwrap();
    let stored = w.store.get_message(&id.conversation_id, id.seq).await.unwrap().unwrap();
    let id = id.to_string();
    assert_eq!(stored.content, "This message was deleted");
    assert!(stored.deleted && stored.deleted_at.is_some());
    w.fanout.clear();
    act(&w, "a1", json!({"action":"edit_message","requestId":"e","messageId":id,"newContent":"back"})).await;
    assert_eq!(w.fanout.frames("a1")[0]["data"]["code"], "conflict");
    act(&w, "b1", json!({"action":"add_reaction","requestId":"r","messageId":id,"emoji":"👍"})).await;
    assert_eq!(w.fanout.frames("b1")[0]["data"]["code"], "conflict");
}

#[tokio::test]
async fn mark_read_moves_the_pointer_and_notifies_members_once() {
    let w = world().await;
    let first = one_message(&w).await;
    let id = one_message(&w).await;
    act(&w, "b1", json!({"action":"mark_read","requestId":"r","conversationId":w.conversation_id,"lastMessageId":id}))
        .await;
    let ack = &w.fanout.frames("b1")[0];
    assert_eq!(ack["data"]["lastReadSeq"], 2);
    assert_eq!(ack["data"]["messageIds"], json!([first, id]));
    for alice in ["a1", "a2"] {
        let frames = w.fanout.frames(alice);
        assert_eq!(frames[0]["event"], "messages_read");
        assert_eq!(frames[0]["data"]["readBy"], w.bob.as_str());
        assert_eq!(frames[0]["data"]["messageIds"], json!([first, id]));
        assert_eq!(
            frames[1],
            json!({"event":"message_status","data":{"conversationId":w.conversation_id,"messageId":id,"status":"read","userId":w.bob}})
        );
    }
    w.fanout.clear();
    act(
        &w,
        "b1",
        json!({"action":"mark_read","requestId":"r2","conversationId":w.conversation_id,"messageIds":[first]}),
    )
    .await;
    assert_eq!(w.fanout.frames("b1")[0]["data"]["messageIds"], json!([]), "pointers never move back");
    assert!(w.fanout.frames("a1").is_empty());
    act(
        &w,
        "b1",
        json!({"action":"mark_read","requestId":"r3","conversationId":w.conversation_id,"messageIds":["elsewhere-1"]}),
    )
    .await;
    assert_eq!(w.fanout.frames("b1")[1]["data"]["code"], "not_found");
    act(&w, "m1", json!({"action":"mark_read","requestId":"r4","conversationId":w.conversation_id,"lastMessageId":id}))
        .await;
    assert_eq!(w.fanout.frames("m1")[0]["data"]["code"], "not_found");
}

#[tokio::test]
async fn reactions_broadcast_only_changes() {
    let w = world().await;
    let id = one_message(&w).await;
    let add = json!({"action":"add_reaction","requestId":"x","messageId":id,"emoji":"🎉"});
    act(&w, "b1", add.clone()).await;
    act(&w, "b1", add).await;
    let acks: Vec<Value> = w.fanout.frames("b1").iter().map(|f| f["data"]["changed"].clone()).collect();
    assert_eq!(acks, vec![json!(true), json!(false)]);
    let expected = json!({"event":"reaction_added","data":{"messageId":id,"conversationId":w.conversation_id,"emoji":"🎉","userId":w.bob}});
    assert_eq!(w.fanout.frames("a1"), vec![expected.clone()]);
    assert_eq!(w.fanout.frames("a2"), vec![expected]);
    act(&w, "b1", json!({"action":"remove_reaction","messageId":id,"emoji":"🎉"})).await;
    assert_eq!(w.fanout.frames("a1")[1]["event"], "reaction_removed");
    act(&w, "b1", json!({"action":"add_reaction","requestId":"y","messageId":id,"emoji":"ok"})).await;
    assert_eq!(w.fanout.frames("b1").last().unwrap()["data"]["code"], "validation_failed");
    assert!(w.fanout.frames("m1").is_empty());
}

#[tokio::test]
async fn typing_reaches_joined_connections_of_others_and_is_throttled() {
    let w = world().await;
    act(&w, "b1", json!({"action":"join_conversations","requestId":"j","conversationIds":[w.conversation_id, "nope"]}))
        .await;
    assert_eq!(
        w.fanout.frames("b1")[0]["data"],
        json!({"success":true,"joined":[w.conversation_id],"rejected":["nope"]})
    );
    act(&w, "a2", json!({"action":"join_conversation","conversationId":w.conversation_id})).await;
    act(&w, "m1", json!({"action":"join_conversation","requestId":"m","conversationId":w.conversation_id})).await;
    assert_eq!(w.fanout.frames("m1")[0]["data"]["code"], "not_found");
    w.fanout.clear();

    let typing = json!({"action":"typing","conversationId":w.conversation_id,"isTyping":true});
    act(&w, "a1", typing.clone()).await;
    act(&w, "a1", typing).await; // within 2 s: swallowed
    act(&w, "a1", json!({"action":"typing","conversationId":w.conversation_id,"isTyping":false})).await;
    let states: Vec<Value> = w.fanout.frames("b1").iter().map(|f| f["data"]["isTyping"].clone()).collect();
    assert_eq!(states, vec![json!(true), json!(false)]);
    assert_eq!(w.fanout.frames("b1")[0]["data"]["username"], "alice");
    assert!(w.fanout.frames("a2").is_empty(), "the typer's own connections are not told");
    assert!(w.fanout.frames("a1").is_empty(), "no requestId, no ack");

    act(&w, "b1", json!({"action":"leave_conversation","conversationId":w.conversation_id})).await;
    act(&w, "a1", json!({"action":"typing","conversationId":w.conversation_id,"isTyping":true})).await;
    assert_eq!(w.fanout.frames("b1").len(), 2, "left connections hear nothing");
}

#[tokio::test]
async fn friend_requests_flow_between_the_two_users_only() {
    let w = world().await;
    let req = |action: &str, user: &str| json!({"action":action,"requestId":action,"username":user});
    act(&w, "a1", req("send_friend_request", "mallory")).await;
    assert_eq!(w.fanout.frames("a1")[0]["data"]["result"], "requested");
    let got = &w.fanout.frames("m1")[0];
    assert_eq!(got["event"], "friend_request_received");
    assert_eq!(got["data"]["from"]["username"], "alice");
    act(&w, "a1", req("send_friend_request", "mallory")).await;
    assert_eq!(w.fanout.frames("a1")[1]["data"]["code"], "conflict");
    act(&w, "a1", req("send_friend_request", "nobody")).await;
    assert_eq!(w.fanout.frames("a1")[2]["data"]["code"], "not_found");
    act(&w, "a1", req("send_friend_request", "alice")).await;
    assert_eq!(w.fanout.frames("a1")[3]["data"]["code"], "validation_failed");
    w.fanout.clear();

    act(&w, "m1", req("accept_friend_request", "alice")).await;
    assert_eq!(w.fanout.frames("m1")[0]["data"]["result"], "accepted");
    for alice in ["a1", "a2"] {
        assert_eq!(events_of(&w, alice), ["friend_request_accepted", "friendship_created"]);
        assert_eq!(w.fanout.frames(alice)[1]["data"]["friend"]["username"], "mallory");
    }
    assert!(w.fanout.frames("b1").is_empty(), "bystanders hear nothing");
    w.fanout.clear();

    act(&w, "a1", req("unfriend", "mallory")).await;
    assert_eq!(events_of(&w, "m1"), ["friendship_deleted"]);
    assert_eq!(events_of(&w, "a2"), ["friendship_deleted"]);
    act(&w, "a1", req("unfriend", "mallory")).await;
    assert_eq!(w.fanout.frames("a1")[1]["data"]["code"], "not_found");
    w.fanout.clear();

    act(&w, "b1", req("send_friend_request", "mallory")).await;
    act(&w, "b1", req("cancel_friend_request", "mallory")).await;
    assert_eq!(events_of(&w, "m1"), ["friend_request_received", "friend_request_cancelled"]);
    act(&w, "b1", req("send_friend_request", "mallory")).await;
    act(&w, "m1", req("reject_friend_request", "bob")).await;
    assert_eq!(events_of(&w, "b1")[3], "friend_request_rejected");
    act(&w, "m1", req("accept_friend_request", "bob")).await;
    assert_eq!(w.fanout.frames("m1").last().unwrap()["data"]["code"], "not_found");
}

#[tokio::test]
async fn crossing_requests_become_a_friendship() {
    let w = world().await;
    act(&w, "a1", json!({"action":"send_friend_request","username":"bob"})).await;
    act(&w, "b1", json!({"action":"send_friend_request","requestId":"x","username":"alice"})).await;
    assert_eq!(w.fanout.frames("b1").last().unwrap()["data"]["result"], "accepted");
    assert_eq!(w.store.relation(&w.alice, &w.bob).await.unwrap(), Relation::Friends);
}

#[tokio::test]
async fn presence_follows_first_and_last_connection_and_status() {
    let w = world().await;
    disconnect(&w.t.app, ws_event("$disconnect", "b1", None, None, json!({}))).await;
    for alice in ["a1", "a2"] {
        let frame = &w.fanout.frames(alice)[0];
        assert_eq!(frame["event"], "user_offline");
        assert_eq!(frame["data"]["userId"], w.bob.as_str());
        assert!(frame["data"]["lastSeen"].is_string());
    }
    assert!(w.fanout.frames("m1").is_empty(), "strangers do not see presence");
    disconnect(&w.t.app, ws_event("$disconnect", "a2", None, None, json!({}))).await;
    assert_eq!(w.fanout.frames("a1").len(), 1, "alice still has a connection: no event");

    // Friends see status changes; invisible looks offline.
    act(&w, "a1", json!({"action":"send_friend_request","username":"mallory"})).await;
    act(&w, "m1", json!({"action":"accept_friend_request","username":"alice"})).await;
    w.fanout.clear();
    act(&w, "a1", json!({"action":"set_status","requestId":"s","status":"away"})).await;
    assert_eq!(w.fanout.frames("a1")[0]["data"]["status"], "away");
    assert_eq!(
        w.fanout.frames("m1"),
        vec![json!({"event":"status_changed","data":{"userId":w.alice,"username":"alice","status":"away"}})]
    );
    act(&w, "a1", json!({"action":"set_status","status":"invisible"})).await;
    assert_eq!(events_of(&w, "m1")[1], "user_offline");
    act(&w, "a1", json!({"action":"set_status","status":"in a meeting"})).await;
    assert_eq!(events_of(&w, "m1")[2..], ["user_online", "status_changed"]);
    act(&w, "m1", json!({"action":"get_friends","requestId":"f"})).await;
    let friends = w.fanout.frames("m1").last().unwrap()["data"]["friends"].clone();
    assert_eq!(friends[0]["username"], "alice");
    assert_eq!(friends[0]["online"], true);
    assert_eq!(friends[0]["status"], "in a meeting");
}

/// An app in the background makes its user reachable by push only while all their connections are; the state
/// is forgotten with the connection.
#[tokio::test]
async fn a_user_is_away_only_while_every_connection_is_in_the_background() {
    let w = world().await;
    let away = |w: &World| {
        let (store, alice) = (w.store.clone(), w.alice.clone());
        async move { store.presence(&alice).await.unwrap().away_from_every_app() }
    };
    assert!(!away(&w).await);
    act(&w, "a1", json!({"action":"set_app_state","requestId":"v","state":"background"})).await;
    assert_eq!(w.fanout.frames("a1")[0]["data"], json!({"success": true, "state": "background"}));
    assert!(!away(&w).await, "a2 is still in front");
    act(&w, "a2", json!({"action":"set_app_state","state":"background"})).await;
    assert!(away(&w).await);
    act(&w, "a2", json!({"action":"set_app_state","state":"foreground"})).await;
    assert!(!away(&w).await);
    act(&w, "a1", json!({"action":"set_app_state","requestId":"x","state":"asleep"})).await;
    let refused = w.fanout.frames("a1").last().unwrap().clone();
    assert_eq!((refused["event"].as_str(), refused["requestId"].as_str()), (Some("error"), Some("x")), "{refused}");
    disconnect(&w.t.app, ws_event("$disconnect", "a2", None, None, json!({}))).await;
    assert!(away(&w).await, "a1, the one left, is in the background");
    assert!(!w.store.presence(&w.alice).await.unwrap().background.contains(&ConnectionId::new("a2")), "forgotten");
}

#[test]
fn the_template_routes_exactly_the_known_actions() {
    let template = include_str!("../../infra/template.yaml");
    let routes: std::collections::BTreeSet<&str> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("RouteKey: "))
        .filter(|key| !key.contains(' ')) // HTTP routes are "METHOD /path"
        .collect();
    let mut expected: std::collections::BTreeSet<&str> = ClientAction::NAMES.into_iter().collect();
    expected.extend(["$connect", "$disconnect", "$default"]);
    assert_eq!(routes, expected);
}

#[tokio::test]
async fn a_block_closes_the_private_conversation_both_ways_and_tells_only_the_blockers_devices() {
    let w = world().await;
    let block = |action: &str, user: &UserId| json!({"action":action,"requestId":action,"userId":user});
    act(&w, "b1", block("block_user", &w.alice)).await;
    assert_eq!(w.fanout.frames("b1")[0]["data"]["result"], "blocked");
    assert!(w.fanout.frames("a1").is_empty() && w.fanout.frames("a2").is_empty(), "the blocked user is not told");
    act(&w, "b1", block("block_user", &w.alice)).await;
    assert_eq!(w.fanout.frames("b1")[1]["data"]["result"], "unchanged");
    w.fanout.clear();

    let text = json!({"action":"send_message","requestId":"s","conversationId":w.conversation_id,"content":"hi"});
    for (from, name) in [("a1", "blocked"), ("b1", "blocker")] {
        act(&w, from, text.clone()).await;
        assert_eq!(w.fanout.frames(from)[0]["data"]["code"], "forbidden", "the {name} cannot send");
        w.fanout.clear();
    }
    let typing = json!({"action":"typing","requestId":"t","conversationId":w.conversation_id,"isTyping":true});
    act(&w, "a1", typing).await;
    assert_eq!(w.fanout.frames("a1")[0]["data"]["code"], "forbidden");
    act(&w, "a1", json!({"action":"send_friend_request","requestId":"f","username":"bob"})).await;
    assert_eq!(w.fanout.frames("a1")[1]["data"]["code"], "forbidden");
    assert!(w.fanout.frames("b1").is_empty(), "nothing reached the blocker");
    let stored = w.store.messages(&w.conversation_id, SeqRange::After(0), 10).await.unwrap();
    assert!(stored.is_empty(), "nothing was stored: {stored:?}");

    act(&w, "b1", json!({"action":"get_blocked_users","requestId":"l"})).await;
    assert_eq!(w.fanout.frames("b1")[0]["data"]["blocked"][0]["user"]["username"], "alice");
    act(&w, "b1", block("unblock_user", &w.alice)).await;
    assert_eq!(w.fanout.frames("b1")[1]["data"]["result"], "unblocked");
    w.fanout.clear();
    send(&w, "a1", text).await;
    assert_eq!(events_of(&w, "b1"), ["receive_message"], "unblocked, the conversation is open again");
}

#[tokio::test]
async fn in_a_group_the_blocker_gets_nothing_of_the_blocked_and_cannot_be_added_by_them() {
    let w = world().await;
    let mallory = w.store.find_by_username("mallory").await.unwrap().unwrap().user;
    let alice = w.store.get_user(&w.alice).await.unwrap().unwrap();
    let group =
        CreateConversation::Group { participant_ids: vec![w.alice.clone(), w.bob.clone()], name: "three".into() };
    let Created::New(group) = w.t.app.conversations.create(&Actor::http(&mallory), group).await.unwrap() else {
        panic!("new group")
    };
    act(&w, "b1", json!({"action":"block_user","userId":w.alice})).await;
    w.fanout.clear();

    send(&w, "a1", json!({"action":"send_message","conversationId":group.id,"content":"hello all"})).await;
    let id = w.fanout.frames("m1")[0]["data"]["message"]["_id"].as_str().unwrap().to_owned();
    act(&w, "a1", json!({"action":"add_reaction","messageId":id,"emoji":"👍"})).await;
    act(&w, "b1", json!({"action":"join_conversation","conversationId":group.id})).await;
    act(&w, "m1", json!({"action":"join_conversation","conversationId":group.id})).await;
    act(&w, "a1", json!({"action":"typing","conversationId":group.id,"isTyping":true})).await;
    assert_eq!(events_of(&w, "m1"), ["receive_message", "reaction_added", "typing_status"]);
    assert!(events_of(&w, "b1").is_empty(), "the blocker got {:?}", events_of(&w, "b1"));

    // Bob's presence is hidden from Alice and hers from him; Mallory still sees both.
    w.fanout.clear();
    for connection in ["a1", "a2"] {
        disconnect(&w.t.app, ws_event("$disconnect", connection, None, None, json!({}))).await;
    }
    assert_eq!(events_of(&w, "m1"), ["user_offline"]);
    assert!(events_of(&w, "b1").is_empty());

    let with_bob = CreateConversation::Group { participant_ids: vec![w.bob.clone()], name: "two".into() };
    let refused = w.t.app.conversations.create(&Actor::http(&alice), with_bob).await.unwrap_err();
    assert_eq!(refused.code(), "forbidden");
    let refused =
        w.t.app
            .conversations
            .create(&Actor::http(&alice), CreateConversation::Private { participant_id: mallory.id.clone() })
            .await;
    assert!(refused.is_ok(), "others are unaffected");
}

//! The defects an outside test of the running stack found (issue "Hardening"), each pinned by a test against the
//! in-memory fakes: bad input answers a clear error, the connection keeps working, nothing stored changes, and a
//! failing store leaves no half-written state. The same inputs against the deployed stack are in
//! tests/tests/bad_input.rs.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use chat_shared::adapters::ws::{connect, disconnect, message};
use chat_shared::model::{Actor, ConnectionId, ConversationId, User};
use chat_shared::ports::{ConnectionStore, Created};
use chat_shared::testing::TestApp;
use chat_shared::usecases::accounts::Credentials;
use chat_shared::usecases::conversations::CreateConversation;
use chat_shared::usecases::messages::SEND_LIMIT;
use chat_shared::usecases::rooms::TYPING_LIMIT;
use serde_json::{Value, json};

fn event(
    kind: &str,
    route: &str,
    connection_id: &str,
    body: Option<&str>,
    query: Option<Value>,
) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(json!({
        "headers": {}, "queryStringParameters": query, "body": body, "isBase64Encoded": false,
        "requestContext": {
            "routeKey": route, "eventType": kind, "connectionId": connection_id, "domainName": "local",
            "stage": "prod", "requestId": "r", "apiId": "a", "connectedAt": 0, "requestTimeEpoch": 0
        }
    }))
    .unwrap()
}

/// Ann (creator), Ben and Cat in a group; each connected once (a1, b1, c1).
struct Group {
    t: TestApp,
    users: Vec<User>,
    conversation: ConversationId,
}

impl Group {
    async fn new() -> Group {
        let t = TestApp::new();
        let mut users = Vec::new();
        for name in ["ann", "ben", "cat"] {
            let credentials = Credentials { username: name.into(), password: "password123".into(), avatar: None };
            let session = t.accounts.register(credentials).await.unwrap();
            let query = json!({ "token": session.token });
            let id = format!("{}1", &name[..1]);
            let response = connect(&t.app, &t.accounts, event("CONNECT", "$connect", &id, None, Some(query))).await;
            assert_eq!(response.status_code, 200);
            users.push(session.user);
        }
        let others = users[1..].iter().map(|u| u.id.clone()).collect();
        let group = CreateConversation::Group { participant_ids: others, name: "g".into() };
        let Created::New(view) = t.app.conversations.create(&Actor::http(&users[0]), group).await.unwrap() else {
            panic!("new group")
        };
        t.fanout.clear();
        Group { t, users, conversation: view.id }
    }

    /// Sends a frame from a connection; returns the frames that connection got in answer.
    async fn frame(&self, connection: &str, body: Value) -> Vec<Value> {
        let before = self.t.fanout.frames(connection).len();
        message(&self.t.app, event("MESSAGE", "$default", connection, Some(&body.to_string()), None)).await;
        self.t.fanout.frames(connection)[before..].to_vec()
    }

    async fn answer(&self, connection: &str, body: Value) -> Value {
        let frames = self.frame(connection, body).await;
        frames.into_iter().find(|f| f["event"] == "ack" || f["event"] == "error").expect("an answer")
    }

    async fn still_answers_ping(&self, connection: &str) {
        let answer = self.answer_pong(connection).await;
        assert_eq!(answer["event"], "pong");
    }

    async fn answer_pong(&self, connection: &str) -> Value {
        self.frame(connection, json!({"action":"ping","requestId":"p"})).await.pop().expect("pong")
    }

    fn messages(&self) -> usize {
        self.t.store.messages_of(&self.conversation).len()
    }
}

fn code(answer: &Value) -> &str {
    assert_eq!(answer["event"], "error", "{answer}");
    answer["data"]["code"].as_str().unwrap()
}

/// A member removed after sending who retries the send (same `clientMessageId`) gets `not_found`, not the
/// original message: the membership rule comes before the dedupe.
#[tokio::test]
async fn a_removed_members_retry_is_refused() {
    let g = Group::new().await;
    let send = json!({"action":"send_message","requestId":"s","conversationId":g.conversation,"content":"hi",
        "clientMessageId":"cm-1"});
    assert_eq!(g.answer("c1", send.clone()).await["event"], "ack");
    g.t.app.conversations.remove_member(&Actor::http(&g.users[0]), &g.conversation, &g.users[2].id).await.unwrap();
    g.t.fanout.clear();
    assert_eq!(code(&g.answer("c1", send).await), "not_found");
    assert_eq!(g.messages(), 1);
    assert!(g.t.fanout.frames("a1").is_empty() && g.t.fanout.frames("b1").is_empty(), "nobody is told");
}

#[tokio::test]
async fn a_removed_member_hears_no_more_typing() {
    let g = Group::new().await;
    let join = json!({"action":"join_conversation","requestId":"j","conversationId":g.conversation});
    for connection in ["b1", "c1"] {
        assert_eq!(g.answer(connection, join.clone()).await["event"], "ack");
    }
    let typing = json!({"action":"typing","conversationId":g.conversation,"isTyping":true});
    g.frame("a1", typing.clone()).await;
    assert_eq!(g.t.fanout.frames("c1").last().unwrap()["event"], "typing_status", "a member in the room hears it");

    g.t.app.conversations.remove_member(&Actor::http(&g.users[0]), &g.conversation, &g.users[2].id).await.unwrap();
    g.t.fanout.clear();
    g.frame("a1", json!({"action":"typing","conversationId":g.conversation,"isTyping":false})).await;
    g.frame("b1", typing).await;
    let heard: Vec<Value> = g.t.fanout.frames("c1");
    assert!(heard.iter().all(|f| f["event"] != "typing_status"), "removed, yet heard: {heard:?}");
    let ben: Vec<Value> = g.t.fanout.frames("b1");
    assert_eq!(ben.len(), 1, "ben, still a member in the room, hears ann: {ben:?}");
    assert_eq!(ben[0]["event"], "typing_status");
}

#[tokio::test]
async fn friend_operations_on_yourself_are_validation_errors() {
    let g = Group::new().await;
    for action in
        ["send_friend_request", "cancel_friend_request", "accept_friend_request", "reject_friend_request", "unfriend"]
    {
        let answer = g.answer("a1", json!({"action":action,"requestId":"f","username":"ann"})).await;
        assert_eq!(code(&answer), "validation_failed", "{action}");
    }
    g.still_answers_ping("a1").await;
}

#[tokio::test]
async fn frames_naming_connect_or_disconnect_change_nothing() {
    let g = Group::new().await;
    for action in ["$disconnect", "$connect"] {
        let answer = g.answer("a1", json!({"action":action,"requestId":"x"})).await;
        assert_eq!(code(&answer), "unknown_action", "{action}");
        assert_eq!(answer["requestId"], "x");
    }
    // An emulator routes `{"action":"$disconnect"}` to the disconnect function: it must not disconnect.
    let frame = json!({"action":"$disconnect","requestId":"y"}).to_string();
    disconnect(&g.t.app, event("MESSAGE", "$disconnect", "a1", Some(&frame), None)).await;
    assert_eq!(code(g.t.fanout.frames("a1").last().unwrap()), "unknown_action");
    assert!(g.t.store.get_connection(&ConnectionId::new("a1")).await.unwrap().is_some(), "still registered");
    assert!(g.t.fanout.frames("b1").iter().all(|f| f["event"] != "user_offline"), "no false user_offline");
    let connect_frame = json!({"action":"$connect"}).to_string();
    let response =
        connect(&g.t.app, &g.t.accounts, event("MESSAGE", "$connect", "a1", Some(&connect_frame), None)).await;
    assert_eq!(response.status_code, 200);
    assert_eq!(code(g.t.fanout.frames("a1").last().unwrap()), "unknown_action");
    g.still_answers_ping("a1").await;
}

#[tokio::test]
async fn oversized_frames_are_answered_with_their_request_id() {
    let g = Group::new().await;
    let content = "x".repeat(70 * 1024);
    let answer = g
        .answer(
            "a1",
            json!({"action":"send_message","requestId":"big","conversationId":g.conversation,"content":content}),
        )
        .await;
    assert_eq!(code(&answer), "payload_too_large");
    assert_eq!(answer["requestId"], "big");
    assert_eq!(g.messages(), 0);
    g.still_answers_ping("a1").await;
}

#[tokio::test]
async fn long_and_malformed_ids_are_validation_errors_never_internal() {
    let g = Group::new().await;
    let long = "x".repeat(2044);
    let frames = [
        json!({"action":"send_message","conversationId":long,"content":"hi"}),
        json!({"action":"edit_message","messageId":format!("{long}-1"),"newContent":"hi"}),
        json!({"action":"delete_message","messageId":format!("{long}-1")}),
        json!({"action":"add_reaction","messageId":format!("{long}-1"),"emoji":"👍"}),
        json!({"action":"mark_read","conversationId":long,"lastMessageId":format!("{long}-1")}),
        json!({"action":"typing","conversationId":long,"isTyping":true}),
        json!({"action":"mark_read","conversationId":g.conversation,"messageIds":[format!("{}-+10", g.conversation)]}),
        json!({"action":"mark_read","conversationId":g.conversation,"messageIds":[format!("{}-0005", g.conversation)]}),
    ];
    for mut frame in frames {
        frame["requestId"] = json!("r");
        let answer = g.answer("a1", frame.clone()).await;
        assert_eq!(code(&answer), "validation_failed", "{}", &frame.to_string()[..80]);
    }
    let answer = g.answer("a1", json!({"action":"send_friend_request","requestId":"r","username":long})).await;
    assert_eq!(code(&answer), "not_found", "no user can have that name");
    assert_eq!(g.messages(), 0);
    g.still_answers_ping("a1").await;
}

#[tokio::test]
async fn mark_read_names_the_messages_that_advanced_in_seq_order() {
    let g = Group::new().await;
    let mut ids = Vec::new();
    for n in 0..10 {
        let ack = g.answer("a1", json!({"action":"send_message","requestId":"s","conversationId":g.conversation,"content":n.to_string()})).await;
        ids.push(ack["data"]["message"]["_id"].as_str().unwrap().to_owned());
    }
    let answer = g
        .answer("b1", json!({"action":"mark_read","requestId":"r","conversationId":g.conversation,"messageIds":[ids[9], ids[1], ids[2], ids[1]]}))
        .await;
    // Numeric order (…-2 before …-10), each once, rebuilt from the parsed seqs.
    assert_eq!(answer["data"]["messageIds"], json!([ids[1], ids[2], ids[9]]));
    let answer = g
        .answer(
            "b1",
            json!({"action":"mark_read","requestId":"r","conversationId":g.conversation,"messageIds":[ids[3], ids[9]]}),
        )
        .await;
    assert_eq!(answer["data"]["messageIds"], json!([]), "nothing advanced");
    assert_eq!(answer["data"]["lastReadSeq"], 10, "the ack tells where the pointer is, not where it was asked to go");
    // Sending moves the sender's own pointer: reading an older message afterwards keeps it there.
    let answer = g
        .answer(
            "a1",
            json!({"action":"mark_read","requestId":"r","conversationId":g.conversation,"lastMessageId":ids[4]}),
        )
        .await;
    assert_eq!((answer["data"]["lastReadSeq"].as_u64(), answer["data"]["messageIds"].clone()), (Some(10), json!([])));
}

#[tokio::test]
async fn sends_and_typing_are_rate_limited_per_user_with_a_retry_hint() {
    let g = Group::new().await;
    // Windows are fixed (multiples of `window_secs`): start the budget at a window's beginning, so a slow machine
    // cannot spread the sends over two windows and get a fresh budget halfway.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let window = std::time::Duration::from_secs(SEND_LIMIT.window_secs);
    let into = std::time::Duration::from_millis((now.as_millis() % window.as_millis()) as u64);
    tokio::time::sleep(window - into + std::time::Duration::from_millis(20)).await;
    let send = |n: u32| json!({"action":"send_message","requestId":"s","conversationId":g.conversation,"content":n.to_string()});
    for n in 0..SEND_LIMIT.max {
        assert_eq!(g.answer("a1", send(n)).await["event"], "ack", "send {n} is within the limit");
    }
    let refused = g.answer("a1", send(999)).await;
    assert_eq!(code(&refused), "rate_limited");
    assert!((1..=SEND_LIMIT.window_secs).contains(&refused["data"]["retryAfter"].as_u64().unwrap()), "{refused}");
    assert_eq!(g.messages(), SEND_LIMIT.max as usize, "the refused message is not stored");
    assert_eq!(g.answer("b1", send(0)).await["event"], "ack", "other users are not limited by ann");

    let typing = json!({"action":"typing","requestId":"t","conversationId":g.conversation,"isTyping":false});
    for _ in 0..TYPING_LIMIT.max {
        assert_eq!(g.answer("b1", typing.clone()).await["event"], "ack");
    }
    assert_eq!(code(&g.answer("b1", typing).await), "rate_limited");
    g.still_answers_ping("b1").await;
}

#[tokio::test]
async fn a_store_failing_during_a_send_stores_nothing_and_tells_the_sender() {
    let g = Group::new().await;
    g.t.store.fail("append_message");
    let answer = g
        .answer(
            "a1",
            json!({"action":"send_message","requestId":"s","conversationId":g.conversation,"content":"lost?"}),
        )
        .await;
    assert_eq!(code(&answer), "internal");
    assert_eq!(answer["data"]["message"], "internal error", "no internal detail reaches the client");
    assert_eq!(g.messages(), 0);
    assert!(g.t.fanout.frames("b1").is_empty(), "nothing was announced");
    g.t.store.heal();

    // Delivery failing after the message is stored: the sender still gets its ack, the message stays for catch-up.
    g.t.store.fail("presences");
    let answer = g
        .answer("a1", json!({"action":"send_message","requestId":"s","conversationId":g.conversation,"content":"kept"}))
        .await;
    assert_eq!(answer["event"], "ack");
    assert_eq!(g.messages(), 1);
    g.t.store.heal();
    g.still_answers_ping("a1").await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_over_http() {
    let g = Group::new().await;
    let t = &g.t;
    let login = json!({"username":"ann","password":"password123"});
    let request = |body: Value, token: Option<&str>, path: &str| {
        let mut builder = lambda_http::http::Request::builder().method("POST").uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        builder.body(lambda_http::Body::Text(body.to_string())).unwrap()
    };
    let response = chat_shared::adapters::http::handle(&t.rest(), request(login, None, "/auth/login")).await;
    let lambda_http::Body::Text(text) = response.body() else { panic!() };
    let token = serde_json::from_str::<Value>(text).unwrap()["token"].as_str().unwrap().to_owned();
    let path = format!("/conversations/{}/messages", g.conversation);
    for n in 0..SEND_LIMIT.max {
        let response = chat_shared::adapters::http::handle(
            &t.rest(),
            request(json!({"content":n.to_string()}), Some(&token), &path),
        )
        .await;
        assert_eq!(response.status(), 201);
    }
    let response =
        chat_shared::adapters::http::handle(&t.rest(), request(json!({"content":"x"}), Some(&token), &path)).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=SEND_LIMIT.window_secs).contains(&retry_after));
    let lambda_http::Body::Text(text) = response.body() else { panic!() };
    let body: Value = serde_json::from_str(text).unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(body["error"]["retryAfter"], retry_after);
}

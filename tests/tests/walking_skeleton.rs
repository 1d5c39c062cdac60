//! The thinnest complete path: register, create a conversation, connect over WebSocket, send, receive.

use chat_e2e::{Stack, WsClient};
use serde_json::json;
use tokio_tungstenite::tungstenite;

#[tokio::test]
async fn a_message_reaches_the_other_member_and_the_sender_gets_an_ack() {
    let stack = Stack::load();
    let api = stack.api();
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let mallory = api.register("mallory").await;
    let conversation_id = api.private_conversation(&alice, &bob).await;

    let mut alice_ws = WsClient::connect(&stack, &alice).await;
    let mut alice_tab = WsClient::connect(&stack, &alice).await;
    let mut bob_ws = WsClient::connect(&stack, &bob).await;
    let mut mallory_ws = WsClient::connect(&stack, &mallory).await;
    // Bob's first connection is announced to his conversation peer on each of her connections.
    for ws in [&mut alice_ws, &mut alice_tab] {
        let online = ws.expect_event("user_online").await;
        assert_eq!(online["userId"], bob.id.as_str());
    }

    let ack = alice_ws
        .request(json!({"action":"send_message","conversationId":conversation_id,"content":"hello bob","type":"text"}))
        .await;
    assert_eq!(ack["event"], "ack", "{ack}");
    assert_eq!(ack["data"]["success"], true);
    let message = &ack["data"]["message"];
    assert_eq!(message["content"], "hello bob");
    assert_eq!(message["conversationId"], conversation_id.as_str());
    assert_eq!(message["sender"]["_id"], alice.id.as_str());
    assert_eq!(message["sender"]["username"], alice.username.as_str());
    assert_eq!(message["status"], "sent");
    assert_eq!(message["seq"], 1);

    for ws in [&mut bob_ws, &mut alice_tab] {
        let data = ws.expect_event("receive_message").await;
        assert_eq!(data["conversationId"], conversation_id.as_str());
        assert_eq!(&data["message"], message);
    }
    // Bob's connection accepted the frame, so both of Alice's connections learn it was delivered.
    for ws in [&mut alice_ws, &mut alice_tab] {
        let status = ws.expect_event("message_status").await;
        assert_eq!(status["status"], "delivered");
        assert_eq!(status["userIds"], json!([bob.id]));
        assert_eq!(status["messageId"], message["_id"]);
    }
    mallory_ws.expect_quiet().await;
    alice_ws.expect_quiet().await;

    // And back: bob answers, alice's connections both receive it.
    let ack =
        bob_ws.request(json!({"action":"send_message","conversationId":conversation_id,"content":"hi alice"})).await;
    assert_eq!(ack["data"]["message"]["seq"], 2);
    assert_eq!(alice_ws.expect_event("receive_message").await["message"]["content"], "hi alice");
    assert_eq!(alice_tab.expect_event("receive_message").await["message"]["content"], "hi alice");

    for ws in [alice_ws, alice_tab, bob_ws, mallory_ws] {
        ws.close().await;
    }
}

#[tokio::test]
async fn a_bad_token_is_refused_at_the_handshake() {
    let stack = Stack::load();
    for token in ["garbage", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.", ""] {
        match WsClient::try_connect(&stack, token).await {
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                assert!(status == 401 || status == 403, "token {token:?}: handshake answered {status}");
            }
            Err(other) => panic!("token {token:?}: expected an HTTP refusal, got {other}"),
            Ok(_) => panic!("token {token:?}: connection was accepted"),
        }
    }
}

#[tokio::test]
async fn errors_come_back_as_frames_and_the_connection_stays_usable() {
    let stack = Stack::load();
    let api = stack.api();
    let alice = api.register("alice").await;
    let bob = api.register("bob").await;
    let conversation_id = api.private_conversation(&alice, &bob).await;
    let mut ws = WsClient::connect(&stack, &alice).await;

    ws.send_raw("this is not json").await;
    let err = ws.expect_event("error").await;
    assert_eq!(err["code"], "bad_request");
    assert_eq!(err["success"], false);

    let reply = ws.request(json!({"action":"teleport"})).await;
    assert_eq!(reply["event"], "error");
    assert_eq!(reply["data"]["code"], "unknown_action");

    let reply = ws.request(json!({"action":"send_message","conversationId":"nope","content":"x"})).await;
    assert_eq!(reply["data"]["code"], "not_found");

    let reply = ws.request(json!({"action":"send_message","conversationId":conversation_id,"content":""})).await;
    assert_eq!(reply["data"]["code"], "validation_failed");

    let reply = ws.request(json!({"action":"ping"})).await;
    assert_eq!(reply["event"], "pong");

    let ack =
        ws.request(json!({"action":"send_message","conversationId":conversation_id,"content":"still works"})).await;
    assert_eq!(ack["event"], "ack", "{ack}");
    ws.close().await;
}

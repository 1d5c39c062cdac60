//! Every WebSocket action end to end: the actor's ack or error, the exact events each other party receives,
//! and silence for the user outside the conversation.

use chat_e2e::{Api, Stack, TestUser, WsClient};
use serde_json::{Value, json};

/// Alice (two connections), Bob (one) in a private conversation; Mallory (one) outside it.
struct Room {
    stack: Stack,
    api: Api,
    alice: TestUser,
    bob: TestUser,
    mallory: TestUser,
    conversation_id: String,
    a1: WsClient,
    a2: WsClient,
    b1: WsClient,
    m1: WsClient,
}

async fn room() -> Room {
    let stack = Stack::load();
    let api = stack.api();
    let (alice, bob, mallory) = (api.register("alice").await, api.register("bob").await, api.register("mallory").await);
    let conversation_id = api.private_conversation(&alice, &bob).await;
    let m1 = WsClient::connect(&stack, &mallory).await;
    let mut a1 = WsClient::connect(&stack, &alice).await;
    let mut a2 = WsClient::connect(&stack, &alice).await;
    let b1 = WsClient::connect(&stack, &bob).await;
    for ws in [&mut a1, &mut a2] {
        assert_eq!(ws.expect_event("user_online").await["userId"], bob.id.as_str());
    }
    Room { stack, api, alice, bob, mallory, conversation_id, a1, a2, b1, m1 }
}

impl Room {
    /// Alice sends from a1; consumes every frame it causes and returns the stored message.
    async fn alice_sends(&mut self, content: &str) -> Value {
        let ack = self
            .a1
            .request(json!({"action":"send_message","conversationId":self.conversation_id,"content":content}))
            .await;
        assert_eq!(ack["event"], "ack", "{ack}");
        let message = ack["data"]["message"].clone();
        assert_eq!(self.b1.expect_event("receive_message").await["message"], message);
        assert_eq!(self.a2.expect_event("receive_message").await["message"], message);
        for ws in [&mut self.a1, &mut self.a2] {
            assert_eq!(ws.expect_event("message_status").await["status"], "delivered");
        }
        message
    }

    async fn mallory_heard_nothing(mut self) {
        self.m1.expect_quiet().await;
        for ws in [self.a1, self.a2, self.b1, self.m1] {
            ws.close().await;
        }
    }
}

fn error_code(reply: &Value) -> &str {
    assert_eq!(reply["event"], "error", "{reply}");
    assert_eq!(reply["data"]["success"], false);
    reply["data"]["code"].as_str().unwrap()
}

#[tokio::test]
async fn edit_and_delete_are_for_the_sender_and_reach_every_member_connection() {
    let mut r = room().await;
    let message = r.alice_sends("first draft").await;
    let id = message["_id"].as_str().unwrap();

    let reply = r.b1.request(json!({"action":"edit_message","messageId":id,"newContent":"bob was here"})).await;
    assert_eq!(error_code(&reply), "forbidden");
    let reply = r.m1.request(json!({"action":"edit_message","messageId":id,"newContent":"mallory"})).await;
    assert_eq!(error_code(&reply), "not_found");

    let ack = r.a1.request(json!({"action":"edit_message","messageId":id,"newContent":"final"})).await;
    assert_eq!(ack["data"]["message"]["content"], "final");
    assert_eq!(ack["data"]["message"]["edited"], true);
    for ws in [&mut r.a2, &mut r.b1] {
        let edited = ws.expect_event("message_edited").await;
        assert_eq!(
            edited,
            json!({"messageId":id,"newContent":"final","editedAt":ack["data"]["message"]["editedAt"],"conversationId":r.conversation_id})
        );
    }

    let ack = r.a1.request(json!({"action":"delete_message","messageId":id})).await;
    assert_eq!(ack["data"]["messageId"], id);
    for ws in [&mut r.a2, &mut r.b1] {
        assert_eq!(
            ws.expect_event("message_deleted").await,
            json!({"messageId":id,"conversationId":r.conversation_id})
        );
    }
    let reply = r.a1.request(json!({"action":"edit_message","messageId":id,"newContent":"undo"})).await;
    assert_eq!(error_code(&reply), "conflict");
    r.mallory_heard_nothing().await;
}

#[tokio::test]
async fn mark_read_notifies_members_with_messages_read_and_message_status() {
    let mut r = room().await;
    let first = r.alice_sends("one").await["_id"].as_str().unwrap().to_owned();
    let second = r.alice_sends("two").await["_id"].as_str().unwrap().to_owned();

    let ack =
        r.b1.request(json!({"action":"mark_read","conversationId":r.conversation_id,"lastMessageId":second})).await;
    assert_eq!(ack["data"]["lastReadSeq"], 2);
    assert_eq!(ack["data"]["messageIds"], json!([first, second]));
    for ws in [&mut r.a1, &mut r.a2] {
        let read = ws.expect_event("messages_read").await;
        assert_eq!(read["readBy"], r.bob.id.as_str());
        assert_eq!(read["messageIds"], json!([first, second]));
        assert!(read["readAt"].is_string());
        let status = ws.expect_event("message_status").await;
        assert_eq!(
            status,
            json!({"conversationId":r.conversation_id,"messageId":second,"status":"read","userId":r.bob.id})
        );
    }
    // Already read: acknowledged, nothing broadcast.
    let ack = r.b1.request(json!({"action":"mark_read","conversationId":r.conversation_id,"messageIds":[first]})).await;
    assert_eq!(ack["data"]["messageIds"], json!([]));
    r.a1.expect_quiet().await;
    let reply =
        r.m1.request(json!({"action":"mark_read","conversationId":r.conversation_id,"lastMessageId":second})).await;
    assert_eq!(error_code(&reply), "not_found");
    r.mallory_heard_nothing().await;
}

#[tokio::test]
async fn reactions_are_broadcast_once_and_removable() {
    let mut r = room().await;
    let id = r.alice_sends("react to me").await["_id"].as_str().unwrap().to_owned();
    let add = json!({"action":"add_reaction","messageId":id,"emoji":"👍"});
    let ack = r.b1.request(add.clone()).await;
    assert_eq!(ack["data"]["changed"], true);
    let expected = json!({"messageId":id,"conversationId":r.conversation_id,"emoji":"👍","userId":r.bob.id});
    for ws in [&mut r.a1, &mut r.a2] {
        assert_eq!(ws.expect_event("reaction_added").await, expected);
    }
    assert_eq!(r.b1.request(add).await["data"]["changed"], false);
    let ack = r.b1.request(json!({"action":"remove_reaction","messageId":id,"emoji":"👍"})).await;
    assert_eq!(ack["data"]["changed"], true);
    for ws in [&mut r.a1, &mut r.a2] {
        assert_eq!(ws.expect_event("reaction_removed").await, expected, "no second reaction_added came first");
    }
    let reply = r.b1.request(json!({"action":"add_reaction","messageId":id,"emoji":"<script>"})).await;
    assert_eq!(error_code(&reply), "validation_failed");
    r.mallory_heard_nothing().await;
}

#[tokio::test]
async fn typing_goes_to_joined_connections_of_others_and_is_throttled() {
    let mut r = room().await;
    let ack =
        r.b1.request(json!({"action":"join_conversations","conversationIds":[r.conversation_id, "not-mine"]})).await;
    assert_eq!(ack["data"]["joined"], json!([r.conversation_id]));
    assert_eq!(ack["data"]["rejected"], json!(["not-mine"]));
    let reply = r.m1.request(json!({"action":"join_conversation","conversationId":r.conversation_id})).await;
    assert_eq!(error_code(&reply), "not_found");

    let typing = json!({"action":"typing","conversationId":r.conversation_id,"isTyping":true});
    assert_eq!(r.a1.request(typing.clone()).await["data"]["broadcast"], true);
    let status = r.b1.expect_event("typing_status").await;
    assert_eq!(
        status,
        json!({"userId":r.alice.id,"username":r.alice.username,"conversationId":r.conversation_id,"isTyping":true})
    );
    assert_eq!(r.a1.request(typing).await["data"]["broadcast"], false, "second start within 2 s is throttled");
    let stop = r.a1.request(json!({"action":"typing","conversationId":r.conversation_id,"isTyping":false})).await;
    assert_eq!(stop["data"]["broadcast"], true);
    assert_eq!(r.b1.expect_event("typing_status").await["isTyping"], false, "the throttled start never arrived");

    r.b1.request(json!({"action":"leave_conversation","conversationId":r.conversation_id})).await;
    r.a1.request(json!({"action":"typing","conversationId":r.conversation_id,"isTyping":true})).await;
    r.b1.expect_quiet().await;
    r.a2.expect_quiet().await;
    r.mallory_heard_nothing().await;
}

#[tokio::test]
async fn a_retried_send_returns_the_original_and_is_not_broadcast_again() {
    let mut r = room().await;
    let send = json!({"action":"send_message","conversationId":r.conversation_id,"content":"exactly once","clientMessageId":"tab1-7"});
    let first = r.a1.request(send.clone()).await;
    assert_eq!(r.b1.expect_event("receive_message").await["message"], first["data"]["message"]);
    assert_eq!(first["data"]["message"]["clientMessageId"], "tab1-7");
    assert_eq!(r.a1.expect_event("message_status").await["status"], "delivered");
    let retry = r.a1.request(send).await;
    assert_eq!(retry["data"]["message"], first["data"]["message"]);
    assert_eq!(retry["data"]["duplicate"], true);
    r.b1.expect_quiet().await;
    r.mallory_heard_nothing().await;
}

#[tokio::test]
async fn friend_requests_reach_only_the_users_concerned() {
    let mut r = room().await;
    let mallory = r.mallory.username.clone();
    let ack = r.a1.request(json!({"action":"send_friend_request","username":mallory})).await;
    assert_eq!(ack["data"]["result"], "requested");
    let received = r.m1.expect_event("friend_request_received").await;
    assert_eq!(received["from"]["_id"], r.alice.id.as_str());
    let reply = r.a1.request(json!({"action":"send_friend_request","username":mallory})).await;
    assert_eq!(error_code(&reply), "conflict");

    let ack = r.m1.request(json!({"action":"accept_friend_request","username":r.alice.username})).await;
    assert_eq!(ack["data"]["result"], "accepted");
    for ws in [&mut r.a1, &mut r.a2] {
        assert_eq!(ws.expect_event("friend_request_accepted").await["by"]["_id"], r.mallory.id.as_str());
        assert_eq!(ws.expect_event("friendship_created").await["friend"]["_id"], r.mallory.id.as_str());
    }
    let friends = r.a1.request(json!({"action":"get_friends"})).await;
    assert_eq!(friends["data"]["friends"][0]["username"], mallory.as_str());
    assert_eq!(friends["data"]["friends"][0]["online"], true);

    // Friends hear status changes; conversation peers (Bob) do not.
    let ack = r.m1.request(json!({"action":"set_status","status":"busy"})).await;
    assert_eq!(ack["data"]["status"], "busy");
    for ws in [&mut r.a1, &mut r.a2] {
        assert_eq!(ws.expect_event("status_changed").await["status"], "busy");
    }

    r.a1.request(json!({"action":"unfriend","username":mallory})).await;
    assert_eq!(r.m1.expect_event("friendship_deleted").await["userId"], r.alice.id.as_str());
    assert_eq!(r.a2.expect_event("friendship_deleted").await["userId"], r.mallory.id.as_str());

    r.b1.request(json!({"action":"send_friend_request","username":mallory})).await;
    assert_eq!(r.m1.expect_event("friend_request_received").await["from"]["_id"], r.bob.id.as_str());
    r.b1.request(json!({"action":"cancel_friend_request","username":mallory})).await;
    assert_eq!(r.m1.expect_event("friend_request_cancelled").await["from"]["_id"], r.bob.id.as_str());
    r.b1.request(json!({"action":"send_friend_request","username":mallory})).await;
    r.m1.expect_event("friend_request_received").await;
    r.m1.request(json!({"action":"reject_friend_request","username":r.bob.username})).await;
    assert_eq!(r.b1.expect_event("friend_request_rejected").await["by"]["_id"], r.mallory.id.as_str());
    let reply = r.b1.request(json!({"action":"unfriend","username":"no_such_user_x"})).await;
    assert_eq!(error_code(&reply), "not_found");
    r.a1.expect_quiet().await;
    for ws in [r.a1, r.a2, r.b1, r.m1] {
        ws.close().await;
    }
}

#[tokio::test]
async fn presence_is_announced_on_first_connect_and_last_disconnect() {
    let mut r = room().await;
    r.b1.close().await;
    for ws in [&mut r.a1, &mut r.a2] {
        let offline = ws.expect_event("user_offline").await;
        assert_eq!(offline["userId"], r.bob.id.as_str());
        assert!(offline["lastSeen"].is_string());
    }
    let mut b2 = WsClient::connect(&r.stack, &r.bob).await;
    let b3 = WsClient::connect(&r.stack, &r.bob).await;
    for ws in [&mut r.a1, &mut r.a2] {
        assert_eq!(ws.expect_event("user_online").await["userId"], r.bob.id.as_str());
    }
    b3.close().await; // Bob still has b2: nobody is told.
    r.a1.expect_quiet().await;
    let (_, me) = r.api.call("GET", "/users/me", Some(&r.bob.token), None).await;
    assert_eq!(me["_id"], r.bob.id.as_str());
    b2.request(json!({"action":"ping"})).await;
    r.m1.expect_quiet().await;
    for ws in [r.a1, r.a2, b2, r.m1] {
        ws.close().await;
    }
}

//! The REST twins of the WebSocket actions push the same live events as the actions themselves.

use chat_e2e::{Stack, WsClient};
use serde_json::json;

#[tokio::test]
async fn http_edits_reads_deletes_and_friend_requests_reach_connected_clients() {
    let stack = Stack::load();
    let api = stack.api();
    let (alice, bob) = (api.register("alice").await, api.register("bob").await);
    let conversation = api.private_conversation(&alice, &bob).await;
    let mut bob_ws = WsClient::connect(&stack, &bob).await;
    let mut alice_ws = WsClient::connect(&stack, &alice).await;
    assert_eq!(bob_ws.expect_event("user_online").await["userId"], alice.id.as_str());

    let messages = format!("/conversations/{conversation}/messages");
    let (status, sent) = api.call("POST", &messages, Some(&alice.token), Some(json!({"content":"draft"}))).await;
    assert_eq!(status, 201);
    let id = sent["_id"].as_str().unwrap();
    assert_eq!(bob_ws.expect_event("receive_message").await["message"], sent);
    assert_eq!(alice_ws.expect_event("receive_message").await["message"], sent, "no origin connection over HTTP");
    assert_eq!(alice_ws.expect_event("message_status").await["status"], "delivered");

    let path = format!("{messages}/{id}");
    let (status, _) = api.call("PUT", &path, Some(&alice.token), Some(json!({"newContent":"final"}))).await;
    assert_eq!(status, 200);
    for ws in [&mut bob_ws, &mut alice_ws] {
        assert_eq!(ws.expect_event("message_edited").await["newContent"], "final");
    }

    let read = format!("/conversations/{conversation}/read");
    assert_eq!(api.call("POST", &read, Some(&bob.token), Some(json!({"lastMessageId": id}))).await.0, 200);
    let seen = alice_ws.expect_event("messages_read").await;
    assert_eq!((seen["readBy"].as_str(), &seen["messageIds"]), (Some(bob.id.as_str()), &json!([id])));
    assert_eq!(alice_ws.expect_event("message_status").await["status"], "read");
    assert_eq!(
        bob_ws.expect_event("messages_read").await["readBy"],
        bob.id.as_str(),
        "the reader's own connections sync"
    );

    assert_eq!(api.call("DELETE", &path, Some(&alice.token), None).await.0, 200);
    for ws in [&mut bob_ws, &mut alice_ws] {
        assert_eq!(ws.expect_event("message_deleted").await["messageId"], id);
    }

    let request = json!({"username": bob.username});
    assert_eq!(api.call("POST", "/friend-requests", Some(&alice.token), Some(request)).await.0, 201);
    assert_eq!(bob_ws.expect_event("friend_request_received").await["from"]["_id"], alice.id.as_str());
    let accept = format!("/friend-requests/{}/accept", alice.username);
    assert_eq!(api.call("POST", &accept, Some(&bob.token), None).await.0, 200);
    assert_eq!(alice_ws.expect_event("friend_request_accepted").await["by"]["_id"], bob.id.as_str());
    assert_eq!(alice_ws.expect_event("friendship_created").await["friend"]["_id"], bob.id.as_str());
    assert_eq!(bob_ws.expect_event("friendship_created").await["friend"]["_id"], alice.id.as_str());
    bob_ws.close().await;
    alice_ws.close().await;
}

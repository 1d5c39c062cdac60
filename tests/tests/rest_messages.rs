//! Messages over HTTP against the deployed stack: history pages newest first, numbered pages, catch-up after a
//! seq, cursors bound to their list, reactions folded into pages, and posting with its live broadcast.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use chat_e2e::rest::{CheckedApi, OPENAPI_YAML, Spec, expect_no_event, next_event};
use chat_e2e::{Stack, WsClient};
use serde_json::{Value, json};

fn api(stack: &Stack) -> CheckedApi {
    CheckedApi::new(stack.api(), Spec::new(serde_norway::from_str(OPENAPI_YAML).expect("spec is YAML")))
}

fn seqs(items: &[Value]) -> Vec<u64> {
    items.iter().map(|m| m["seq"].as_u64().expect("seq")).collect()
}

#[tokio::test]
async fn history_pages_newest_first_and_catches_up_oldest_first() {
    let stack = Stack::load();
    let api = api(&stack);
    let (alice, bob) = (api.api.register("alice").await, api.api.register("bob").await);
    let id = api.api.private_conversation(&alice, &bob).await;
    for i in 1..=11 {
        api.send(if i % 3 == 0 { &bob } else { &alice }, &id, &format!("m{i}")).await;
    }
    let base = format!("/conversations/{id}/messages");

    let pages = api.walk(&bob, &format!("{base}?limit=4"), &format!("{base}?limit=4&before=")).await;
    assert_eq!(
        pages.iter().map(|p| seqs(p)).collect::<Vec<_>>(),
        [vec![11, 10, 9, 8], vec![7, 6, 5, 4], vec![3, 2, 1]]
    );
    let contents: Vec<&str> = pages.iter().flatten().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents.first(), Some(&"m11"));
    assert_eq!(contents.iter().collect::<BTreeSet<_>>().len(), 11, "no duplicates");

    let (_, page2) = api.call("GET", &format!("{base}?page=2&limit=4"), Some(&bob.token), None).await;
    assert_eq!(seqs(page2["items"].as_array().unwrap()), [7, 6, 5, 4]);
    let (_, page3) = api.call("GET", &format!("{base}?page=3&limit=4"), Some(&bob.token), None).await;
    assert_eq!(seqs(page3["items"].as_array().unwrap()), [3, 2, 1]);

    let (_, caught) = api.call("GET", &format!("{base}?afterSeq=8"), Some(&bob.token), None).await;
    assert_eq!(seqs(caught["items"].as_array().unwrap()), [9, 10, 11]);
    assert!(caught["nextCursor"].is_null());
    let ascending = api.walk(&bob, &format!("{base}?afterSeq=0&limit=4"), &format!("{base}?limit=4&cursor=")).await;
    assert_eq!(
        ascending.iter().flatten().map(|m| m["seq"].as_u64().unwrap()).collect::<Vec<_>>(),
        (1..=11).collect::<Vec<_>>()
    );
    assert!(ascending.len() >= 3);

    // Seed 000's route answers the same.
    let (_, seeded) = api.call("GET", &format!("/messages?cid={id}&limit=4"), Some(&bob.token), None).await;
    assert_eq!(seeded["items"], Value::Array(pages[0].clone()));

    // A cursor works only for the list and the user it was issued to.
    let (_, first) = api.call("GET", &format!("{base}?limit=4"), Some(&alice.token), None).await;
    let alices = first["nextCursor"].as_str().unwrap().to_owned();
    let elsewhere = api.api.private_conversation(&alice, &api.api.register("carol").await).await;
    let mut tampered = alices.clone();
    tampered.pop();
    for (path, token) in [
        (format!("{base}?before={alices}"), &bob.token),
        (format!("/conversations/{elsewhere}/messages?before={alices}"), &alice.token),
        (format!("{base}?before={tampered}"), &alice.token),
        (format!("{base}?cursor=not-a-cursor"), &alice.token),
    ] {
        let (status, body) = api.call("GET", &path, Some(token), None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")), "{path}");
    }
    for query in ["limit=0", "limit=101", "page=0", "page=1&afterSeq=3", "afterSeq=x"] {
        let (status, body) = api.call("GET", &format!("{base}?{query}"), Some(&alice.token), None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("validation_failed")), "{query}");
    }
}

#[tokio::test]
async fn reactions_are_folded_into_the_messages_of_a_page() {
    let stack = Stack::load();
    let api = api(&stack);
    let (alice, bob) = (api.api.register("alice").await, api.api.register("bob").await);
    let id = api.api.private_conversation(&alice, &bob).await;
    for i in 1..=5 {
        api.send(&alice, &id, &format!("m{i}")).await;
    }
    // Reaction items as the reaction use case stores them (`RX#<seq>#<emoji>#<userId>`), written directly so
    // this test checks only the read side.
    let dynamo = aws_sdk_dynamodb::Client::new(&stack.aws_config().await);
    for (seq, emoji, user) in
        [(4, "👍", &bob.id), (4, "👍", &alice.id), (4, "🎉", &bob.id), (2, "👍", &bob.id), (5, "❤", &bob.id)]
    {
        dynamo
            .put_item()
            .table_name(&stack.table_name)
            .item("pk", AttributeValue::S(format!("CONV#{id}")))
            .item("sk", AttributeValue::S(format!("RX#{seq:020}#{emoji}#{user}")))
            .item("seq", AttributeValue::N(seq.to_string()))
            .item("emoji", AttributeValue::S(emoji.to_owned()))
            .item("userId", AttributeValue::S(user.clone()))
            .send()
            .await
            .expect("put reaction");
    }
    let (status, page) =
        api.call("GET", &format!("/conversations/{id}/messages?page=2&limit=2"), Some(&bob.token), None).await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(seqs(items), [3, 2]);
    assert_eq!(items[0]["reactions"], json!({}));
    assert_eq!(items[1]["reactions"], json!({"👍": [bob.id]}));
    let (_, newest) = api.call("GET", &format!("/conversations/{id}/messages?limit=2"), Some(&bob.token), None).await;
    let items = newest["items"].as_array().unwrap();
    assert_eq!(seqs(items), [5, 4]);
    assert_eq!(items[0]["reactions"], json!({"❤": [bob.id]}));
    let mut thumbs = vec![alice.id.clone(), bob.id.clone()];
    thumbs.sort();
    assert_eq!(items[1]["reactions"], json!({"👍": thumbs, "🎉": [bob.id]}));
}

#[tokio::test]
async fn a_message_posted_over_http_reaches_every_member_connection_once() {
    let stack = Stack::load();
    let api = api(&stack);
    let (alice, bob, mallory) =
        (api.api.register("alice").await, api.api.register("bob").await, api.api.register("mallory").await);
    let id = api.api.private_conversation(&alice, &bob).await;
    let mut alice_ws = WsClient::connect(&stack, &alice).await;
    let mut bob_ws = WsClient::connect(&stack, &bob).await;
    let mut mallory_ws = WsClient::connect(&stack, &mallory).await;

    let path = format!("/conversations/{id}/messages");
    let body = json!({"content": "over http", "type": "text", "clientMessageId": "http-1"});
    let (status, message) = api.call("POST", &path, Some(&alice.token), Some(body.clone())).await;
    assert_eq!(status, 201, "{message}");
    assert_eq!(message["sender"]["_id"], alice.id.as_str());
    assert_eq!(message["sender"]["username"], alice.username.as_str());
    assert_eq!(message["conversationId"], id.as_str());
    assert_eq!(message["seq"], 1);
    for ws in [&mut bob_ws, &mut alice_ws] {
        let received = next_event(ws, "receive_message").await;
        assert_eq!(received["message"], message);
        assert_eq!(received["conversationId"], id.as_str());
    }

    let (status, again) = api.call("POST", &path, Some(&alice.token), Some(body)).await;
    assert_eq!((status, &again), (200, &message), "a retry answers the original");
    expect_no_event(&mut bob_ws, "receive_message").await;
    expect_no_event(&mut mallory_ws, "receive_message").await;
    let (_, history) = api.call("GET", &path, Some(&bob.token), None).await;
    assert_eq!(history["items"], json!([message]), "stored once");
    for ws in [alice_ws, bob_ws, mallory_ws] {
        ws.close().await;
    }
}

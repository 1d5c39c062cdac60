//! Bad input against the deployed stack, on both transports: every kind answers a clear error code (never
//! `internal`, never a 5xx), the WebSocket connection still answers `ping` afterwards, and nothing stored
//! changed (a snapshot of everything the users can read is the same before and after each case).

use chat_e2e::rest::{CheckedApi, OPENAPI_YAML, Spec};
use chat_e2e::{Stack, TestUser, WsClient};
use serde_json::{Value, json};

/// Alice and Bob in a private chat with two messages, Alice and Mallory in another; Alice connected.
struct Scene {
    api: CheckedApi,
    alice: TestUser,
    bob: TestUser,
    chat: String,
    elsewhere: String,
    first: String,
    ws: WsClient,
}

impl Scene {
    async fn new(stack: &Stack) -> Scene {
        let api = CheckedApi::new(stack.api(), Spec::new(serde_norway::from_str(OPENAPI_YAML).expect("spec is YAML")));
        let (alice, bob, mallory) =
            (api.api.register("alice").await, api.api.register("bob").await, api.api.register("mallory").await);
        let chat = api.api.private_conversation(&alice, &bob).await;
        let elsewhere = api.api.private_conversation(&mallory, &bob).await;
        let first = api.send(&alice, &chat, "one").await["_id"].as_str().unwrap().to_owned();
        api.send(&bob, &chat, "two").await;
        api.send(&mallory, &elsewhere, "not yours").await;
        let ws = WsClient::connect(stack, &alice).await;
        Scene { api, alice, bob, chat, elsewhere, first, ws }
    }

    /// Everything Alice and Bob can read: conversations, history, friends, requests, presence.
    async fn snapshot(&self) -> Value {
        let mut views = Vec::new();
        for who in [&self.alice, &self.bob] {
            for path in [
                "/conversations".to_owned(),
                format!("/conversations/{}/messages?limit=50", self.chat),
                "/friends".to_owned(),
                "/friend-requests".to_owned(),
                "/users/me".to_owned(),
            ] {
                let (status, mut body) = self.api.api.call("GET", &path, Some(&who.token), None).await;
                assert_eq!(status, 200, "{path}: {body}");
                // Presence of the peers may change as connections come and go; stored data may not.
                strip(&mut body, &["online", "status", "lastSeen"]);
                views.push(body);
            }
        }
        Value::Array(views)
    }
}

fn strip(value: &mut Value, fields: &[&str]) {
    match value {
        Value::Object(map) => {
            for field in fields {
                map.remove(*field);
            }
            map.values_mut().for_each(|v| strip(v, fields));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strip(v, fields)),
        _ => {}
    }
}

/// A frame over the WebSocket and the error code it must answer.
struct FrameCase {
    name: &'static str,
    frame: String,
    code: &'static str,
}

fn frame(name: &'static str, frame: Value, code: &'static str) -> FrameCase {
    let mut frame = frame;
    if frame.is_object() && frame.get("requestId").is_none() {
        frame["requestId"] = json!(name);
    }
    FrameCase { name, frame: frame.to_string(), code }
}

fn raw(name: &'static str, frame: &str, code: &'static str) -> FrameCase {
    FrameCase { name, frame: frame.to_owned(), code }
}

#[tokio::test]
async fn bad_frames_answer_their_code_keep_the_connection_and_change_nothing() {
    let stack = Stack::load();
    let mut s = Scene::new(&stack).await;
    let (chat, elsewhere, first) = (s.chat.clone(), s.elsewhere.clone(), s.first.clone());
    let long = "x".repeat(2044);
    let foreign = format!("{elsewhere}-1");
    let cases = vec![
        raw("not JSON", "hello?", "bad_request"),
        raw("a JSON array", "[1,2,3]", "bad_request"),
        // `content` twice: refused, not "the last one wins"; the requestId read before the fault is echoed.
        raw(
            "a key named twice",
            &format!(
                r#"{{"action":"send_message","requestId":"a key named twice","conversationId":"{chat}","content":"hi","content":"bye"}}"#
            ),
            "bad_request",
        ),
        raw(
            "a lone surrogate",
            &format!(
                r#"{{"action":"send_message","requestId":"a lone surrogate","conversationId":"{chat}","content":"\ud800"}}"#
            ),
            "bad_request",
        ),
        raw(
            "nested 200 deep",
            &format!(
                r#"{{"action":"set_status","requestId":"nested 200 deep","status":{}{}}}"#,
                "[".repeat(200),
                "]".repeat(200)
            ),
            "bad_request",
        ),
        frame("no action", json!({"content":"hi"}), "bad_request"),
        frame("numeric action", json!({"action":42}), "bad_request"),
        frame("unknown action", json!({"action":"fly"}), "unknown_action"),
        frame("$disconnect as an action", json!({"action":"$disconnect"}), "unknown_action"),
        frame("$connect as an action", json!({"action":"$connect"}), "unknown_action"),
        raw("numeric requestId", r#"{"action":"get_status","requestId":7}"#, "bad_request"),
        frame(
            "2,044-character conversationId",
            json!({"action":"send_message","conversationId":long,"content":"hi"}),
            "validation_failed",
        ),
        frame(
            "empty content",
            json!({"action":"send_message","conversationId":chat,"content":"   "}),
            "validation_failed",
        ),
        frame(
            "4,001 characters",
            json!({"action":"send_message","conversationId":chat,"content":"é".repeat(4001)}),
            "payload_too_large",
        ),
        frame(
            "unknown message type",
            json!({"action":"send_message","conversationId":chat,"content":"x","type":"video"}),
            "bad_request",
        ),
        frame(
            "image without fileUrl",
            json!({"action":"send_message","conversationId":chat,"type":"image"}),
            "validation_failed",
        ),
        frame(
            "javascript: fileUrl",
            json!({"action":"send_message","conversationId":chat,"type":"file","fileUrl":"javascript:alert(1)"}),
            "validation_failed",
        ),
        frame(
            "clientMessageId with a space",
            json!({"action":"send_message","conversationId":chat,"content":"x","clientMessageId":"a b"}),
            "validation_failed",
        ),
        frame(
            "someone else's conversation",
            json!({"action":"send_message","conversationId":elsewhere,"content":"let me in"}),
            "not_found",
        ),
        frame(
            "frame over 32 KB (API Gateway's frame limit)",
            json!({"action":"send_message","conversationId":chat,"content":"x".repeat(33 * 1024)}),
            "payload_too_large",
        ),
        frame(
            "2,044-character messageId (edit)",
            json!({"action":"edit_message","messageId":format!("{long}-1"),"newContent":"x"}),
            "validation_failed",
        ),
        frame(
            "editing another's message",
            json!({"action":"edit_message","messageId":format!("{chat}-2"),"newContent":"mine now"}),
            "forbidden",
        ),
        frame(
            "messageId without seq (delete)",
            json!({"action":"delete_message","messageId":"abc"}),
            "validation_failed",
        ),
        frame(
            "mark_read with both targets",
            json!({"action":"mark_read","conversationId":chat,"messageIds":[first],"lastMessageId":first}),
            "validation_failed",
        ),
        frame(
            "mark_read with no ids",
            json!({"action":"mark_read","conversationId":chat,"messageIds":[]}),
            "validation_failed",
        ),
        frame(
            "mark_read of a signed seq",
            json!({"action":"mark_read","conversationId":chat,"messageIds":[format!("{chat}-+10")]}),
            "validation_failed",
        ),
        frame(
            "mark_read of a zero-padded seq",
            json!({"action":"mark_read","conversationId":chat,"messageIds":[format!("{chat}-0001")]}),
            "validation_failed",
        ),
        frame(
            "mark_read of another conversation's message",
            json!({"action":"mark_read","conversationId":chat,"messageIds":[foreign]}),
            "not_found",
        ),
        frame(
            "plain text as an emoji",
            json!({"action":"add_reaction","messageId":first,"emoji":"lol"}),
            "validation_failed",
        ),
        frame(
            "2,044-character messageId (react)",
            json!({"action":"add_reaction","messageId":format!("{long}-1"),"emoji":"👍"}),
            "validation_failed",
        ),
        frame(
            "2,044-character conversationId (typing)",
            json!({"action":"typing","conversationId":long,"isTyping":true}),
            "validation_failed",
        ),
        frame(
            "isTyping not a boolean",
            json!({"action":"typing","conversationId":chat,"isTyping":"yes"}),
            "bad_request",
        ),
        frame(
            "101 rooms at once",
            json!({"action":"join_conversations","conversationIds":vec![chat.clone(); 101]}),
            "validation_failed",
        ),
        frame(
            "3,000-character username",
            json!({"action":"send_friend_request","username":"u".repeat(3000)}),
            "not_found",
        ),
        frame("unfriending yourself", json!({"action":"unfriend","username":s.alice.username}), "validation_failed"),
        frame(
            "accepting your own request",
            json!({"action":"accept_friend_request","username":s.alice.username}),
            "validation_failed",
        ),
        frame("a 65-character status", json!({"action":"set_status","status":"s".repeat(65)}), "validation_failed"),
        frame(
            "a status with a control character",
            json!({"action":"set_status","status":"a\u{7}b"}),
            "validation_failed",
        ),
    ];
    assert!(cases.len() >= 30);
    let before = s.snapshot().await;
    for case in cases {
        s.ws.send_raw(&case.frame).await;
        let answer = loop {
            let frame = s.ws.next_frame().await;
            if frame["event"] == "error" || frame["event"] == "ack" {
                break frame;
            }
        };
        assert_eq!(answer["event"], "error", "{}: {answer}", case.name);
        assert_eq!(answer["data"]["code"], case.code, "{}: {answer}", case.name);
        if case.frame.contains(&format!("\"requestId\":\"{}\"", case.name)) {
            assert_eq!(answer["requestId"], case.name, "{}: the answer names its request", case.name);
        }
        let pong = s.ws.call(json!({"action":"ping"})).await;
        assert_eq!(pong["event"], "pong", "{}: the connection still works", case.name);
        assert_eq!(s.snapshot().await, before, "{}: something stored changed", case.name);
    }
}

/// (what, method, path, body, status, code).
type HttpCase = (&'static str, &'static str, String, Option<Value>, u16, &'static str);

#[tokio::test]
async fn bad_requests_answer_their_status_and_change_nothing() {
    let stack = Stack::load();
    let s = Scene::new(&stack).await;
    let (chat, elsewhere, token) = (s.chat.clone(), s.elsewhere.clone(), s.alice.token.clone());
    let long = "x".repeat(2044);
    let me = s.alice.username.clone();
    let before = s.snapshot().await;
    let cases: Vec<HttpCase> = vec![
        (
            "read a 2,044-character conversation",
            "POST",
            format!("/conversations/{long}/read"),
            Some(json!({"lastMessageId": s.first})),
            404,
            "not_found",
        ),
        (
            "befriend a 3,000-character name",
            "POST",
            "/friend-requests".into(),
            Some(json!({"username":"u".repeat(3000)})),
            404,
            "not_found",
        ),
        (
            "add a 3,000-character member id",
            "POST",
            format!("/conversations/{chat}/members"),
            Some(json!({"userIds":["m".repeat(3000)]})),
            422,
            "validation_failed",
        ),
        ("unfriend yourself", "DELETE", format!("/friends/{me}"), None, 422, "validation_failed"),
        ("accept your own request", "POST", format!("/friend-requests/{me}/accept"), None, 422, "validation_failed"),
        ("reject your own request", "POST", format!("/friend-requests/{me}/reject"), None, 422, "validation_failed"),
        ("cancel your own request", "DELETE", format!("/friend-requests/{me}"), None, 422, "validation_failed"),
        (
            "a 3,000-character participant",
            "POST",
            "/conversations".into(),
            Some(json!({"type":"private","participantId":"p".repeat(3000)})),
            422,
            "validation_failed",
        ),
        (
            "empty content",
            "POST",
            format!("/conversations/{chat}/messages"),
            Some(json!({"content":""})),
            422,
            "validation_failed",
        ),
        (
            "content of the wrong type",
            "POST",
            format!("/conversations/{chat}/messages"),
            Some(json!({"content":42})),
            400,
            "bad_request",
        ),
        (
            "someone else's conversation",
            "POST",
            format!("/conversations/{elsewhere}/messages"),
            Some(json!({"content":"hi"})),
            404,
            "not_found",
        ),
        ("a zero page size", "GET", "/conversations?limit=0".into(), None, 422, "validation_failed"),
        ("a forged cursor", "GET", format!("/conversations/{chat}/messages?cursor=forged"), None, 400, "bad_request"),
        ("an empty search", "GET", "/users?search=".into(), None, 422, "validation_failed"),
        (
            "another conversation's message",
            "PUT",
            format!("/conversations/{chat}/messages/{elsewhere}-1"),
            Some(json!({"newContent":"x"})),
            404,
            "not_found",
        ),
        (
            "a message id with seq 0",
            "POST",
            format!("/conversations/{chat}/read"),
            Some(json!({"lastMessageId": format!("{chat}-0")})),
            422,
            "validation_failed",
        ),
        (
            "renaming a private chat",
            "PATCH",
            format!("/conversations/{chat}"),
            Some(json!({"name":"ours"})),
            422,
            "validation_failed",
        ),
        (
            "a history page of 101",
            "GET",
            format!("/conversations/{chat}/messages?limit=101"),
            None,
            422,
            "validation_failed",
        ),
    ];
    assert!(cases.len() >= 15);
    for (name, method, path, body, status, code) in cases {
        let (got, answer) = s.api.call(method, &path, Some(&token), body).await;
        assert_eq!((got, answer["error"]["code"].as_str()), (status, Some(code)), "{name}: {answer}");
        assert_eq!(s.snapshot().await, before, "{name}: something stored changed");
    }
    for (name, body, status) in [
        ("malformed JSON", "{\"content\": ", 400),
        ("a key named twice", r#"{"content":"hi","content":"bye"}"#, 400),
        ("a 65 KB body", &format!("{{\"content\":\"{}\"}}", "x".repeat(65 * 1024)), 413),
    ] {
        let (got, answer) =
            s.api.call_raw("POST", &format!("/conversations/{chat}/messages"), Some(&token), body.to_owned()).await;
        assert_eq!(got, status, "{name}: {answer}");
        assert_eq!(s.snapshot().await, before, "{name}: something stored changed");
    }
    let (got, answer) = s.api.call("GET", "/users/me", Some("not.a.token"), None).await;
    assert_eq!((got, answer["error"]["code"].as_str()), (401, Some("unauthorized")));
    s.ws.close().await;
}

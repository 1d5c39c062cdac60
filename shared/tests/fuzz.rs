//! Property tests over the edges of both transports: whatever a client sends, a frame or a request is answered
//! with a clear error (never `internal`, never a 5xx), an error carries the `requestId` it was given, and the
//! connection keeps working. They run a bounded number of cases in `cargo xtask test`; a long run sets
//! `PROPTEST_CASES` (docs/reliability.md records one).

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use chat_shared::adapters::actions::{ClientAction, MAX_FRAME_BYTES, Request};
use chat_shared::adapters::http::handle;
use chat_shared::adapters::ws::{connect, message};
use chat_shared::testing::TestApp;
use chat_shared::usecases::accounts::Credentials;
use lambda_http::Body;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Codes a client may see for its own bad input.
const CLIENT_CODES: [&str; 8] = [
    "bad_request",
    "validation_failed",
    "unknown_action",
    "payload_too_large",
    "not_found",
    "forbidden",
    "conflict",
    "unauthorized",
];

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Any JSON value, nested a little, with strings that include ids, numbers, unicode and huge lengths.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        "[a-f0-9]{1,40}(-[0-9+]{1,4})?".prop_map(Value::String),
        (1usize..3000).prop_map(|n| Value::String("x".repeat(n))),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A frame: an object with an action (known, unknown or the wrong type), maybe a requestId, and fields of the
/// names the actions use with any values.
fn frame() -> impl Strategy<Value = Value> {
    let action = prop_oneof![
        prop::sample::select(ClientAction::NAMES.to_vec()).prop_map(|a| json!(a)),
        Just(json!("$disconnect")),
        Just(json!("$connect")),
        json_value(),
    ];
    let fields = prop::collection::btree_map(
        prop::sample::select(vec![
            "conversationId",
            "conversationIds",
            "messageId",
            "messageIds",
            "lastMessageId",
            "content",
            "type",
            "fileUrl",
            "fileName",
            "clientMessageId",
            "newContent",
            "emoji",
            "isTyping",
            "username",
            "status",
            "extra",
        ]),
        json_value(),
        0..6,
    );
    (action, prop::option::of(prop_oneof![".{1,20}".prop_map(|s| json!(s)), json_value()]), fields).prop_map(
        |(action, request_id, fields)| {
            let mut map: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            map.insert("action".into(), action);
            if let Some(id) = request_id {
                map.insert("requestId".into(), id);
            }
            Value::Object(map)
        },
    )
}

proptest! {
    #![proptest_config(cases(256))]

    /// Parsing never panics; every refusal is a client error and keeps a valid `requestId`.
    #[test]
    fn frame_parsing_answers_every_input(text in prop_oneof![".{0,200}", frame().prop_map(|f| f.to_string())]) {
        match Request::parse(&text) {
            Ok(_) => {}
            Err((request_id, error)) => {
                prop_assert!(CLIENT_CODES.contains(&error.code()), "{} for {text}", error.code());
                if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&text)
                    && let Some(Value::String(id)) = map.get("requestId")
                    && (1..=128).contains(&id.len())
                    && text.len() <= MAX_FRAME_BYTES
                {
                    prop_assert_eq!(request_id.as_deref(), Some(id.as_str()));
                }
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn ws(route: &str, kind: &str, body: Option<&str>, query: Option<Value>) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(json!({
        "headers": {}, "queryStringParameters": query, "body": body, "isBase64Encoded": false,
        "requestContext": {"routeKey": route, "eventType": kind, "connectionId": "c1", "domainName": "d",
            "stage": "s", "requestId": "r", "apiId": "a", "connectedAt": 0, "requestTimeEpoch": 0}
    }))
    .unwrap()
}

/// An app with one registered, connected user (connection `c1`) and a conversation with another user.
async fn connected() -> (TestApp, String) {
    let t = TestApp::new();
    let ann = t
        .accounts
        .register(Credentials { username: "ann".into(), password: "password123".into(), avatar: None })
        .await
        .unwrap();
    let bob = t
        .accounts
        .register(Credentials { username: "bob".into(), password: "password123".into(), avatar: None })
        .await
        .unwrap();
    let actor = chat_shared::model::Actor::http(&ann.user);
    let private = chat_shared::usecases::conversations::CreateConversation::Private { participant_id: bob.user.id };
    t.app.conversations.create(&actor, private).await.unwrap();
    let response =
        connect(&t.app, &t.accounts, ws("$connect", "CONNECT", None, Some(json!({"token": ann.token})))).await;
    assert_eq!(response.status_code, 200);
    (t, ann.token)
}

proptest! {
    #![proptest_config(cases(128))]

    /// Whatever frame arrives, the handler answers 200, never `internal`, and the connection still answers `ping`.
    #[test]
    fn the_websocket_handler_survives_any_frame(frames in prop::collection::vec(frame(), 1..4)) {
        runtime().block_on(async {
            let (t, _) = connected().await;
            for frame in &frames {
                let response = message(&t.app, ws("$default", "MESSAGE", Some(&frame.to_string()), None)).await;
                prop_assert_eq!(response.status_code, 200);
            }
            for sent in t.fanout.frames("c1") {
                if sent["event"] == "error" {
                    prop_assert_ne!(&sent["data"]["code"], "internal", "{}", sent);
                }
            }
            message(&t.app, ws("ping", "MESSAGE", Some(r#"{"action":"ping","requestId":"p"}"#), None)).await;
            let last = t.fanout.frames("c1").pop().unwrap();
            prop_assert_eq!(&last["event"], "pong");
            Ok(())
        })?;
    }

    /// Whatever request arrives, the REST API answers JSON with a status below 500, errors in the documented
    /// shape.
    #[test]
    fn the_http_handler_survives_any_request(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE"]),
        path in prop_oneof![
            prop::sample::select(vec![
                "/auth/register", "/auth/login", "/users/me", "/users", "/conversations", "/friends",
                "/friend-requests", "/messages",
            ]).prop_map(str::to_owned),
            ("[a-z0-9/_.%-]{0,60}").prop_map(|p| format!("/conversations/{p}")),
            ("[a-zA-Z0-9_.-]{0,40}").prop_map(|p| format!("/friend-requests/{p}/accept")),
            ("[a-z]{1,10}=[^&#]{0,30}").prop_map(|q| format!("/conversations?{q}")),
        ],
        body in prop_oneof![Just(None), json_value().prop_map(Some), ".{0,60}".prop_map(|s| Some(Value::String(s)))],
        authenticated in any::<bool>(),
    ) {
        runtime().block_on(async {
            let (t, token) = connected().await;
            let mut builder = lambda_http::http::Request::builder().method(method).uri(&path);
            if authenticated {
                builder = builder.header("authorization", format!("Bearer {token}"));
            }
            let body = match body {
                Some(Value::String(raw)) => Body::Text(raw),
                Some(value) => Body::Text(value.to_string()),
                None => Body::Empty,
            };
            let Ok(request) = builder.body(body) else { return Ok(()) };
            let response = handle(&t.rest(), request).await;
            prop_assert!(response.status().as_u16() < 500, "{} {} → {}", method, path, response.status());
            let Body::Text(text) = response.body() else { panic!("JSON body") };
            let answer: Value = serde_json::from_str(text).unwrap();
            if !response.status().is_success() {
                prop_assert!(answer["error"]["code"].is_string() && answer["error"]["message"].is_string(), "{}", answer);
            }
            Ok(())
        })?;
    }
}

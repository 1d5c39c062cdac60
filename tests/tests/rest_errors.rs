//! Every error status of the REST API over real HTTP, each in the `{"error": {"code", "message"}}` shape (the
//! checked client also holds each answer to the spec's schema for that status).

use chat_e2e::rest::{CheckedApi, OPENAPI_YAML, Spec};
use chat_e2e::{Stack, unique_name};
use serde_json::{Value, json};

fn api(stack: &Stack) -> CheckedApi {
    CheckedApi::new(stack.api(), Spec::new(serde_norway::from_str(OPENAPI_YAML).expect("spec is YAML")))
}

#[track_caller]
fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    assert!(answer.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", answer.1);
}

#[tokio::test]
async fn every_error_status_comes_back_in_the_error_shape() {
    let stack = Stack::load();
    let api = api(&stack);
    let (alice, bob, carol) =
        (api.api.register("alice").await, api.api.register("bob").await, api.api.register("carol").await);
    let group = api.group(&alice, &[&bob, &carol], "errors").await;
    let messages = format!("/conversations/{group}/messages");

    // 400: malformed JSON, wrong types, forged and foreign cursors.
    assert_error(
        &api.call_raw("POST", &messages, Some(&alice.token), "{\"content\": ".into()).await,
        400,
        "bad_request",
    );
    assert_error(
        &api.call_raw("POST", "/conversations", Some(&alice.token), "not json".into()).await,
        400,
        "bad_request",
    );
    assert_error(
        &api.call("POST", &messages, Some(&alice.token), Some(json!({"content": 42}))).await,
        400,
        "bad_request",
    );
    assert_error(
        &api.call("GET", &format!("{messages}?before=forged"), Some(&alice.token), None).await,
        400,
        "bad_request",
    );
    for _ in 0..3 {
        api.send(&alice, &group, "x").await;
    }
    let (_, page) = api.call("GET", &format!("{messages}?limit=1"), Some(&bob.token), None).await;
    let bobs = page["nextCursor"].as_str().expect("more than one page");
    assert_error(
        &api.call("GET", &format!("{messages}?before={bobs}"), Some(&alice.token), None).await,
        400,
        "bad_request",
    );

    // 401: no token, garbage, a token signed with another key.
    for token in [None, Some("garbage"), Some("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")] {
        assert_error(&api.call("GET", "/conversations", token, None).await, 401, "unauthorized");
    }
    assert_error(&api.call("GET", "/users?search=al", None, None).await, 401, "unauthorized");

    // 403: removing someone from a group you did not create.
    let carol_member = format!("/conversations/{group}/members/{}", carol.id);
    assert_error(&api.call("DELETE", &carol_member, Some(&bob.token), None).await, 403, "forbidden");

    // 404: non-member, unknown member, unknown user to add.
    let outsider = api.api.register("eve").await;
    assert_error(&api.call("GET", &messages, Some(&outsider.token), None).await, 404, "not_found");
    let stranger = format!("/conversations/{group}/members/{}", outsider.id);
    assert_error(&api.call("DELETE", &stranger, Some(&alice.token), None).await, 404, "not_found");
    let add = json!({"userIds": ["0123456789abcdef0123456789abcdef"]});
    assert_error(
        &api.call("POST", &format!("/conversations/{group}/members"), Some(&alice.token), Some(add)).await,
        404,
        "not_found",
    );

    // 409: a taken username, whatever its case.
    let taken = json!({"username": alice.username.to_uppercase(), "password": "correct-horse-1"});
    assert_error(&api.call("POST", "/auth/register", None, Some(taken)).await, 409, "conflict");

    // 413: a huge body, and content over the message limit.
    let huge = json!({"content": "x".repeat(100 * 1024)}).to_string();
    assert_error(&api.call_raw("POST", &messages, Some(&alice.token), huge).await, 413, "payload_too_large");
    let long = json!({"content": "x".repeat(4001)});
    assert_error(&api.call("POST", &messages, Some(&alice.token), Some(long)).await, 413, "payload_too_large");

    // 422: values that parse but are not acceptable.
    let weak = json!({"username": unique_name("weak"), "password": "short"});
    assert_error(&api.call("POST", "/auth/register", None, Some(weak)).await, 422, "validation_failed");
    assert_error(
        &api.call("POST", &messages, Some(&alice.token), Some(json!({"content": "  "}))).await,
        422,
        "validation_failed",
    );
    assert_error(&api.call("GET", "/users?limit=5", Some(&alice.token), None).await, 422, "validation_failed");
    assert_error(
        &api.call("GET", "/conversations?limit=500", Some(&alice.token), None).await,
        422,
        "validation_failed",
    );
    let nameless = json!({"name": ""});
    assert_error(
        &api.call("PATCH", &format!("/conversations/{group}"), Some(&alice.token), Some(nameless)).await,
        422,
        "validation_failed",
    );
}

//! The HTTP handler against in-memory fakes: every route's status and body, the error shape, pagination and
//! the live events REST writes push. The same routes on the deployed stack are covered by tests/tests/rest_*.rs.

use std::sync::Arc;

use chat_shared::adapters::http::handle;
use chat_shared::model::{Connection, ConnectionId, ConversationId, UserId, now_epoch_seconds};
use chat_shared::ports::{ConnectionStore, FileStore, MessageStore};
use chat_shared::testing::{InMemoryStore, RecordingFanout, TestApp};
use lambda_http::Body;
use serde_json::{Value, json};

async fn call(services: &TestApp, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut builder = lambda_http::http::Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let body = body.map(|b| Body::Text(b.to_string())).unwrap_or(Body::Empty);
    let response = handle(&services.rest(), builder.body(body).unwrap()).await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let status = response.status().as_u16();
    let json = match response.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    };
    (status, json)
}

fn assert_error(status: u16, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn register_login_and_me() {
    let services = TestApp::new();
    let creds = json!({"username":"Alice","password":"password123","avatar":"https://img/a.png"});
    let (status, body) = call(&services, "POST", "/auth/register", None, Some(creds.clone())).await;
    assert_eq!(status, 201);
    assert_eq!(body["user"]["username"], "Alice");
    assert!(body["user"].get("passwordHash").is_none());
    let (status, dup) =
        call(&services, "POST", "/auth/register", None, Some(json!({"username":"alice","password":"password456"})))
            .await;
    assert_error(status, &dup, 409, "conflict");

    let (status, login) = call(&services, "POST", "/auth/login", None, Some(creds)).await;
    assert_eq!(status, 200);
    let token = login["token"].as_str().unwrap();
    let (status, me) = call(&services, "GET", "/users/me", Some(token), None).await;
    assert_eq!(status, 200);
    assert_eq!(me["_id"], body["user"]["_id"]);

    let wrong =
        call(&services, "POST", "/auth/login", None, Some(json!({"username":"alice","password":"nope-nope"}))).await;
    let unknown =
        call(&services, "POST", "/auth/login", None, Some(json!({"username":"nobody","password":"nope-nope"}))).await;
    assert_error(wrong.0, &wrong.1, 401, "unauthorized");
    assert_eq!(wrong, unknown, "same answer whether the user exists or not");
}

/// One device's tokens, as register, login and refresh answer them.
struct Device {
    token: String,
    refresh: String,
}

async fn log_in(services: &TestApp, password: &str) -> Device {
    let (status, body) =
        call(services, "POST", "/auth/login", None, Some(json!({"username": "alice", "password": password}))).await;
    assert_eq!(status, 200, "{body}");
    Device { token: body["token"].as_str().unwrap().into(), refresh: body["refreshToken"].as_str().unwrap().into() }
}

async fn refresh(services: &TestApp, refresh_token: &str) -> (u16, Value) {
    call(services, "POST", "/auth/refresh", None, Some(json!({"refreshToken": refresh_token}))).await
}

/// A live connection opened with `token`, as `$connect` opens it.
async fn connect_with(services: &TestApp, token: &str, connection_id: &str) {
    let who = services.accounts.authenticate(Some(token)).await.unwrap();
    services.app.presence.connect(ConnectionId::new(connection_id), who).await.unwrap();
}

async fn me(services: &TestApp, token: &str) -> u16 {
    call(services, "GET", "/users/me", Some(token), None).await.0
}

#[tokio::test]
async fn sessions_rotate_and_end_and_their_connections_close() {
    let services = TestApp::new();
    let creds = json!({"username": "alice", "password": "password123"});
    let (status, registered) = call(&services, "POST", "/auth/register", None, Some(creds)).await;
    assert_eq!(status, 201);
    assert!(registered["expiresIn"].as_u64().is_some_and(|s| s > 0), "{registered}");
    assert!(registered["refreshToken"].is_string());
    let (phone, laptop) = (log_in(&services, "password123").await, log_in(&services, "password123").await);
    connect_with(&services, &phone.token, "c-phone").await;
    connect_with(&services, &laptop.token, "c-laptop").await;
    let (_, listed) = call(&services, "GET", "/users/me/sessions", Some(&phone.token), None).await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{listed}");
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);

    // A refresh rotates: the new refresh token works once; the old one coming back ends the session.
    let (status, rotated) = refresh(&services, &phone.refresh).await;
    assert_eq!(status, 200, "{rotated}");
    let next = rotated["refreshToken"].as_str().unwrap();
    assert_ne!(next, phone.refresh);
    assert_eq!(me(&services, rotated["token"].as_str().unwrap()).await, 200);
    let (status, reused) = refresh(&services, &phone.refresh).await;
    assert_error(status, &reused, 401, "unauthorized");
    assert_eq!(services.fanout.closed(), ["c-phone"], "the session's connection closes at once");
    assert_eq!(me(&services, &phone.token).await, 401, "its access tokens are refused");
    assert_eq!(refresh(&services, next).await.0, 401, "and so is the thief's (or owner's) newer refresh token");
    assert_eq!(me(&services, &laptop.token).await, 200, "other sessions live on");
    for garbage in [json!({"refreshToken": phone.token}), json!({"refreshToken": "x"}), json!({})] {
        let (status, _) = call(&services, "POST", "/auth/refresh", None, Some(garbage.clone())).await;
        assert!(status == 401 || status == 400, "{garbage}: {status}");
    }

    // Logout ends this session only.
    let (status, ended) = call(&services, "POST", "/auth/logout", Some(&laptop.token), None).await;
    assert_eq!((status, ended), (200, json!({"endedSessions": 1, "closedConnections": 1})));
    assert_eq!(services.fanout.closed(), ["c-phone", "c-laptop"]);
    assert_eq!(me(&services, &laptop.token).await, 401);
    assert_eq!(refresh(&services, &laptop.refresh).await.0, 401);

    // A password change ends every other session; the old password no longer logs in.
    let (desk, tablet) = (log_in(&services, "password123").await, log_in(&services, "password123").await);
    let change = |current: &str, new: &str| Some(json!({"currentPassword": current, "newPassword": new}));
    let (status, b) =
        call(&services, "PUT", "/users/me/password", Some(&desk.token), change("wrong-one", "n3w-password")).await;
    assert_error(status, &b, 403, "forbidden");
    let (status, b) =
        call(&services, "PUT", "/users/me/password", Some(&desk.token), change("password123", "short")).await;
    assert_error(status, &b, 422, "validation_failed");
    let (status, b) =
        call(&services, "PUT", "/users/me/password", Some(&desk.token), change("password123", "n3w-password")).await;
    assert_eq!((status, &b["endedSessions"]), (200, &json!(2)), "{b}");
    assert_eq!((me(&services, &desk.token).await, me(&services, &tablet.token).await), (200, 401));
    let (status, _) =
        call(&services, "POST", "/auth/login", None, Some(json!({"username": "alice", "password": "password123"})))
            .await;
    assert_eq!(status, 401);

    // One session ends another by id; logout everywhere ends them all.
    let other = log_in(&services, "n3w-password").await;
    let (_, listed) = call(&services, "GET", "/users/me/sessions", Some(&desk.token), None).await;
    let other_id =
        listed["items"].as_array().unwrap().iter().find(|s| s["current"] == false).unwrap()["sessionId"].clone();
    let path = format!("/users/me/sessions/{}", other_id.as_str().unwrap());
    assert_eq!(call(&services, "DELETE", &path, Some(&desk.token), None).await.0, 200);
    assert_eq!(call(&services, "DELETE", &path, Some(&desk.token), None).await.0, 404);
    assert_eq!(me(&services, &other.token).await, 401);
    let (status, b) = call(&services, "POST", "/auth/logout-all", Some(&desk.token), None).await;
    assert_eq!((status, &b["endedSessions"]), (200, &json!(1)));
    assert_eq!(me(&services, &desk.token).await, 401);
}

/// A session that ends between `$connect`'s token check and the connection being stored (its logout found no
/// connection to close yet): the second look at the session refuses it and nothing stays stored.
#[tokio::test]
async fn a_connect_whose_session_ended_meanwhile_is_refused_and_not_kept() {
    let services = TestApp::new();
    let creds = json!({"username": "alice", "password": "password123"});
    let (_, registered) = call(&services, "POST", "/auth/register", None, Some(creds)).await;
    let token = registered["token"].as_str().unwrap();
    let who = services.accounts.authenticate(Some(token)).await.unwrap();
    let (status, _) = call(&services, "POST", "/auth/logout", Some(token), None).await;
    assert_eq!(status, 200);
    let refused = services.app.presence.connect(ConnectionId::new("c-late"), who.clone()).await.unwrap_err();
    assert_eq!(refused.status(), 401);
    assert!(services.store.get_connection(&ConnectionId::new("c-late")).await.unwrap().is_none());
    assert!(services.store.user_connections(&who.user.id).await.unwrap().is_empty(), "nor in the presence");
}

#[tokio::test]
async fn input_errors_have_codes() {
    let services = TestApp::new();
    let (s, b) =
        call(&services, "POST", "/auth/register", None, Some(json!({"username":"a b","password":"password123"}))).await;
    assert_error(s, &b, 422, "validation_failed");
    let (s, b) =
        call(&services, "POST", "/auth/register", None, Some(json!({"username":"alice","password":"short"}))).await;
    assert_error(s, &b, 422, "validation_failed");
    let (s, b) = call(&services, "POST", "/auth/register", None, None).await;
    assert_error(s, &b, 400, "bad_request");
    let (s, b) = call(&services, "POST", "/auth/register", None, Some(json!(["x"]))).await;
    assert_error(s, &b, 400, "bad_request");
    let (s, b) = call(&services, "GET", "/users/me", None, None).await;
    assert_error(s, &b, 401, "unauthorized");
    let (s, b) = call(&services, "GET", "/users/me", Some("forged"), None).await;
    assert_error(s, &b, 401, "unauthorized");
    let (s, b) = call(&services, "GET", "/nope", None, None).await;
    assert_error(s, &b, 404, "not_found");
    let big = json!({"username":"alice","password":"x".repeat(64 * 1024)});
    let (s, b) = call(&services, "POST", "/auth/register", None, Some(big)).await;
    assert_error(s, &b, 413, "payload_too_large");
}

#[tokio::test]
async fn private_conversations_are_unique_per_pair() {
    let services = TestApp::new();
    let mut users = Vec::new();
    for name in ["alice", "bob"] {
        let (_, s) =
            call(&services, "POST", "/auth/register", None, Some(json!({"username":name,"password":"password123"})))
                .await;
        users.push(s);
    }
    let (alice_token, bob_token) = (users[0]["token"].as_str().unwrap(), users[1]["token"].as_str().unwrap());
    let bob_id = users[1]["user"]["_id"].as_str().unwrap();
    let alice_id = users[0]["user"]["_id"].as_str().unwrap();

    let (s, created) = call(
        &services,
        "POST",
        "/conversations",
        Some(alice_token),
        Some(json!({"type":"private","participantId":bob_id})),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(created["type"], "private");
    let names: Vec<&str> =
        created["members"].as_array().unwrap().iter().map(|m| m["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob"]);
    let (s, again) = call(
        &services,
        "POST",
        "/conversations",
        Some(bob_token),
        Some(json!({"type":"private","participantId":alice_id})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(again["_id"], created["_id"]);

    let (s, b) = call(
        &services,
        "POST",
        "/conversations",
        Some(alice_token),
        Some(json!({"type":"private","participantId":alice_id})),
    )
    .await;
    assert_error(s, &b, 422, "validation_failed");
    let (s, b) = call(
        &services,
        "POST",
        "/conversations",
        Some(alice_token),
        Some(json!({"type":"private","participantId":"nobody"})),
    )
    .await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = call(&services, "POST", "/conversations", Some(alice_token), Some(json!({"type":"channel"}))).await;
    assert_error(s, &b, 400, "bad_request");
}

// ------------------------------------------------------------------ REST API issue: shared fixtures

struct Account {
    id: String,
    token: String,
}

async fn account(services: &TestApp, name: &str) -> Account {
    let creds = json!({"username": name, "password": "password123"});
    let (status, body) = call(services, "POST", "/auth/register", None, Some(creds)).await;
    assert_eq!(status, 201, "{body}");
    Account { id: body["user"]["_id"].as_str().unwrap().into(), token: body["token"].as_str().unwrap().into() }
}

/// A live connection of `who`, so tests can read what the fan-out sent it.
async fn connect(store: &Arc<InMemoryStore>, who: &Account, connection_id: &str) {
    store
        .add_connection(&Connection {
            connection_id: ConnectionId::new(connection_id),
            user_id: UserId::parse(&who.id).unwrap(),
            username: "n".into(),
            avatar: None,
            connected_at: now_epoch_seconds(),
            expires_at: now_epoch_seconds() + 600,
            session_id: None,
        })
        .await
        .unwrap();
}

/// `data` of the frames named `event` that reached `connection_id`.
fn events_of(fanout: &RecordingFanout, connection_id: &str, event: &str) -> Vec<Value> {
    fanout.frames(connection_id).into_iter().filter(|f| f["event"] == event).map(|f| f["data"].clone()).collect()
}

async fn group(services: &TestApp, owner: &Account, others: &[&Account], name: &str) -> String {
    let ids: Vec<&str> = others.iter().map(|a| a.id.as_str()).collect();
    let body = json!({"type": "group", "participantIds": ids, "name": name});
    let (status, created) = call(services, "POST", "/conversations", Some(&owner.token), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["_id"].as_str().unwrap().into()
}

async fn private(services: &TestApp, a: &Account, b: &Account) -> String {
    let body = json!({"type": "private", "participantId": b.id});
    let (status, created) = call(services, "POST", "/conversations", Some(&a.token), Some(body)).await;
    assert!(status == 201 || status == 200, "{created}");
    created["_id"].as_str().unwrap().into()
}

async fn send(services: &TestApp, who: &Account, conversation_id: &str, content: &str) -> Value {
    let path = format!("/conversations/{conversation_id}/messages");
    let (status, message) =
        call(services, "POST", &path, Some(&who.token), Some(json!({"content": content, "type": "text"}))).await;
    assert_eq!(status, 201, "{message}");
    // Activity times have millisecond resolution; tests that order by activity need them distinct.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    message
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|i| i["_id"].as_str().unwrap().to_owned()).collect()
}

fn seqs(page: &Value) -> Vec<u64> {
    page["items"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect()
}

// ------------------------------------------------------------------ users

#[tokio::test]
async fn user_search_pages_through_a_prefix_case_insensitively() {
    let services = TestApp::new();
    let me = account(&services, "searcher").await;
    for name in ["Alba", "albert", "ALBUS", "alfred", "bob"] {
        account(&services, name).await;
    }
    let (s, first) = call(&services, "GET", "/users?search=AL&limit=2", Some(&me.token), None).await;
    assert_eq!(s, 200, "{first}");
    let names = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(&first), ["Alba", "albert"]);
    assert!(first["items"][0].get("passwordHash").is_none());
    let cursor = first["nextCursor"].as_str().unwrap();
    let (_, second) =
        call(&services, "GET", &format!("/users?search=al&limit=2&cursor={cursor}"), Some(&me.token), None).await;
    assert_eq!(names(&second), ["ALBUS", "alfred"]);
    assert!(second["nextCursor"].is_null(), "exactly two left: no empty third page");

    // A cursor is bound to its search and its user.
    let other = account(&services, "other").await;
    let (s, b) = call(&services, "GET", &format!("/users?search=al&cursor={cursor}"), Some(&other.token), None).await;
    assert_error(s, &b, 400, "bad_request");
    let (s, b) = call(&services, "GET", &format!("/users?search=alb&cursor={cursor}"), Some(&me.token), None).await;
    assert_error(s, &b, 400, "bad_request");

    let (_, none) = call(&services, "GET", "/users?search=zz", Some(&me.token), None).await;
    assert_eq!(none, json!({"items": [], "nextCursor": null}));
    for bad in ["/users", "/users?search=", "/users?search=%20", "/users?search=al&limit=51", "/users?search=a&limit=x"]
    {
        let (s, b) = call(&services, "GET", bad, Some(&me.token), None).await;
        assert_error(s, &b, 422, "validation_failed");
    }
    let (s, b) = call(&services, "GET", "/users?search=al", None, None).await;
    assert_error(s, &b, 401, "unauthorized");
}

// ------------------------------------------------------------------ conversation list and detail

#[tokio::test]
async fn conversations_list_newest_activity_first_with_unread_counts() {
    let services = TestApp::new();
    let (alice, bob, carol) =
        (account(&services, "alice").await, account(&services, "bob").await, account(&services, "carol").await);
    let with_bob = private(&services, &alice, &bob).await;
    let with_carol = private(&services, &alice, &carol).await;
    let trio = group(&services, &alice, &[&bob, &carol], "trio").await;
    send(&services, &bob, &with_bob, "one").await;
    send(&services, &bob, &with_bob, "two").await;
    send(&services, &carol, &trio, "hi all").await;
    send(&services, &alice, &with_carol, "carol?").await;

    let (s, list) = call(&services, "GET", "/conversations", Some(&alice.token), None).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(ids(&list), [with_carol.clone(), trio.clone(), with_bob.clone()]);
    let unread: Vec<u64> =
        list["items"].as_array().unwrap().iter().map(|c| c["unreadCount"].as_u64().unwrap()).collect();
    assert_eq!(unread, [0, 1, 2], "own messages are read, others' are not");
    assert_eq!(list["items"][2]["lastMessage"]["content"], "two");
    assert_eq!(list["items"][1]["members"].as_array().unwrap().len(), 3);
    assert!(list["nextCursor"].is_null());

    // Cursor pages and numbered pages walk the same order.
    let mut walked = Vec::new();
    let mut path = "/conversations?limit=1".to_owned();
    loop {
        let (s, page) = call(&services, "GET", &path, Some(&alice.token), None).await;
        assert_eq!(s, 200, "{page}");
        walked.extend(ids(&page));
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/conversations?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(walked, ids(&list));
    let (_, second) = call(&services, "GET", "/conversations?page=2&limit=1", Some(&alice.token), None).await;
    assert_eq!(ids(&second), std::slice::from_ref(&trio));
    let (_, beyond) = call(&services, "GET", "/conversations?page=9&limit=1", Some(&alice.token), None).await;
    assert_eq!(ids(&beyond), Vec::<String>::new());

    let (_, bobs) = call(&services, "GET", "/conversations?limit=1", Some(&bob.token), None).await;
    let bobs_cursor = bobs["nextCursor"].as_str().unwrap();
    for (path, status) in [
        (format!("/conversations?cursor={bobs_cursor}"), 400),
        ("/conversations?cursor=forged".to_owned(), 400),
        (format!("/conversations?page=1&cursor={bobs_cursor}"), 422),
        ("/conversations?page=0".to_owned(), 422),
        ("/conversations?limit=0".to_owned(), 422),
        ("/conversations?limit=51".to_owned(), 422),
    ] {
        let (s, b) = call(&services, "GET", &path, Some(&alice.token), None).await;
        assert_eq!(s, status, "{path}: {b}");
    }
    let (s, b) = call(&services, "GET", "/conversations", None, None).await;
    assert_error(s, &b, 401, "unauthorized");
}

#[tokio::test]
async fn a_conversation_is_visible_to_its_members_only() {
    let services = TestApp::new();
    let (alice, bob, eve) =
        (account(&services, "alice").await, account(&services, "bob").await, account(&services, "eve").await);
    let id = private(&services, &alice, &bob).await;
    send(&services, &alice, &id, "hello").await;
    let (s, seen) = call(&services, "GET", &format!("/conversations/{id}"), Some(&bob.token), None).await;
    assert_eq!(s, 200, "{seen}");
    assert_eq!(seen["_id"], id.as_str());
    assert_eq!(seen["unreadCount"], 1);
    assert_eq!(seen["lastMessage"]["content"], "hello");

    let foreign = call(&services, "GET", &format!("/conversations/{id}"), Some(&eve.token), None).await;
    let unknown = call(&services, "GET", "/conversations/0123456789abcdef", Some(&eve.token), None).await;
    assert_error(foreign.0, &foreign.1, 404, "not_found");
    assert_eq!(foreign, unknown, "a non-member cannot tell an existing conversation from a missing one");
    let (s, b) = call(&services, "GET", "/conversations/not%23an%23id", Some(&alice.token), None).await;
    assert_error(s, &b, 404, "not_found");
}

// ------------------------------------------------------------------ group management

async fn make_admin(services: &TestApp, owner: &Account, id: &str, user: &Account) {
    let path = format!("/conversations/{id}/members/{}/role", user.id);
    let (s, b) = call(services, "PUT", &path, Some(&owner.token), Some(json!({"role": "admin"}))).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn members_rename_a_group_and_everyone_hears_of_it() {
    let services = TestApp::new();
    let (store, fanout) = (services.store.clone(), services.fanout.clone());
    let (alice, bob, eve) =
        (account(&services, "alice").await, account(&services, "bob").await, account(&services, "eve").await);
    let id = group(&services, &alice, &[&bob], "old name").await;
    connect(&store, &alice, "c-alice").await;
    connect(&store, &eve, "c-eve").await;

    let path = format!("/conversations/{id}");
    let change = json!({"name": "  new name ", "avatar": "https://img/g.png"});
    let (s, b) = call(&services, "PATCH", &path, Some(&bob.token), Some(change.clone())).await;
    assert_error(s, &b, 403, "forbidden");
    make_admin(&services, &alice, &id, &bob).await;
    let (s, view) = call(&services, "PATCH", &path, Some(&bob.token), Some(change)).await;
    assert_eq!(s, 200, "{view}");
    assert_eq!(view["name"], "new name");
    assert_eq!(view["avatar"], "https://img/g.png");
    let heard = events_of(&fanout, "c-alice", "conversation_updated");
    assert_eq!(heard.len(), 1);
    assert_eq!(heard[0]["conversation"], view);
    assert!(fanout.frames("c-eve").is_empty());
    let (_, seen) = call(&services, "GET", &path, Some(&alice.token), None).await;
    assert_eq!(seen["name"], "new name");

    let (_, only_avatar) =
        call(&services, "PATCH", &path, Some(&alice.token), Some(json!({"avatar": "https://img/h.png"}))).await;
    assert_eq!(only_avatar["name"], "new name", "absent fields stay as they are");

    for (body, status) in [
        (json!({}), 422),
        (json!({"name": " "}), 422),
        (json!({"name": "x".repeat(101)}), 422),
        (json!({"avatar": "ftp://x"}), 422),
        (json!({"name": 5}), 400),
        (json!({"title": "x"}), 400),
    ] {
        let (s, b) = call(&services, "PATCH", &path, Some(&alice.token), Some(body.clone())).await;
        assert_eq!(s, status, "{body}: {b}");
    }
    let (s, b) = call(&services, "PATCH", &path, Some(&eve.token), Some(json!({"name": "mine"}))).await;
    assert_error(s, &b, 404, "not_found");
    let pair = private(&services, &alice, &bob).await;
    let (s, b) =
        call(&services, "PATCH", &format!("/conversations/{pair}"), Some(&alice.token), Some(json!({"name": "x"})))
            .await;
    assert_error(s, &b, 422, "validation_failed");
}

#[tokio::test]
async fn members_join_without_inheriting_unread_history() {
    let services = TestApp::new();
    let (store, fanout) = (services.store.clone(), services.fanout.clone());
    let (alice, bob, carol, dave) = (
        account(&services, "alice").await,
        account(&services, "bob").await,
        account(&services, "carol").await,
        account(&services, "dave").await,
    );
    let id = group(&services, &alice, &[&bob], "team").await;
    send(&services, &alice, &id, "before carol").await;
    send(&services, &bob, &id, "also before").await;
    connect(&store, &alice, "c-alice").await;
    connect(&store, &carol, "c-carol").await;

    let path = format!("/conversations/{id}/members");
    make_admin(&services, &alice, &id, &bob).await;
    let (s, view) =
        call(&services, "POST", &path, Some(&bob.token), Some(json!({"userIds": [carol.id, bob.id]}))).await;
    assert_eq!(s, 200, "{view}");
    assert_eq!(view["members"].as_array().unwrap().len(), 3);
    for connection in ["c-alice", "c-carol"] {
        let joined = events_of(&fanout, connection, "member_joined");
        assert_eq!(joined.len(), 1, "{connection}");
        assert_eq!(joined[0]["conversationId"], id.as_str());
        assert_eq!(joined[0]["addedBy"], bob.id.as_str());
        let added: Vec<&str> =
            joined[0]["members"].as_array().unwrap().iter().map(|u| u["_id"].as_str().unwrap()).collect();
        assert_eq!(added, [carol.id.as_str()], "members already in the group are not announced");
    }
    let (_, seen) = call(&services, "GET", &format!("/conversations/{id}"), Some(&carol.token), None).await;
    assert_eq!(seen["unreadCount"], 0);
    send(&services, &alice, &id, "welcome").await;
    let (_, seen) = call(&services, "GET", &format!("/conversations/{id}"), Some(&carol.token), None).await;
    assert_eq!(seen["unreadCount"], 1);

    // Adding someone who is already in: nothing changes, nobody is told.
    let before = fanout.total_posts();
    let (s, _) = call(&services, "POST", &path, Some(&alice.token), Some(json!({"userIds": [carol.id]}))).await;
    assert_eq!(s, 200);
    assert_eq!(fanout.total_posts(), before);

    for (who, body, status) in [
        (&alice, json!({"userIds": []}), 422),
        (&alice, json!({"userIds": ["0123456789abcdef"]}), 404),
        (&alice, json!({"userIds": "x"}), 400),
        (&dave, json!({"userIds": [dave.id]}), 404),
    ] {
        let (s, b) = call(&services, "POST", &path, Some(&who.token), Some(body.clone())).await;
        assert_eq!(s, status, "{body}: {b}");
    }
    let pair = private(&services, &alice, &bob).await;
    let (s, b) = call(
        &services,
        "POST",
        &format!("/conversations/{pair}/members"),
        Some(&alice.token),
        Some(json!({"userIds": [carol.id]})),
    )
    .await;
    assert_error(s, &b, 422, "validation_failed");
}

#[tokio::test]
async fn a_group_holds_at_most_the_deployments_number_of_members() {
    let limits = chat_shared::usecases::Limits { max_group_members: 50, ..Default::default() };
    let services = TestApp::with_limits(limits);
    let owner = account(&services, "owner").await;
    let mut others = Vec::new();
    for i in 0..50 {
        others.push(account(&services, &format!("user{i:02}")).await);
    }
    let first: Vec<&Account> = others.iter().take(48).collect();
    let id = group(&services, &owner, &first, "big").await;
    let path = format!("/conversations/{id}/members");
    let (s, b) =
        call(&services, "POST", &path, Some(&owner.token), Some(json!({"userIds": [others[48].id, others[49].id]})))
            .await;
    assert_error(s, &b, 422, "validation_failed");
    let (s, view) = call(&services, "POST", &path, Some(&owner.token), Some(json!({"userIds": [others[48].id]}))).await;
    assert_eq!(s, 200, "{view}");
    assert_eq!(view["members"].as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn members_leave_and_the_owner_removes_others() {
    let services = TestApp::new();
    let (store, fanout) = (services.store.clone(), services.fanout.clone());
    let (alice, bob, carol) =
        (account(&services, "alice").await, account(&services, "bob").await, account(&services, "carol").await);
    let id = group(&services, &alice, &[&bob, &carol], "club").await;
    connect(&store, &alice, "c-alice").await;
    connect(&store, &carol, "c-carol").await;
    let member = |who: &Account| format!("/conversations/{id}/members/{}", who.id);

    let (s, b) = call(&services, "DELETE", &member(&carol), Some(&bob.token), None).await;
    assert_error(s, &b, 403, "forbidden");
    let (s, left) = call(&services, "DELETE", &member(&carol), Some(&alice.token), None).await;
    assert_eq!(s, 200, "{left}");
    let expected = json!({"conversationId": id, "userId": carol.id, "removedBy": alice.id});
    assert_eq!(left, expected);
    assert_eq!(events_of(&fanout, "c-alice", "member_left"), std::slice::from_ref(&expected));
    assert_eq!(events_of(&fanout, "c-carol", "member_left"), [expected], "the removed user is told too");
    let (s, b) = call(&services, "GET", &format!("/conversations/{id}"), Some(&carol.token), None).await;
    assert_error(s, &b, 404, "not_found");
    let (_, list) = call(&services, "GET", "/conversations", Some(&carol.token), None).await;
    assert_eq!(ids(&list), Vec::<String>::new());
    let (s, b) = call(&services, "DELETE", &member(&carol), Some(&alice.token), None).await;
    assert_error(s, &b, 404, "not_found");

    // Anyone may leave.
    let (s, left) = call(&services, "DELETE", &member(&bob), Some(&bob.token), None).await;
    assert_eq!(s, 200, "{left}");
    assert_eq!(left["removedBy"], bob.id.as_str());
    let (_, seen) = call(&services, "GET", &format!("/conversations/{id}"), Some(&alice.token), None).await;
    assert_eq!(seen["members"].as_array().unwrap().len(), 1);

    let pair = private(&services, &alice, &bob).await;
    let (s, b) =
        call(&services, "DELETE", &format!("/conversations/{pair}/members/{}", bob.id), Some(&alice.token), None).await;
    assert_error(s, &b, 422, "validation_failed");
}

#[tokio::test]
async fn owner_and_admins_manage_a_group_and_ownership_never_lapses() {
    let services = TestApp::new();
    let (store, fanout) = (services.store.clone(), services.fanout.clone());
    let (alice, bob, carol, dave, erin) = (
        account(&services, "alice").await,
        account(&services, "bob").await,
        account(&services, "carol").await,
        account(&services, "dave").await,
        account(&services, "erin").await,
    );
    let id = group(&services, &alice, &[&bob, &carol], "club").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let add = |who: &Account| json!({"userIds": [who.id]});
    let members = format!("/conversations/{id}/members");
    let (s, b) = call(&services, "POST", &members, Some(&alice.token), Some(add(&dave))).await;
    assert_eq!(s, 200, "{b}");
    connect(&store, &carol, "c-carol").await;
    let role = |who: &Account| format!("/conversations/{id}/members/{}/role", who.id);
    let member = |who: &Account| format!("/conversations/{id}/members/{}", who.id);
    let set = |value: &str| Some(json!({"role": value}));

    // Members manage nothing; only the owner changes roles.
    let (s, b) = call(&services, "PUT", &role(&carol), Some(&bob.token), set("admin")).await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = call(&services, "POST", &members, Some(&bob.token), Some(add(&erin))).await;
    assert_error(s, &b, 403, "forbidden");
    let (s, view) = call(&services, "PUT", &role(&bob), Some(&alice.token), set("admin")).await;
    assert_eq!(s, 200, "{view}");
    assert_eq!((&view["ownerId"], &view["admins"]), (&json!(alice.id), &json!([bob.id])));
    let changed = json!({"conversationId": id, "userId": bob.id, "role": "admin", "changedBy": alice.id});
    assert_eq!(events_of(&fanout, "c-carol", "member_role_changed"), [changed]);
    let (s, _) = call(&services, "PUT", &role(&bob), Some(&alice.token), set("admin")).await;
    assert_eq!(s, 200);
    assert_eq!(events_of(&fanout, "c-carol", "member_role_changed").len(), 1, "no change, no event");
    for (path, body, status) in [
        (role(&alice), set("member"), 422),
        (role(&bob), set("owner"), 400),
        (role(&erin), set("admin"), 404),
        (role(&bob), Some(json!({"role": "admin", "x": 1})), 400),
    ] {
        let (s, b) = call(&services, "PUT", &path, Some(&alice.token), body.clone()).await;
        assert_eq!(s, status, "{path} {body:?}: {b}");
    }

    // An admin adds and removes members, not the owner or another admin, and changes no roles.
    let (s, b) = call(&services, "POST", &members, Some(&bob.token), Some(add(&erin))).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = call(&services, "DELETE", &member(&erin), Some(&bob.token), None).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = call(&services, "DELETE", &member(&alice), Some(&bob.token), None).await;
    assert_error(s, &b, 403, "forbidden");
    let (s, _) = call(&services, "PUT", &role(&carol), Some(&alice.token), set("admin")).await;
    assert_eq!(s, 200);
    let (s, b) = call(&services, "DELETE", &member(&carol), Some(&bob.token), None).await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = call(&services, "PUT", &role(&dave), Some(&bob.token), set("admin")).await;
    assert_error(s, &b, 403, "forbidden");
    let (_, page) = call(&services, "GET", &members, Some(&dave.token), None).await;
    let mut roles: Vec<(&str, &str)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["username"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    roles.sort();
    assert_eq!(roles, [("alice", "owner"), ("bob", "admin"), ("carol", "admin"), ("dave", "member")]);

    // A demoted admin can no longer remove anyone.
    let (s, _) = call(&services, "PUT", &role(&bob), Some(&alice.token), set("member")).await;
    assert_eq!(s, 200);
    let (s, b) = call(&services, "DELETE", &member(&dave), Some(&bob.token), None).await;
    assert_error(s, &b, 403, "forbidden");

    // Handing over: carol (an admin) owns it, alice stays as an admin.
    let owner = format!("/conversations/{id}/owner");
    let (s, b) = call(&services, "PUT", &owner, Some(&bob.token), Some(json!({"userId": carol.id}))).await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = call(&services, "PUT", &owner, Some(&alice.token), Some(json!({"userId": alice.id}))).await;
    assert_error(s, &b, 422, "validation_failed");
    let (s, view) = call(&services, "PUT", &owner, Some(&alice.token), Some(json!({"userId": carol.id}))).await;
    assert_eq!(s, 200, "{view}");
    assert_eq!((&view["ownerId"], &view["admins"]), (&json!(carol.id), &json!([alice.id])));
    let heard: Vec<(Value, Value)> = events_of(&fanout, "c-carol", "member_role_changed")
        .into_iter()
        .skip(3)
        .map(|e| (e["userId"].clone(), e["role"].clone()))
        .collect();
    assert_eq!(heard, [(json!(carol.id), json!("owner")), (json!(alice.id), json!("admin"))]);

    // The owner leaves: the longest-standing admin owns it; then, with no admin left, the longest-standing member.
    connect(&store, &dave, "c-dave").await;
    let (s, _) = call(&services, "DELETE", &member(&carol), Some(&carol.token), None).await;
    assert_eq!(s, 200);
    let (_, seen) = call(&services, "GET", &format!("/conversations/{id}"), Some(&dave.token), None).await;
    assert_eq!((&seen["ownerId"], &seen["admins"]), (&json!(alice.id), &json!([])));
    let (s, _) = call(&services, "DELETE", &member(&alice), Some(&alice.token), None).await;
    assert_eq!(s, 200);
    let (_, seen) = call(&services, "GET", &format!("/conversations/{id}"), Some(&dave.token), None).await;
    assert_eq!(seen["ownerId"], bob.id.as_str(), "bob joined before dave");
    let successions: Vec<(Value, Value)> = events_of(&fanout, "c-dave", "member_role_changed")
        .into_iter()
        .map(|e| (e["userId"].clone(), e["changedBy"].clone()))
        .collect();
    assert_eq!(successions, [(json!(alice.id), json!(carol.id)), (json!(bob.id), json!(alice.id))]);
    let (s, _) = call(&services, "DELETE", &member(&dave), Some(&bob.token), None).await;
    assert_eq!(s, 200, "the new owner manages the group");
}

// ------------------------------------------------------------------ messages

#[tokio::test]
async fn history_pages_newest_first_and_catches_up_oldest_first() {
    let services = TestApp::new();
    let (alice, bob, eve) =
        (account(&services, "alice").await, account(&services, "bob").await, account(&services, "eve").await);
    let id = private(&services, &alice, &bob).await;
    let other = private(&services, &alice, &eve).await;
    for i in 1..=7 {
        send(&services, if i % 2 == 0 { &bob } else { &alice }, &id, &format!("m{i}")).await;
    }
    let base = format!("/conversations/{id}/messages");

    let mut pages = Vec::new();
    let mut path = format!("{base}?limit=3");
    loop {
        let (s, page) = call(&services, "GET", &path, Some(&bob.token), None).await;
        assert_eq!(s, 200, "{page}");
        pages.push(seqs(&page));
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("{base}?limit=3&before={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, [vec![7, 6, 5], vec![4, 3, 2], vec![1]]);
    let (_, exact) = call(&services, "GET", &format!("{base}?limit=7"), Some(&bob.token), None).await;
    assert!(exact["nextCursor"].is_null(), "seq 1 is on this page: nothing older");
    let (_, page2) = call(&services, "GET", &format!("{base}?page=2&limit=3"), Some(&bob.token), None).await;
    assert_eq!(seqs(&page2), [4, 3, 2]);
    let (_, page4) = call(&services, "GET", &format!("{base}?page=4&limit=3"), Some(&bob.token), None).await;
    assert_eq!(seqs(&page4), Vec::<u64>::new());

    let (_, caught) = call(&services, "GET", &format!("{base}?afterSeq=4"), Some(&bob.token), None).await;
    assert_eq!(seqs(&caught), [5, 6, 7]);
    assert_eq!(caught["items"][0]["content"], "m5");
    let (_, part) = call(&services, "GET", &format!("{base}?afterSeq=2&limit=3"), Some(&bob.token), None).await;
    assert_eq!(seqs(&part), [3, 4, 5]);
    let cursor = part["nextCursor"].as_str().unwrap();
    let (_, rest) = call(&services, "GET", &format!("{base}?limit=3&cursor={cursor}"), Some(&bob.token), None).await;
    assert_eq!(seqs(&rest), [6, 7], "a catch-up cursor continues oldest first");

    // Seed 000's route answers the same.
    let (s, seeded) = call(&services, "GET", &format!("/messages?cid={id}&limit=3"), Some(&bob.token), None).await;
    assert_eq!(s, 200);
    let (_, direct) = call(&services, "GET", &format!("{base}?limit=3"), Some(&bob.token), None).await;
    assert_eq!(ids(&seeded), ids(&direct));

    // Cursors are bound to conversation and user.
    let (_, first) = call(&services, "GET", &format!("{base}?limit=3"), Some(&alice.token), None).await;
    let alices = first["nextCursor"].as_str().unwrap();
    for (path, token, status) in [
        (format!("{base}?before={alices}"), &bob.token, 400),
        (format!("/conversations/{other}/messages?before={alices}"), &alice.token, 400),
        (format!("{base}?before=bm90LWEtY3Vyc29y"), &alice.token, 400),
        (format!("{base}?limit=0"), &alice.token, 422),
        (format!("{base}?limit=101"), &alice.token, 422),
        (format!("{base}?page=0"), &alice.token, 422),
        (format!("{base}?page=1&afterSeq=2"), &alice.token, 422),
        (format!("{base}?afterSeq=2&before={alices}"), &alice.token, 422),
        (format!("{base}?afterSeq=-1"), &alice.token, 422),
        ("/messages".to_owned(), &alice.token, 422),
        (base.clone(), &eve.token, 404),
        (format!("/messages?cid={id}"), &eve.token, 404),
    ] {
        let (s, b) = call(&services, "GET", &path, Some(token), None).await;
        assert_eq!(s, status, "{path}: {b}");
    }
}

#[tokio::test]
async fn a_message_posted_over_http_is_stored_once_and_broadcast() {
    let services = TestApp::new();
    let (store, fanout) = (services.store.clone(), services.fanout.clone());
    let (alice, bob, eve) =
        (account(&services, "alice").await, account(&services, "bob").await, account(&services, "eve").await);
    let id = private(&services, &alice, &bob).await;
    connect(&store, &alice, "c-alice").await;
    connect(&store, &bob, "c-bob").await;
    connect(&store, &eve, "c-eve").await;
    let path = format!("/conversations/{id}/messages");
    let body = json!({"content": "over http", "type": "text", "clientMessageId": "cm-1", "conversationId": "x"});

    let (s, message) = call(&services, "POST", &path, Some(&alice.token), Some(body.clone())).await;
    assert_eq!(s, 201, "{message}");
    assert_eq!(message["conversationId"], id.as_str(), "the path names the conversation");
    assert_eq!(message["sender"]["_id"], alice.id.as_str());
    assert_eq!(message["sender"]["username"], "alice");
    assert_eq!(message["seq"], 1);
    for connection in ["c-alice", "c-bob"] {
        let received = events_of(&fanout, connection, "receive_message");
        assert_eq!(received.len(), 1, "{connection}");
        assert_eq!(received[0]["message"], message);
    }
    assert!(fanout.frames("c-eve").is_empty());

    let (s, again) = call(&services, "POST", &path, Some(&alice.token), Some(body)).await;
    assert_eq!(s, 200, "a retry returns the original");
    assert_eq!(again, message);
    assert_eq!(events_of(&fanout, "c-bob", "receive_message").len(), 1, "and is not broadcast again");
    assert_eq!(store.messages_of(&ConversationId::parse(&id).unwrap()).len(), 1);

    for (who, body, status) in [
        (&alice, json!({"content": "", "type": "text"}), 422),
        (&alice, json!({"content": "x".repeat(4001)}), 413),
        (&alice, json!({"content": "x", "type": "video"}), 400),
        (&alice, json!(["x"]), 400),
        (&eve, json!({"content": "let me in"}), 404),
    ] {
        let (s, b) = call(&services, "POST", &path, Some(&who.token), Some(body.clone())).await;
        assert_eq!(s, status, "{body}: {b}");
    }
    let (s, b) = call(&services, "POST", &path, None, Some(json!({"content": "x"}))).await;
    assert_error(s, &b, 401, "unauthorized");
}

// ------------------------------------------------------------------ attachments

/// Asks for a form in `conversation` and uploads `bytes` with it (as S3 would accept them); the upload id.
async fn upload(services: &TestApp, who: &Account, conversation: &str, name: &str, kind: &str, bytes: &[u8]) -> String {
    let request = json!({"fileName": name, "contentType": kind, "size": bytes.len()});
    let (status, issued) =
        call(services, "POST", &format!("/conversations/{conversation}/uploads"), Some(&who.token), Some(request))
            .await;
    assert_eq!(status, 201, "{issued}");
    let form: chat_shared::ports::UploadForm = serde_json::from_value(issued["upload"].clone()).unwrap();
    assert_eq!(form.fields["Content-Type"], kind);
    services.files.upload(&form, bytes).unwrap();
    issued["uploadId"].as_str().unwrap().to_owned()
}

async fn send_attachment(
    services: &TestApp,
    who: &Account,
    conversation: &str,
    kind: &str,
    upload: &str,
) -> (u16, Value) {
    let body = json!({"type": kind, "attachment": upload, "content": ""});
    call(services, "POST", &format!("/conversations/{conversation}/messages"), Some(&who.token), Some(body)).await
}

async fn group_of(services: &TestApp, owner: &Account, others: &[&Account]) -> String {
    let ids: Vec<&str> = others.iter().map(|a| a.id.as_str()).collect();
    let body = json!({"type": "group", "name": "files", "participantIds": ids});
    let (status, created) = call(services, "POST", "/conversations", Some(&owner.token), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_file_is_uploaded_sent_and_read_by_members_only() {
    let services = TestApp::new();
    let (alice, bob, carol) =
        (account(&services, "alice").await, account(&services, "bob").await, account(&services, "carol").await);
    let group = group_of(&services, &alice, &[&bob]).await;
    connect(&services.store, &bob, "bob-1").await;

    let id = upload(&services, &alice, &group, "report.pdf", "application/pdf", b"%PDF-1.7 report").await;
    let (status, sent) = send_attachment(&services, &alice, &group, "file", &id).await;
    assert_eq!(status, 201, "{sent}");
    let attachment = &sent["attachment"];
    assert_eq!((attachment["status"].as_str(), attachment["fileName"].as_str()), (Some("ready"), Some("report.pdf")));
    assert_eq!(attachment["size"], 15);
    assert!(attachment["url"].as_str().unwrap().contains(&format!("uploads/{group}/{id}")));
    assert_eq!(sent["fileName"], "report.pdf");
    let live = services.fanout.frames("bob-1");
    assert!(live[0]["data"]["message"]["attachment"]["url"].is_string(), "{live:?}");
    assert!(services.files.is_attached(&format!("uploads/{group}/{id}")), "spared by the expiry of stray uploads");

    let history = |who: &Account| {
        let path = format!("/conversations/{group}/messages");
        let token = who.token.clone();
        let services = &services;
        async move { call(services, "GET", &path, Some(&token), None).await }
    };
    let (status, page) = history(&bob).await;
    assert_eq!(status, 200);
    assert!(page["items"][0]["attachment"]["url"].is_string(), "{page}");
    let (status, refused) = history(&carol).await;
    assert_error(status, &refused, 404, "not_found");
    let form = json!({"fileName": "x.pdf", "contentType": "application/pdf", "size": 3});
    let (status, refused) =
        call(&services, "POST", &format!("/conversations/{group}/uploads"), Some(&carol.token), Some(form)).await;
    assert_error(status, &refused, 404, "not_found");

    // Removed: no history, so no URL.
    let (status, _) =
        call(&services, "DELETE", &format!("/conversations/{group}/members/{}", bob.id), Some(&bob.token), None).await;
    assert_eq!(status, 200);
    let (status, refused) = history(&bob).await;
    assert_error(status, &refused, 404, "not_found");
}

#[tokio::test]
async fn uploads_are_refused_before_any_form_and_attached_once_by_their_uploader_where_made() {
    let services = TestApp::new();
    let (alice, bob) = (account(&services, "alice").await, account(&services, "bob").await);
    let group = group_of(&services, &alice, &[&bob]).await;
    let other = group_of(&services, &alice, &[&bob]).await;
    let path = format!("/conversations/{group}/uploads");
    for (body, status, code) in [
        (json!({"fileName": "page.html", "contentType": "text/html", "size": 10}), 422, "validation_failed"),
        (
            json!({"fileName": "big.zip", "contentType": "application/zip", "size": 26 * 1024 * 1024}),
            413,
            "payload_too_large",
        ),
        (json!({"fileName": "empty.txt", "contentType": "text/plain", "size": 0}), 422, "validation_failed"),
        (json!({"fileName": "../etc/passwd", "contentType": "text/plain", "size": 4}), 422, "validation_failed"),
        (json!({"fileName": "a.txt", "contentType": "text/plain"}), 400, "bad_request"),
    ] {
        let (s, b) = call(&services, "POST", &path, Some(&alice.token), Some(body.clone())).await;
        assert_error(s, &b, status, code);
    }

    // Asked for but never uploaded.
    let request = json!({"fileName": "a.txt", "contentType": "text/plain", "size": 4});
    let (_, issued) = call(&services, "POST", &path, Some(&alice.token), Some(request)).await;
    let (s, b) = send_attachment(&services, &alice, &group, "file", issued["uploadId"].as_str().unwrap()).await;
    assert_error(s, &b, 422, "validation_failed");

    let id = upload(&services, &alice, &group, "notes.txt", "text/plain", b"notes").await;
    let (s, b) = send_attachment(&services, &bob, &group, "file", &id).await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = send_attachment(&services, &alice, &other, "file", &id).await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = send_attachment(&services, &alice, &group, "image", &id).await;
    assert_error(s, &b, 422, "validation_failed");
    let (s, b) = send_attachment(&services, &alice, &group, "file", &id).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = send_attachment(&services, &alice, &group, "file", &id).await;
    assert_error(s, &b, 409, "conflict");
    // A retry of the same send is the same message, not a conflict.
    let id = upload(&services, &alice, &group, "again.txt", "text/plain", b"again").await;
    let body = json!({"type": "file", "attachment": id, "clientMessageId": "retry-1"});
    let first =
        call(&services, "POST", &format!("/conversations/{group}/messages"), Some(&alice.token), Some(body.clone()))
            .await;
    let retry =
        call(&services, "POST", &format!("/conversations/{group}/messages"), Some(&alice.token), Some(body)).await;
    assert_eq!((first.0, retry.0), (201, 200), "{retry:?}");
    assert_eq!(first.1["_id"], retry.1["_id"]);
}

#[tokio::test]
async fn an_image_sent_before_processing_gains_its_thumbnail_and_loses_its_gps() {
    use chat_shared::testing::images::{GPS_MARKER, photo_with_gps};
    let services = TestApp::new();
    let (alice, bob) = (account(&services, "alice").await, account(&services, "bob").await);
    let group = group_of(&services, &alice, &[&bob]).await;
    connect(&services.store, &bob, "bob-1").await;

    let id = upload(&services, &alice, &group, "tower.jpg", "image/jpeg", &photo_with_gps(1200, 800)).await;
    let (status, sent) = send_attachment(&services, &alice, &group, "image", &id).await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["attachment"]["status"], "processing");
    assert!(sent["attachment"].get("url").is_none(), "no bytes before the metadata is gone");

    services.app.uploads.process(&format!("uploads/{group}/{id}")).await.unwrap();
    let frames = services.fanout.frames("bob-1");
    let processed = frames.iter().find(|f| f["event"] == "attachment_processed").expect("event");
    let attachment = &processed["data"]["attachment"];
    assert_eq!((attachment["status"].as_str(), attachment["width"].as_u64()), (Some("ready"), Some(1200)));
    assert!(attachment["thumbnailUrl"].as_str().unwrap().contains("thumbnails/"));
    assert_eq!(processed["data"]["messageId"], sent["_id"]);
    let clean = services.files.get(&format!("media/{group}/{id}")).await.unwrap().unwrap();
    assert!(!clean.windows(GPS_MARKER.len()).any(|w| w == GPS_MARKER));
    assert!(services.files.is_attached(&format!("thumbnails/{group}/{id}.jpg")));

    let (_, page) = call(&services, "GET", &format!("/conversations/{group}/messages"), Some(&bob.token), None).await;
    assert_eq!(page["items"][0]["attachment"]["height"], 800);
    assert!(page["items"][0]["attachment"]["url"].as_str().unwrap().contains("media/"));

    // Processing again (a notification delivered twice) changes nothing and tells nobody.
    services.fanout.clear();
    services.app.uploads.process(&format!("uploads/{group}/{id}")).await.unwrap();
    assert!(services.fanout.frames("bob-1").is_empty());

    // Deleting the message deletes its files.
    let path = format!("/conversations/{group}/messages/{}", sent["_id"].as_str().unwrap());
    let (status, _) = call(&services, "DELETE", &path, Some(&alice.token), None).await;
    assert_eq!(status, 200);
    for key in [format!("uploads/{group}/{id}"), format!("media/{group}/{id}"), format!("thumbnails/{group}/{id}.jpg")]
    {
        assert!(!services.files.exists(&key), "{key} survived its message");
    }
}

#[tokio::test]
async fn a_corrupt_image_or_a_bomb_is_served_to_nobody() {
    let services = TestApp::new();
    let (alice, bob) = (account(&services, "alice").await, account(&services, "bob").await);
    let group = group_of(&services, &alice, &[&bob]).await;
    for (name, bytes) in
        [("corrupt.png", b"not a png at all".to_vec()), ("bomb.png", chat_shared::testing::png_bomb(50_000, 50_000))]
    {
        let id = upload(&services, &alice, &group, name, "image/png", &bytes).await;
        services.app.uploads.process(&format!("uploads/{group}/{id}")).await.unwrap();
        let (status, sent) = send_attachment(&services, &alice, &group, "image", &id).await;
        assert_eq!(status, 201, "{sent}");
        assert_eq!(sent["attachment"]["status"], "rejected", "{name}");
        assert!(sent["attachment"].get("url").is_none() && sent["attachment"].get("thumbnailUrl").is_none());
    }
}

// ------------------------------------------------------------------ reports and moderation

async fn operator(services: &TestApp, name: &str) -> Account {
    use chat_shared::ports::ModerationStore;
    let account = account(services, name).await;
    assert!(services.store.set_operator(&UserId::parse(&account.id).unwrap(), true).await.unwrap());
    account
}

#[tokio::test]
async fn members_report_once_each_and_an_operator_acts_on_it() {
    let services = TestApp::new();
    let (alice, bob, carol, stranger) = (
        account(&services, "alice").await,
        account(&services, "bob").await,
        account(&services, "carol").await,
        account(&services, "stranger").await,
    );
    let op = operator(&services, "operator").await;
    let room = group(&services, &alice, &[&bob, &carol], "room").await;
    let message = send(&services, &bob, &room, "buy cheap pills").await;
    let target = json!({"type": "message", "messageId": message["_id"]});
    let report = |reason: &str| Some(json!({"target": target, "reason": reason, "details": "  again  "}));

    let (status, body) = call(&services, "POST", "/reports", Some(&alice.token), report("spam")).await;
    assert_eq!((status, body), (201, json!({"result": "reported"})));
    let (status, body) = call(&services, "POST", "/reports", Some(&alice.token), report("hate")).await;
    assert_eq!((status, body), (200, json!({"result": "unchanged"})), "one report per reporter and target");
    assert_eq!(call(&services, "POST", "/reports", Some(&carol.token), report("spam")).await.0, 201);
    let (status, body) = call(&services, "POST", "/reports", Some(&stranger.token), report("spam")).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = call(&services, "POST", "/reports", Some(&bob.token), report("spam")).await;
    assert_error(status, &body, 422, "validation_failed");
    let bad = json!({"target": {"type": "room", "roomId": "x"}, "reason": "spam"});
    assert_eq!(call(&services, "POST", "/reports", Some(&alice.token), Some(bad)).await.0, 400);
    let unknown_reason = json!({"target": {"type": "user", "userId": bob.id}, "reason": "boring"});
    assert_eq!(call(&services, "POST", "/reports", Some(&alice.token), Some(unknown_reason)).await.0, 400);

    // Only operators see and act on reports.
    for (method, path) in [("GET", "/moderation/reports"), ("GET", "/moderation/audit")] {
        let (status, body) = call(&services, method, path, Some(&alice.token), None).await;
        assert_error(status, &body, 403, "forbidden");
    }
    let (status, page) = call(&services, "GET", "/moderation/reports?limit=1", Some(&op.token), None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"][0]["excerpt"], "buy cheap pills");
    assert_eq!(page["items"][0]["subjectId"], json!(bob.id));
    assert_eq!(page["items"][0]["details"], "again");
    let cursor = page["nextCursor"].as_str().unwrap();
    let (_, rest) =
        call(&services, "GET", &format!("/moderation/reports?cursor={cursor}"), Some(&op.token), None).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1, "{rest}");
    assert!(rest["nextCursor"].is_null());

    // The operator deletes the message (the members hear of it) and resolves both reports at once.
    connect(&services.store, &alice, "c-alice").await;
    let path = format!("/moderation/messages/{}", message["_id"].as_str().unwrap());
    let (status, deleted) = call(&services, "DELETE", &path, Some(&op.token), None).await;
    assert_eq!((status, &deleted["deleted"]), (200, &json!(true)), "{deleted}");
    assert_eq!(events_of(&services.fanout, "c-alice", "message_deleted").len(), 1);
    let resolve = json!({"target": target, "outcome": "actioned", "note": "spam link"});
    let (status, body) =
        call(&services, "POST", "/moderation/reports/resolve", Some(&op.token), Some(resolve.clone())).await;
    assert_eq!((status, body), (200, json!({"resolved": 2})));
    let (_, body) = call(&services, "POST", "/moderation/reports/resolve", Some(&op.token), Some(resolve)).await;
    assert_eq!(body, json!({"resolved": 0}), "resolving twice closes nothing more");
    let (_, page) = call(&services, "GET", "/moderation/reports", Some(&op.token), None).await;
    assert_eq!(page["items"], json!([]));
    let (_, audit) = call(&services, "GET", "/moderation/audit", Some(&op.token), None).await;
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions.len(), 3, "{audit}");
    assert!(actions.contains(&"delete_message") && actions.contains(&"resolve_reports"), "{audit}");
    let (status, _) = call(&services, "GET", "/moderation/audit?month=2026-13", Some(&op.token), None).await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn a_suspended_user_is_closed_out_refused_and_let_back_in() {
    let services = TestApp::new();
    let op = operator(&services, "operator").await;
    let (status, registered) =
        call(&services, "POST", "/auth/register", None, Some(json!({"username": "alice", "password": "password123"})))
            .await;
    assert_eq!(status, 201);
    let alice_id = registered["user"]["_id"].as_str().unwrap().to_owned();
    let phone = log_in(&services, "password123").await;
    connect_with(&services, &phone.token, "c-phone").await;

    let path = format!("/moderation/users/{alice_id}/suspension");
    let (status, body) = call(&services, "PUT", &path, Some(&phone.token), Some(json!({}))).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = call(&services, "PUT", &path, Some(&op.token), Some(json!({"reason": "spam wave"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["suspended"], &body["endedSessions"], &body["closedConnections"]),
        (&json!(true), &json!(2), &json!(1))
    );
    assert_eq!(services.fanout.closed(), ["c-phone"]);
    assert_eq!(me(&services, &phone.token).await, 401);
    assert_eq!(refresh(&services, &phone.refresh).await.0, 401);
    let login = json!({"username": "alice", "password": "password123"});
    let (status, body) = call(&services, "POST", "/auth/login", None, Some(login.clone())).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) =
        call(&services, "PUT", &format!("/moderation/users/{}/suspension", op.id), Some(&op.token), Some(json!({})))
            .await;
    assert_error(status, &body, 422, "validation_failed");

    let (status, body) = call(&services, "DELETE", &path, Some(&op.token), None).await;
    assert_eq!((status, &body["suspended"]), (200, &json!(false)));
    assert_eq!(call(&services, "POST", "/auth/login", None, Some(login)).await.0, 200);
    let (status, body) = call(&services, "DELETE", "/moderation/users/nobody/suspension", Some(&op.token), None).await;
    assert_error(status, &body, 404, "not_found");
}

// ------------------------------------------------------------------ account deletion

#[tokio::test]
async fn a_deleted_account_closes_at_once_and_is_erased_by_its_job() {
    let services = TestApp::new();
    let (alice, bob, carol) =
        (account(&services, "alice").await, account(&services, "bob").await, account(&services, "carol").await);
    let club = group(&services, &alice, &[&bob, &carol], "club").await;
    let pair = private(&services, &alice, &bob).await;
    let mentioning_carol = json!({"content": "alice in the club, @carol", "mentions": [carol.id]});
    let club_path = format!("/conversations/{club}/messages");
    assert_eq!(call(&services, "POST", &club_path, Some(&alice.token), Some(mentioning_carol)).await.0, 201);
    send(&services, &bob, &club, "bob in the club").await;
    let carols_mentions = || async {
        let (_, list) = call(&services, "GET", "/conversations", Some(&carol.token), None).await;
        list["items"][0]["unreadMentionCount"].clone()
    };
    assert_eq!(carols_mentions().await, 1);
    send(&services, &bob, &pair, "hi alice").await;
    send(&services, &alice, &pair, "my secret").await;
    let (status, _) =
        call(&services, "POST", "/friend-requests", Some(&alice.token), Some(json!({"username": "bob"}))).await;
    assert_eq!(status, 201);
    assert_eq!(call(&services, "POST", "/friend-requests/alice/accept", Some(&bob.token), None).await.0, 200);
    connect_with(&services, &alice.token, "c-alice").await;
    connect(&services.store, &bob, "c-bob").await;

    let (status, body) =
        call(&services, "DELETE", "/users/me", Some(&alice.token), Some(json!({"password": "wrong-one-1"}))).await;
    assert_error(status, &body, 403, "forbidden");
    assert!(services.queue.take_account_jobs().is_empty(), "nothing queued for a refused deletion");
    let (status, body) =
        call(&services, "DELETE", "/users/me", Some(&alice.token), Some(json!({"password": "password123"}))).await;
    assert_eq!((status, &body["status"]), (202, &json!("erasing")), "{body}");
    assert_eq!(services.fanout.closed(), ["c-alice"], "the account's sockets close at once");
    assert_eq!(me(&services, &alice.token).await, 401);
    let login = json!({"username": "alice", "password": "password123"});
    assert_eq!(call(&services, "POST", "/auth/login", None, Some(login.clone())).await.0, 401);
    assert_eq!(call(&services, "POST", "/auth/register", None, Some(login)).await.0, 201, "the username is free");

    assert_eq!(services.run_account_jobs(20).await, 0);
    // Her messages are erased everywhere, her name with them; everyone else's stay.
    for conversation in [&club, &pair] {
        let (_, page) =
            call(&services, "GET", &format!("/conversations/{conversation}/messages"), Some(&bob.token), None).await;
        for message in page["items"].as_array().unwrap() {
            if message["sender"]["_id"] == json!(alice.id) {
                assert_eq!(message["content"], chat_shared::model::DELETED_CONTENT, "{message}");
                assert_eq!(
                    (&message["deleted"], &message["sender"]["username"]),
                    (&json!(true), &json!("Deleted account"))
                );
            } else {
                assert!(message["content"].as_str().unwrap().starts_with("b") || message["content"] == "hi alice");
            }
        }
    }
    assert_eq!(carols_mentions().await, 0, "her mention of carol went with her words");
    let (_, listed) = call(&services, "GET", "/conversations", Some(&bob.token), None).await;
    let text = listed.to_string();
    assert!(!text.contains("my secret") && !text.contains("\"alice\""), "no preview keeps her words or name: {text}");
    // She left the group (bob or carol, who joined together, owns it now); the private chat stays for bob.
    let (_, view) = call(&services, "GET", &format!("/conversations/{club}"), Some(&bob.token), None).await;
    assert_eq!(view["memberCount"], 2, "{view}");
    assert!(view["ownerId"] == json!(bob.id) || view["ownerId"] == json!(carol.id), "{view}");
    assert!(events_of(&services.fanout, "c-bob", "member_left").iter().any(|e| e["userId"] == json!(alice.id)));
    assert_eq!(call(&services, "GET", &format!("/conversations/{pair}"), Some(&bob.token), None).await.0, 200);
    // Readable, closed: nothing more is stored for nobody to read.
    let (status, refused) = call(
        &services,
        "POST",
        &format!("/conversations/{pair}/messages"),
        Some(&bob.token),
        Some(json!({"content": "are you there?"})),
    )
    .await;
    assert_error(status, &refused, 403, "forbidden");
    assert_eq!(refused["error"]["message"], "the other account was deleted: this conversation is closed");
    let (_, friends) = call(&services, "GET", "/friends", Some(&bob.token), None).await;
    assert_eq!(friends["items"], json!([]), "the friendship is gone");
    // A second run of the same job (SQS delivers at least once) changes nothing and fails nothing.
    let again = chat_shared::model::ErasureJob::new(UserId::parse(&alice.id).unwrap(), chat_shared::model::now_iso());
    services.app.erasure.run(again, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(services.run_account_jobs(20).await, 0);
}

#[tokio::test]
async fn an_erasure_job_waits_for_its_account_to_close_and_is_dropped_if_it_never_does() {
    let services = TestApp::new();
    let (alice, bob) = (account(&services, "alice").await, account(&services, "bob").await);
    let pair = private(&services, &alice, &bob).await;
    send(&services, &alice, &pair, "still here").await;
    let alice_id = UserId::parse(&alice.id).unwrap();

    // The job is enqueued before the account closes: one that finds it open fails, and SQS retries it.
    let early = chat_shared::model::ErasureJob::new(alice_id.clone(), chat_shared::model::now_iso());
    assert!(services.app.erasure.run(early, std::time::Duration::ZERO).await.is_err());
    // Ten minutes later the account was never closed (the request failed after queuing): the job is dropped.
    let stale = (chrono::Utc::now() - chrono::Duration::minutes(11)).to_rfc3339();
    let late = chat_shared::model::ErasureJob::new(alice_id, stale);
    services.app.erasure.run(late, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(services.run_account_jobs(20).await, 0);
    assert_eq!(me(&services, &alice.token).await, 200);
    let (_, page) = call(&services, "GET", &format!("/conversations/{pair}/messages"), Some(&bob.token), None).await;
    assert_eq!(page["items"][0]["content"], "still here", "nothing of an open account is erased");
}

#[tokio::test]
async fn a_suspended_accounts_live_session_is_refused_on_every_path() {
    use chat_shared::ports::ModerationStore;
    let services = TestApp::new();
    let alice = account(&services, "alice").await;
    let phone = log_in(&services, "password123").await;
    // Flagged without its sessions ended (as if the ending failed half-way): the flag alone refuses them.
    services.store.set_suspended(&UserId::parse(&alice.id).unwrap(), true).await.unwrap();
    let (status, body) = refresh(&services, &phone.refresh).await;
    assert_error(status, &body, 401, "unauthorized");
    assert_eq!(body["error"]["message"], "this account is suspended");
    let (status, body) = call(&services, "GET", "/users/me", Some(&phone.token), None).await;
    assert_error(status, &body, 401, "unauthorized");
    assert_eq!(body["error"]["message"], "this account is suspended");
}

// ------------------------------------------------------------------ export of one's data

#[tokio::test]
async fn an_export_holds_the_users_own_data_and_is_made_once_an_hour() {
    let services = TestApp::new();
    let (alice, bob, carol) =
        (account(&services, "alice").await, account(&services, "bob").await, account(&services, "carol").await);
    let club = group(&services, &alice, &[&bob, &carol], "club").await;
    let pair = private(&services, &alice, &bob).await;
    let mut sent = Vec::new();
    for (who, conversation, text) in
        [(&alice, &club, "a1"), (&bob, &club, "b1"), (&alice, &pair, "a2"), (&bob, &pair, "b2"), (&alice, &club, "a3")]
    {
        sent.push(send(&services, who, conversation, text).await);
    }
    // Her reactions to bob's messages (and to her own) are hers; bob's reaction to hers is his.
    for (message, who, emoji) in
        [(&sent[1], &alice, "👍"), (&sent[3], &alice, "🎉"), (&sent[4], &alice, "👀"), (&sent[0], &bob, "👍")]
    {
        let conversation = ConversationId::parse(message["conversationId"].as_str().unwrap()).unwrap();
        let seq = message["seq"].as_u64().unwrap();
        let user = UserId::parse(&who.id).unwrap();
        assert!(services.store.add_reaction(&conversation, seq, &user, emoji).await.unwrap());
    }
    assert_eq!(
        call(&services, "POST", "/friend-requests", Some(&alice.token), Some(json!({"username": "bob"}))).await.0,
        201
    );
    assert_eq!(call(&services, "POST", "/friend-requests/alice/accept", Some(&bob.token), None).await.0, 200);
    assert_eq!(call(&services, "POST", &format!("/users/{}/block", carol.id), Some(&alice.token), None).await.0, 200);

    let (status, body) = call(&services, "GET", "/users/me/export", Some(&alice.token), None).await;
    assert_error(status, &body, 404, "not_found");
    let (status, first) = call(&services, "POST", "/users/me/export", Some(&alice.token), None).await;
    assert_eq!((status, &first["status"]), (202, &json!("pending")), "{first}");
    let (status, again) = call(&services, "POST", "/users/me/export", Some(&alice.token), None).await;
    assert_eq!((status, &again["exportId"]), (202, &first["exportId"]), "a second request answers the first");
    let (_, pending) = call(&services, "GET", "/users/me/export", Some(&alice.token), None).await;
    assert_eq!(pending["status"], "pending");

    // A zero budget makes every step hand over to the next invocation: the messages travel through parts.
    assert_eq!(services.run_account_jobs(50).await, 0);
    let (status, ready) = call(&services, "GET", "/users/me/export", Some(&alice.token), None).await;
    assert_eq!((status, &ready["status"]), (200, &json!("ready")), "{ready}");
    let url = ready["url"].as_str().unwrap();
    assert!(url.contains("saveAs=chat-export.json"), "{url}");
    let key = format!("exports/{}/{}.json", alice.id, first["exportId"].as_str().unwrap());
    let bytes = services.files.get(&key).await.unwrap().expect("the document is written");
    assert_eq!(ready["size"], json!(bytes.len()));
    let document: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(document["format"], "chat-export/1");
    assert_eq!(document["profile"]["username"], "alice");
    let mut mine: Vec<&str> =
        document["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    mine.sort();
    assert_eq!(mine, ["a1", "a2", "a3"], "her messages, and only hers");
    let mut reactions: Vec<(&str, &str)> = document["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["messageId"].as_str().unwrap(), r["emoji"].as_str().unwrap()))
        .collect();
    reactions.sort();
    let id = |n: usize| sent[n]["_id"].as_str().unwrap();
    let mut expected = vec![(id(1), "👍"), (id(3), "🎉"), (id(4), "👀")];
    expected.sort();
    assert_eq!(reactions, expected, "her reactions, and only hers");
    let conversations = document["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 2);
    assert!(conversations.iter().all(|c| c["lastMessage"].is_null()), "no preview of others' words");
    assert_eq!(document["friends"][0]["username"], "bob");
    assert_eq!(document["blocked"][0]["username"], "carol");
    assert!(
        !services.files.exists(&format!(
            "exports/{}/{}/part-00001.json",
            alice.id,
            first["exportId"].as_str().unwrap()
        )),
        "parts are deleted"
    );

    let (status, cached) = call(&services, "POST", "/users/me/export", Some(&alice.token), None).await;
    assert_eq!((status, &cached["exportId"], &cached["status"]), (200, &first["exportId"], &json!("ready")));
    assert!(services.queue.take_account_jobs().is_empty(), "one export an hour");

    // Deleting the account deletes the export with the rest.
    let (status, _) =
        call(&services, "DELETE", "/users/me", Some(&alice.token), Some(json!({"password": "password123"}))).await;
    assert_eq!(status, 202);
    assert_eq!(services.run_account_jobs(50).await, 0);
    assert!(!services.files.exists(&key), "the document goes with the account");
}

// ------------------------------------------------------------------ mentions and notification settings

#[tokio::test]
async fn mentions_reach_the_mentioned_and_count_until_read() {
    let services = TestApp::new();
    let (alice, bob, carol, dave) = (
        account(&services, "alice").await,
        account(&services, "bob").await,
        account(&services, "carol").await,
        account(&services, "dave").await,
    );
    let trio = group(&services, &alice, &[&bob, &carol], "trio").await;
    connect(&services.store, &bob, "bob-1").await;
    let path = format!("/conversations/{trio}/messages");
    let mention = |ids: &[&str], content: &str| json!({"content": content, "mentions": ids});

    let (status, refused) =
        call(&services, "POST", &path, Some(&alice.token), Some(mention(&[&bob.id, &dave.id], "@bob @dave"))).await;
    assert_error(status, &refused, 422, "validation_failed");
    assert_eq!(refused["error"]["message"], "mentions must name members of the conversation");
    let (status, bad) = call(&services, "POST", &path, Some(&alice.token), Some(mention(&["not an id"], "x"))).await;
    assert_error(status, &bad, 422, "validation_failed");

    let (status, sent) =
        call(&services, "POST", &path, Some(&alice.token), Some(mention(&[&bob.id, &bob.id], "@bob look"))).await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["mentions"], json!([bob.id]), "repeats are dropped");
    assert_eq!(sent["seq"], 1, "the refused sends stored nothing");
    send(&services, &carol, &trio, "no mention here").await;
    let received = events_of(&services.fanout, "bob-1", "receive_message");
    assert_eq!(received[0]["message"]["mentions"], json!([bob.id]), "bob's frame says he is mentioned");
    assert_eq!(received[1]["message"]["mentions"], json!([]));

    let unread_mentions = |who: &Account| {
        let token = who.token.clone();
        let services = &services;
        async move {
            let (_, list) = call(services, "GET", "/conversations", Some(&token), None).await;
            (
                list["items"][0]["unreadCount"].as_u64().unwrap(),
                list["items"][0]["unreadMentionCount"].as_u64().unwrap(),
            )
        }
    };
    assert_eq!(unread_mentions(&bob).await, (2, 1));
    assert_eq!(unread_mentions(&carol).await, (0, 0), "her own message is read, and nobody mentioned her");
    let read = json!({"lastMessageId": sent["_id"]});
    let (status, receipt) =
        call(&services, "POST", &format!("/conversations/{trio}/read"), Some(&bob.token), Some(read)).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["lastReadSeq"], 1, "{receipt} {sent}");
    assert_eq!(unread_mentions(&bob).await, (1, 0), "read once the pointer passes it");

    // A deleted message's mentions stop counting; the message itself is still unread (its place in history).
    let (_, again) = call(&services, "POST", &path, Some(&alice.token), Some(mention(&[&bob.id], "@bob oops"))).await;
    send(&services, &carol, &trio, "carol mentions nobody").await;
    let (_, later) = call(&services, "POST", &path, Some(&carol.token), Some(mention(&[&bob.id], "@bob me too"))).await;
    assert_eq!(unread_mentions(&bob).await, (4, 2));
    let delete = |message: &Value| format!("{path}/{}", message["_id"].as_str().unwrap());
    assert_eq!(call(&services, "DELETE", &delete(&again), Some(&alice.token), None).await.0, 200);
    assert_eq!(unread_mentions(&bob).await, (4, 1), "only the deleted message's mention went");
    assert_eq!(call(&services, "DELETE", &delete(&later), Some(&carol.token), None).await.0, 200);
    assert_eq!(unread_mentions(&bob).await, (4, 0));
}

#[tokio::test]
async fn a_deletion_stands_when_its_mentions_cannot_be_forgotten_and_reading_past_them_clears_them() {
    let services = TestApp::new();
    let (alice, bob) = (account(&services, "alice").await, account(&services, "bob").await);
    let pair = group(&services, &alice, &[&bob], "pair").await;
    connect(&services.store, &bob, "bob-1").await;
    let path = format!("/conversations/{pair}/messages");
    let (_, sent) =
        call(&services, "POST", &path, Some(&alice.token), Some(json!({"content": "@bob", "mentions": [bob.id]})))
            .await;
    let bobs_mentions = || async {
        let (_, list) = call(&services, "GET", "/conversations", Some(&bob.token), None).await;
        list["items"][0]["unreadMentionCount"].as_u64().unwrap()
    };
    assert_eq!(bobs_mentions().await, 1);

    services.store.fail("forget_mention");
    let message_path = format!("{path}/{}", sent["_id"].as_str().unwrap());
    let (status, deleted) = call(&services, "DELETE", &message_path, Some(&alice.token), None).await;
    assert_eq!((status, &deleted["deleted"]), (200, &json!(true)), "the deletion stands: {deleted}");
    let told = events_of(&services.fanout, "bob-1", "message_deleted");
    assert_eq!(told.len(), 1, "members are told as always");
    let (_, history) = call(&services, "GET", &path, Some(&bob.token), None).await;
    assert_eq!(history["items"][0]["content"], chat_shared::model::DELETED_CONTENT, "{history}");
    assert_eq!(bobs_mentions().await, 1, "left behind, it counts until bob reads past it");
    services.store.heal();

    let read = json!({"lastMessageId": sent["_id"]});
    assert_eq!(
        call(&services, "POST", &format!("/conversations/{pair}/read"), Some(&bob.token), Some(read)).await.0,
        200
    );
    assert_eq!(bobs_mentions().await, 0);
}

#[tokio::test]
async fn an_erasure_step_that_cannot_forget_mentions_fails_and_its_redelivery_forgets_them() {
    let services = TestApp::new();
    let (alice, bob) = (account(&services, "alice").await, account(&services, "bob").await);
    let club = group(&services, &alice, &[&bob], "club").await;
    let path = format!("/conversations/{club}/messages");
    let mention = json!({"content": "@bob", "mentions": [bob.id]});
    assert_eq!(call(&services, "POST", &path, Some(&alice.token), Some(mention)).await.0, 201);
    let (status, _) =
        call(&services, "DELETE", "/users/me", Some(&alice.token), Some(json!({"password": "password123"}))).await;
    assert_eq!(status, 202);

    // Run the steps as account-worker would; a failed step's job stays for SQS to offer again.
    services.store.fail("forget_mention");
    let mut offered_again = Vec::new();
    loop {
        let jobs = services.queue.take_account_jobs();
        if jobs.is_empty() {
            break;
        }
        for job in jobs {
            let chat_shared::ports::AccountJob::Erasure(erasure) = job.clone() else { panic!("{job:?}") };
            if services.app.erasure.run(erasure, std::time::Duration::ZERO).await.is_err() {
                offered_again.push(job);
            }
        }
    }
    assert_eq!(offered_again.len(), 1, "the step with the mention failed");
    let (_, list) = call(&services, "GET", "/conversations", Some(&bob.token), None).await;
    assert_eq!(list["items"][0]["unreadMentionCount"], 1, "not forgotten yet");

    services.store.heal();
    for job in offered_again {
        let chat_shared::ports::AccountJob::Erasure(erasure) = job else { unreachable!() };
        services.app.erasure.run(erasure, std::time::Duration::ZERO).await.expect("the retried step");
    }
    assert_eq!(services.run_account_jobs(20).await, 0);
    let (_, list) = call(&services, "GET", "/conversations", Some(&bob.token), None).await;
    assert_eq!(list["items"][0]["unreadMentionCount"], 0, "the redelivered step forgot it");
    let (_, history) = call(&services, "GET", &path, Some(&bob.token), None).await;
    assert_eq!(history["items"][0]["content"], chat_shared::model::DELETED_CONTENT, "{history}");
}

#[tokio::test]
async fn notification_settings_are_the_users_own_and_reach_their_other_devices() {
    let services = TestApp::new();
    let (alice, bob, carol) =
        (account(&services, "alice").await, account(&services, "bob").await, account(&services, "carol").await);
    let pair = private(&services, &alice, &bob).await;
    connect(&services.store, &bob, "bob-phone").await;
    let path = format!("/conversations/{pair}/notifications");

    let quiet = json!({"level": "mentions", "until": "2099-01-01T09:00:00+01:00"});
    let (status, set) = call(&services, "PUT", &path, Some(&bob.token), Some(quiet)).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set, json!({"conversationId": pair, "level": "mentions", "until": "2099-01-01T08:00:00.000Z"}));
    let told = events_of(&services.fanout, "bob-phone", "conversation_notifications_changed");
    assert_eq!(told, std::slice::from_ref(&set), "his other device shows the same");
    let (_, list) = call(&services, "GET", "/conversations", Some(&bob.token), None).await;
    assert_eq!(list["items"][0]["notifications"], json!({"level": "mentions", "until": "2099-01-01T08:00:00.000Z"}));
    let (_, alices) = call(&services, "GET", "/conversations", Some(&alice.token), None).await;
    assert_eq!(alices["items"][0]["notifications"]["level"], "all", "one member's setting only");

    for (body, status, code) in [
        (json!({"level": "loud"}), 400, "bad_request"),
        (json!({"level": "none", "until": "2001-01-01T00:00:00Z"}), 422, "validation_failed"),
        (json!({"level": "all", "until": "2099-01-01T00:00:00Z"}), 422, "validation_failed"),
        (json!({"level": "none", "forever": true}), 400, "bad_request"),
    ] {
        let (s, b) = call(&services, "PUT", &path, Some(&bob.token), Some(body.clone())).await;
        assert_error(s, &b, status, code);
    }
    let (s, b) = call(&services, "PUT", &path, Some(&carol.token), Some(json!({"level": "none"}))).await;
    assert_error(s, &b, 404, "not_found");

    let (status, preferences) = call(&services, "GET", "/users/me/notifications", Some(&bob.token), None).await;
    assert_eq!((status, preferences), (200, json!({"doNotDisturbUntil": null, "previews": true})));
    let dnd = json!({"doNotDisturbUntil": "2099-06-01T22:00:00Z", "previews": false});
    let (status, set) = call(&services, "PUT", "/users/me/notifications", Some(&bob.token), Some(dnd)).await;
    assert_eq!((status, &set), (200, &json!({"doNotDisturbUntil": "2099-06-01T22:00:00.000Z", "previews": false})));
    assert_eq!(
        events_of(&services.fanout, "bob-phone", "notification_preferences_changed"),
        std::slice::from_ref(&set)
    );
    assert_eq!(call(&services, "GET", "/users/me/notifications", Some(&bob.token), None).await.1, set);
    let (s, b) = call(&services, "PUT", "/users/me/notifications", Some(&bob.token), Some(json!({"mute": 1}))).await;
    assert_error(s, &b, 400, "bad_request");
}

// ------------------------------------------------------------------ push notifications

mod push {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    use chat_shared::adapters::queue::handle_push_jobs;
    use chat_shared::model::{ConversationId, PushNotification, UserId, subscription_id};
    use chat_shared::ports::{ConnectionStore, PushJob, PushRequest, PushResponse, PushService, PushStore, Store};
    use chat_shared::testing::{RecordingQueue, TEST_SERVER_KEY, TestApp};
    use chat_shared::usecases::push::{PUSH_ATTEMPTS, PushOutcome, PushPlanner, PushSender};
    use chat_shared::webpush::VapidKey;
    use serde_json::{Value, json};

    use super::{Account, account, call, connect, group, private, send};

    /// RFC 8291's example user agent key: any valid P-256 point does.
    const P256DH: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

    fn browser(n: usize) -> Value {
        json!({"endpoint": format!("https://push.example/send/{n}"), "keys": {"p256dh": P256DH, "auth": AUTH}, "expirationTime": null})
    }

    async fn subscribe(services: &TestApp, who: &Account, n: usize) -> (u16, Value) {
        call(services, "POST", "/users/me/push-subscriptions", Some(&who.token), Some(browser(n))).await
    }

    #[tokio::test]
    async fn push_subscriptions_are_registered_once_listed_capped_and_removed() {
        let services = TestApp::new();
        let alice = account(&services, "alice").await;
        let (status, key) = call(&services, "GET", "/push/server-key", None, None).await;
        assert_eq!((status, key["publicKey"].as_str()), (200, Some(TEST_SERVER_KEY)));

        let (status, first) = subscribe(&services, &alice, 0).await;
        assert_eq!(status, 201, "{first}");
        assert_eq!(first["id"], subscription_id("https://push.example/send/0"));
        assert!(first.get("keys").is_none(), "keys stay on the server: {first}");
        assert_eq!(subscribe(&services, &alice, 0).await.0, 200, "the same browser again is the same subscription");
        for n in 1..10 {
            assert_eq!(subscribe(&services, &alice, n).await.0, 201);
        }
        let (status, full) = subscribe(&services, &alice, 10).await;
        super::assert_error(status, &full, 409, "conflict");
        let (_, listed) = call(&services, "GET", "/users/me/push-subscriptions", Some(&alice.token), None).await;
        assert_eq!(listed["items"].as_array().unwrap().len(), 10);

        let mut bad = browser(11);
        bad["keys"]["auth"] = json!("c2hvcnQ");
        let (status, refused) =
            call(&services, "POST", "/users/me/push-subscriptions", Some(&alice.token), Some(bad)).await;
        super::assert_error(status, &refused, 422, "validation_failed");
        let path = format!("/users/me/push-subscriptions/{}", first["id"].as_str().unwrap());
        assert_eq!(call(&services, "DELETE", &path, Some(&alice.token), None).await.0, 200);
        let (status, gone) = call(&services, "DELETE", &path, Some(&alice.token), None).await;
        super::assert_error(status, &gone, 404, "not_found");
        let (status, _) =
            call(&services, "DELETE", "/users/me/push-subscriptions/nope", Some(&alice.token), None).await;
        assert_eq!(status, 404);
        assert_eq!(subscribe(&services, &alice, 10).await.0, 201, "a removed one makes room");
        let (status, _) = call(&services, "GET", "/users/me/push-subscriptions", None, None).await;
        assert_eq!(status, 401);
    }

    /// Who a message is pushed to: offline members with a browser, unless muted (or mentions-only and not
    /// mentioned), in do not disturb, or blocking the sender; each once per browser, previews as they chose.
    #[tokio::test]
    async fn a_message_is_pushed_to_the_members_who_should_hear_of_it() {
        let services = TestApp::new();
        let names = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank"];
        let mut people = Vec::new();
        for name in names {
            people.push(account(&services, name).await);
        }
        // gina has no browser subscribed: never pushed to.
        let [alice, bob, carol, dave, erin, frank, _gina, hank] = &people[..] else { unreachable!() };
        let others: Vec<&Account> = people[1..].iter().collect();
        let conversation = group(&services, alice, &others, "team").await;
        for (n, who) in [bob, carol, dave, erin, frank, hank].into_iter().enumerate() {
            assert_eq!(subscribe(&services, who, n).await.0, 201);
        }
        assert_eq!(subscribe(&services, carol, 100).await.0, 201, "carol has two browsers");
        connect(&services.store, bob, "bob-1").await;
        let set = |who: &Account, path: String, body: Value| {
            let token = who.token.clone();
            let services = &services;
            async move { assert_eq!(call(services, "PUT", &path, Some(&token), Some(body)).await.0, 200) }
        };
        set(carol, "/users/me/notifications".into(), json!({"previews": false})).await;
        set(dave, format!("/conversations/{conversation}/notifications"), json!({"level": "none"})).await;
        set(erin, format!("/conversations/{conversation}/notifications"), json!({"level": "mentions"})).await;
        let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        set(frank, "/users/me/notifications".into(), json!({"doNotDisturbUntil": later, "previews": true})).await;
        let block = format!("/users/{}/block", alice.id);
        assert_eq!(call(&services, "POST", &block, Some(&hank.token), None).await.0, 200);

        let path = format!("/conversations/{conversation}/messages");
        let plain = json!({"content": "lunch?"});
        assert_eq!(call(&services, "POST", &path, Some(&alice.token), Some(plain)).await.0, 201);
        let mention = json!({"content": "erin, lunch?", "mentions": [erin.id]});
        assert_eq!(call(&services, "POST", &path, Some(&alice.token), Some(mention)).await.0, 201);

        let queue = Arc::new(RecordingQueue::new());
        let store: Arc<dyn Store> = services.store.clone();
        let planner = PushPlanner::new(&store, queue.clone());
        let messages = services.store.messages_of(&ConversationId::parse(&conversation).unwrap());
        let pushed = |jobs: Vec<(PushJob, u32)>| {
            let mut who: Vec<(String, Option<String>, bool)> = jobs
                .into_iter()
                .map(|(job, delay)| {
                    assert_eq!((job.attempt, delay), (1, 0));
                    let name = names[people.iter().position(|p| p.id == job.user_id.as_str()).unwrap()];
                    (name.to_owned(), job.notification.preview, job.notification.mentioned)
                })
                .collect();
            who.sort();
            who
        };
        assert_eq!(planner.plan(&messages[0]).await.unwrap(), 2);
        assert_eq!(pushed(queue.take_push_jobs()), [("carol".into(), None, false), ("carol".into(), None, false)]);
        assert_eq!(planner.plan(&messages[1]).await.unwrap(), 3);
        assert_eq!(
            pushed(queue.take_push_jobs()),
            [
                ("carol".into(), None, false),
                ("carol".into(), None, false),
                ("erin".into(), Some("erin, lunch?".into()), true)
            ]
        );
    }

    /// Answers from a script, and keeps what it was asked.
    struct ScriptedService {
        answers: Mutex<VecDeque<PushResponse>>,
        requests: Mutex<Vec<PushRequest>>,
    }

    #[async_trait]
    impl PushService for ScriptedService {
        async fn send(&self, request: &PushRequest) -> PushResponse {
            self.requests.lock().unwrap().push(request.clone());
            self.answers.lock().unwrap().pop_front().expect("an answer for every request")
        }
    }

    #[tokio::test]
    async fn the_sender_posts_forgets_gone_subscriptions_and_retries_with_backoff() {
        let services = TestApp::new();
        let (alice, carol) = (account(&services, "alice").await, account(&services, "carol").await);
        assert_eq!(subscribe(&services, &carol, 1).await.0, 201);
        let pair = private(&services, &alice, &carol).await;
        send(&services, &alice, &pair, "hi").await;
        let message = services.store.messages_of(&ConversationId::parse(&pair).unwrap()).remove(0);
        let user_id = UserId::parse(&carol.id).unwrap();
        let subscription = services.store.push_subscriptions(&user_id).await.unwrap().remove(0);
        let later = Some(Duration::from_secs(7));
        let answers = [
            PushResponse::Accepted,
            PushResponse::Retry { retry_after: None },
            PushResponse::Retry { retry_after: later },
            PushResponse::Retry { retry_after: None },
            PushResponse::Refused(400),
            PushResponse::Gone,
        ];
        let service = Arc::new(ScriptedService { answers: Mutex::new(answers.into()), requests: Mutex::default() });
        let queue = Arc::new(RecordingQueue::new());
        let store: Arc<dyn Store> = services.store.clone();
        let vapid = VapidKey::from_secret(&"v".repeat(40), "mailto:ops@example.com").unwrap();
        let sender = PushSender::new(&store, service.clone(), services.mobile.clone(), queue.clone(), vapid.clone());
        let notification = PushNotification::of(&message, None, true, true);
        let job = |attempt| PushJob {
            user_id: user_id.clone(),
            subscription: subscription.clone(),
            notification: notification.clone(),
            attempt,
        };

        assert_eq!(sender.send(job(1)).await.unwrap(), PushOutcome::Delivered);
        let request = service.requests.lock().unwrap()[0].clone();
        assert_eq!(
            (request.endpoint.as_str(), request.urgency, request.ttl),
            ("https://push.example/send/1", "high", 86_400)
        );
        assert!(request.authorization.starts_with("vapid t=") && request.authorization.ends_with(vapid.public_key()));
        assert!(request.body.len() > 86 + 16, "header, record and tag");

        assert_eq!(sender.send(job(1)).await.unwrap(), PushOutcome::Retrying(Duration::from_secs(5)));
        assert_eq!(sender.send(job(2)).await.unwrap(), PushOutcome::Retrying(Duration::from_secs(7)));
        let requeued: Vec<(u32, u32)> =
            queue.take_push_jobs().iter().map(|(job, delay)| (job.attempt, *delay)).collect();
        assert_eq!(requeued, [(2, 5), (3, 7)], "the next attempt, after the backoff or the service's Retry-After");
        assert_eq!(sender.send(job(PUSH_ATTEMPTS)).await.unwrap(), PushOutcome::Dropped(None));
        assert_eq!(sender.send(job(1)).await.unwrap(), PushOutcome::Dropped(Some(400)));
        assert!(queue.take_push_jobs().is_empty(), "nothing more is retried");

        // SQS refuses the retry: the record fails, so SQS offers the original job again after its timeout.
        service.answers.lock().unwrap().push_front(PushResponse::Retry { retry_after: None });
        queue.refuse(true);
        let mut record = SqsMessage::default();
        record.message_id = Some("record-1".into());
        record.body = Some(serde_json::to_string(&job(1)).unwrap());
        let mut event = SqsEvent::default();
        event.records.push(record);
        let failed: Vec<String> = handle_push_jobs(&sender, event)
            .await
            .batch_item_failures
            .into_iter()
            .map(|failure| failure.item_identifier)
            .collect();
        assert_eq!(failed, ["record-1"]);
        queue.refuse(false);

        assert_eq!(sender.send(job(1)).await.unwrap(), PushOutcome::Removed);
        assert!(services.store.push_subscriptions(&user_id).await.unwrap().is_empty());
        assert_eq!(services.store.presence(&user_id).await.unwrap().push_subscriptions, 0);
    }

    /// A phone registers its device token; its notifications are published through SNS (recorded here), and
    /// an endpoint SNS calls gone is forgotten on both sides.
    #[tokio::test]
    async fn a_phone_is_pushed_through_sns_and_forgotten_when_its_endpoint_is_gone() {
        let services = TestApp::new();
        let alice = account(&services, "alice").await;
        let carol = account(&services, "carol").await;
        let conversation = group(&services, &alice, &[&carol], "team").await;
        let phone = json!({"platform": "fcm", "token": "fcm-token-1"});
        let path = "/users/me/push-subscriptions";
        let (status, registered) = call(&services, "POST", path, Some(&carol.token), Some(phone.clone())).await;
        assert_eq!((status, registered["platform"].as_str()), (201, Some("fcm")), "{registered}");
        assert!(registered["endpoint"].as_str().unwrap().contains("fcm-token-1"), "the SNS endpoint: {registered}");
        assert_eq!(call(&services, "POST", path, Some(&carol.token), Some(phone)).await.0, 200, "the same phone");
        let mixed = json!({"platform": "apns", "token": "t", "endpoint": "https://push.example/1"});
        let (status, refused) = call(&services, "POST", path, Some(&carol.token), Some(mixed)).await;
        super::assert_error(status, &refused, 422, "validation_failed");

        let body = json!({"content": "to carol's phone"});
        let sent = format!("/conversations/{conversation}/messages");
        assert_eq!(call(&services, "POST", &sent, Some(&alice.token), Some(body)).await.0, 201);
        let queue = Arc::new(RecordingQueue::new());
        let store: Arc<dyn Store> = services.store.clone();
        let message = services.store.messages_of(&ConversationId::parse(&conversation).unwrap()).remove(0);
        assert_eq!(PushPlanner::new(&store, queue.clone()).plan(&message).await.unwrap(), 1);
        let (job, _) = queue.take_push_jobs().remove(0);
        let vapid = VapidKey::from_secret(&"v".repeat(40), "mailto:ops@example.com").unwrap();
        let browsers = Arc::new(ScriptedService { answers: Mutex::default(), requests: Mutex::default() });
        let sender = PushSender::new(&store, browsers.clone(), services.mobile.clone(), queue.clone(), vapid);
        assert_eq!(sender.send(job.clone()).await.unwrap(), PushOutcome::Delivered);
        let published = services.mobile.published.lock().unwrap().clone();
        assert_eq!(published.len(), 1);
        assert_eq!(
            (published[0].0.as_str(), published[0].1.preview.as_deref()),
            (registered["endpoint"].as_str().unwrap(), Some("to carol's phone"))
        );
        assert!(browsers.requests.lock().unwrap().is_empty(), "a phone's push goes through SNS only");

        // A retry goes out as its message reads then: edited, or not at all once deleted.
        let retry = PushJob { attempt: 2, ..job.clone() };
        let message_path = format!("{sent}/{}", message.id);
        let edit = json!({"newContent": "to carol's phone, edited"});
        assert_eq!(call(&services, "PUT", &message_path, Some(&alice.token), Some(edit)).await.0, 200);
        assert_eq!(sender.send(retry.clone()).await.unwrap(), PushOutcome::Delivered);
        let edited = services.mobile.published.lock().unwrap()[1].1.clone();
        assert_eq!((edited.preview.as_deref(), edited.seq), (Some("to carol's phone, edited"), message.seq));
        assert_eq!(call(&services, "DELETE", &message_path, Some(&alice.token), None).await.0, 200);
        assert_eq!(sender.send(retry).await.unwrap(), PushOutcome::Withdrawn);
        assert_eq!(services.mobile.published.lock().unwrap().len(), 2, "nothing is sent of a deleted message");

        services.mobile.answers.lock().unwrap().push_back(PushResponse::Gone);
        assert_eq!(sender.send(job).await.unwrap(), PushOutcome::Removed);
        assert_eq!(services.mobile.forgotten.lock().unwrap().as_slice(), [registered["endpoint"].as_str().unwrap()]);
        let (_, listed) = call(&services, "GET", path, Some(&carol.token), None).await;
        assert_eq!(listed["items"], json!([]));
    }
}

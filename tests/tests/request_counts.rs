//! Counts the DynamoDB requests and PostToConnection calls each action makes, against the deployed table.
//!
//! The handlers run in-process over the real table (every request the SDK transmits is counted by an
//! interceptor, retries included) with a recording fan-out (every PostToConnection the code makes is counted).
//! The printed table is where the per-action figures in docs/ come from; the test fails if any path scans.

use std::collections::BTreeMap;

use chat_e2e::counting::{Counting, ws_event};
use chat_e2e::{Stack, unique_name};
use chat_shared::adapters::{http, ws};
use std::sync::Arc;

use chat_shared::model::Message;
use chat_shared::ports::{AccountJob, Store};
use chat_shared::usecases::push::PushPlanner;
use serde_json::{Value, json};
/// A browser's P-256 key (RFC 8291's example): any valid point does.
const P256DH: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";

/// Connections above which the large-group test's deliveries are enqueued (the deployed test stack's value).
const INLINE_MAX: usize = 100;

struct Harness {
    counting: Counting,
    rows: Vec<(String, BTreeMap<String, usize>, usize)>,
}

impl Harness {
    async fn new(inline_max: usize) -> Harness {
        Harness { counting: Counting::new(&Stack::load(), inline_max).await, rows: Vec::new() }
    }

    /// Records what happened since the last call under `label`.
    fn record(&mut self, label: &str) {
        let requests = self.counting.counter.take();
        let posts = self.counting.fanout.total_posts();
        self.counting.fanout.clear();
        assert!(!requests.is_empty() || label.starts_with("ping"), "{label}: no DynamoDB request at all?");
        self.rows.push((label.to_owned(), requests, posts));
    }

    async fn connect(&mut self, label: &str, connection_id: &str, token: &str) {
        let event = ws_event("$connect", connection_id, None, Some(token));
        assert_eq!(ws::connect(&self.counting.app, &self.counting.accounts, event).await.status_code, 200);
        self.record(label);
    }

    async fn act(&mut self, label: &str, connection_id: &str, body: Value) -> Vec<Value> {
        let event = ws_event("$default", connection_id, Some(&body.to_string()), None);
        ws::message(&self.counting.app, event).await;
        let frames = self.counting.fanout.frames(connection_id);
        if let Some(error) = frames.iter().find(|f| f["event"] == "error") {
            panic!("{label}: {error}");
        }
        self.record(label);
        frames
    }

    async fn http(&mut self, label: &str, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Value {
        self.http_answered(None, label, method, path, token, body).await
    }

    /// [`Harness::http`] of a request the server must refuse with `status`.
    async fn http_refused(&mut self, status: u16, label: &str, method: &str, path: &str, body: Option<Value>) {
        self.http_answered(Some(status), label, method, path, None, body).await;
    }

    async fn http_answered(
        &mut self,
        status: Option<u16>,
        label: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let mut request = lambda_http::http::Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = body.map(|b| lambda_http::Body::Text(b.to_string())).unwrap_or(lambda_http::Body::Empty);
        let response = http::handle(&self.counting.rest(), request.body(body).unwrap()).await;
        match status {
            Some(status) => assert_eq!(response.status().as_u16(), status, "{label}"),
            None => assert!(response.status().is_success(), "{label}: {}", response.status()),
        }
        let json = match response.body() {
            lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
            _ => Value::Null,
        };
        self.record(label);
        json
    }

    /// DynamoDB requests recorded under `label`.
    fn requests_of(&self, label: &str) -> usize {
        let (_, requests, _) = self.rows.iter().find(|(l, _, _)| l == label).expect("recorded");
        requests.values().sum()
    }

    fn print(&self) {
        println!("\n{:<46} {:>5} {:>6}  by operation", "action", "ddb", "posts");
        for (label, requests, posts) in &self.rows {
            let total: usize = requests.values().sum();
            let detail: Vec<String> = requests.iter().map(|(op, n)| format!("{op}×{n}")).collect();
            println!("{label:<46} {total:>5} {posts:>6}  {}", detail.join(" "));
        }
    }
}

#[tokio::test]
async fn requests_per_action() {
    chat_shared::telemetry::init();
    let mut h = Harness::new(chat_shared::config::DEFAULT_FANOUT_INLINE_MAX).await;
    let (alice, bob, carol) = (unique_name("alice"), unique_name("bob"), unique_name("carol"));
    let a = h
        .http(
            "POST /auth/register",
            "POST",
            "/auth/register",
            None,
            Some(json!({"username":alice,"password":"password123"})),
        )
        .await;
    let b = h
        .http("(register bob)", "POST", "/auth/register", None, Some(json!({"username":bob,"password":"password123"})))
        .await;
    let c = h
        .http(
            "(register carol)",
            "POST",
            "/auth/register",
            None,
            Some(json!({"username":carol,"password":"password123"})),
        )
        .await;
    let (ta, tb, tc) = (a["token"].as_str().unwrap(), b["token"].as_str().unwrap(), c["token"].as_str().unwrap());
    h.http("POST /auth/login", "POST", "/auth/login", None, Some(json!({"username":alice,"password":"password123"})))
        .await;
    let conversation = h
        .http(
            "POST /conversations (private, new)",
            "POST",
            "/conversations",
            Some(ta),
            Some(json!({"type":"private","participantId":b["user"]["_id"]})),
        )
        .await;
    h.http(
        "POST /conversations (private, existing)",
        "POST",
        "/conversations",
        Some(tb),
        Some(json!({"type":"private","participantId":a["user"]["_id"]})),
    )
    .await;
    let cid = conversation["_id"].as_str().unwrap().to_owned();
    let (a1, a2, b1, c1) = (unique_name("a1"), unique_name("a2"), unique_name("b1"), unique_name("c1"));

    h.connect("$connect (first connection of a user)", &a1, ta).await;
    h.connect("$connect (second connection)", &a2, ta).await;
    h.connect("$connect (bob, peer online)", &b1, tb).await;
    h.connect("(carol)", &c1, tc).await;
    h.act("ping", &a1, json!({"action":"ping"})).await;
    h.act("join_conversations (1 id)", &b1, json!({"action":"join_conversations","conversationIds":[cid]})).await;
    let frames = h
        .act(
            "send_message (2 members, 3 connections)",
            &a1,
            json!({"action":"send_message","conversationId":cid,"content":"hi","clientMessageId":"c-1"}),
        )
        .await;
    let id = frames[0]["data"]["message"]["_id"].as_str().unwrap().to_owned();
    h.act(
        "send_message (retry, duplicate)",
        &a1,
        json!({"action":"send_message","conversationId":cid,"content":"hi","clientMessageId":"c-1"}),
    )
    .await;
    h.act("edit_message", &a1, json!({"action":"edit_message","messageId":id,"newContent":"hello"})).await;
    h.act("add_reaction", &b1, json!({"action":"add_reaction","messageId":id,"emoji":"👍"})).await;
    h.act("remove_reaction", &b1, json!({"action":"remove_reaction","messageId":id,"emoji":"👍"})).await;
    h.act("mark_read (lastMessageId)", &b1, json!({"action":"mark_read","conversationId":cid,"lastMessageId":id}))
        .await;
    h.act("typing (true)", &a1, json!({"action":"typing","conversationId":cid,"isTyping":true})).await;
    h.act("typing (true, throttled)", &a1, json!({"action":"typing","conversationId":cid,"isTyping":true})).await;
    h.act("typing (false)", &a1, json!({"action":"typing","conversationId":cid,"isTyping":false})).await;
    h.act("delete_message", &a1, json!({"action":"delete_message","messageId":id})).await;
    h.act("send_friend_request", &a1, json!({"action":"send_friend_request","username":carol})).await;
    h.act("accept_friend_request", &c1, json!({"action":"accept_friend_request","username":alice})).await;
    h.act("set_status", &a1, json!({"action":"set_status","status":"away"})).await;
    h.act("get_friends (1 friend)", &a1, json!({"action":"get_friends","requestId":"f"})).await;
    h.act("get_presence (2 peers)", &a1, json!({"action":"get_presence","requestId":"p"})).await;
    h.act("unfriend", &a1, json!({"action":"unfriend","username":carol})).await;
    h.act("leave_conversation", &b1, json!({"action":"leave_conversation","conversationId":cid})).await;
    let posted = h
        .http(
            "POST /conversations/:id/messages",
            "POST",
            &format!("/conversations/{cid}/messages"),
            Some(ta),
            Some(json!({"content":"via http"})),
        )
        .await;
    h.http("GET /conversations", "GET", "/conversations", Some(ta), None).await;
    h.http(
        "GET /conversations/:id/messages",
        "GET",
        &format!("/conversations/{cid}/messages?limit=50"),
        Some(ta),
        None,
    )
    .await;
    h.http("GET /users/me", "GET", "/users/me", Some(ta), None).await;
    let disconnect = ws_event("$disconnect", &a2, None, None);
    ws::disconnect(&h.counting.app, disconnect).await;
    h.record("$disconnect (user still has a connection)");
    let disconnect = ws_event("$disconnect", &b1, None, None);
    ws::disconnect(&h.counting.app, disconnect).await;
    h.record("$disconnect (last connection, peer online)");
    let reuse = Some(json!({"refreshToken": a["refreshToken"]}));
    let refreshed = h.http("POST /auth/refresh", "POST", "/auth/refresh", None, reuse.clone()).await;
    h.http_refused(401, "POST /auth/refresh (reused: the session ends)", "POST", "/auth/refresh", reuse).await;
    assert_eq!(h.counting.fanout.closed(), std::slice::from_ref(&a1), "the session's open connection closes");
    assert_eq!(refreshed["token"].as_str().map(|t| !t.is_empty()), Some(true), "{refreshed}");
    h.http("POST /auth/logout (1 connection of the session)", "POST", "/auth/logout", Some(tc), None).await;
    assert_eq!(h.counting.fanout.closed(), [a1.clone(), c1.clone()], "then carol's");

    // Reports, and an operator acting on them (the operator flag is read with the session: no extra request).
    let reported = json!({"target": {"type": "message", "messageId": posted["_id"]}, "reason": "spam"});
    h.http("POST /reports (a message)", "POST", "/reports", Some(tb), Some(reported.clone())).await;
    h.http("POST /reports (again: unchanged)", "POST", "/reports", Some(tb), Some(reported)).await;
    let about_alice = json!({"target": {"type": "user", "userId": a["user"]["_id"]}, "reason": "harassment"});
    h.http("POST /reports (a user)", "POST", "/reports", Some(tb), Some(about_alice)).await;
    let bob_user = chat_e2e::TestUser {
        id: b["user"]["_id"].as_str().unwrap().to_owned(),
        username: bob.clone(),
        token: tb.to_owned(),
        refresh_token: String::new(),
    };
    Stack::load().make_operator(&bob_user).await;
    h.http("GET /moderation/reports", "GET", "/moderation/reports?limit=50", Some(tb), None).await;
    let message_path = format!("/moderation/messages/{}", posted["_id"].as_str().unwrap());
    h.http("DELETE /moderation/messages/:id", "DELETE", &message_path, Some(tb), None).await;
    let resolve = json!({"target": {"type": "message", "messageId": posted["_id"]}, "outcome": "actioned"});
    h.http(
        "POST /moderation/reports/resolve (1 report)",
        "POST",
        "/moderation/reports/resolve",
        Some(tb),
        Some(resolve),
    )
    .await;
    let suspension = format!("/moderation/users/{}/suspension", a["user"]["_id"].as_str().unwrap());
    let suspended = h.http("PUT .../suspension", "PUT", &suspension, Some(tb), Some(json!({}))).await;
    assert_eq!(suspended["suspended"], true, "{suspended}");
    h.http("DELETE .../suspension", "DELETE", &suspension, Some(tb), None).await;
    h.http("GET /moderation/audit", "GET", "/moderation/audit", Some(tb), None).await;

    h.print();
    for (label, requests, _) in &h.rows {
        assert!(!requests.contains_key("Scan"), "{label} scanned the table");
    }
}

/// Mentions and notification settings: a mention is an item in the send's own transaction and forgetting it one
/// more action of the read pointer's update, so neither adds a request; the settings are one write each.
#[tokio::test]
async fn requests_per_mention_and_notification_setting() {
    let mut h = Harness::new(chat_shared::config::DEFAULT_FANOUT_INLINE_MAX).await;
    let mut users = Vec::new();
    for name in ["alice", "bob"] {
        let body = json!({"username": unique_name(name), "password": "password123"});
        users.push(h.http(&format!("(register {name})"), "POST", "/auth/register", None, Some(body)).await);
    }
    let (ta, tb) = (users[0]["token"].as_str().unwrap(), users[1]["token"].as_str().unwrap());
    let pair = json!({"type": "private", "participantId": users[1]["user"]["_id"]});
    let conversation = h.http("(private conversation)", "POST", "/conversations", Some(ta), Some(pair)).await;
    let cid = conversation["_id"].as_str().unwrap().to_owned();
    let (a1, b1) = (unique_name("a1"), unique_name("b1"));
    h.connect("(alice connects)", &a1, ta).await;
    h.connect("(bob connects)", &b1, tb).await;
    let plain = json!({"action": "send_message", "conversationId": cid, "content": "hi"});
    let sent = h.act("send_message (no mention)", &a1, plain).await;
    let mention = json!({"action": "send_message", "conversationId": cid, "content": "@bob", "mentions": [users[1]["user"]["_id"]]});
    let mentioned = h.act("send_message (mentioning bob)", &a1, mention).await;
    let read = |frames: &[Value]| json!({"action": "mark_read", "conversationId": cid, "lastMessageId": frames[0]["data"]["message"]["_id"]});
    h.act("mark_read (no mention passed)", &b1, read(&sent)).await;
    h.act("mark_read (past a mention)", &b1, read(&mentioned)).await;
    let settings = format!("/conversations/{cid}/notifications");
    h.http("PUT /conversations/:id/notifications", "PUT", &settings, Some(tb), Some(json!({"level": "mentions"})))
        .await;
    h.http("GET /users/me/notifications", "GET", "/users/me/notifications", Some(tb), None).await;
    let dnd = json!({"doNotDisturbUntil": "2099-01-01T00:00:00Z", "previews": false});
    h.http("PUT /users/me/notifications", "PUT", "/users/me/notifications", Some(tb), Some(dnd)).await;
    h.act("set_app_state (background)", &b1, json!({"action": "set_app_state", "state": "background"})).await;
    h.act("set_app_state (foreground)", &b1, json!({"action": "set_app_state", "state": "foreground"})).await;

    // Push: carol, never connected, has a browser; alice writes to a group of the three. Planning the message's
    // pushes reads the conversation, the members' presence, carol's setting and her subscriptions.
    let body = json!({"username": unique_name("carol"), "password": "password123"});
    let carol = h.http("(register carol)", "POST", "/auth/register", None, Some(body)).await;
    let tc = carol["token"].as_str().unwrap();
    let browser = json!({"endpoint": "http://127.0.0.1:9/push/counted", "keys": {"p256dh": P256DH, "auth": "BTBZMqHH6r4Tts7J_aSIgg"}});
    h.http("POST /users/me/push-subscriptions", "POST", "/users/me/push-subscriptions", Some(tc), Some(browser)).await;
    h.http("GET /users/me/push-subscriptions", "GET", "/users/me/push-subscriptions", Some(tc), None).await;
    let ids = json!([users[1]["user"]["_id"], carol["user"]["_id"]]);
    let group = json!({"type": "group", "name": "push", "participantIds": ids});
    let group = h.http("(group of three)", "POST", "/conversations", Some(ta), Some(group)).await;
    let plain = json!({"action": "send_message", "conversationId": group["_id"], "content": "to carol's phone"});
    let sent = h.act("send_message (a member offline with a browser)", &a1, plain).await;
    let message: Message = serde_json::from_value(sent[0]["data"]["message"].clone()).unwrap();
    let store: Arc<dyn Store> = h.counting.store.clone();
    let planner = PushPlanner::new(&store, h.counting.queue.clone());
    assert_eq!(planner.plan(&message).await.unwrap(), 1, "carol's browser, not connected bob's");
    h.record("push-worker: plan one message (1 of 2 recipients pushed)");
    assert_eq!(h.counting.queue.take_push_jobs().len(), 1);
    h.print();
    assert_eq!(
        h.requests_of("send_message (mentioning bob)"),
        h.requests_of("send_message (no mention)"),
        "a mention rides in the send's own transaction"
    );
    assert_eq!(
        h.requests_of("mark_read (past a mention)"),
        h.requests_of("mark_read (no mention passed)"),
        "forgetting the mention rides in the read pointer's update"
    );
}

/// Exporting one's data and deleting one's account: the requests, then the jobs `account-worker` runs (dora sent
/// 2 messages, in 1 private chat). Its own test: with the rest, the test's future outgrew the test thread's stack.
#[tokio::test]
async fn requests_per_account_export_and_deletion() {
    let mut h = Harness::new(chat_shared::config::DEFAULT_FANOUT_INLINE_MAX).await;
    let eve = unique_name("eve");
    let e = h
        .http("(register eve)", "POST", "/auth/register", None, Some(json!({"username":eve,"password":"password123"})))
        .await;
    let dora = unique_name("dora");
    let d = h
        .http(
            "(register dora)",
            "POST",
            "/auth/register",
            None,
            Some(json!({"username":dora,"password":"password123"})),
        )
        .await;
    let td = d["token"].as_str().unwrap();
    let with_dora = json!({"type":"private","participantId":e["user"]["_id"]});
    let chat = h.http("(dora's chat with bob)", "POST", "/conversations", Some(td), Some(with_dora)).await;
    let chat_messages = format!("/conversations/{}/messages", chat["_id"].as_str().unwrap());
    for n in 0..2 {
        h.http("(dora sends)", "POST", &chat_messages, Some(td), Some(json!({"content": format!("m{n}")}))).await;
    }
    // Her export first: the request, the job (in one run, as an invocation with time to spare), the link.
    h.http("POST /users/me/export", "POST", "/users/me/export", Some(td), None).await;
    h.http("POST /users/me/export (again, pending)", "POST", "/users/me/export", Some(td), None).await;
    for job in h.counting.queue.take_account_jobs() {
        let AccountJob::Export(job) = job else { panic!("an export job: {job:?}") };
        Box::pin(h.counting.app.exports.run(job, std::time::Duration::from_secs(60))).await.unwrap();
    }
    h.record("(export: 2 messages in 1 private chat)");
    let ready = h.http("GET /users/me/export (ready)", "GET", "/users/me/export", Some(td), None).await;
    assert_eq!(ready["status"], "ready", "{ready}");

    let password = Some(json!({"password":"password123"}));
    h.http("DELETE /users/me (1 session, no socket)", "DELETE", "/users/me", Some(td), password).await;
    let mut steps = 0;
    for job in h.counting.queue.take_account_jobs() {
        let AccountJob::Erasure(job) = job else { panic!("an erasure job: {job:?}") };
        let mut job = Some(job);
        while let Some(current) = job {
            job = h.counting.app.erasure.step(current).await.unwrap();
            steps += 1;
        }
    }
    h.record(&format!("(erasure: {steps} steps, 2 messages in 1 private chat)"));

    h.print();
    for (label, requests, _) in &h.rows {
        assert!(!requests.contains_key("Scan"), "{label} scanned the table");
    }
}

/// One message in a group of 150, each member online once: the recipients come from one `Query` of the member
/// items and one `BatchGetItem` per 100 presences, and the 149 connections (above the inline limit) go out as one
/// queued job.
#[tokio::test]
async fn requests_per_message_in_a_large_group() {
    use chat_shared::model::{Actor, Connection, ConnectionId, User, UserId, UserRecord, now_epoch_seconds, now_iso};
    use chat_shared::ports::{ConnectionStore, Created, UserStore};
    use chat_shared::usecases::conversations::{
        AddMembers, AssignableRole, CreateConversation, SetRole, TransferOwnership,
    };

    const MEMBERS: usize = 150;
    let mut h = Harness::new(INLINE_MAX).await;
    let store = h.counting.store.clone();
    let mut users = Vec::new();
    for _ in 0..MEMBERS {
        let user = User { id: UserId::random(), username: unique_name("lg"), avatar: None, created_at: now_iso() };
        let record = UserRecord { user: user.clone(), password_hash: "unused".into(), standing: Default::default() };
        store.create_user(&record).await.unwrap();
        let connected_at = now_epoch_seconds() - 60;
        let connection = Connection {
            connection_id: ConnectionId::new(unique_name("lgc")),
            user_id: user.id.clone(),
            username: user.username.clone(),
            avatar: None,
            connected_at,
            expires_at: connected_at + 3600,
            session_id: None,
        };
        store.add_connection(&connection).await.unwrap();
        users.push((user, connection.connection_id));
    }
    let owner = Actor::http(&users[0].0);
    let first = users[1..10].iter().map(|(u, _)| u.id.clone()).collect();
    let group = CreateConversation::Group { participant_ids: first, name: "counted".into() };
    let Created::New(view) = h.counting.app.conversations.create(&owner, group).await.unwrap() else { panic!() };
    h.record("(create a group of 10)");
    let rest: Vec<UserId> = users[10..].iter().map(|(u, _)| u.id.clone()).collect();
    h.counting
        .app
        .conversations
        .add_members(&owner, &view.id, AddMembers { user_ids: rest[..100].to_vec() })
        .await
        .unwrap();
    h.record("POST /conversations/:id/members (100, crossing)");
    h.counting
        .app
        .conversations
        .add_members(&owner, &view.id, AddMembers { user_ids: rest[100..].to_vec() })
        .await
        .unwrap();
    h.record("POST /conversations/:id/members (40, large)");
    let jobs_before = h.counting.queue.enqueued();
    h.act(
        "send_message (large group, 150 members)",
        users[0].1.as_str(),
        json!({"action":"send_message","conversationId":view.id,"content":"hello, everyone"}),
    )
    .await;
    let jobs = h.counting.queue.enqueued() - jobs_before;
    let (_, requests, posts) = h.rows.last().unwrap().clone();
    let sent: usize = requests.values().sum();
    h.counting.app.conversations.remove_member(&owner, &view.id, &users[77].0.id).await.unwrap();
    h.record("DELETE /conversations/:id/members/:userId (large)");

    // Roles: checks ride on the record; changes and successions are counted here.
    let admin = SetRole { role: AssignableRole::Admin };
    h.counting.app.conversations.set_role(&owner, &view.id, &users[5].0.id, admin).await.unwrap();
    h.record("PUT /conversations/:id/members/:userId/role (large)");
    let heir = TransferOwnership { user_id: users[6].0.id.clone() };
    h.counting.app.conversations.transfer_ownership(&owner, &view.id, heir).await.unwrap();
    h.record("PUT /conversations/:id/owner (large)");
    let leaving = Actor::http(&users[6].0);
    h.counting.app.conversations.remove_member(&leaving, &view.id, &users[6].0.id).await.unwrap();
    h.record("DELETE …/members/:userId (owner leaves, 2 admins, large)");
    let seen = h.counting.app.conversations.summary(&Actor::http(&users[5].0), &view.id).await.unwrap();
    let next = users.iter().map(|(u, _)| u).find(|u| Some(&u.id) == seen.conversation.owner_id.as_ref()).unwrap();
    let other = seen.conversation.admins.as_ref().unwrap()[0].clone();
    let member = SetRole { role: AssignableRole::Member };
    h.counting.app.conversations.set_role(&Actor::http(next), &view.id, &other, member).await.unwrap();
    h.record("(the new owner demotes the other admin)");
    h.counting.app.conversations.remove_member(&Actor::http(next), &view.id, &next.id).await.unwrap();
    h.record("DELETE …/members/:userId (owner leaves, no admins, large)");
    h.print();
    println!("send_message (large group, 150 members): {jobs} fan-out job(s) enqueued");
    assert!(sent <= 4 + MEMBERS.div_ceil(100), "{sent} DynamoDB requests for one message to {MEMBERS} members");
    assert_eq!(jobs, 1, "149 connections above the inline limit: one job of up to 250");
    assert_eq!(posts, 1, "only the ack is posted inline; the room goes through the queue");
    for (label, requests, _) in &h.rows {
        assert!(!requests.contains_key("Scan"), "{label} scanned the table");
    }
}

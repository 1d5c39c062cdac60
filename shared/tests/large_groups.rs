//! Large groups against the in-memory fakes: growing past the listed size in pages, member pages, delivery
//! through the queue to every connection exactly once, removal, and the large-room rules (no delivery statuses,
//! no read events to everyone, no presence to every member, typing to joined rooms only).

use std::collections::BTreeMap;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use chat_shared::adapters::ws::message;
use chat_shared::model::{
    Actor, Connection, ConnectionId, ConversationId, LISTED_MEMBERS_MAX, SessionId, SessionRecord, User, UserId,
    UserRecord, now_epoch_seconds, now_iso,
};
use chat_shared::ports::{ConnectionStore, Created, SessionStore, UserStore};
use chat_shared::testing::TestApp;
use chat_shared::usecases::Limits;
use chat_shared::usecases::accounts::Authenticated;
use chat_shared::usecases::conversations::{AddMembers, CreateConversation, MembersQuery};
use serde_json::{Value, json};

/// Deliveries above this many connections go through the queue in these tests.
const INLINE_MAX: usize = 20;

fn ws_event(connection_id: &str, body: &Value) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(json!({
        "headers": {}, "body": body.to_string(), "isBase64Encoded": false,
        "requestContext": {
            "routeKey": "$default", "eventType": "MESSAGE", "connectionId": connection_id, "domainName": "local",
            "stage": "prod", "requestId": "r", "apiId": "a", "connectedAt": 0, "requestTimeEpoch": 0
        }
    }))
    .unwrap()
}

/// `n` users stored directly (no password hashing), each with one connection `c<index>` older than the
/// handshake grace.
async fn users(t: &TestApp, n: usize) -> Vec<User> {
    let mut users = Vec::new();
    for i in 0..n {
        let user = User {
            id: UserId::parse(&format!("{i:032x}")).unwrap(),
            username: format!("user{i:04}"),
            avatar: None,
            created_at: now_iso(),
        };
        let record = UserRecord { user: user.clone(), password_hash: "unused".into(), standing: Default::default() };
        t.store.create_user(&record).await.unwrap();
        let connected_at = now_epoch_seconds() - 60;
        let connection = Connection {
            connection_id: ConnectionId::new(format!("c{i}")),
            user_id: user.id.clone(),
            username: user.username.clone(),
            avatar: None,
            connected_at,
            expires_at: connected_at + 3600,
            session_id: None,
        };
        t.store.add_connection(&connection).await.unwrap();
        users.push(user);
    }
    users
}

/// A group of all `users` created by the first: 10 at creation, the rest in requests of 100 (the store taking
/// 49 per write, as DynamoDB's transaction limit makes it).
async fn large_group(t: &TestApp, users: &[User]) -> ConversationId {
    t.store.limit_member_writes(49);
    let owner = Actor::http(&users[0]);
    let first = users[1..10].iter().map(|u| u.id.clone()).collect();
    let Created::New(view) = t
        .app
        .conversations
        .create(&owner, CreateConversation::Group { participant_ids: first, name: "town square".into() })
        .await
        .unwrap()
    else {
        panic!("a new group")
    };
    for chunk in users[10..].chunks(100) {
        let input = AddMembers { user_ids: chunk.iter().map(|u| u.id.clone()).collect() };
        t.app.conversations.add_members(&owner, &view.id, input).await.unwrap();
    }
    t.run_queued(10).await;
    t.fanout.clear();
    view.id
}

fn events_named(frames: &[Value], name: &str) -> usize {
    frames.iter().filter(|f| f["event"] == name).count()
}

#[tokio::test]
async fn a_group_grows_past_the_listed_size_in_pages_and_pages_its_members() {
    let t = TestApp::with_limits(Limits { fanout_inline_max: INLINE_MAX, ..Limits::default() });
    let users = users(&t, 230).await;
    let id = large_group(&t, &users).await;

    let summary = t.app.conversations.summary(&Actor::http(&users[0]), &id).await.unwrap();
    let view = serde_json::to_value(&summary).unwrap();
    assert_eq!(view["memberCount"], 230);
    assert_eq!(view["large"], true);
    assert!(view.get("members").is_none(), "a large group's view lists no members: {view}");

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let query = MembersQuery { limit: Some(100), cursor: cursor.take() };
        let page = t.app.conversations.members(&Actor::http(&users[5]), &id, query, &t.pager).await.unwrap();
        seen.extend(page.items.into_iter().map(|m| m.user.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let all: Vec<UserId> = users.iter().map(|u| u.id.clone()).collect();
    assert_eq!(seen, all, "every member once, in id order, over three pages");
}

#[tokio::test]
async fn a_message_in_a_large_group_reaches_every_connection_once_through_the_queue() {
    let t = TestApp::with_limits(Limits { fanout_inline_max: INLINE_MAX, ..Limits::default() });
    let users = users(&t, 230).await;
    let id = large_group(&t, &users).await;

    let jobs_before = t.queue.enqueued();
    let sent = json!({"action":"send_message","requestId":"s","conversationId":id,"content":"hello, square"});
    message(&t.app, ws_event("c0", &sent)).await;
    let ack = t.fanout.frames("c0");
    assert_eq!(ack.len(), 1, "only the ack, no delivery status in a large group: {ack:?}");
    assert_eq!(ack[0]["event"], "ack");
    assert_eq!(t.fanout.total_posts(), 1, "the room is posted by the workers, not inline");
    assert_eq!(t.queue.enqueued() - jobs_before, 1, "229 connections make one job of up to 250");

    assert_eq!(t.run_queued(5).await, 0);
    for i in 1..230 {
        let frames = t.fanout.frames(&format!("c{i}"));
        assert_eq!(events_named(&frames, "receive_message"), 1, "c{i}: {frames:?}");
        assert_eq!(frames.len(), 1, "c{i} got nothing else: {frames:?}");
    }
}

#[tokio::test]
async fn a_removed_member_of_a_large_group_hears_that_and_nothing_after() {
    let t = TestApp::with_limits(Limits { fanout_inline_max: INLINE_MAX, ..Limits::default() });
    let users = users(&t, 120).await;
    let id = large_group(&t, &users).await;
    let owner = Actor::http(&users[0]);

    t.app.conversations.remove_member(&owner, &id, &users[7].id).await.unwrap();
    t.run_queued(5).await;
    assert_eq!(events_named(&t.fanout.frames("c7"), "member_left"), 1);
    assert_eq!(events_named(&t.fanout.frames("c8"), "member_left"), 1);
    t.fanout.clear();

    let sent = json!({"action":"send_message","requestId":"s","conversationId":id,"content":"after"});
    message(&t.app, ws_event("c0", &sent)).await;
    t.run_queued(5).await;
    assert!(t.fanout.frames("c7").is_empty(), "the removed member got {:?}", t.fanout.frames("c7"));
    assert_eq!(events_named(&t.fanout.frames("c8"), "receive_message"), 1);
    let theirs = json!({"action":"send_message","requestId":"x","conversationId":id,"content":"still here?"});
    message(&t.app, ws_event("c7", &theirs)).await;
    let answer = t.fanout.frames("c7").pop().unwrap();
    assert_eq!(answer["data"]["code"], "not_found", "{answer}");
}

#[tokio::test]
async fn the_owner_leaving_a_large_group_without_admins_passes_it_to_the_first_member_and_every_member_hears() {
    let t = TestApp::with_limits(Limits { fanout_inline_max: INLINE_MAX, ..Limits::default() });
    let users = users(&t, 120).await;
    let id = large_group(&t, &users).await;
    // The ten who were there at creation joined first; of them, users[1] has the smallest id after the owner's.
    t.app.conversations.remove_member(&Actor::http(&users[0]), &id, &users[0].id).await.unwrap();
    t.run_queued(5).await;
    let view = t.app.conversations.summary(&Actor::http(&users[119]), &id).await.unwrap().conversation;
    assert_eq!(view.owner_id.as_ref(), Some(&users[1].id));
    for connection in ["c1", "c60", "c119"] {
        let frames = t.fanout.frames(connection);
        let changed: Vec<&Value> = frames.iter().filter(|f| f["event"] == "member_role_changed").collect();
        assert_eq!(changed.len(), 1, "{connection}");
        assert_eq!(changed[0]["data"]["role"], "owner");
        assert_eq!(changed[0]["data"]["userId"], users[1].id.as_str());
    }
}

#[tokio::test]
async fn a_large_group_that_shrinks_to_the_listed_size_lists_its_members_again() {
    let t = TestApp::with_limits(Limits { fanout_inline_max: INLINE_MAX, ..Limits::default() });
    let users = users(&t, LISTED_MEMBERS_MAX + 1).await;
    let id = large_group(&t, &users).await;
    let owner = Actor::http(&users[0]);
    assert!(t.app.conversations.summary(&owner, &id).await.unwrap().conversation.large);

    t.app.conversations.remove_member(&owner, &id, &users[50].id).await.unwrap();
    let view = t.app.conversations.summary(&owner, &id).await.unwrap().conversation;
    assert!(!view.large);
    assert_eq!(view.members.map(|m| m.len()), Some(LISTED_MEMBERS_MAX));
}

#[tokio::test]
async fn reads_in_a_large_group_are_counted_not_broadcast() {
    let t = TestApp::with_limits(Limits { fanout_inline_max: INLINE_MAX, ..Limits::default() });
    let users = users(&t, 60).await;
    let id = large_group(&t, &users).await;
    let sent = json!({"action":"send_message","requestId":"s","conversationId":id,"content":"read me"});
    message(&t.app, ws_event("c0", &sent)).await;
    let message_id = t.fanout.frames("c0")[0]["data"]["message"]["_id"].as_str().unwrap().to_owned();
    t.run_queued(5).await;
    t.fanout.clear();

    for reader in 1..=3 {
        let read = json!({"action":"mark_read","requestId":"r","conversationId":id,"lastMessageId":message_id});
        message(&t.app, ws_event(&format!("c{reader}"), &read)).await;
    }
    t.run_queued(5).await;
    assert_eq!(events_named(&t.fanout.frames("c0"), "messages_read"), 0, "the sender is not told per reader");
    assert_eq!(events_named(&t.fanout.frames("c0"), "message_status"), 0);
    let count = t.app.messages.read_count(&Actor::http(&users[9]), &message_id.parse().unwrap()).await.unwrap();
    // The three readers and the sender (whose own message moved their pointer).
    assert_eq!((count.read_count, count.member_count), (4, 60));
}

#[tokio::test]
async fn presence_is_not_sent_to_every_member_of_a_large_group() {
    let t = TestApp::with_limits(Limits { fanout_inline_max: INLINE_MAX, ..Limits::default() });
    let users = users(&t, 60).await;
    large_group(&t, &users).await;
    // A second connection of user 1: announced to their audience, which a large group is not part of.
    let session = SessionRecord {
        id: SessionId::random(),
        user_id: users[1].id.clone(),
        generation: 0,
        created_at: now_iso(),
        refreshed_at: now_iso(),
        expires_at: now_epoch_seconds() + 600,
    };
    t.store.create_session(&session).await.unwrap();
    let who = Authenticated { user: users[1].clone(), session_id: session.id, operator: false };
    t.app.presence.connect(ConnectionId::new("late"), who).await.unwrap();
    t.run_queued(5).await;
    let told: BTreeMap<String, usize> = (0..60)
        .map(|i| format!("c{i}"))
        .map(|c| {
            let n =
                events_named(&t.fanout.frames(&c), "user_online") + events_named(&t.fanout.frames(&c), "user_offline");
            (c, n)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(told.is_empty(), "members of the large group were told: {told:?}");
}

#[tokio::test]
async fn a_group_cannot_grow_past_the_deployments_limit() {
    let t = TestApp::with_limits(Limits { fanout_inline_max: INLINE_MAX, max_group_members: 30, ..Limits::default() });
    let users = users(&t, 40).await;
    let owner = Actor::http(&users[0]);
    let group = CreateConversation::Group {
        participant_ids: users[1..10].iter().map(|u| u.id.clone()).collect(),
        name: "capped".into(),
    };
    let Created::New(view) = t.app.conversations.create(&owner, group).await.unwrap() else { panic!() };
    let too_many = AddMembers { user_ids: users[10..40].iter().map(|u| u.id.clone()).collect() };
    let error = t.app.conversations.add_members(&owner, &view.id, too_many).await.unwrap_err();
    assert_eq!(error.code(), "validation_failed");
    let summary = t.app.conversations.summary(&owner, &view.id).await.unwrap();
    assert_eq!(summary.conversation.member_count, 10, "nothing was added");
}

//! Conversations over HTTP against the deployed stack: listing and paging, one private conversation per pair
//! under concurrent requests, group management with its live events, and 404s that reveal nothing.

use std::collections::BTreeSet;

use chat_e2e::rest::{CheckedApi, OPENAPI_YAML, Spec, expect_no_event, next_event};
use chat_e2e::{Stack, TestUser, WsClient};
use serde_json::{Value, json};

fn api(stack: &Stack) -> CheckedApi {
    CheckedApi::new(stack.api(), Spec::new(serde_norway::from_str(OPENAPI_YAML).expect("spec is YAML")))
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| i["_id"].as_str().expect("_id").to_owned()).collect()
}

#[tokio::test]
async fn conversation_pages_follow_activity_without_duplicates_or_gaps() {
    let stack = Stack::load();
    let api = api(&stack);
    let (alice, bob) = (api.api.register("alice").await, api.api.register("bob").await);
    let mut groups = Vec::new();
    for i in 0..7 {
        groups.push(api.group(&alice, &[&bob], &format!("g{i}")).await);
    }
    // Activity in a scrambled order; the list must follow it, newest first.
    let order = [3, 0, 6, 1, 5, 2, 4];
    for i in order {
        api.send(&alice, &groups[i], &format!("to g{i}")).await;
    }
    let expected: Vec<String> = order.iter().rev().map(|i| groups[*i].clone()).collect();

    let pages = api.walk(&bob, "/conversations?limit=2", "/conversations?limit=2&cursor=").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 2, 1]);
    let walked: Vec<String> = pages.iter().flat_map(|p| ids(p)).collect();
    assert_eq!(walked, expected);
    for conversation in pages.iter().flatten() {
        assert_eq!(conversation["unreadCount"], 1, "bob has not read alice's message: {conversation}");
        assert_eq!(conversation["members"].as_array().unwrap().len(), 2);
    }

    // Seed 002's numbered pages walk the same order.
    let mut numbered = Vec::new();
    for page in 1..=4 {
        let (status, body) =
            api.call("GET", &format!("/conversations?page={page}&limit=2"), Some(&bob.token), None).await;
        assert_eq!(status, 200, "{body}");
        numbered.extend(ids(body["items"].as_array().unwrap()));
    }
    assert_eq!(numbered, expected);

    // Alice wrote every last message, so she has nothing unread.
    let (_, hers) = api.call("GET", "/conversations?limit=50", Some(&alice.token), None).await;
    assert!(hers["items"].as_array().unwrap().iter().all(|c| c["unreadCount"] == 0), "{hers}");

    // A cursor is bound to its user.
    let (_, first) = api.call("GET", "/conversations?limit=2", Some(&bob.token), None).await;
    let bobs = first["nextCursor"].as_str().unwrap();
    let (status, body) = api.call("GET", &format!("/conversations?cursor={bobs}"), Some(&alice.token), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")));
}

#[tokio::test]
async fn concurrent_private_creates_from_both_sides_yield_one_conversation() {
    let stack = Stack::load();
    let api = api(&stack);
    let (alice, bob) = (api.api.register("alice").await, api.api.register("bob").await);
    let requests = (0..8).map(|i| {
        let (me, other): (&TestUser, &TestUser) = if i % 2 == 0 { (&alice, &bob) } else { (&bob, &alice) };
        api.call("POST", "/conversations", Some(&me.token), Some(json!({"type": "private", "participantId": other.id})))
    });
    let answers = futures_util::future::join_all(requests).await;
    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    let ids: BTreeSet<&str> = answers.iter().map(|(_, body)| body["_id"].as_str().expect("conversation id")).collect();
    assert!(answers.iter().all(|(status, _)| *status == 200 || *status == 201), "{answers:?}");
    assert_eq!(created, 1, "exactly one request created it: {answers:?}");
    assert_eq!(ids.len(), 1, "{ids:?}");
    let (_, list) = api.call("GET", "/conversations", Some(&alice.token), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn group_changes_reach_every_member_live() {
    let stack = Stack::load();
    let api = api(&stack);
    let (alice, bob, carol) =
        (api.api.register("alice").await, api.api.register("bob").await, api.api.register("carol").await);
    let group = api.group(&alice, &[&bob], "team").await;
    let path = format!("/conversations/{group}");
    let mut alice_ws = WsClient::connect(&stack, &alice).await;
    let mut bob_ws = WsClient::connect(&stack, &bob).await;
    let mut carol_ws = WsClient::connect(&stack, &carol).await;

    // A member renames nothing; an admin renames, and every member hears it, the outsider does not.
    let (status, refused) = api.call("PATCH", &path, Some(&bob.token), Some(json!({"name": "dream team"}))).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("forbidden")));
    let bob_role = format!("{path}/members/{}/role", bob.id);
    assert_eq!(api.call("PUT", &bob_role, Some(&alice.token), Some(json!({"role": "admin"}))).await.0, 200);
    let (status, renamed) = api.call("PATCH", &path, Some(&bob.token), Some(json!({"name": "dream team"}))).await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["name"], "dream team");
    for ws in [&mut alice_ws, &mut bob_ws] {
        assert_eq!(next_event(ws, "conversation_updated").await["conversation"], renamed);
    }
    expect_no_event(&mut carol_ws, "conversation_updated").await;

    // History before carol joins does not count as unread for her.
    api.send(&alice, &group, "before carol").await;
    api.send(&bob, &group, "also before carol").await;
    let (status, grown) =
        api.call("POST", &format!("{path}/members"), Some(&bob.token), Some(json!({"userIds": [carol.id]}))).await;
    assert_eq!(status, 200, "{grown}");
    assert_eq!(grown["members"].as_array().unwrap().len(), 3);
    for ws in [&mut alice_ws, &mut bob_ws, &mut carol_ws] {
        let joined = next_event(ws, "member_joined").await;
        assert_eq!(joined["conversationId"], group.as_str());
        assert_eq!(joined["addedBy"], bob.id.as_str());
        assert_eq!(joined["members"].as_array().unwrap().len(), 1);
        assert_eq!(joined["members"][0]["_id"], carol.id.as_str());
    }
    let (_, seen) = api.call("GET", &path, Some(&carol.token), None).await;
    assert_eq!(seen["unreadCount"], 0, "{seen}");
    let (_, history) = api.call("GET", &format!("{path}/messages"), Some(&carol.token), None).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 2, "members see the history from before they joined");
    let welcome = api.send(&bob, &group, "welcome carol").await;
    assert_eq!(next_event(&mut carol_ws, "receive_message").await["message"], welcome);
    let (_, seen) = api.call("GET", &path, Some(&carol.token), None).await;
    assert_eq!(seen["unreadCount"], 1);

    // Only the owner removes an admin; the removed member is told and loses access.
    let carol_member = format!("{path}/members/{}", carol.id);
    let carol_role = format!("{path}/members/{}/role", carol.id);
    assert_eq!(api.call("PUT", &carol_role, Some(&alice.token), Some(json!({"role": "admin"}))).await.0, 200);
    let (status, refused) = api.call("DELETE", &carol_member, Some(&bob.token), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("forbidden")));
    let (status, left) = api.call("DELETE", &carol_member, Some(&alice.token), None).await;
    assert_eq!(status, 200, "{left}");
    let expected = json!({"conversationId": group, "userId": carol.id, "removedBy": alice.id});
    assert_eq!(left, expected);
    for ws in [&mut alice_ws, &mut bob_ws, &mut carol_ws] {
        assert_eq!(next_event(ws, "member_left").await, expected);
    }
    let (status, _) = api.call("GET", &path, Some(&carol.token), None).await;
    assert_eq!(status, 404);
    let (_, carols) = api.call("GET", "/conversations", Some(&carol.token), None).await;
    assert_eq!(carols["items"], json!([]));
    api.send(&alice, &group, "after carol").await;
    expect_no_event(&mut carol_ws, "receive_message").await;

    // Anyone may leave.
    let (status, left) = api.call("DELETE", &format!("{path}/members/{}", bob.id), Some(&bob.token), None).await;
    assert_eq!(status, 200, "{left}");
    assert_eq!(left["removedBy"], bob.id.as_str());
    assert_eq!(next_event(&mut alice_ws, "member_left").await["userId"], bob.id.as_str());
    let (_, seen) = api.call("GET", &path, Some(&alice.token), None).await;
    assert_eq!(ids(seen["members"].as_array().unwrap()), std::slice::from_ref(&alice.id));

    // Private conversations have fixed members and no name.
    let pair = api.api.private_conversation(&alice, &bob).await;
    let pair_path = format!("/conversations/{pair}");
    for (method, path, body) in [
        ("PATCH", pair_path.clone(), Some(json!({"name": "x"}))),
        ("POST", format!("{pair_path}/members"), Some(json!({"userIds": [carol.id]}))),
        ("DELETE", format!("{pair_path}/members/{}", bob.id), None),
    ] {
        let (status, body) = api.call(method, &path, Some(&alice.token), body).await;
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("validation_failed")), "{method} {path}");
    }
    for ws in [alice_ws, bob_ws, carol_ws] {
        ws.close().await;
    }
}

#[tokio::test]
async fn non_members_get_the_same_404_as_for_unknown_conversations() {
    let stack = Stack::load();
    let api = api(&stack);
    let (alice, bob, eve) =
        (api.api.register("alice").await, api.api.register("bob").await, api.api.register("eve").await);
    let group = api.group(&alice, &[&bob], "private club").await;
    api.send(&alice, &group, "secret").await;
    let unknown = "0123456789abcdef0123456789abcdef";
    for (method, suffix, body) in [
        ("GET", "", None),
        ("PATCH", "", Some(json!({"name": "mine"}))),
        ("POST", "/members", Some(json!({"userIds": [eve.id]}))),
        ("GET", "/messages", None),
        ("POST", "/messages", Some(json!({"content": "let me in"}))),
    ] {
        let existing =
            api.call(method, &format!("/conversations/{group}{suffix}"), Some(&eve.token), body.clone()).await;
        let missing = api.call(method, &format!("/conversations/{unknown}{suffix}"), Some(&eve.token), body).await;
        assert_eq!(existing.0, 404, "{method} {suffix}: {}", existing.1);
        assert_eq!(existing, missing, "{method} {suffix}");
    }
    let existing =
        api.call("DELETE", &format!("/conversations/{group}/members/{}", bob.id), Some(&eve.token), None).await;
    let missing =
        api.call("DELETE", &format!("/conversations/{unknown}/members/{}", bob.id), Some(&eve.token), None).await;
    assert_eq!(existing.0, 404);
    assert_eq!(existing, missing);
    let existing = api.call("GET", &format!("/messages?cid={group}"), Some(&eve.token), None).await;
    let missing = api.call("GET", &format!("/messages?cid={unknown}"), Some(&eve.token), None).await;
    assert_eq!(existing.0, 404);
    assert_eq!(existing, missing);
    // And nothing eve tried changed the group.
    let (_, seen) = api.call("GET", &format!("/conversations/{group}"), Some(&alice.token), None).await;
    assert_eq!(seen["name"], "private club");
    assert_eq!(seen["lastSeq"], 1);
    assert_eq!(seen["members"].as_array().unwrap().len(), 2);
}

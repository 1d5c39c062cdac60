//! Mentions and notification settings on the deployed stack, in a crowd: five members send at the same moment,
//! each mentioning others, while the mentioned read, delete and change their settings; every mention is counted
//! exactly once for exactly the members it names, a read forgets only what it read, a deletion only its message's
//! mentions, a mention of a non-member stores nothing, and a setting made on one device reaches the user's other
//! devices.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chat_e2e::{Api, Stack, TestUser, WsClient};
use futures_util::future::join_all;
use serde_json::{Value, json};

/// `(unreadCount, unreadMentionCount, notifications)` of `who`'s conversation `id`, from their list.
async fn counts(api: &Api, who: &TestUser, id: &str) -> (u64, u64, Value) {
    let (status, summary) = api.call("GET", &format!("/conversations/{id}"), Some(&who.token), None).await;
    assert_eq!(status, 200, "{summary}");
    let (status, list) = api.call("GET", "/conversations", Some(&who.token), None).await;
    assert_eq!(status, 200, "{list}");
    let listed = list["items"].as_array().unwrap().iter().find(|c| c["_id"] == id).expect("listed").clone();
    for field in ["unreadCount", "unreadMentionCount", "notifications"] {
        assert_eq!(summary[field], listed[field], "the conversation and the list agree on {field}");
    }
    (
        listed["unreadCount"].as_u64().unwrap(),
        listed["unreadMentionCount"].as_u64().unwrap(),
        listed["notifications"].clone(),
    )
}

/// Sends `content` mentioning `mentions`; the body is built at once, so the future borrows only `api` and `who`.
fn send<'a>(
    api: &'a Api,
    who: &'a TestUser,
    id: &str,
    content: &str,
    mentions: &[&TestUser],
) -> impl Future<Output = (u16, Value)> + use<'a> {
    let ids: Vec<&str> = mentions.iter().map(|u| u.id.as_str()).collect();
    let body = json!({"content": content, "mentions": ids});
    let path = format!("/conversations/{id}/messages");
    async move { api.call("POST", &path, Some(&who.token), Some(body)).await }
}

#[tokio::test]
async fn five_senders_mention_a_crowd_at_once_and_every_count_is_exact() {
    let stack = Stack::load();
    let api = stack.api();
    let members = api.register_many("mention", 16).await;
    let outsider = api.register("outsider").await;
    let group = api.group(&members[0], &members[1..]).await;
    let mut listener = WsClient::connect(&stack, &members[15]).await;

    // A mention of somebody who is not a member refuses the whole message, which is not stored.
    let (status, refused) = send(&api, &members[0], &group, "hi @outsider", &[&members[1], &outsider]).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("validation_failed")), "{refused}");

    // Senders 0-4 each send four messages at the same moment; message k of sender s mentions members
    // 5 + (s + k) % 10 and 15, so member 15 is mentioned by every message and 5-14 by two each.
    let sends = (0..5).flat_map(|s| (0..4).map(move |k| (s, k)));
    let expected = {
        let mut expected: BTreeMap<usize, u64> = BTreeMap::new();
        for (s, k) in sends.clone() {
            *expected.entry(5 + (s + k) % 10).or_default() += 1;
            *expected.entry(15).or_default() += 1;
        }
        expected
    };
    let answers = join_all(sends.map(|(s, k)| {
        let mentioned = [&members[5 + (s + k) % 10], &members[15]];
        let (api, members, group) = (&api, &members, &group);
        async move { send(api, &members[s], group, &format!("{s}.{k}"), &mentioned).await }
    }))
    .await;
    for (status, answer) in &answers {
        assert_eq!(*status, 201, "{answer}");
        assert_eq!(answer["mentions"].as_array().unwrap().len(), 2, "{answer}");
    }
    for (index, mentions) in &expected {
        let (unread, unread_mentions, _) = counts(&api, &members[*index], &group).await;
        assert_eq!((unread, unread_mentions), (20, *mentions), "member {index}");
    }
    let (_, unmentioned, _) = counts(&api, &members[1], &group).await;
    assert_eq!(unmentioned, 0, "senders and unmentioned members have no mentions");
    let mut seen = 0;
    while seen < 20 {
        let frame = listener.next_frame().await;
        if frame["event"] == "receive_message" {
            let mentions = frame["data"]["message"]["mentions"].as_array().unwrap();
            assert!(mentions.contains(&json!(members[15].id)), "every frame tells member 15 it mentions them: {frame}");
            seen += 1;
        }
    }
    listener.close().await;

    // Member 15 reads up to the tenth message while five more mention them: the read forgets only the mentions
    // it covered, whatever lands meanwhile.
    let (_, history) = api
        .call("GET", &format!("/conversations/{group}/messages?afterSeq=0&limit=20"), Some(&members[15].token), None)
        .await;
    let tenth = history["items"][9]["_id"].clone();
    let read_path = format!("/conversations/{group}/read");
    let read = api.call("POST", &read_path, Some(&members[15].token), Some(json!({"lastMessageId": tenth})));
    let more = join_all((0..5).map(|s| send(&api, &members[s], &group, "again", &[&members[15]])));
    let ((status, receipt), more) = tokio::join!(read, more);
    assert_eq!(status, 200, "{receipt}");
    assert!(more.iter().all(|(status, _)| *status == 201), "{more:?}");
    let (unread, unread_mentions, _) = counts(&api, &members[15], &group).await;
    assert_eq!((unread, unread_mentions), (15, 15), "every message after the tenth mentions member 15");

    // At the same moment every sender deletes their first message and their "again" while member 15 reads up to
    // the fifteenth: a deletion takes its message's mentions away, the read what it covered, nothing else goes.
    let deleted: Vec<&Value> = (0..5).flat_map(|s| [&answers[s * 4].1, &more[s].1]).collect();
    let deletes = join_all(deleted.iter().enumerate().map(|(i, message)| {
        let (api, sender) = (&api, &members[i / 2]);
        let path = format!("/conversations/{group}/messages/{}", message["_id"].as_str().unwrap());
        async move { api.call("DELETE", &path, Some(&sender.token), None).await }
    }));
    let fifteenth = history["items"][14]["_id"].clone();
    let read = api.call("POST", &read_path, Some(&members[15].token), Some(json!({"lastMessageId": fifteenth})));
    let (deletes, (status, receipt)) = tokio::join!(deletes, read);
    assert_eq!(status, 200, "{receipt}");
    assert!(deletes.iter().all(|(status, _)| *status == 200), "{deletes:?}");
    let deleted_seqs: BTreeSet<u64> = deleted.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    let unread_and_kept = (16..=20).filter(|seq| !deleted_seqs.contains(seq)).count() as u64;
    let (unread, unread_mentions, _) = counts(&api, &members[15], &group).await;
    assert_eq!((unread, unread_mentions), (10, unread_and_kept), "deleted: {deleted_seqs:?}");
    for (index, mentions) in expected.iter().filter(|(index, _)| **index != 15) {
        // Sender s's first message mentioned member 5 + s.
        let lost = u64::from((5..10).contains(index));
        let (_, unread_mentions, _) = counts(&api, &members[*index], &group).await;
        assert_eq!(unread_mentions, mentions - lost, "member {index}");
    }
}

#[tokio::test]
async fn settings_made_at_once_by_many_members_hold_and_reach_their_other_devices() {
    let stack = Stack::load();
    let api = stack.api();
    let members: Vec<TestUser> = join_all((0..12).map(|_| api.register("quiet"))).await;
    let group = api.group(&members[0], &members[1..]).await;
    let phone = api.login(&members[1]).await;
    let mut phone_ws = WsClient::connect(&stack, &phone).await;

    // Every member changes their setting while the owner sends messages mentioning all of them: the settings,
    // the mentions and the sends write the same membership items.
    let levels = ["all", "mentions", "none"];
    let until = "2099-01-01T00:00:00.000Z";
    let settings = join_all(members.iter().enumerate().skip(1).map(|(i, member)| {
        let body = match levels[i % 3] {
            "all" => json!({"level": "all"}),
            level => json!({"level": level, "until": until}),
        };
        let (api, group) = (&api, &group);
        async move {
            api.call("PUT", &format!("/conversations/{group}/notifications"), Some(&member.token), Some(body)).await
        }
    }));
    let everyone: Vec<&TestUser> = members[1..].iter().collect();
    let sends = join_all((0..3).map(|n| send(&api, &members[0], &group, &format!("all of you {n}"), &everyone)));
    let (settings, sends) = tokio::join!(settings, sends);
    for (status, answer) in settings.iter().chain(&sends) {
        assert!(*status == 200 || *status == 201, "{answer}");
    }
    for (i, member) in members.iter().enumerate().skip(1) {
        let (_, mentions, notifications) = counts(&api, member, &group).await;
        assert_eq!(mentions, 3, "member {i}");
        assert_eq!(notifications["level"], levels[i % 3], "member {i}: {notifications}");
        let until_shown = if levels[i % 3] == "all" { Value::Null } else { json!(until) };
        assert_eq!(notifications["until"], until_shown, "member {i}");
    }
    let told = loop {
        let frame = phone_ws.next_frame().await;
        if frame["event"] == "conversation_notifications_changed" {
            break frame["data"].clone();
        }
    };
    assert_eq!(told, json!({"conversationId": group, "level": "mentions", "until": until}), "the other device knows");

    let dnd = json!({"doNotDisturbUntil": "2099-02-01T07:00:00+00:00", "previews": false});
    let (status, set) = api.call("PUT", "/users/me/notifications", Some(&members[1].token), Some(dnd)).await;
    assert_eq!(status, 200, "{set}");
    let told = loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), phone_ws.next_frame()).await.expect("told in time");
        if frame["event"] == "notification_preferences_changed" {
            break frame["data"].clone();
        }
    };
    assert_eq!(told, json!({"doNotDisturbUntil": "2099-02-01T07:00:00.000Z", "previews": false}));
    let (_, read_back) = api.call("GET", "/users/me/notifications", Some(&phone.token), None).await;
    assert_eq!(read_back, told, "the same on every device");
    phone_ws.close().await;
}

#[tokio::test]
async fn a_mention_sent_over_the_websocket_is_acked_and_received_with_it() {
    let stack = Stack::load();
    let api = stack.api();
    let (alice, bob) = (api.register("alice").await, api.register("bob").await);
    let pair = api.private_conversation(&alice, &bob).await;
    let (mut alice_ws, mut bob_ws) = (WsClient::connect(&stack, &alice).await, WsClient::connect(&stack, &bob).await);
    let frame = json!({"action": "send_message", "conversationId": pair, "content": "@bob", "mentions": [bob.id]});
    let ack = alice_ws.call(frame).await;
    assert_eq!(ack["data"]["message"]["mentions"], json!([bob.id]), "{ack}");
    let received = bob_ws.expect_event("receive_message").await;
    assert_eq!(received["message"]["mentions"], json!([bob.id]));
    let bad = alice_ws
        .call(json!({"action": "send_message", "conversationId": pair, "content": "x", "mentions": "bob"}))
        .await;
    assert_eq!((bad["event"].as_str(), bad["data"]["code"].as_str()), (Some("error"), Some("bad_request")), "{bad}");
    let (_, after) = api.call("GET", &format!("/conversations/{pair}"), Some(&alice.token), None).await;
    assert_eq!(after["lastSeq"], 1, "the refused frame stored nothing");
    alice_ws.close().await;
    bob_ws.close().await;
}

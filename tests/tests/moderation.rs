//! Reports and moderation on the deployed stack, from the side of the people they protect: fifty members report a
//! spammer's message and block them, eight at the same moment (fifty reports, one each, a second report of each changes
//! nothing, nothing internal; the blocks hold); one reporter's burst stops at the hourly limit whatever the
//! interleaving; an operator deletes the message and every member's socket hears it go; a suspended user's
//! sockets close within seconds, their tokens, refresh and reconnect are refused, login answers 403, and lifting
//! the suspension lets them back in; nobody but an operator reaches a moderation route.

use std::time::Duration;

use chat_e2e::{Api, Stack, TestUser, WsClient};
use futures_util::future::join_all;
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

/// How long a suspended user's socket may stay open.
const CLOSED_WITHIN: Duration = Duration::from_secs(10);
/// Members acting at the same moment in the crowd test.
const CROWD_WAVE: usize = 8;

/// A group of `owner` and `others`: created with the first 49 (a group starts with at most 50), the rest added.
/// Every open report of `target`, paging through the operators' list.
async fn open_reports_of(api: &Api, operator: &TestUser, target: &Value) -> Vec<Value> {
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
        let (status, page) =
            api.call("GET", &format!("/moderation/reports?limit=100{query}"), Some(&operator.token), None).await;
        assert_eq!(status, 200, "{page}");
        found.extend(page["items"].as_array().unwrap().iter().filter(|r| r["target"] == *target).cloned());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return found,
        }
    }
}

#[tokio::test]
async fn fifty_members_report_and_block_a_spammer_at_once_and_an_operator_acts_on_it() {
    const MEMBERS: usize = 50;
    let stack = Stack::load();
    let api = stack.api();
    let spammer = api.register("spammer").await;
    let members = api.register_many("member", MEMBERS).await;
    let operator = api.register("operator").await;
    stack.make_operator(&operator).await;
    let group = api.group(&spammer, &members).await;
    let (status, spam) = api
        .call(
            "POST",
            &format!("/conversations/{group}/messages"),
            Some(&spammer.token),
            Some(json!({"content": "cheap pills"})),
        )
        .await;
    assert_eq!(status, 201, "{spam}");
    let target = json!({"type": "message", "messageId": spam["_id"]});

    // Each member reports twice and blocks the sender at the same moment, eight members at a time: two dozen
    // requests at once, which the emulator serves even with arm64 functions under qemu (fifty members' 150 at once
    // overran it: every request a cold start, past the 15-second timeout).
    let report = json!({"target": target, "reason": "spam"});
    let block = format!("/users/{}/block", spammer.id);
    let answers: Vec<_> = stream::iter(members.iter().map(|member| {
        let (api, report, block) = (&api, report.clone(), &block);
        async move {
            let token = Some(member.token.as_str());
            let (first, second, blocked) = tokio::join!(
                api.call("POST", "/reports", token, Some(report.clone())),
                api.call("POST", "/reports", token, Some(report)),
                api.call("POST", block, token, None),
            );
            (first, second, blocked)
        }
    }))
    .buffer_unordered(CROWD_WAVE)
    .collect()
    .await;
    for ((first, first_body), (second, second_body), (blocked, block_body)) in &answers {
        let mut statuses = [*first, *second];
        statuses.sort();
        assert_eq!(statuses, [200, 201], "one report stored, one unchanged: {first_body} {second_body}");
        assert_eq!(*blocked, 200, "{block_body}");
    }
    let reports = open_reports_of(&api, &operator, &target).await;
    assert_eq!(reports.len(), MEMBERS, "one report per member");
    assert!(reports.iter().all(|r| r["excerpt"] == "cheap pills" && r["subjectId"] == json!(spammer.id)));
    let (_, blocked) = api.call("GET", "/users/me/blocked", Some(&members[0].token), None).await;
    assert_eq!(blocked["items"][0]["user"]["_id"], json!(spammer.id), "the blocks held beside the reports");

    // The operator (no member of the group) deletes the message: the members' sockets hear it go.
    let mut sockets = Vec::new();
    for member in &members[..3] {
        sockets.push(WsClient::connect(&stack, member).await);
    }
    let path = format!("/moderation/messages/{}", spam["_id"].as_str().unwrap());
    let (status, deleted) = api.call("DELETE", &path, Some(&operator.token), None).await;
    assert_eq!((status, &deleted["deleted"]), (200, &json!(true)), "{deleted}");
    for ws in &mut sockets {
        assert_eq!(ws.expect_event("message_deleted").await["messageId"], spam["_id"]);
    }
    // (The members blocked the sender, so their history hides his messages; his own shows it deleted.)
    let (_, history) = api.call("GET", &format!("/conversations/{group}/messages"), Some(&spammer.token), None).await;
    assert_eq!(history["items"][0]["deleted"], true, "{history}");

    let resolve = json!({"target": target, "outcome": "actioned", "note": "spam wave"});
    let (status, resolved) =
        api.call("POST", "/moderation/reports/resolve", Some(&operator.token), Some(resolve)).await;
    assert_eq!((status, resolved), (200, json!({"resolved": MEMBERS})));
    assert!(open_reports_of(&api, &operator, &target).await.is_empty());
    let (_, audit) = api.call("GET", "/moderation/audit?limit=100", Some(&operator.token), None).await;
    let mine: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["operatorId"] == json!(operator.id))
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(mine, ["resolve_reports", "delete_message"], "newest first: {audit}");
    join_all(sockets.into_iter().map(WsClient::close)).await;
}

#[tokio::test]
async fn one_reporters_burst_stops_at_the_hourly_limit() {
    const TARGETS: usize = 12;
    const LIMIT: usize = 10;
    let stack = Stack::load();
    let api = stack.api();
    let reporter = api.register("reporter").await;
    let targets: Vec<TestUser> =
        stream::iter(0..TARGETS).map(|_| api.register("reported")).buffered(14).collect().await;
    let report = |target: &TestUser| json!({"target": {"type": "user", "userId": target.id}, "reason": "harassment"});
    // The limit counts in fixed hourly windows: keep the burst and its retries inside one.
    let into_hour = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() % 3600;
    if into_hour > 3540 {
        tokio::time::sleep(Duration::from_secs(3600 - into_hour + 1)).await;
    }
    let answers =
        join_all(targets.iter().map(|t| api.call("POST", "/reports", Some(&reporter.token), Some(report(t))))).await;
    assert!(answers.iter().all(|(status, _)| *status == 201 || *status == 429), "{answers:?}");
    let mut accepted = answers.iter().filter(|(status, _)| *status == 201).count();
    assert!(accepted <= LIMIT, "never past the limit: {answers:?}");
    // A 429 is the spent budget, or a write that kept losing the race for the counter: retried one at a time,
    // they fill the budget exactly and no further.
    for (target, (status, _)) in targets.iter().zip(&answers) {
        if *status == 429 {
            let (status, answer) = api.call("POST", "/reports", Some(&reporter.token), Some(report(target))).await;
            if accepted < LIMIT {
                assert_eq!(status, 201, "{answer}");
                accepted += 1;
            } else {
                assert_eq!(status, 429, "{answer}");
                assert!(answer["error"]["retryAfter"].as_u64().is_some_and(|s| s >= 1), "{answer}");
            }
        }
    }
    assert_eq!(accepted, LIMIT);
    let operator = api.register("operator").await;
    stack.make_operator(&operator).await;
    let mut stored = 0;
    for target in &targets {
        stored += open_reports_of(&api, &operator, &json!({"type": "user", "userId": target.id})).await.len();
    }
    assert_eq!(stored, LIMIT, "every 201 is stored, nothing else");
}

#[tokio::test]
async fn a_suspended_user_is_closed_out_at_once_refused_everywhere_and_let_back_in() {
    let stack = Stack::load();
    let api = stack.api();
    let user = api.register("suspect").await;
    let tablet = api.login(&user).await;
    let friend = api.register("friend").await;
    let operator = api.register("operator").await;
    stack.make_operator(&operator).await;
    let mut phone_ws = WsClient::connect(&stack, &user).await;
    let mut tablet_ws = WsClient::connect(&stack, &tablet).await;
    let mut friend_ws = WsClient::connect(&stack, &friend).await;

    // Nobody but an operator reaches a moderation route.
    let user_suspension = format!("/moderation/users/{}/suspension", user.id);
    let routes = [
        ("GET", "/moderation/reports".to_owned(), None),
        (
            "POST",
            "/moderation/reports/resolve".to_owned(),
            Some(json!({"target": {"type": "user", "userId": user.id}, "outcome": "dismissed"})),
        ),
        ("DELETE", "/moderation/messages/abc-1".to_owned(), None),
        ("PUT", format!("/moderation/users/{}/suspension", friend.id), Some(json!({}))),
        ("DELETE", format!("/moderation/users/{}/suspension", friend.id), None),
        ("GET", "/moderation/audit".to_owned(), None),
    ];
    for (method, path, body) in &routes {
        let (status, answer) = api.call(method, path, Some(&user.token), body.clone()).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("forbidden")), "{method} {path}");
    }

    let (status, suspended) =
        api.call("PUT", &user_suspension, Some(&operator.token), Some(json!({"reason": "spam wave"}))).await;
    assert_eq!(status, 200, "{suspended}");
    assert_eq!((&suspended["endedSessions"], &suspended["closedConnections"]), (&json!(2), &json!(2)));
    let (phone_closed, tablet_closed) =
        tokio::join!(phone_ws.ends_within(CLOSED_WITHIN), tablet_ws.ends_within(CLOSED_WITHIN));
    assert!(phone_closed && tablet_closed, "both devices' sockets close");
    let pong = friend_ws.call(json!({"action": "ping"})).await;
    assert_eq!(pong["event"], "pong", "others stay connected");
    assert_eq!(api.call("GET", "/users/me", Some(&user.token), None).await.0, 401);
    let (status, _) =
        api.call("POST", "/auth/refresh", None, Some(json!({"refreshToken": tablet.refresh_token}))).await;
    assert_eq!(status, 401);
    assert!(WsClient::try_connect(&stack, &tablet.token).await.is_err(), "a reconnect is refused");
    let login = json!({"username": user.username, "password": chat_e2e::PASSWORD});
    let (status, refused) = api.call("POST", "/auth/login", None, Some(login.clone())).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("forbidden")), "{refused}");

    let (status, lifted) = api.call("DELETE", &user_suspension, Some(&operator.token), None).await;
    assert_eq!((status, &lifted["suspended"]), (200, &json!(false)));
    let (status, session) = api.call("POST", "/auth/login", None, Some(login)).await;
    assert_eq!(status, 200, "{session}");
    let back = TestUser { token: session["token"].as_str().unwrap().to_owned(), ..user.clone() };
    let mut back_ws = WsClient::connect(&stack, &back).await;
    assert_eq!(back_ws.call(json!({"action": "ping"})).await["event"], "pong");
    back_ws.close().await;
    friend_ws.close().await;
}

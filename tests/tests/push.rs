//! Web Push on the deployed stack, against the loopback push service of `chat_e2e::push`: members who are not
//! connected get one encrypted notification per message on every browser they subscribed (decrypted here with
//! the browser's keys, the VAPID token checked), as their settings say; a connected member gets none; a
//! subscription the push service calls gone is forgotten; a push service that fails or hangs is tried again while
//! live delivery goes on (its speed with and without push work is a benchmark figure), and its retry is sent as
//! the message reads then, or not at all once it is deleted; a crowd of five senders
//! reaches every offline member of a large group exactly five times; a member whose app is in the background is
//! pushed while still getting frames; a crowd of one user's browsers subscribing and unsubscribing at the same
//! moment keeps the limit of ten and the count exact; and a phone registers as an SNS platform
//! endpoint, is published to, and is forgotten when SNS says its endpoint is gone.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chat_e2e::push::{Answer, Browser, PushService, Received, check_vapid};
use chat_e2e::{Api, QUIET_PERIOD, SETUP_IN_FLIGHT, Stack, TestUser, WsClient};
use futures_util::future::join_all;
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

/// How long a push may take from the send: the stream poller, the worker, the queue, the sender.
const PUSH_WITHIN: Duration = Duration::from_secs(60);

async fn server_key(api: &Api) -> String {
    let (status, key) = api.call("GET", "/push/server-key", None, None).await;
    assert_eq!(status, 200, "{key}");
    key["publicKey"].as_str().expect("a public key").to_owned()
}

async fn subscribe(api: &Api, who: &TestUser, browser: &Browser) {
    let (status, body) =
        api.call("POST", "/users/me/push-subscriptions", Some(&who.token), Some(browser.subscription())).await;
    assert_eq!(status, 201, "{body}");
}

async fn send(api: &Api, who: &TestUser, conversation: &str, content: &str, mentions: &[&TestUser]) -> Value {
    let ids: Vec<&str> = mentions.iter().map(|u| u.id.as_str()).collect();
    let path = format!("/conversations/{conversation}/messages");
    let (status, message) =
        api.call("POST", &path, Some(&who.token), Some(json!({"content": content, "mentions": ids}))).await;
    assert_eq!(status, 201, "{message}");
    message
}

async fn put(api: &Api, who: &TestUser, path: &str, body: Value) {
    let (status, answer) = api.call("PUT", path, Some(&who.token), Some(body)).await;
    assert_eq!(status, 200, "{answer}");
}

/// The notifications `browser` received, decrypted and checked, by seq.
fn opened(service: &PushService, browser: &Browser, server_key: &str, received: &[Received]) -> BTreeMap<u64, Value> {
    received
        .iter()
        .filter(|r| r.status == Some(201))
        .map(|r| {
            check_vapid(r, service.origin(), server_key);
            let notification = browser.decrypt(&r.body);
            (notification["seq"].as_u64().expect("a seq"), notification)
        })
        .collect()
}

#[tokio::test]
async fn offline_members_get_one_encrypted_push_per_message_as_they_chose() {
    let stack = Stack::load();
    let api = stack.api();
    let service = PushService::start().await;
    let key = server_key(&api).await;
    let [alice, bob, carol, dave, erin, frank] = api.users(["alice", "bob", "carol", "dave", "erin", "frank"]).await;
    let group = api.group(&alice, [&bob, &carol, &dave, &erin, &frank]).await;
    let browsers: Vec<Browser> = (0..6).map(|_| service.browser(&[])).collect();
    let gone = service.browser(&[Answer::Status(410)]);
    let [bob_browser, carol_phone, carol_laptop, dave_browser, erin_browser, _] = &browsers[..] else { unreachable!() };
    subscribe(&api, &bob, bob_browser).await;
    subscribe(&api, &carol, carol_phone).await;
    subscribe(&api, &carol, carol_laptop).await;
    subscribe(&api, &dave, dave_browser).await;
    subscribe(&api, &erin, erin_browser).await;
    subscribe(&api, &frank, &gone).await;
    put(&api, &carol, "/users/me/notifications", json!({"previews": false})).await;
    put(&api, &dave, &format!("/conversations/{group}/notifications"), json!({"level": "none"})).await;
    put(&api, &erin, &format!("/conversations/{group}/notifications"), json!({"level": "mentions"})).await;
    let mut bob_socket = WsClient::connect(&stack, &bob).await;

    let first = send(&api, &alice, &group, "lunch at noon?", &[]).await;
    let second = send(&api, &alice, &group, "erin, you too", &[&erin]).await;
    bob_socket.expect_event("receive_message").await;
    let (first_seq, second_seq) = (first["seq"].as_u64().unwrap(), second["seq"].as_u64().unwrap());

    let carol_got = service.wait_for(carol_phone, 2, PUSH_WITHIN).await;
    let erin_got = service.wait_for(erin_browser, 1, PUSH_WITHIN).await;
    let frank_got = service.wait_for(&gone, 1, PUSH_WITHIN).await;
    tokio::time::sleep(QUIET_PERIOD * 2).await;

    // Carol: both messages, on both browsers, without the text (previews off).
    for browser in [carol_phone, carol_laptop] {
        let got = opened(&service, browser, &key, &service.received(browser));
        assert_eq!(got.keys().copied().collect::<Vec<_>>(), [first_seq, second_seq], "one per message per browser");
        let notification = &got[&first_seq];
        assert_eq!(notification["conversationId"], group.as_str());
        assert_eq!(notification["conversationName"], "group");
        assert_eq!(notification["messageId"], first["_id"]);
        assert_eq!(notification["sender"]["_id"], alice.id.as_str());
        assert_eq!(notification["sender"]["username"], alice.username.as_str());
        assert_eq!(notification["preview"], Value::Null, "carol turned previews off: {notification}");
        assert_eq!(notification["mentioned"], false);
    }
    assert_eq!(carol_got.len(), 2);
    // Erin: only the message that mentions her, with its text.
    let erin_opened = opened(&service, erin_browser, &key, &erin_got);
    assert_eq!(erin_opened.keys().copied().collect::<Vec<_>>(), [second_seq]);
    let notification = &erin_opened[&second_seq];
    assert_eq!(notification["messageId"], second["_id"]);
    assert_eq!((notification["preview"].as_str(), &notification["mentioned"]), (Some("erin, you too"), &json!(true)));
    assert_eq!(service.received(erin_browser).len(), 1);
    // Bob is connected, Dave muted the group: nothing.
    assert!(service.received(bob_browser).is_empty(), "a connected member gets no push");
    assert!(service.received(dave_browser).is_empty(), "a muted member gets no push");
    // Frank's push service answered 410: the subscription is forgotten (a job planned before that may still be
    // tried), and a later message is not pushed to it.
    assert_eq!(frank_got[0].status, Some(410));
    assert!(subscriptions(&api, &frank, "id").await.is_empty(), "the gone subscription is removed");
    let tried = service.received(&gone).len();
    assert!(tried <= 2, "at most one try per message planned before the removal: {tried}");
    let third = send(&api, &alice, &group, "one more", &[]).await;
    let carol_got = service.wait_for(carol_phone, 3, PUSH_WITHIN).await;
    assert_eq!(opened(&service, carol_phone, &key, &carol_got).keys().last().copied(), third["seq"].as_u64());
    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(service.received(&gone).len(), tried, "nothing more to a forgotten subscription");
    bob_socket.close().await;
}

#[tokio::test]
async fn a_failing_or_hanging_push_service_is_retried_while_live_delivery_goes_on() {
    let stack = Stack::load();
    let api = stack.api();
    let service = PushService::start().await;
    let key = server_key(&api).await;
    let [alice, bob, carol, dave] = api.users(["alice", "bob", "carol", "dave"]).await;
    let group = api.group(&alice, [&bob, &carol, &dave]).await;
    let failing = service.browser(&[Answer::Status(500)]);
    let hanging = service.browser(&[Answer::Hang(Duration::from_secs(30))]);
    subscribe(&api, &carol, &failing).await;
    subscribe(&api, &dave, &hanging).await;
    let mut bob_socket = WsClient::connect(&stack, &bob).await;

    // Three messages while the push services fail: bob, connected, gets each one live (how fast, with and
    // without push work, is measured by `cargo xtask bench`).
    let mut seqs = Vec::new();
    for n in 1..=3 {
        seqs.push(send(&api, &alice, &group, &format!("message {n}"), &[]).await["seq"].as_u64().unwrap());
        bob_socket.expect_event("receive_message").await;
    }

    // Carol's service answered 500 once, Dave's hung once: each first try is made again, and every message
    // arrives exactly once in the end.
    let carol_got = service.wait_for(&failing, 4, PUSH_WITHIN).await;
    let dave_got = service.wait_for(&hanging, 4, PUSH_WITHIN).await;
    tokio::time::sleep(QUIET_PERIOD * 2).await;
    for (browser, got) in [(&failing, carol_got), (&hanging, dave_got)] {
        assert_eq!(service.received(browser).len(), 4, "three messages and one retry");
        let opened = opened(&service, browser, &key, &got);
        assert_eq!(opened.keys().copied().collect::<Vec<_>>(), seqs, "each message once");
    }
    bob_socket.close().await;
}

#[tokio::test]
async fn a_retry_is_sent_as_its_message_reads_then_and_not_at_all_once_it_is_deleted() {
    let stack = Stack::load();
    let api = stack.api();
    let service = PushService::start().await;
    let key = server_key(&api).await;
    let [alice, bob, carol] = api.users(["alice", "bob", "carol"]).await;
    let (with_bob, with_carol) =
        tokio::join!(api.private_conversation(&alice, &bob), api.private_conversation(&alice, &carol));
    let (bobs, carols) = (service.browser(&[Answer::Status(500)]), service.browser(&[Answer::Status(500)]));
    subscribe(&api, &bob, &bobs).await;
    subscribe(&api, &carol, &carols).await;
    let path = |conversation: &str, message: &Value| {
        format!("/conversations/{conversation}/messages/{}", message["_id"].as_str().unwrap())
    };

    // Each first try fails, and its retry waits 5 s on the queue: alice edits one message and deletes the other
    // meanwhile.
    let (to_bob, to_carol) = tokio::join!(
        send(&api, &alice, &with_bob, "see you at 5", &[]),
        send(&api, &alice, &with_carol, "the door code is 1234", &[])
    );
    tokio::join!(service.wait_for(&bobs, 1, PUSH_WITHIN), service.wait_for(&carols, 1, PUSH_WITHIN));
    put(&api, &alice, &path(&with_bob, &to_bob), json!({"newContent": "see you at 6"})).await;
    let (status, deleted) = api.call("DELETE", &path(&with_carol, &to_carol), Some(&alice.token), None).await;
    assert_eq!(status, 200, "{deleted}");

    let bob_got = service.wait_for(&bobs, 2, PUSH_WITHIN).await;
    let retried = opened(&service, &bobs, &key, &bob_got);
    let seq = to_bob["seq"].as_u64().unwrap();
    assert_eq!(retried[&seq]["preview"], "see you at 6", "the retry shows the edit");
    // Carol's retry was due when bob's was: it has been withdrawn by now, not merely delayed.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(service.received(&carols).len(), 1, "only the failed first try of a message deleted since");
}

#[tokio::test]
async fn five_senders_reach_every_offline_member_of_a_large_group_exactly_five_times() {
    let stack = Stack::load();
    let api = stack.api();
    let service = PushService::start().await;
    let key = server_key(&api).await;
    // 60 members: more than a listed roster holds, so the worker pages the members as in any large group.
    let members = api.register_many("crowd", 60).await;
    let group = api.group(&members[0], &members[1..]).await;
    let (online, offline) = members.split_at(30);
    let browsers: Vec<Browser> = offline.iter().map(|_| service.browser(&[])).collect();
    let online_browsers: Vec<Browser> = online.iter().map(|_| service.browser(&[])).collect();
    stream::iter(offline.iter().chain(online).zip(browsers.iter().chain(&online_browsers)))
        .for_each_concurrent(SETUP_IN_FLIGHT, |(who, browser)| subscribe(&api, who, browser))
        .await;
    let sockets = stack.connect_all(online).await;

    stack
        .run_then_close_in_waves(online, sockets, async |_: &mut [WsClient]| {
            let (api, group) = (&api, &group);
            let sent = join_all(
                (0..5).map(|s| async move { send(api, &online[s], group, &format!("from sender {s}"), &[]).await }),
            )
            .await;
            let seqs: Vec<u64> = {
                let mut seqs: Vec<u64> = sent.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
                seqs.sort_unstable();
                seqs
            };
            let got = join_all(browsers.iter().map(|browser| service.wait_for(browser, 5, PUSH_WITHIN))).await;
            tokio::time::sleep(QUIET_PERIOD * 2).await;
            for (browser, got) in browsers.iter().zip(got) {
                let opened = opened(&service, browser, &key, &got);
                assert_eq!(opened.keys().copied().collect::<Vec<_>>(), seqs, "every message once");
                assert_eq!(service.received(browser).len(), 5, "exactly five pushes");
            }
            for browser in &online_browsers {
                assert!(service.received(browser).is_empty(), "connected members get no push");
            }
        })
        .await;
}

#[tokio::test]
async fn a_member_whose_app_is_in_the_background_is_pushed_and_still_gets_the_frame() {
    let stack = Stack::load();
    let api = stack.api();
    let service = PushService::start().await;
    let key = server_key(&api).await;
    let [alice, bob, carol] = api.users(["alice", "bob", "carol"]).await;
    let group = api.group(&alice, [&bob, &carol]).await;
    let (browser, carols) = (service.browser(&[]), service.browser(&[]));
    subscribe(&api, &bob, &browser).await;
    // Carol is offline: her push for a message means its planning is done, bob's part included.
    subscribe(&api, &carol, &carols).await;
    let mut socket = WsClient::connect(&stack, &bob).await;

    let ack = socket.call(json!({"action": "set_app_state", "state": "background"})).await;
    assert_eq!(ack["data"]["state"], "background", "{ack}");
    let hidden = send(&api, &alice, &group, "while the tab is hidden", &[]).await;
    socket.expect_event("receive_message").await;
    let got = service.wait_for(&browser, 1, PUSH_WITHIN).await;
    let pushed = opened(&service, &browser, &key, &got);
    assert_eq!(pushed.keys().copied().collect::<Vec<_>>(), [hidden["seq"].as_u64().unwrap()]);

    let ack = socket.call(json!({"action": "set_app_state", "state": "foreground"})).await;
    assert_eq!(ack["data"]["state"], "foreground", "{ack}");
    send(&api, &alice, &group, "in front again", &[]).await;
    socket.expect_event("receive_message").await;
    assert_eq!(service.wait_for(&carols, 2, PUSH_WITHIN).await.len(), 2);
    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(service.received(&browser).len(), 1, "no push while the app is in front");
    socket.close().await;
}

/// One field (`id`, `platform`) of each of `who`'s subscriptions, sorted.
async fn subscriptions(api: &Api, who: &TestUser, field: &str) -> Vec<String> {
    let (status, listed) = api.call("GET", "/users/me/push-subscriptions", Some(&who.token), None).await;
    assert_eq!(status, 200, "{listed}");
    let mut values: Vec<String> =
        listed["items"].as_array().unwrap().iter().map(|s| s[field].as_str().unwrap().to_owned()).collect();
    values.sort();
    values
}

/// Every browser in `browsers` registers for `who` at the same moment: the status and body of each.
async fn subscribe_at_once(api: &Api, who: &TestUser, browsers: &[&Browser]) -> Vec<(u16, Value)> {
    join_all(browsers.iter().map(|browser| {
        api.call("POST", "/users/me/push-subscriptions", Some(&who.token), Some(browser.subscription()))
    }))
    .await
}

#[tokio::test]
async fn a_crowd_of_browsers_subscribing_at_once_keeps_the_limit_and_the_count_exact() {
    const LIMIT: usize = 10;
    let stack = Stack::load();
    let api = stack.api();
    let service = PushService::start().await;
    let [alice, carol, dave] = api.users(["alice", "carol", "dave"]).await;
    let group = api.group(&alice, [&carol, &dave]).await;

    // Fourteen of carol's browsers at the same moment: ten get in, four are told the limit.
    let browsers: Vec<Browser> = (0..LIMIT + 4).map(|_| service.browser(&[])).collect();
    let answers = subscribe_at_once(&api, &carol, &browsers.iter().collect::<Vec<_>>()).await;
    let mut accepted: Vec<String> = Vec::new();
    for (status, body) in &answers {
        match status {
            201 => accepted.push(body["id"].as_str().expect("an id").to_owned()),
            409 => assert_eq!(body["error"]["code"], "conflict", "{body}"),
            _ => panic!("{status}: {body}"),
        }
    }
    accepted.sort();
    assert_eq!(accepted.len(), LIMIT, "{answers:?}");
    assert_eq!(subscriptions(&api, &carol, "id").await, accepted, "exactly the accepted ones are stored");

    // One browser of dave's registering three times at once (a retried request, two tabs): one subscription.
    let daves = service.browser(&[]);
    let mut statuses: Vec<u16> = subscribe_at_once(&api, &dave, &[&daves; 3]).await.iter().map(|a| a.0).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 201]);
    assert_eq!(subscriptions(&api, &dave, "id").await.len(), 1);

    // A message reaches each stored browser once, and none of those refused.
    send(&api, &alice, &group, "to every browser", &[]).await;
    let stored: Vec<&Browser> = browsers.iter().zip(&answers).filter(|(_, a)| a.0 == 201).map(|(b, _)| b).collect();
    for browser in stored.iter().copied().chain([&daves]) {
        assert_eq!(service.wait_for(browser, 1, PUSH_WITHIN).await.len(), 1, "one push per stored browser");
    }
    tokio::time::sleep(QUIET_PERIOD).await;
    for (browser, (status, _)) in browsers.iter().zip(&answers) {
        let expected = usize::from(*status == 201);
        assert_eq!(service.received(browser).len(), expected, "a refused browser is never pushed");
    }

    // All ten removed at once: the count returns to zero, so ten new browsers fit again.
    let paths: Vec<String> = accepted.iter().map(|id| format!("/users/me/push-subscriptions/{id}")).collect();
    let removed = join_all(paths.iter().map(|path| api.call("DELETE", path, Some(&carol.token), None))).await;
    assert!(removed.iter().all(|(status, _)| *status == 200), "{removed:?}");
    assert_eq!(subscriptions(&api, &carol, "id").await, Vec::<String>::new());
    let newer: Vec<Browser> = (0..LIMIT).map(|_| service.browser(&[])).collect();
    let answers = subscribe_at_once(&api, &carol, &newer.iter().collect::<Vec<_>>()).await;
    assert!(answers.iter().all(|(status, _)| *status == 201), "{answers:?}");
}

#[tokio::test]
async fn a_phone_is_an_sns_endpoint_and_is_forgotten_when_sns_says_it_is_gone() {
    let stack = Stack::load();
    let api = stack.api();
    let sns = aws_sdk_sns::Client::new(&stack.aws_config().await);
    let [alice, carol] = api.users(["alice", "carol"]).await;
    let group = api.group(&alice, [&carol]).await;
    let token = |p: &str| format!("{p}-token-{}", uuid::Uuid::new_v4().simple());
    let (android, iphone) = (token("fcm"), token("apns"));
    let mut endpoints = BTreeMap::new();
    for (platform, token) in [("fcm", &android), ("apns", &iphone)] {
        let phone = json!({"platform": platform, "token": token});
        let (status, registered) =
            api.call("POST", "/users/me/push-subscriptions", Some(&carol.token), Some(phone)).await;
        assert_eq!((status, registered["platform"].as_str()), (201, Some(platform)), "{registered}");
        let arn = registered["endpoint"].as_str().unwrap().to_owned();
        let attributes = sns.get_endpoint_attributes().endpoint_arn(&arn).send().await.expect("the endpoint exists");
        let attributes = attributes.attributes.unwrap_or_default();
        assert_eq!(attributes.get("Token"), Some(token), "SNS holds the device token");
        endpoints.insert(platform, arn);
    }
    let bad = json!({"platform": "fcm", "token": ""});
    let (status, refused) = api.call("POST", "/users/me/push-subscriptions", Some(&carol.token), Some(bad)).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("validation_failed")), "{refused}");

    // Published to while the endpoints exist: both stay registered.
    send(&api, &alice, &group, "to carol's phones", &[]).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(subscriptions(&api, &carol, "platform").await, ["apns", "fcm"]);

    // The Android app was uninstalled: SNS no longer has its endpoint. The next push finds it gone and forgets it.
    sns.delete_endpoint().endpoint_arn(&endpoints["fcm"]).send().await.expect("delete the endpoint");
    send(&api, &alice, &group, "again", &[]).await;
    let deadline = Instant::now() + PUSH_WITHIN;
    while subscriptions(&api, &carol, "platform").await.len() > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(subscriptions(&api, &carol, "platform").await, ["apns"], "the gone phone is forgotten, the other stays");
}

//! Push under load: five members of a large group send at the same moment while half the group is offline, each
//! offline member with a browser subscribed to a loopback push service. The same connected members are also in a
//! twin group whose offline half has no browser, and rounds alternate between the two, so live delivery is timed
//! with and without push work in the same run. Send → push is timed to the push service's receipt.

use std::time::{Duration, Instant};

use chat_e2e::TestUser;
use chat_e2e::push::{Browser, PushService};
use futures_util::future::join_all;
use serde::Serialize;
use serde_json::json;

use crate::Bench;
use crate::sockets::{Arrivals, Socket, close_all, open_many};
use crate::stats::{Round, Summary, ms, percentile};

/// Members sending each round.
const SENDERS: usize = 5;
/// How long a round waits for its frames and pushes.
const ROUND_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Serialize)]
pub struct PushLoadResult {
    pub members: usize,
    pub offline: usize,
    pub rounds: usize,
    /// Live delivery of each message to the connected members, in the group without push work.
    pub without: Summary,
    /// The same, in the group whose offline half is pushed each message.
    pub with: Summary,
    /// `with` ÷ `without`, last recipient p50.
    pub ratio: f64,
    /// From the send to the push service's receipt, ms.
    pub push_p50_ms: f64,
    pub push_p99_ms: f64,
    pub pushes_expected: usize,
    pub pushes_received: usize,
    /// Offline members that did not get exactly one push per message.
    pub members_off_count: usize,
}

pub async fn under_push_load(bench: &Bench, members: usize, rounds: usize) -> PushLoadResult {
    let half = members / 2;
    let online = bench.users("pushon", half).await;
    let pushed = bench.users("pushoff", members - half).await;
    let quiet = bench.users("quietoff", members - half).await;
    let with_group = large_group(bench, &online, &pushed).await;
    let without_group = large_group(bench, &online, &quiet).await;
    let service = PushService::start().await;
    let browsers: Vec<Browser> = pushed.iter().map(|_| service.browser(&[])).collect();
    for (who, browser) in pushed.iter().zip(&browsers) {
        let body = browser.subscription();
        let (status, answer) =
            bench.api.call("POST", "/users/me/push-subscriptions", Some(&who.token), Some(body)).await;
        assert_eq!(status, 201, "subscribe: {answer}");
    }
    let mut arrivals = Arrivals::new();
    let tokens: Vec<String> = online.iter().map(|u| u.token.clone()).collect();
    let mut sockets = open_many(&bench.stack, &tokens, 50, &arrivals).await;

    // Warm-up: processes of every function involved start.
    send_round(&mut sockets, &mut arrivals, &with_group, "push-warm").await;
    wait_for_pushes(&service, &browsers, SENDERS * browsers.len(), ROUND_TIMEOUT).await;
    send_round(&mut sockets, &mut arrivals, &without_group, "quiet-warm").await;
    let (mut with, mut without, mut push_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut off_count = 0;
    for round in 0..rounds {
        let before: Vec<usize> = browsers.iter().map(|b| service.received(b).len()).collect();
        let (started, measured) = send_round(&mut sockets, &mut arrivals, &with_group, &format!("push-{round}")).await;
        with.extend(measured);
        let expected = before.iter().sum::<usize>() + SENDERS * browsers.len();
        wait_for_pushes(&service, &browsers, expected, ROUND_TIMEOUT).await;
        for (browser, before) in browsers.iter().zip(&before) {
            let got = &service.received(browser)[*before..];
            off_count += usize::from(got.len() != SENDERS);
            push_ms.extend(got.iter().map(|r| ms(r.at.duration_since(started))));
        }
        without.extend(send_round(&mut sockets, &mut arrivals, &without_group, &format!("quiet-{round}")).await.1);
    }
    while !sockets.is_empty() {
        close_all(sockets.drain(..sockets.len().min(25)).collect()).await;
    }
    bench.wait_until_offline(&online).await;

    let (with, without) = (Summary::of(&with), Summary::of(&without));
    let pushes_received: usize = push_ms.len();
    PushLoadResult {
        members,
        offline: pushed.len(),
        rounds,
        without,
        with,
        ratio: with.last_p50 / without.last_p50,
        push_p50_ms: percentile(&push_ms, 50.0).unwrap_or(f64::NAN),
        push_p99_ms: percentile(&push_ms, 99.0).unwrap_or(f64::NAN),
        pushes_expected: rounds * SENDERS * browsers.len(),
        pushes_received,
        members_off_count: off_count,
    }
}

/// A group of the connected members and `offline` (created with 10, grown by requests of 100).
async fn large_group(bench: &Bench, online: &[TestUser], offline: &[TestUser]) -> String {
    let everyone: Vec<&TestUser> = online.iter().chain(offline).collect();
    let owner = everyone[0];
    let first: Vec<&str> = everyone[1..10].iter().map(|u| u.id.as_str()).collect();
    let body = json!({"type": "group", "name": "push bench", "participantIds": first});
    let (status, group) = bench.api.call("POST", "/conversations", Some(&owner.token), Some(body)).await;
    assert_eq!(status, 201, "create group: {group}");
    let id = group["_id"].as_str().expect("conversation id").to_owned();
    for chunk in everyone[10..].chunks(100) {
        let ids: Vec<&str> = chunk.iter().map(|u| u.id.as_str()).collect();
        let path = format!("/conversations/{id}/members");
        let (status, body) = bench.api.call("POST", &path, Some(&owner.token), Some(json!({"userIds": ids}))).await;
        assert_eq!(status, 200, "add members: {body}");
    }
    id
}

/// The first [`SENDERS`] sockets each send one message at the same moment; each message timed to every other
/// connected member.
async fn send_round(sockets: &mut [Socket], arrivals: &mut Arrivals, group: &str, tag: &str) -> (Instant, Vec<Round>) {
    arrivals.drain();
    let recipients = sockets.len() - 1;
    let started = Instant::now();
    join_all(sockets[..SENDERS].iter_mut().enumerate().map(|(s, socket)| {
        let frame = json!({"action": "send_message", "conversationId": group, "content": format!("bench:{tag}-{s}")});
        async move { socket.send(&frame).await }
    }))
    .await;
    let arrived = arrivals.collect_any(SENDERS * recipients, ROUND_TIMEOUT).await;
    let rounds = (0..SENDERS)
        .map(|s| {
            let tag = format!("{tag}-{s}");
            let times = arrived.iter().filter(|a| a.tag == tag).map(|a| a.at).collect();
            Round::new(started, times, recipients)
        })
        .collect();
    (started, rounds)
}

/// Waits until the push service got `total` requests for `browsers` (at most `within`).
async fn wait_for_pushes(service: &PushService, browsers: &[Browser], total: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let received: usize = browsers.iter().map(|b| service.received(b).len()).sum();
        if received >= total || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

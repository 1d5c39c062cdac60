//! One-to-one latency at a steady rate, and messages per second with many conversations sending at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::Bench;
use crate::sockets::{Arrivals, Socket};
use crate::stats::{ms, percentile};

#[derive(Clone, Debug, Serialize)]
pub struct LatencyResult {
    pub messages: usize,
    pub rate_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub lost: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct ThroughputResult {
    pub conversations: usize,
    pub messages: usize,
    pub messages_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub lost: usize,
}

/// Opens a private conversation per pair; returns (sender socket, conversation id) per pair, and the
/// receivers' arrivals.
async fn pairs(bench: &Bench, count: usize) -> (Vec<(Socket, String)>, Vec<Socket>, Arrivals) {
    let users = bench.users("lat", count * 2).await;
    let (receiving, sending) = (Arrivals::new(), Arrivals::new());
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for pair in users.chunks(2) {
        let conversation_id = bench.api.private_conversation(&pair[0], &pair[1]).await;
        receivers.push(Socket::open(&bench.stack, &pair[1].token, &receiving).await.expect("receiver connects"));
        let sender = Socket::open(&bench.stack, &pair[0].token, &sending).await.expect("sender connects");
        senders.push((sender, conversation_id));
    }
    (senders, receivers, receiving)
}

fn latencies(sent: &HashMap<String, Instant>, arrivals: &[crate::sockets::Arrival]) -> Vec<f64> {
    arrivals.iter().filter_map(|a| sent.get(&a.tag).map(|at| ms(a.at.duration_since(*at)))).collect()
}

pub async fn steady(bench: &Bench, messages: usize, rate_per_second: f64) -> LatencyResult {
    let (mut senders, receivers, mut arrivals) = pairs(bench, 1).await;
    let (sender, conversation_id) = &mut senders[0];
    let mut sent = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate_per_second));
    for n in 0..messages {
        tick.tick().await;
        let tag = format!("lat-{n}");
        sent.insert(tag.clone(), Instant::now());
        sender
            .send(&json!({"action":"send_message","conversationId":conversation_id,"content":format!("bench:{tag}")}))
            .await;
    }
    let got = arrivals.collect_any(messages, Duration::from_secs(30)).await;
    let samples = latencies(&sent, &got);
    for (socket, _) in senders {
        socket.close().await;
    }
    crate::sockets::close_all(receivers).await;
    LatencyResult {
        messages,
        rate_per_second,
        p50_ms: percentile(&samples, 50.0).unwrap_or(f64::NAN),
        p99_ms: percentile(&samples, 99.0).unwrap_or(f64::NAN),
        lost: messages - samples.len(),
    }
}

pub async fn many_conversations(bench: &Bench, conversations: usize, per_conversation: usize) -> ThroughputResult {
    let (mut senders, receivers, mut arrivals) = pairs(bench, conversations).await;
    let total = conversations * per_conversation;
    let mut sent = HashMap::new();
    let started = Instant::now();
    // Every conversation sends as fast as its client can write; the stack processes them concurrently.
    for n in 0..per_conversation {
        for (index, (sender, conversation_id)) in senders.iter_mut().enumerate() {
            let tag = format!("tp-{index}-{n}");
            sent.insert(tag.clone(), Instant::now());
            sender
                .send(
                    &json!({"action":"send_message","conversationId":conversation_id,"content":format!("bench:{tag}")}),
                )
                .await;
        }
    }
    let got = arrivals.collect_any(total, Duration::from_secs(120)).await;
    let elapsed = got.iter().map(|a| a.at).max().map_or(f64::NAN, |last| last.duration_since(started).as_secs_f64());
    let samples = latencies(&sent, &got);
    for (socket, _) in senders {
        socket.close().await;
    }
    crate::sockets::close_all(receivers).await;
    ThroughputResult {
        conversations,
        messages: total,
        messages_per_second: samples.len() as f64 / elapsed,
        p50_ms: percentile(&samples, 50.0).unwrap_or(f64::NAN),
        p99_ms: percentile(&samples, 99.0).unwrap_or(f64::NAN),
        lost: total - samples.len(),
    }
}

//! Connect storm: groups whose members all connect at the same instant, one group after another, then a check
//! that every connection is still registered and receives a message sent afterwards.

use std::time::{Duration, Instant};

use chat_e2e::WsClient;
use futures_util::future::join_all;
use serde::Serialize;
use serde_json::json;

use crate::Bench;

#[derive(Clone, Debug, Serialize)]
pub struct StormResult {
    pub clients: usize,
    pub wave: usize,
    /// Time for each wave's handshakes to complete, ms.
    pub wave_ms: Vec<f64>,
    pub connects_per_second: f64,
    /// Connections that answered an action needing their registration and received a later message.
    pub live: usize,
    /// Handshakes refused or timed out.
    pub refused: usize,
}

pub async fn run(bench: &Bench, clients: usize, wave: usize) -> StormResult {
    let waves = clients.div_ceil(wave);
    let mut groups = Vec::new();
    for _ in 0..waves {
        let users = bench.users("storm", wave).await;
        let conversation_id = bench.group(&users, "storm").await;
        groups.push((users, conversation_id));
    }
    let mut wave_ms = Vec::new();
    let mut connected: Vec<Vec<Option<WsClient>>> = Vec::new();
    let mut refused = 0;
    for (users, _) in &groups {
        let started = Instant::now();
        let sockets = join_all(users.iter().map(|user| WsClient::try_connect(&bench.stack, &user.token))).await;
        wave_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        refused += sockets.iter().filter(|s| s.is_err()).count();
        connected.push(sockets.into_iter().map(Result::ok).collect());
    }
    let total_seconds = wave_ms.iter().sum::<f64>() / 1000.0;

    // Every connection must still be registered: an action that needs the record is acknowledged, and a
    // message sent into each group afterwards reaches every other member.
    let mut live = 0;
    for ((_, conversation_id), sockets) in groups.iter().zip(&mut connected) {
        let mut registered = Vec::new();
        for socket in sockets.iter_mut() {
            let ok = match socket {
                Some(ws) => ws.call(json!({"action": "get_status"})).await["event"] == "ack",
                None => false,
            };
            registered.push(ok);
        }
        let tag = format!("storm-{conversation_id}");
        if let Some(sender) = sockets[0].as_mut() {
            sender
                .call(
                    json!({"action":"send_message","conversationId":conversation_id,"content":format!("bench:{tag}")}),
                )
                .await;
        }
        let received = join_all(sockets.iter_mut().skip(1).map(|socket| async {
            let Some(ws) = socket else { return false };
            let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
            loop {
                let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
                match ws.next_frame_within(wait).await {
                    Some(frame) if frame["event"] == "receive_message" => return true,
                    Some(_) => continue,
                    None => return false,
                }
            }
        }))
        .await;
        live += usize::from(registered[0]);
        live += registered.iter().skip(1).zip(&received).filter(|(r, got)| **r && **got).count();
    }
    let mut sockets: Vec<WsClient> = connected.into_iter().flatten().flatten().collect();
    while !sockets.is_empty() {
        join_all(sockets.drain(..sockets.len().min(25)).map(WsClient::close)).await;
    }
    for (users, _) in &groups {
        bench.wait_until_offline(users).await;
    }
    StormResult {
        clients: waves * wave,
        wave,
        connects_per_second: (waves * wave) as f64 / total_seconds,
        wave_ms,
        live,
        refused,
    }
}

//! `send` and `listen`: the WebSocket side. `send` waits for its `ack` and prints it; `listen` prints every
//! event as one JSON line until Ctrl-C, a number of events, or a timeout, keeping the connection alive with
//! `ping` meanwhile (API Gateway closes connections idle for 10 minutes).

use std::time::Duration;

use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::files::Uploaded;
use crate::output::json_line;
use crate::ws::Incoming;

/// Default wait for an `ack`.
const ACK_TIMEOUT: Duration = Duration::from_secs(15);
/// Keep-alive period of `listen`.
const PING_EVERY: Duration = Duration::from_secs(5 * 60);

pub async fn send(
    context: &Context<'_>,
    conversation_id: &str,
    text: &str,
    attachment: Option<Uploaded>,
    client_message_id: Option<&str>,
    timeout: Option<Duration>,
    mentions: &[String],
) -> CliResult<()> {
    let mut connection = context.connect().await?;
    let client_message_id =
        client_message_id.map(str::to_owned).unwrap_or_else(|| format!("cli-{}", uuid::Uuid::new_v4().simple()));
    let mut payload = Map::new();
    payload.insert("conversationId".into(), conversation_id.into());
    payload.insert("content".into(), text.into());
    match attachment {
        Some(uploaded) => {
            payload.insert("type".into(), uploaded.message_type().into());
            payload.insert("attachment".into(), uploaded.upload_id.into());
        }
        None => {
            payload.insert("type".into(), "text".into());
        }
    }
    payload.insert("clientMessageId".into(), client_message_id.into());
    if !mentions.is_empty() {
        payload.insert("mentions".into(), mentions.into());
    }
    let answer = connection.request("send_message", payload, timeout.unwrap_or(ACK_TIMEOUT), |_| ()).await;
    connection.close().await;
    json_line(&answer?)
}

/// When `listen` stops.
pub struct ListenUntil {
    /// After this many printed events (exit 0).
    pub count: Option<u64>,
    /// At this moment: exit 0 without `count`, a timeout error with it.
    pub timeout: Option<Duration>,
}

pub async fn listen(context: &Context<'_>, until: ListenUntil, events: &[String], join: &[String]) -> CliResult<()> {
    let deadline = until.timeout.map(|timeout| Instant::now() + timeout);
    let mut connection = context.connect().await?;
    let mut printer = Printer { events, printed: 0, count: until.count, emit: json_line };

    if !join.is_empty() {
        let mut payload = Map::new();
        payload.insert("conversationIds".into(), join.into());
        let mut meanwhile = Vec::new();
        let ack = connection.request("join_conversations", payload, ACK_TIMEOUT, |frame| meanwhile.push(frame)).await?;
        if let Some(rejected) = ack["data"]["rejected"].as_array().filter(|ids| !ids.is_empty()) {
            eprintln!("not joined (not your conversations): {}", Value::from(rejected.clone()));
        }
        for frame in meanwhile {
            if printer.print(&frame)? {
                connection.close().await;
                return Ok(());
            }
        }
    }
    eprintln!("connected; listening (Ctrl-C to stop)");

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut next_ping = Instant::now() + PING_EVERY;
    let mut pings = 0u64;
    let result = loop {
        let wake = deadline.map_or(next_ping, |deadline| deadline.min(next_ping));
        tokio::select! {
            _ = &mut ctrl_c => break Ok(()),
            incoming = connection.next(Some(wake)) => match incoming {
                Err(error) => break Err(error),
                Ok(Incoming::Frame(frame)) => match printer.print(&frame) {
                    Ok(true) => break Ok(()),
                    Ok(false) => {}
                    Err(error) => break Err(error),
                },
                Ok(Incoming::TimedOut) if deadline.is_some_and(|deadline| Instant::now() >= deadline) => {
                    break match until.count {
                        None => Ok(()),
                        Some(count) => Err(CliError::Timeout(format!(
                            "timed out after {:.1}s with {} of {count} events",
                            until.timeout.unwrap_or_default().as_secs_f64(),
                            printer.printed
                        ))),
                    };
                }
                Ok(Incoming::TimedOut) => {
                    pings += 1;
                    let ping = serde_json::json!({ "action": "ping", "requestId": format!("listen-ping-{pings}") });
                    if let Err(error) = connection.send(&ping).await {
                        break Err(error);
                    }
                    next_ping = Instant::now() + PING_EVERY;
                }
            },
        }
    };
    connection.close().await;
    result
}

/// Prints the frames `listen` shows and counts them.
struct Printer<'a> {
    /// Only these events (all when empty).
    events: &'a [String],
    printed: u64,
    count: Option<u64>,
    /// Where a shown frame goes (stdout; tests pass a stand-in).
    emit: fn(&Value) -> CliResult<()>,
}

impl Printer<'_> {
    /// Prints `frame` unless it is filtered out or the answer to our own keep-alive; true once `count` is reached.
    fn print(&mut self, frame: &Value) -> CliResult<bool> {
        if frame["requestId"].as_str().is_some_and(|id| id.starts_with("listen-ping-")) {
            return Ok(false);
        }
        let event = frame["event"].as_str().unwrap_or_default();
        if !self.events.is_empty() && !self.events.iter().any(|wanted| wanted == event) {
            return Ok(false);
        }
        (self.emit)(frame)?;
        self.printed += 1;
        Ok(self.count.is_some_and(|count| self.printed >= count))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_printer_filters_events_skips_keepalive_answers_and_counts() {
        let events = vec!["receive_message".to_owned()];
        let discard = |_: &Value| Ok(());
        let mut printer = Printer { events: &events, printed: 0, count: Some(1), emit: discard };
        assert!(!printer.print(&json!({"event": "user_online", "data": {}})).unwrap());
        assert!(!printer.print(&json!({"event": "pong", "requestId": "listen-ping-1", "data": {}})).unwrap());
        assert_eq!(printer.printed, 0);
        assert!(printer.print(&json!({"event": "receive_message", "data": {}})).unwrap());
        assert_eq!(printer.printed, 1);

        let mut everything = Printer { events: &[], printed: 0, count: None, emit: discard };
        assert!(!everything.print(&json!({"event": "user_online", "data": {}})).unwrap());
        assert_eq!(everything.printed, 1);
    }
}

//! Many WebSocket connections in one process. Each has a reader task that stamps the arrival of every tagged
//! frame (a `receive_message` whose content is `bench:<tag>`, or a frame the benchmark posted itself), so a
//! round's last and median recipient are measured where the client sees them.

use std::time::{Duration, Instant};

use chat_e2e::Stack;
use futures_util::stream::{SplitSink, StreamExt};
use futures_util::{SinkExt, stream};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A tagged frame seen by one connection.
#[derive(Debug)]
pub struct Arrival {
    pub tag: String,
    pub at: Instant,
}

/// Where the reader tasks of a group of sockets report.
pub struct Arrivals {
    sender: UnboundedSender<Arrival>,
    receiver: UnboundedReceiver<Arrival>,
}

impl Arrivals {
    pub fn new() -> Arrivals {
        let (sender, receiver) = unbounded_channel();
        Arrivals { sender, receiver }
    }

    /// Forgets everything reported so far.
    pub fn drain(&mut self) {
        while self.receiver.try_recv().is_ok() {}
    }

    /// Arrival times of `tag` until `expected` came or `timeout` passed; other tags are dropped.
    pub async fn collect(&mut self, tag: &str, expected: usize, timeout: Duration) -> Vec<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut times = Vec::with_capacity(expected);
        while times.len() < expected {
            match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                Ok(Some(arrival)) if arrival.tag == tag => times.push(arrival.at),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        times
    }
}

impl Arrivals {
    /// Every tagged arrival until `expected` came or `timeout` passed.
    pub async fn collect_any(&mut self, expected: usize, timeout: Duration) -> Vec<Arrival> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut arrivals = Vec::with_capacity(expected);
        while arrivals.len() < expected {
            match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                Ok(Some(arrival)) => arrivals.push(arrival),
                Ok(None) | Err(_) => break,
            }
        }
        arrivals
    }
}

/// The tag of a frame the benchmark is measuring, if it is one.
fn tag_of(text: &str) -> Option<String> {
    if !text.contains("bench") {
        return None;
    }
    let frame: Value = serde_json::from_str(text).ok()?;
    match frame["event"].as_str()? {
        "receive_message" => frame["data"]["message"]["content"].as_str()?.strip_prefix("bench:").map(str::to_owned),
        "bench" => frame["data"]["tag"].as_str().map(str::to_owned),
        _ => None,
    }
}

pub struct Socket {
    sink: SplitSink<Stream, Message>,
    reader: JoinHandle<()>,
}

impl Socket {
    pub async fn open(stack: &Stack, token: &str, arrivals: &Arrivals) -> Result<Socket, String> {
        let url = format!("{}?token={token}", stack.websocket);
        let (stream, _) = tokio::time::timeout(Duration::from_secs(30), connect_async(url.as_str()))
            .await
            .map_err(|_| "handshake timed out".to_owned())?
            .map_err(|e| format!("handshake refused: {e}"))?;
        let (sink, mut read) = stream.split();
        let report = arrivals.sender.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = read.next().await {
                if let Message::Text(text) = message {
                    let at = Instant::now();
                    if let Some(tag) = tag_of(&text) {
                        let _ = report.send(Arrival { tag, at });
                    }
                }
            }
        });
        Ok(Socket { sink, reader })
    }

    pub async fn send(&mut self, frame: &Value) {
        self.sink.send(Message::text(frame.to_string())).await.expect("send frame");
    }

    pub async fn close(mut self) {
        let _ = self.sink.close().await;
        self.reader.abort();
    }
}

/// Opens one socket per token, at most `concurrency` handshakes at a time, in token order.
pub async fn open_many(stack: &Stack, tokens: &[String], concurrency: usize, arrivals: &Arrivals) -> Vec<Socket> {
    stream::iter(tokens)
        .map(|token| async move { Socket::open(stack, token, arrivals).await })
        .buffered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|socket| socket.unwrap_or_else(|e| panic!("could not open a benchmark connection: {e}")))
        .collect()
}

pub async fn close_all(sockets: Vec<Socket>) {
    futures_util::future::join_all(sockets.into_iter().map(Socket::close)).await;
}

//! One WebSocket connection speaking the chat protocol (docs/protocol.md): a handshake with the token, requests
//! answered through their `requestId`, and the frames in between. Every wait has a deadline; the token never
//! appears in an error message. A `wss://` URL (a deployed stack) goes over TLS with the config of src/tls.rs.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream, connect_async_tls_with_config};

use crate::error::{CliError, CliResult};
use crate::rest::encode;
use crate::tls;

/// How long the handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Connection {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The URL without the token, for messages.
    url: String,
    next_request: u64,
}

/// What reading the connection produced.
pub enum Incoming {
    /// A JSON frame (any other text is wrapped as `{"raw": text}` so it is still shown).
    Frame(Value),
    /// The deadline passed first.
    TimedOut,
}

impl Connection {
    /// Opens the connection with `?token=`; a refused token is reported as such.
    pub async fn open(url: &str, token: &str) -> CliResult<Connection> {
        let separator = if url.contains('?') { '&' } else { '?' };
        let with_token = format!("{url}{separator}token={}", encode(token));
        let connector = if tls::is_secure(url) { Some(Connector::Rustls(tls::client_config()?)) } else { None };
        let connect = connect_async_tls_with_config(with_token.as_str(), None, false, connector);
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, connect)
            .await
            .map_err(|_| CliError::Timeout(format!("{url}: no WebSocket handshake within {HANDSHAKE_TIMEOUT:?}")))?;
        match handshake {
            Ok((stream, _)) => Ok(Connection { stream, url: url.to_owned(), next_request: 0 }),
            Err(tungstenite::Error::Http(response)) if matches!(response.status().as_u16(), 401 | 403) => {
                Err(CliError::Setup(format!(
                    "the server refused the token (HTTP {}): log in again (`chat-cli login <username>`)",
                    response.status().as_u16()
                )))
            }
            Err(tungstenite::Error::Http(response)) => {
                Err(CliError::Connection(format!("{url}: handshake refused with HTTP {}", response.status())))
            }
            Err(e) => Err(CliError::Connection(format!("cannot connect to {url}: {e}"))),
        }
    }

    /// Sends `action` with `payload` and a fresh `requestId`; returns its `ack` (or `pong`) frame, or the
    /// server's `error` as `CliError::Server`. Other frames arriving meanwhile are handed to `on_other`.
    pub async fn request(
        &mut self,
        action: &str,
        payload: Map<String, Value>,
        timeout: Duration,
        mut on_other: impl FnMut(Value),
    ) -> CliResult<Value> {
        self.next_request += 1;
        let request_id = format!("cli-{}-{}", std::process::id(), self.next_request);
        let mut frame = payload;
        frame.insert("action".into(), Value::from(action));
        frame.insert("requestId".into(), Value::from(request_id.as_str()));
        self.send(&Value::Object(frame)).await?;
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(Some(deadline)).await? {
                Incoming::TimedOut => {
                    return Err(CliError::Timeout(format!(
                        "{action}: no answer within {:.1}s (the outcome is unknown)",
                        timeout.as_secs_f64()
                    )));
                }
                Incoming::Frame(frame) if frame["requestId"].as_str() == Some(request_id.as_str()) => {
                    if frame["event"] == "error" {
                        let data = &frame["data"];
                        return Err(CliError::Server {
                            action: action.to_owned(),
                            code: data["code"].as_str().unwrap_or("unknown").to_owned(),
                            message: data["message"].as_str().unwrap_or("no details").to_owned(),
                        });
                    }
                    return Ok(frame);
                }
                Incoming::Frame(frame) => on_other(frame),
            }
        }
    }

    /// The next protocol frame, or `TimedOut` at `deadline` (never, without one).
    pub async fn next(&mut self, deadline: Option<Instant>) -> CliResult<Incoming> {
        loop {
            let next = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, self.stream.next()).await {
                    Ok(next) => next,
                    Err(_) => return Ok(Incoming::TimedOut),
                },
                None => self.stream.next().await,
            };
            match next {
                Some(Ok(WsMessage::Text(text))) => {
                    let frame =
                        serde_json::from_str(&text).unwrap_or_else(|_| serde_json::json!({ "raw": text.as_str() }));
                    return Ok(Incoming::Frame(frame));
                }
                Some(Ok(WsMessage::Close(close))) => {
                    let reason = close.map(|c| format!(" ({} {})", c.code, c.reason)).unwrap_or_default();
                    return Err(CliError::Connection(format!("the server closed the connection{reason}")));
                }
                Some(Ok(_)) => continue, // WebSocket pings, pongs and binary data are not protocol frames
                Some(Err(e)) => return Err(CliError::Connection(format!("{}: connection failed: {e}", self.url))),
                None => return Err(CliError::Connection("the server closed the connection".into())),
            }
        }
    }

    pub async fn send(&mut self, frame: &Value) -> CliResult<()> {
        self.stream
            .send(WsMessage::text(frame.to_string()))
            .await
            .map_err(|e| CliError::Connection(format!("{}: cannot send: {e}", self.url)))
    }

    /// Closes politely (best effort, bounded).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.stream.close(None)).await;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Read;
    use std::net::TcpListener;
    use std::thread::JoinHandle;

    use super::*;

    /// A listener on 127.0.0.1 that accepts one connection, reads its first byte and hangs up: the port, and the
    /// byte (`0x16` opens a TLS handshake record, a plain HTTP request starts with a letter), `None` when no
    /// client came within 10 s.
    pub(crate) fn hang_up_after_first_byte() -> (u16, JoinHandle<Option<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).expect("non-blocking listener");
        let first = std::thread::spawn(move || {
            // Gives up after 10 s (a client that never connects must fail the test, not hang it).
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let mut socket = loop {
                match listener.accept() {
                    Ok((socket, _)) => break socket,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => return None,
                }
            };
            socket.set_nonblocking(false).ok()?;
            socket.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
            let mut byte = [0u8; 1];
            socket.read_exact(&mut byte).ok()?;
            Some(byte[0])
        });
        (port, first)
    }

    #[tokio::test]
    async fn a_wss_url_opens_with_a_tls_client_hello() {
        let (port, first_byte) = hang_up_after_first_byte();
        let url = format!("wss://127.0.0.1:{port}/prod");
        let error = Connection::open(&url, "secret-token").await.err().expect("the listener hangs up");
        let message = error.to_string();
        assert!(matches!(error, CliError::Connection(_)), "{message}");
        assert!(message.starts_with(&format!("cannot connect to {url}: ")), "{message}");
        assert!(!message.contains("secret-token"), "{message}");
        assert_eq!(first_byte.join().unwrap(), Some(0x16), "a TLS handshake record; error: {message}");
    }

    #[tokio::test]
    async fn a_ws_url_stays_plain() {
        let (port, first_byte) = hang_up_after_first_byte();
        let error = Connection::open(&format!("ws://127.0.0.1:{port}/prod"), "t").await.err().expect("hangs up");
        assert!(matches!(error, CliError::Connection(_)), "{error}");
        assert_eq!(first_byte.join().unwrap(), Some(b'G'), "a plain `GET /prod?token=…` upgrade request");
    }
}

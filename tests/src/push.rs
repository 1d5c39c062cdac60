//! A push service for the tests, on loopback: it records every push request it receives and answers what the
//! test scripted for that subscription (201 by default, or an error, or nothing for a while). Each test browser
//! holds its own keys, so the test decrypts every notification as a browser would (RFC 8291) and checks the
//! VAPID token (RFC 8292) the request was signed with.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::{aead, agreement, hkdf, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the service does with the next request to a subscription.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Status(u16),
    /// Holds the request this long without answering, then closes the connection.
    Hang(Duration),
}

/// One request the service received.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// What it was answered.
    pub status: Option<u16>,
}

#[derive(Default)]
struct State {
    received: HashMap<String, Vec<Received>>,
    script: HashMap<String, VecDeque<Answer>>,
}

/// The service; it stops when dropped.
pub struct PushService {
    origin: String,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for PushService {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl PushService {
    pub async fn start() -> PushService {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the push service");
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        PushService { origin, state, server }
    }

    /// `http://127.0.0.1:<port>`: the audience VAPID tokens must name.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// A new browser subscribed to this service, answered `answers` first and 201 after them.
    pub fn browser(&self, answers: &[Answer]) -> Browser {
        let name = uuid::Uuid::new_v4().simple().to_string();
        self.state.lock().unwrap().script.insert(name.clone(), answers.iter().copied().collect());
        Browser::new(format!("{}/push/{name}", self.origin), name)
    }

    pub fn received(&self, browser: &Browser) -> Vec<Received> {
        self.state.lock().unwrap().received.get(&browser.name).cloned().unwrap_or_default()
    }

    /// Waits until `browser` got at least `count` requests (at most `within`); what it got.
    pub async fn wait_for(&self, browser: &Browser, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received(browser);
            if received.len() >= count || Instant::now() >= deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let Some((path, headers, body)) = read_request(&mut stream).await else { return };
    let name = path.rsplit('/').next().unwrap_or_default().to_owned();
    let answer = state.lock().unwrap().script.get_mut(&name).and_then(VecDeque::pop_front);
    let status = match answer {
        Some(Answer::Hang(duration)) => {
            record(&state, &name, headers, body, None);
            tokio::time::sleep(duration).await;
            return;
        }
        Some(Answer::Status(status)) => status,
        None => 201,
    };
    record(&state, &name, headers, body, Some(status));
    let response = format!("HTTP/1.1 {status} Push\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn record(state: &Mutex<State>, name: &str, headers: HashMap<String, String>, body: Vec<u8>, status: Option<u16>) {
    let received = Received { headers, body, at: Instant::now(), status };
    state.lock().unwrap().received.entry(name.to_owned()).or_default().push(received);
}

/// Reads one HTTP/1.1 request with a `content-length` body (what push senders send), within 10 seconds.
async fn read_request(stream: &mut TcpStream) -> Option<(String, HashMap<String, String>, Vec<u8>)> {
    let mut buffer = Vec::new();
    let read = async {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                let mut lines = head.lines();
                let path = lines.next()?.split_whitespace().nth(1)?.to_owned();
                let headers: HashMap<String, String> = lines
                    .filter_map(|line| line.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                while buffer.len() < end + 4 + length {
                    let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
                    buffer.extend_from_slice(&chunk[..n]);
                }
                return Some((path, headers, buffer[end + 4..end + 4 + length].to_vec()));
            }
            let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
            buffer.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.ok().flatten()
}

/// A browser's side of a subscription: its endpoint on the test service and its keys.
pub struct Browser {
    pub endpoint: String,
    name: String,
    private_key: agreement::PrivateKey,
    public_key: Vec<u8>,
    auth: [u8; 16],
}

impl Browser {
    fn new(endpoint: String, name: String) -> Browser {
        let private_key = agreement::PrivateKey::generate(&agreement::ECDH_P256).unwrap();
        let public_key = private_key.compute_public_key().unwrap().as_ref().to_vec();
        let mut auth = [0u8; 16];
        rand::fill(&mut auth).unwrap();
        Browser { endpoint, name, private_key, public_key, auth }
    }

    /// What `PushSubscription.toJSON()` gives, the body of `POST /users/me/push-subscriptions`.
    pub fn subscription(&self) -> Value {
        json!({
            "endpoint": self.endpoint,
            "keys": {"p256dh": URL_SAFE_NO_PAD.encode(&self.public_key), "auth": URL_SAFE_NO_PAD.encode(self.auth)},
            "expirationTime": null,
        })
    }

    /// Decrypts an `aes128gcm` body as the browser does (RFC 8291 section 3, RFC 8188 section 2).
    pub fn decrypt(&self, body: &[u8]) -> Value {
        let (salt, rest) = body.split_at(16);
        let id_len = rest[4] as usize;
        let (sender_key, ciphertext) = rest[5..].split_at(id_len);
        let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, sender_key);
        let shared = agreement::agree(&self.private_key, peer, (), |s| Ok(s.to_vec())).expect("ECDH");
        let info = [b"WebPush: info\0".as_slice(), &self.public_key, sender_key];
        let ikm: [u8; 32] = okm(&hkdf::Salt::new(hkdf::HKDF_SHA256, &self.auth).extract(&shared), &info);
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&ikm);
        let key: [u8; 16] = okm(&prk, &[b"Content-Encoding: aes128gcm\0"]);
        let nonce: [u8; 12] = okm(&prk, &[b"Content-Encoding: nonce\0"]);
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &key).unwrap());
        let mut record = ciphertext.to_vec();
        let plain = key
            .open_in_place(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::empty(), &mut record)
            .expect("the notification decrypts with the browser's keys");
        let end = plain.iter().rposition(|b| *b != 0).expect("a padding delimiter");
        assert_eq!(plain[end], 2, "the last record ends with delimiter 0x02");
        serde_json::from_slice(&plain[..end]).expect("the notification is JSON")
    }
}

struct Length(usize);

impl hkdf::KeyType for Length {
    fn len(&self) -> usize {
        self.0
    }
}

fn okm<const N: usize>(prk: &hkdf::Prk, info: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    prk.expand(info, Length(N)).unwrap().fill(&mut out).unwrap();
    out
}

/// Checks a request's VAPID authorization (RFC 8292): an ES256 token for `audience`, signed by `server_key`,
/// expiring within a day, with a contact.
pub fn check_vapid(received: &Received, audience: &str, server_key: &str) {
    let header = received.headers.get("authorization").expect("an authorization header");
    let (token, key) = header.strip_prefix("vapid t=").and_then(|rest| rest.split_once(", k=")).expect(header);
    assert_eq!(key, server_key, "signed with the key browsers subscribed with");
    let point = URL_SAFE_NO_PAD.decode(key).unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..]),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(token, &decoding, &validation).expect("a valid VAPID token").claims;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(claims["exp"].as_u64().unwrap() <= now + 24 * 3600, "RFC 8292: at most a day");
    assert!(claims["sub"].as_str().is_some_and(|s| s.starts_with("mailto:") || s.starts_with("https:")));
    assert_eq!(received.headers.get("content-encoding").map(String::as_str), Some("aes128gcm"));
    assert!(received.headers.contains_key("ttl"));
}

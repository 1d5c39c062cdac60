//! Harness for the end-to-end tests in `tests/`: finds the deployed stack, and drives it with real HTTP and
//! WebSocket clients. Every wait is bounded so a broken stack fails a test instead of hanging it.

pub mod counting;
pub mod files;
pub mod push;
pub mod rest;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// How long a test waits for a frame that should arrive.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a test listens to conclude that a frame will not arrive.
pub const QUIET_PERIOD: Duration = Duration::from_millis(1500);

/// Endpoints of the stack under test, written by `cargo xtask` after deploying.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stack {
    pub websocket: String,
    pub http: String,
    pub aws_endpoint: String,
    pub region: String,
    pub table_name: String,
    pub fanout_queue_url: String,
    pub fanout_dead_letter_queue_url: String,
    pub attachments_bucket: String,
    /// The queue that gets a copy of every integrator event (`EventTap=enabled`, as `cargo xtask` deploys).
    #[serde(default)]
    pub event_tap_queue_url: Option<String>,
}

impl Stack {
    /// Reads `$CHAT_ENDPOINTS_FILE` (set by `cargo xtask test`), else `.local/endpoints.json` of `cargo xtask dev`.
    pub fn load() -> Stack {
        let path = std::env::var("CHAT_ENDPOINTS_FILE")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.local/endpoints.json").to_owned());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("no deployed stack: cannot read {path} ({e}). Run these tests with `cargo xtask test`.")
        });
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not a valid endpoints file: {e}"))
    }

    pub fn api(&self) -> Api {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client");
        Api { http, base: self.http.trim_end_matches('/').to_owned() }
    }

    /// An SDK config pointing at the emulator, with throwaway credentials.
    pub async fn aws_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.aws_endpoint)
            .region(aws_config::Region::new(self.region.clone()))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "e2e"))
            .load()
            .await
    }

    /// Makes `user` an operator, as `cargo xtask operator grant` does: the flag on their profile, written to the
    /// table directly (no API sets it).
    pub async fn make_operator(&self, user: &TestUser) {
        use chat_shared::ports::ModerationStore;
        let store = chat_shared::aws::dynamo::DynamoDbStore::new(
            aws_sdk_dynamodb::Client::new(&self.aws_config().await),
            self.table_name.clone(),
        );
        let id = chat_shared::model::UserId::parse(&user.id).expect("a stored user id");
        assert!(store.set_operator(&id, true).await.expect("set the operator flag"), "{} exists", user.username);
    }

    /// Writes `count` text messages of `sender` (`message 0`, `message 1`, …) into `conversation`, straight into the
    /// table (the send path has its own tests): a big account in seconds.
    pub async fn seed_messages(&self, conversation: &str, sender: &TestUser, count: usize) {
        use chat_shared::model::{ConversationId, MessageKind, NewMessage, Sender, UserId};
        use chat_shared::ports::{ConversationStore, MessageStore, RateLimit};
        let store = chat_shared::aws::dynamo::DynamoDbStore::new(
            aws_sdk_dynamodb::Client::new(&self.aws_config().await),
            self.table_name.clone(),
        );
        let author = Sender { id: UserId::parse(&sender.id).unwrap(), username: sender.username.clone(), avatar: None };
        let unlimited = RateLimit { kind: "seed", max: u32::MAX, window_secs: 60 };
        let id = ConversationId::parse(conversation).expect("a conversation id");
        let mut read = store.get_conversation(&id).await.expect("read").expect("the conversation exists");
        for n in 0..count {
            let draft = NewMessage {
                conversation_id: id.clone(),
                sender: author.clone(),
                content: format!("message {n}"),
                kind: MessageKind::Text,
                file_url: None,
                file_name: None,
                attachment: None,
                client_message_id: None,
                mentions: Vec::new(),
            };
            let appended = store.append_message(&read, draft, &unlimited).await.expect("append").expect("appended");
            read.last_seq = appended.into_parts().0.message.seq;
        }
    }

    /// Waits, at most `within`, until `users` have at most `at_most` connections recorded in the table (`$disconnect`
    /// has removed the others); returns how many are recorded.
    pub async fn connections_of(&self, users: &[TestUser], at_most: usize, within: Duration) -> usize {
        use chat_shared::ports::ConnectionStore;
        let store = chat_shared::aws::dynamo::DynamoDbStore::new(
            aws_sdk_dynamodb::Client::new(&self.aws_config().await),
            self.table_name.clone(),
        );
        let ids: Vec<_> =
            users.iter().map(|u| chat_shared::model::UserId::parse(&u.id).expect("a stored user id")).collect();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let presences = store.presences(&ids).await.expect("read presences");
            let recorded = presences.values().map(|p| p.connections.len()).sum();
            if recorded <= at_most || tokio::time::Instant::now() >= deadline {
                return recorded;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// One connection for each of `users`, [`SETUP_IN_FLIGHT`] handshakes at a time: a crowd that is set up
    /// rather than tested (a `$connect` storm is tested in concurrency.rs) should not start that many cold
    /// functions at once under qemu.
    pub async fn connect_all(&self, users: &[TestUser]) -> Vec<WsClient> {
        use futures_util::StreamExt;
        futures_util::stream::iter(users)
            .map(|user| WsClient::connect(self, user))
            .buffered(SETUP_IN_FLIGHT)
            .collect()
            .await
    }

    /// Closes `sockets` (the connections of `users`, one each) as a crowd leaves: [`CLOSING_WAVE`] at a time, each
    /// wave's `$disconnect`s checked done, by their connections leaving the table, before the next closes.
    /// Hundreds at once would be as many cold starts in the same second; under qemu (arm64 functions on an
    /// x86_64 machine) the emulator cannot absorb that: the `$disconnect`s time out, leave stale entries and
    /// slow the next test's requests past their own timeout.
    pub async fn close_in_waves(&self, users: &[TestUser], sockets: Vec<WsClient>) {
        self.leave_in_waves(users, sockets, true).await;
    }

    /// Runs `scenario` on the open `sockets` of `users`, then closes them with [`Stack::close_in_waves`], also
    /// when the scenario panics (the panic goes on afterwards). Dropped together by a failing test, a crowd's
    /// sockets start that many `$disconnect`s at once: in a fresh-clone run that storm made the next ten tests
    /// time out behind one failed one.
    pub async fn run_then_close_in_waves(
        &self,
        users: &[TestUser],
        mut sockets: Vec<WsClient>,
        scenario: impl AsyncFnOnce(&mut [WsClient]),
    ) {
        use futures_util::FutureExt;
        let outcome = std::panic::AssertUnwindSafe(scenario(&mut sockets)).catch_unwind().await;
        // After a failure, the failure is what the test reports: the waves are paced but not checked.
        self.leave_in_waves(users, sockets, outcome.is_ok()).await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    async fn leave_in_waves(&self, users: &[TestUser], mut sockets: Vec<WsClient>, check: bool) {
        while !sockets.is_empty() {
            let wave = sockets.split_off(sockets.len().saturating_sub(CLOSING_WAVE));
            futures_util::future::join_all(wave.into_iter().map(WsClient::close)).await;
            let recorded = self.connections_of(users, sockets.len(), FRAME_TIMEOUT * 4).await;
            if check {
                assert_eq!(recorded, sockets.len(), "connections recorded with {} sockets still open", sockets.len());
            }
        }
    }
}

/// Sockets [`Stack::close_in_waves`] closes at once.
pub const CLOSING_WAVE: usize = 16;

/// Every test user's password.
pub const PASSWORD: &str = "correct-horse-1";

/// A registered user (one session of theirs).
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub token: String,
    /// Gets the next tokens once (`POST /auth/refresh`).
    pub refresh_token: String,
}

/// A unique username, so tests can share a stack and run concurrently.
/// Setup requests a test keeps in flight at once: enough to be quick, few enough for a 2-core machine.
pub const SETUP_IN_FLIGHT: usize = 16;

pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// HTTP client for the REST API.
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{path}: request failed: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.expect("response body");
        let json =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, json)
    }

    pub async fn register(&self, prefix: &str) -> TestUser {
        let username = unique_name(prefix);
        let (status, body) = self
            .call("POST", "/auth/register", None, Some(json!({ "username": username, "password": PASSWORD })))
            .await;
        assert_eq!(status, 201, "register {username}: {body}");
        TestUser {
            id: body["user"]["_id"].as_str().expect("user id").to_owned(),
            username,
            token: body["token"].as_str().expect("token").to_owned(),
            refresh_token: body["refreshToken"].as_str().expect("refresh token").to_owned(),
        }
    }

    /// One user per name prefix, registered at once: `let [alice, bob] = api.users(["alice", "bob"]).await;`.
    pub async fn users<const N: usize>(&self, prefixes: [&str; N]) -> [TestUser; N] {
        let users = futures_util::future::join_all(prefixes.map(|prefix| self.register(prefix))).await;
        users.try_into().unwrap_or_else(|_| unreachable!("one user per prefix"))
    }

    /// `n` users for a test's setup, [`SETUP_IN_FLIGHT`] registrations at a time: each is a password hash, and on
    /// a fresh stack under qemu a cold start too, which sixty at once on two cores can push past the emulator's
    /// 10 s init limit.
    pub async fn register_many(&self, prefix: &str, n: usize) -> Vec<TestUser> {
        futures_util::stream::iter(0..n).map(|_| self.register(prefix)).buffered(SETUP_IN_FLIGHT).collect().await
    }

    /// Another session of `user` (a second device): a login with the password [`Api::register`] sets.
    pub async fn login(&self, user: &TestUser) -> TestUser {
        let credentials = json!({ "username": user.username, "password": PASSWORD });
        let (status, body) = self.call("POST", "/auth/login", None, Some(credentials)).await;
        assert_eq!(status, 200, "login {}: {body}", user.username);
        TestUser {
            token: body["token"].as_str().expect("token").to_owned(),
            refresh_token: body["refreshToken"].as_str().expect("refresh token").to_owned(),
            ..user.clone()
        }
    }

    /// Creates a group of `owner` with `others` (the first 49 at creation, the rest added after, as the API
    /// takes at most 50 at once); returns its id.
    pub async fn group<'a>(&self, owner: &TestUser, others: impl IntoIterator<Item = &'a TestUser>) -> String {
        let ids: Vec<&str> = others.into_iter().map(|u| u.id.as_str()).collect();
        let (first, rest) = ids.split_at(ids.len().min(49));
        let body = json!({"type": "group", "name": "group", "participantIds": first});
        let (status, created) = self.call("POST", "/conversations", Some(&owner.token), Some(body)).await;
        assert_eq!(status, 201, "create group: {created}");
        let id = created["_id"].as_str().expect("conversation id").to_owned();
        if !rest.is_empty() {
            let path = format!("/conversations/{id}/members");
            let (status, added) = self.call("POST", &path, Some(&owner.token), Some(json!({"userIds": rest}))).await;
            assert_eq!(status, 200, "add members: {added}");
        }
        id
    }

    /// Creates (or finds) the private conversation of `a` with `b`; returns its id.
    pub async fn private_conversation(&self, a: &TestUser, b: &TestUser) -> String {
        let (status, body) = self
            .call("POST", "/conversations", Some(&a.token), Some(json!({ "type": "private", "participantId": b.id })))
            .await;
        assert!(status == 201 || status == 200, "create conversation: {status} {body}");
        body["_id"].as_str().expect("conversation id").to_owned()
    }
}

/// A WebSocket client speaking the chat protocol.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_request: u64,
    /// Frames read while waiting for something else ([`WsClient::call`]), handed out first by the next reads.
    backlog: std::collections::VecDeque<Value>,
}

impl WsClient {
    /// Connects with `?token=`; the error is the refused handshake, if any.
    pub async fn try_connect(stack: &Stack, token: &str) -> Result<WsClient, tungstenite::Error> {
        let url = format!("{}?token={token}", stack.websocket);
        let handshake = tokio::time::timeout(FRAME_TIMEOUT, connect_async(url.as_str())).await.map_err(|_| {
            tungstenite::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "WebSocket handshake timed out"))
        })?;
        let (stream, _) = handshake?;
        Ok(WsClient { stream, next_request: 0, backlog: Default::default() })
    }

    pub async fn connect(stack: &Stack, user: &TestUser) -> WsClient {
        Self::try_connect(stack, &user.token)
            .await
            .unwrap_or_else(|e| panic!("{} could not connect: {e}", user.username))
    }

    pub async fn send(&mut self, frame: Value) {
        self.stream.send(WsMessage::text(frame.to_string())).await.expect("send frame");
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.stream.send(WsMessage::text(text.to_owned())).await.expect("send frame");
    }

    /// The next JSON frame; panics if none arrives within [`FRAME_TIMEOUT`].
    pub async fn next_frame(&mut self) -> Value {
        self.next_frame_within(FRAME_TIMEOUT).await.unwrap_or_else(|| panic!("no frame within {FRAME_TIMEOUT:?}"))
    }

    /// The next frame if one arrives within `wait`.
    pub async fn next_frame_within(&mut self, wait: Duration) -> Option<Value> {
        if let Some(frame) = self.backlog.pop_front() {
            return Some(frame);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()?;
            match next {
                Some(Ok(WsMessage::Text(text))) => {
                    return Some(
                        serde_json::from_str(&text).unwrap_or_else(|e| panic!("frame is not JSON ({e}): {text}")),
                    );
                }
                Some(Ok(WsMessage::Close(frame))) => panic!("server closed the connection: {frame:?}"),
                Some(Ok(_)) => continue, // ping/pong/binary: not protocol frames
                Some(Err(e)) => panic!("WebSocket error: {e}"),
                None => panic!("WebSocket stream ended"),
            }
        }
    }

    /// The next frame, which must be the event `name`; returns its `data`.
    pub async fn expect_event(&mut self, name: &str) -> Value {
        let frame = self.next_frame().await;
        assert_eq!(frame["event"], name, "expected `{name}`, got {frame}");
        frame["data"].clone()
    }

    /// Asserts that no frame arrives for [`QUIET_PERIOD`].
    pub async fn expect_quiet(&mut self) {
        if let Some(frame) = self.next_frame_within(QUIET_PERIOD).await {
            panic!("expected no frame, got {frame}");
        }
    }

    /// Sends `frame` with a fresh `requestId` and returns the `ack` or `error` frame answering it.
    pub async fn request(&mut self, mut frame: Value) -> Value {
        self.next_request += 1;
        let request_id = format!("req-{}", self.next_request);
        frame["requestId"] = json!(request_id);
        self.send(frame).await;
        let reply = self.next_frame().await;
        assert_eq!(reply["requestId"], json!(request_id), "unexpected frame while waiting for {request_id}: {reply}");
        reply
    }

    /// Sends `frame` with a fresh `requestId` and returns the `ack` or `error` answering it. Other frames that
    /// arrive meanwhile are kept, in order, for the next reads.
    pub async fn call(&mut self, mut frame: Value) -> Value {
        self.next_request += 1;
        let request_id = format!("call-{}", self.next_request);
        frame["requestId"] = json!(request_id);
        self.send(frame).await;
        let mut others = Vec::new();
        let deadline = tokio::time::Instant::now() + FRAME_TIMEOUT;
        loop {
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.next_frame_within(wait).await.unwrap_or_else(|| panic!("no answer to {request_id}"));
            if frame["requestId"] == json!(request_id) {
                others.extend(self.backlog.drain(..));
                self.backlog = others.into();
                return frame;
            }
            others.push(frame);
        }
    }

    /// Whether the server side ends the connection (close frame, error or end of stream) within `wait`;
    /// protocol frames still in flight are discarded.
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_)) | Some(Ok(WsMessage::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

//! The backend's use cases, shared by the WebSocket and REST handlers so both paths store and broadcast the
//! same way. Transport concerns (frames, HTTP) stay in [`crate::handlers`].

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{self, Identity, TokenKeys};
use crate::config::Config;
use crate::conversations::{validate_group_name, validate_url};
use crate::cursor::CursorCodec;
use crate::error::{AppError, AppResult};
use crate::fanout::{
    ApiGatewayFanout, DeliveryReport, Fanout, RecordingFanout, Target, deliver_to_connections, deliver_to_users,
};
use crate::model::{
    Connection, Conversation, ConversationKind, Message, NewMessage, Sender, User, UserRecord, new_id, now_iso,
};
use crate::protocol::{SendMessageInput, event_frame, events};
use crate::store::dynamo::DynamoDbStore;
use crate::store::memory::InMemoryStore;
use crate::store::{Appended, Created, Store};

/// Everything a handler needs, built once per Lambda execution environment.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub fanout: Arc<dyn Fanout>,
    pub tokens: TokenKeys,
    pub cursors: CursorCodec,
    pub connection_ttl: Duration,
}

/// A group holds at most this many members, so creating one fits one DynamoDB transaction (100 items).
pub const MAX_GROUP_MEMBERS: usize = 50;

impl Services {
    /// Reads configuration, fetches the signing key from Secrets Manager and builds the AWS clients, once.
    pub async fn from_env() -> AppResult<Self> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
        let secret = aws_sdk_secretsmanager::Client::new(&sdk)
            .get_secret_value()
            .secret_id(&config.jwt_secret_arn)
            .send()
            .await
            .map_err(AppError::internal)?
            .secret_string
            .ok_or_else(|| AppError::internal("JWT secret has no string value"))?;
        let tokens = TokenKeys::new(secret.trim().as_bytes(), config.token_ttl)?;
        let cursors = CursorCodec::new(secret.trim().as_bytes());
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        // A hung PostToConnection must not hold the whole invocation: bound every call.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(3))
            .operation_timeout(Duration::from_secs(6))
            .build();
        let management = aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
            .endpoint_url(&config.management_endpoint)
            .timeout_config(timeouts)
            .build();
        Ok(Services {
            store: Arc::new(DynamoDbStore::new(dynamo, config.table_name)),
            fanout: Arc::new(ApiGatewayFanout::new(
                aws_sdk_apigatewaymanagement::Client::from_conf(management),
                config.posts_in_flight,
            )),
            tokens,
            cursors,
            connection_ttl: config.connection_ttl,
        })
    }

    /// Services over in-memory fakes, returned alongside so tests can inspect them.
    pub fn in_memory() -> (Self, Arc<InMemoryStore>, Arc<RecordingFanout>) {
        let store = Arc::new(InMemoryStore::new());
        let fanout = Arc::new(RecordingFanout::new());
        let secret = b"in-memory-test-secret-with-enough-bytes";
        let tokens = TokenKeys::new(secret, Duration::from_secs(3600)).expect("test secret is long enough");
        let services = Services {
            store: store.clone(),
            fanout: fanout.clone(),
            tokens,
            cursors: CursorCodec::new(secret),
            connection_ttl: Duration::from_secs(7800),
        };
        (services, store, fanout)
    }

    /// Sends one frame to all connections of `user_ids` except `skip_connection`.
    pub async fn notify(&self, user_ids: &[String], frame: &str, skip_connection: Option<&str>) -> DeliveryReport {
        self.notify_all(user_ids, &[frame.to_owned()], skip_connection).await
    }

    /// Sends several frames, in order, to all connections of `user_ids` except `skip_connection`.
    pub async fn notify_all(&self, user_ids: &[String], frames: &[String], skip: Option<&str>) -> DeliveryReport {
        let report = deliver_to_users(self.store.as_ref(), self.fanout.as_ref(), user_ids, frames, skip).await;
        tracing::info!(
            recipients = user_ids.len(),
            delivered = report.delivered,
            gone = report.gone,
            handshaking = report.handshaking,
            failed = report.failed,
            "fan-out"
        );
        report
    }

    // ------------------------------------------------------------------ accounts

    pub async fn register(&self, input: Credentials) -> AppResult<Session> {
        input.validate()?;
        let avatar = input.avatar.map(|url| validate_url("avatar", url)).transpose()?;
        let user = User { id: new_id(), username: input.username, avatar, created_at: now_iso() };
        let password_hash = auth::hash_password(&input.password).await?;
        self.store.create_user(&UserRecord { user: user.clone(), password_hash }).await?;
        self.session(user)
    }

    pub async fn login(&self, input: Credentials) -> AppResult<Session> {
        const REFUSAL: AppError = AppError::Unauthorized("invalid username or password");
        if input.validate().is_err() {
            return Err(REFUSAL);
        }
        match self.store.find_by_username(&input.username).await? {
            Some(record) if auth::verify_password(&input.password, &record.password_hash).await => {
                self.session(record.user)
            }
            Some(_) => Err(REFUSAL),
            None => {
                // Same work as a wrong password, so response time does not reveal which usernames exist.
                auth::verify_password(&input.password, &auth::decoy_hash().await).await;
                Err(REFUSAL)
            }
        }
    }

    fn session(&self, user: User) -> AppResult<Session> {
        let token = self.tokens.issue(&Identity { user_id: user.id.clone(), username: user.username.clone() })?;
        Ok(Session { token, user })
    }

    /// Verifies a bearer token and that its user still exists.
    pub async fn authenticate(&self, token: Option<&str>) -> AppResult<User> {
        let token = token.ok_or(AppError::Unauthorized("missing access token"))?;
        let identity = self.tokens.verify(token)?;
        self.store.get_user(&identity.user_id).await?.ok_or(AppError::Unauthorized("account no longer exists"))
    }

    // ------------------------------------------------------------------ connections

    /// The user behind a connection; a connection unknown to the store (expired, or removed after a 410) must
    /// reconnect.
    pub async fn connection(&self, connection_id: &str) -> AppResult<Connection> {
        self.store
            .get_connection(connection_id)
            .await?
            .ok_or(AppError::Unauthorized("connection is not registered, reconnect"))
    }

    // ------------------------------------------------------------------ messages

    /// Stores a message. A retry with the same `clientMessageId` returns the original as `Existing`, and only a
    /// `New` message is broadcast (by the caller, see [`Services::broadcast_message`]).
    pub async fn send_message(&self, sender: Sender, input: SendMessageInput) -> AppResult<Created<Appended>> {
        input.validate()?;
        self.store
            .append_message(NewMessage {
                conversation_id: input.conversation_id,
                sender,
                content: input.content,
                kind: input.kind,
                file_url: input.file_url,
                file_name: input.file_name,
                client_message_id: input.client_message_id,
            })
            .await
    }

    /// `receive_message` to every member's connections except the one the message came from, then one
    /// `message_status: delivered` to each of the sender's connections listing the other members it reached.
    pub async fn broadcast_message(&self, appended: &Appended, origin_connection: Option<&str>) -> DeliveryReport {
        let message = &appended.message;
        let frame = event_frame(
            events::RECEIVE_MESSAGE,
            json!({ "message": message, "conversationId": message.conversation_id }),
        );
        let report = self.notify(&appended.member_ids, &frame, origin_connection).await;
        let reached: Vec<&String> = report.reached.iter().filter(|user| **user != message.sender.id).collect();
        if !reached.is_empty() {
            let status = event_frame(
                events::MESSAGE_STATUS,
                json!({
                    "conversationId": message.conversation_id,
                    "messageId": message.id,
                    "status": "delivered",
                    "userIds": reached,
                }),
            );
            // The sender's connections were looked up for the broadcast already (their other tabs receive it).
            let sender_connections: Vec<Target> = report
                .found
                .get(&message.sender.id)
                .into_iter()
                .flatten()
                .map(|connection| Target { user_id: message.sender.id.clone(), connection: connection.clone() })
                .collect();
            deliver_to_connections(self.store.as_ref(), self.fanout.as_ref(), sender_connections, &[status]).await;
        }
        report
    }

    // ------------------------------------------------------------------ conversations

    /// Creates a conversation and tells its members. Private conversations are unique per pair: asking again
    /// returns the existing one (and notifies nobody).
    pub async fn create_conversation(
        &self,
        me: &User,
        input: CreateConversation,
    ) -> AppResult<Created<ConversationView>> {
        let (kind, others, name) = match input {
            CreateConversation::Private { participant_id } => (ConversationKind::Private, vec![participant_id], None),
            CreateConversation::Group { participant_ids, name } => {
                (ConversationKind::Group, participant_ids, Some(validate_group_name(&name)?))
            }
        };
        let mut member_ids: std::collections::BTreeSet<String> = others.into_iter().collect();
        member_ids.remove(&me.id);
        if member_ids.is_empty() {
            return Err(AppError::Validation("a conversation needs at least one other participant".into()));
        }
        if kind == ConversationKind::Private && member_ids.len() != 1 {
            return Err(AppError::Validation("a private conversation has exactly one other participant".into()));
        }
        if member_ids.len() + 1 > MAX_GROUP_MEMBERS {
            return Err(AppError::Validation(format!("a group has at most {MAX_GROUP_MEMBERS} members")));
        }
        let wanted: Vec<String> = member_ids.iter().cloned().collect();
        let found = self.store.get_users(&wanted).await?;
        if found.len() != wanted.len() {
            return Err(AppError::NotFound("participant not found"));
        }
        member_ids.insert(me.id.clone());
        let now = now_iso();
        let conversation = Conversation {
            id: new_id(),
            kind,
            name,
            avatar: None,
            member_ids,
            created_by: me.id.clone(),
            created_at: now.clone(),
            updated_at: now,
            last_seq: 0,
            last_message: None,
        };
        match self.store.create_conversation(&conversation).await? {
            Created::New(c) => {
                let mut members = found;
                members.push(me.clone());
                let view = ConversationView::new(c, members);
                let frame = event_frame(events::CONVERSATION_CREATED, json!({ "conversation": view }));
                self.notify(&view.member_ids(), &frame, None).await;
                Ok(Created::New(view))
            }
            Created::Existing(c) => Ok(Created::Existing(self.view(c).await?)),
        }
    }

    /// A conversation with its members resolved to public profiles.
    pub async fn view(&self, conversation: Conversation) -> AppResult<ConversationView> {
        let ids: Vec<String> = conversation.member_ids.iter().cloned().collect();
        let members = self.store.get_users(&ids).await?;
        Ok(ConversationView::new(conversation, members))
    }
}

/// Username/password, as sent to register and login.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub avatar: Option<String>,
}

impl Credentials {
    pub fn validate(&self) -> AppResult<()> {
        let name_ok = (3..=32).contains(&self.username.len())
            && self.username.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !name_ok {
            return Err(AppError::Validation("username must have 3-32 characters of [a-zA-Z0-9_.-]".into()));
        }
        // The upper bound keeps argon2's work per request bounded.
        if !(8..=128).contains(&self.password.chars().count()) {
            return Err(AppError::Validation("password must have 8-128 characters".into()));
        }
        Ok(())
    }
}

/// What register and login return.
#[derive(Debug, Serialize)]
pub struct Session {
    pub token: String,
    pub user: User,
}

/// `POST /conversations` body.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CreateConversation {
    #[serde(rename_all = "camelCase")]
    Private { participant_id: String },
    #[serde(rename_all = "camelCase")]
    Group { participant_ids: Vec<String>, name: String },
}

/// A conversation as clients see it: members as profiles, newest message, unread count.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConversationView {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ConversationKind,
    pub name: Option<String>,
    pub avatar: Option<String>,
    pub members: Vec<User>,
    pub last_message: Option<Message>,
    pub last_seq: u64,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

impl ConversationView {
    pub(crate) fn new(c: Conversation, mut members: Vec<User>) -> Self {
        members.sort_by(|a, b| a.username.cmp(&b.username));
        ConversationView {
            id: c.id,
            kind: c.kind,
            name: c.name,
            avatar: c.avatar,
            members,
            last_message: c.last_message,
            last_seq: c.last_seq,
            created_by: c.created_by,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }

    pub fn member_ids(&self) -> Vec<String> {
        self.members.iter().map(|m| m.id.clone()).collect()
    }
}

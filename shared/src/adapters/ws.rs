//! The WebSocket API: `$connect`, `$disconnect`, and every chat action (including `$default`). This adapter
//! translates API Gateway events into use-case calls and their results into frames; it decides nothing.
//!
//! Answers go through PostToConnection, never through the Lambda's return value: API Gateway only forwards a
//! return body when a route response is configured, and clients must see the same frames everywhere.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::Instrument;

use super::actions::{ClientAction, Request};
use crate::auth::bearer_token;
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::model::{Actor, Connection, ConnectionId, Message};
use crate::usecases::App;
use crate::usecases::accounts::Accounts;
use crate::usecases::messages::{Broadcast, Reaction, Sent};

/// What a handled action answers.
enum Answer<'a> {
    Ack(Value),
    Pong,
    /// A stored message: acknowledged even without a requestId (the sender needs the stored message), while the
    /// members are told.
    Sent(Value, Broadcast<'a>),
}

/// The `send_message` ack: the stored message, with `duplicate: true` when a retry found it stored already.
#[derive(Serialize)]
struct SentAck {
    message: Message,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
}

fn ack(data: impl Serialize) -> AppResult<Answer<'static>> {
    serde_json::to_value(data).map(Answer::Ack).map_err(AppError::internal)
}

fn response(status: u16) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response
}

/// The span every log line of one invocation carries: API Gateway's request id follows a frame from the
/// route through storage and fan-out.
fn request_span(event: &ApiGatewayWebsocketProxyRequest) -> tracing::Span {
    let context = &event.request_context;
    tracing::info_span!(
        "ws",
        request_id = context.request_id.as_deref().unwrap_or("-"),
        connection_id = context.connection_id.as_deref().unwrap_or("-"),
        route = context.route_key.as_deref().unwrap_or("-"),
    )
}

fn connection_id(event: &ApiGatewayWebsocketProxyRequest) -> Option<ConnectionId> {
    event.request_context.connection_id.as_deref().map(ConnectionId::new)
}

/// Whether API Gateway invoked this handler for its own kind of event. A frame whose `action` names a route
/// such as `$disconnect` must never pass for one.
fn is_event(event: &ApiGatewayWebsocketProxyRequest, kind: &str) -> bool {
    event.request_context.event_type.as_deref() == Some(kind)
}

/// `$connect`: a valid token (query `token`, or `Authorization: Bearer`) admits the connection; anything else
/// is refused at the handshake with 401, so no unauthenticated socket ever opens.
pub async fn connect(
    app: &App,
    accounts: &Accounts,
    event: ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let span = request_span(&event);
    async move {
        if !is_event(&event, "CONNECT") {
            return misrouted(app, &event).await;
        }
        let token = event
            .query_string_parameters
            .first("token")
            .filter(|t| !t.is_empty())
            .or_else(|| bearer_token(event.headers.get("authorization").and_then(|v| v.to_str().ok())));
        let result = async {
            let id = connection_id(&event).ok_or_else(|| AppError::internal("event without connectionId"))?;
            app.presence.connect(id, accounts.authenticate(token).await?).await
        }
        .await;
        match result {
            Ok(connection) => {
                tracing::info!(connection_id = %connection.connection_id, user_id = %connection.user_id, "connected");
                response(200)
            }
            Err(err) => {
                err.log();
                response(err.status())
            }
        }
    }
    .instrument(span)
    .await
}

/// `$disconnect`: best effort (API Gateway may never send it); TTL and 410 handling clean up the rest.
pub async fn disconnect(app: &App, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let span = request_span(&event);
    async move {
        if !is_event(&event, "DISCONNECT") {
            return misrouted(app, &event).await;
        }
        let Some(id) = connection_id(&event) else { return response(200) };
        match app.presence.disconnect(&id).await {
            Ok(Some(c)) => tracing::info!(connection_id = %c.connection_id, user_id = %c.user_id, "disconnected"),
            Ok(None) => tracing::info!("disconnect of an unknown connection"),
            Err(err) => err.log(),
        }
        response(200)
    }
    .instrument(span)
    .await
}

/// A chat frame that reached `$connect`'s or `$disconnect`'s function (an emulator routes a frame whose
/// `action` is `$disconnect` there): answered like any unknown action, with nothing changed.
async fn misrouted(app: &App, event: &ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let route = event.request_context.route_key.clone().unwrap_or_default();
    let error = AppError::UnknownAction(route);
    error.log();
    if let Some(id) = connection_id(event) {
        let request_id = Request::parse(event.body.as_deref().unwrap_or("")).err().and_then(|(id, _)| id);
        app.delivery.reply(&id, &Event::error(&error).reply(request_id.as_deref())).await;
    }
    response(200)
}

/// Every chat action. Always answers 200 to API Gateway; the client learns the outcome from an `ack` or
/// `error` frame, and the connection stays open whatever went wrong.
pub async fn message(app: &App, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let span = request_span(&event);
    async move {
        let Some(origin) = connection_id(&event) else { return response(200) };
        let (request_id, answer) = if is_event(&event, "MESSAGE") {
            match Request::parse(event.body.as_deref().unwrap_or("")) {
                Ok(Request { request_id, action }) => {
                    let answer = handle(app, &origin, action).await;
                    (request_id, answer)
                }
                Err((request_id, err)) => (request_id, Err(err)),
            }
        } else {
            (None, Err(AppError::UnknownAction(event.request_context.route_key.clone().unwrap_or_default())))
        };
        let request_id = request_id.as_deref();
        match answer {
            Ok(Answer::Ack(data)) if request_id.is_some() => {
                app.delivery.reply(&origin, &Event::ack(data).reply(request_id)).await;
            }
            Ok(Answer::Ack(_)) => {}
            Ok(Answer::Pong) => app.delivery.reply(&origin, &Event::Pong {}.reply(request_id)).await,
            Ok(Answer::Sent(data, broadcast)) => {
                let ack = Event::ack(data).reply(request_id);
                tokio::join!(app.delivery.reply(&origin, &ack), broadcast.run());
            }
            Err(err) => {
                err.log();
                app.delivery.reply(&origin, &Event::error(&err).reply(request_id)).await;
            }
        }
        response(200)
    }
    .instrument(span)
    .await
}

/// The registered connection a frame came from; an unknown one must reconnect.
async fn registered(app: &App, origin: &ConnectionId) -> AppResult<Connection> {
    app.presence.connection(origin).await
}

async fn actor(app: &App, origin: &ConnectionId) -> AppResult<Actor> {
    Ok(Actor::connection(&registered(app, origin).await?))
}

/// One arm per action: the use case decides what happens and to whom; this only passes the answer on.
async fn handle<'a>(app: &'a App, origin: &ConnectionId, action: ClientAction) -> AppResult<Answer<'a>> {
    match action {
        ClientAction::Ping => Ok(Answer::Pong),
        ClientAction::SendMessage(input) => {
            let Sent { message, broadcast } = app.messages.send(&actor(app, origin).await?, input).await?;
            let (message, duplicate) = message.into_parts();
            let data = serde_json::to_value(SentAck { message, duplicate }).map_err(AppError::internal)?;
            Ok(Answer::Sent(data, broadcast))
        }
        ClientAction::EditMessage(input) => {
            ack(json!({ "message": app.messages.edit(&actor(app, origin).await?, input).await? }))
        }
        ClientAction::DeleteMessage(input) => {
            let deleted = app.messages.delete(&actor(app, origin).await?, &input.message_id).await?;
            ack(json!({ "messageId": deleted.id, "conversationId": deleted.conversation_id }))
        }
        ClientAction::MarkRead(input) => ack(app.messages.mark_read(&actor(app, origin).await?, input).await?),
        ClientAction::AddReaction(input) => react(app, origin, input, true).await,
        ClientAction::RemoveReaction(input) => react(app, origin, input, false).await,
        ClientAction::JoinConversations(input) => {
            ack(app.rooms.join(&registered(app, origin).await?, &input.conversation_ids).await?)
        }
        ClientAction::JoinConversation(input) => {
            app.rooms.join_one(&registered(app, origin).await?, &input.conversation_id).await?;
            ack(json!({ "conversationId": input.conversation_id }))
        }
        ClientAction::LeaveConversation(input) => {
            app.rooms.leave(&registered(app, origin).await?, &input.conversation_id).await?;
            ack(json!({ "conversationId": input.conversation_id }))
        }
        ClientAction::Typing(input) => {
            let conversation_id = input.conversation_id.clone();
            let broadcast = app.rooms.typing(&actor(app, origin).await?, input).await?;
            ack(json!({ "conversationId": conversation_id, "broadcast": broadcast }))
        }
        ClientAction::SendFriendRequest(input) => {
            ack(app.friends.send_request(&actor(app, origin).await?, input).await?)
        }
        ClientAction::CancelFriendRequest(input) => {
            ack(app.friends.cancel_request(&actor(app, origin).await?, input).await?)
        }
        ClientAction::AcceptFriendRequest(input) => ack(app.friends.accept(&actor(app, origin).await?, input).await?),
        ClientAction::RejectFriendRequest(input) => ack(app.friends.reject(&actor(app, origin).await?, input).await?),
        ClientAction::Unfriend(input) => ack(app.friends.unfriend(&actor(app, origin).await?, input).await?),
        ClientAction::BlockUser(input) => ack(app.blocks.block(&actor(app, origin).await?, input).await?),
        ClientAction::UnblockUser(input) => ack(app.blocks.unblock(&actor(app, origin).await?, input).await?),
        ClientAction::GetBlockedUsers => ack(json!({ "blocked": app.blocks.list(&actor(app, origin).await?).await? })),
        ClientAction::SetStatus(input) => {
            ack(json!({ "status": app.presence.set_status(&actor(app, origin).await?, input).await? }))
        }
        ClientAction::SetAppState(input) => {
            ack(json!({ "state": app.presence.set_app_state(&actor(app, origin).await?, input).await? }))
        }
        ClientAction::GetFriends => ack(json!({ "friends": app.friends.list(&actor(app, origin).await?).await? })),
        ClientAction::GetFriendRequests => ack(app.friends.requests(&actor(app, origin).await?).await?),
        ClientAction::GetStatus => ack(app.presence.own_status(&actor(app, origin).await?).await?),
        ClientAction::GetPresence => ack(json!({ "users": app.presence.peers(&actor(app, origin).await?).await? })),
    }
}

async fn react(app: &App, origin: &ConnectionId, input: Reaction, add: bool) -> AppResult<Answer<'static>> {
    let (message_id, emoji) = (input.message_id.clone(), input.emoji.clone());
    let changed = app.messages.react(&actor(app, origin).await?, input, add).await?;
    ack(json!({ "messageId": message_id, "emoji": emoji, "changed": changed }))
}

//! The HTTP API (`lambda_http`, payload format 2.0): routes to use cases, bodies and query strings in, JSON out,
//! errors as `{"error":{"code":…,"message":…}}`. Like the WebSocket adapter it translates and decides nothing,
//! so both transports store the same things and push the same events.

use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::Instrument;

use super::{payload_error, strict_json};
use crate::auth::bearer_token;
use crate::error::{AppError, AppResult};
use crate::model::{
    Actor, ConversationId, ConversationNotifications, MessageId, NewPushSubscription, NotificationPreferences,
    SessionId, UserId,
};
use crate::ports::Created;
use crate::usecases::App;
use crate::usecases::accounts::{Accounts, ChangePassword, Credentials, DeleteAccount, RefreshRequest, UserSearch};
use crate::usecases::blocks::{Privacy, UserRef};
use crate::usecases::conversations::{
    AddMembers, CreateConversation, ListQuery, MembersQuery, SetRole, TransferOwnership, UpdateConversation,
};
use crate::usecases::exports::ExportState;
use crate::usecases::friends::UsernameRef;
use crate::usecases::messages::{EditMessage, HistoryQuery, MarkRead, SendMessage};
use crate::usecases::moderation::{ModerationQuery, Resolve, Suspend};
use crate::usecases::paging::Pager;
use crate::usecases::push::PushSubscriptions;
use crate::usecases::reports::NewReport;
use crate::usecases::uploads::NewUpload;

/// Request bodies are small JSON documents; anything bigger is refused before parsing.
const MAX_BODY_BYTES: usize = 64 * 1024;
const NO_CONVERSATION: &str = "conversation not found";

/// What the REST API is served by: the use cases, plus the ones that need the signing key or the VAPID key.
pub struct Rest<'a> {
    pub app: &'a App,
    pub accounts: &'a Accounts,
    pub pager: &'a Pager,
    pub push: &'a PushSubscriptions,
}

/// The parts of a request the routes use, owned so the handler future holds no borrow of the event.
struct HttpRequest {
    method: Method,
    path: String,
    /// Parsed from the URI, which `lambda_http` builds from the event's raw query string (tests build it too).
    query: QueryMap,
    authorization: Option<String>,
    body: Vec<u8>,
}

impl From<Request> for HttpRequest {
    fn from(request: Request) -> Self {
        let (parts, body) = request.into_parts();
        HttpRequest {
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().parse().unwrap_or_default(),
            authorization: parts.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned),
            method: parts.method,
            body: body.as_ref().to_vec(),
        }
    }
}

/// Handles one request. Errors become JSON error responses here; nothing propagates to the runtime.
pub async fn handle(rest: &Rest<'_>, request: Request) -> Response<Body> {
    // Every log line of the request carries API Gateway's request id (never the query string: it may hold
    // search terms).
    let request_id = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    };
    let span = tracing::info_span!(
        "http",
        request_id = request_id.as_deref().unwrap_or("-"),
        method = %request.method(),
        path = request.uri().path(),
    );
    async move {
        // On the heap: one state machine over every route is large enough to overflow a test thread's 2 MB
        // stack in debug builds.
        let response = match Box::pin(route(rest, HttpRequest::from(request))).await {
            Ok((status, body)) => json_response(status, &body),
            Err(err) => {
                err.log();
                error_response(&err)
            }
        };
        tracing::info!(status = response.status().as_u16(), "request handled");
        response
    }
    .instrument(span)
    .await
}

type Reply = (StatusCode, Value);

async fn route(rest: &Rest<'_>, request: HttpRequest) -> AppResult<Reply> {
    let Rest { app, accounts, pager, push } = rest;
    // Every segment counts: `/conversations/` or `/conversations//x` name no route (404), not a neighbouring one.
    let segments: Vec<&str> = request.path.strip_prefix('/').unwrap_or(&request.path).split('/').collect();
    let who = || accounts.authenticate(bearer_token(request.authorization.as_deref()));
    let actor = || async { Ok::<_, AppError>(Actor::http(&who().await?.user)) };
    match (&request.method, segments.as_slice()) {
        (&Method::POST, ["auth", "register"]) => created(Created::New(accounts.register(body(&request)?).await?)),
        (&Method::POST, ["auth", "login"]) => ok(&accounts.login(body::<Credentials>(&request)?).await?),
        (&Method::POST, ["auth", "refresh"]) => ok(&accounts.refresh(body::<RefreshRequest>(&request)?).await?),
        (&Method::POST, ["auth", "logout"]) => ok(&accounts.logout(&who().await?).await?),
        (&Method::POST, ["auth", "logout-all"]) => ok(&accounts.logout_everywhere(&who().await?).await?),
        (&Method::GET, ["users", "me"]) => ok(&who().await?.user),
        (&Method::DELETE, ["users", "me"]) => {
            let who = who().await?;
            let deleted = accounts.delete_account(&who, body::<DeleteAccount>(&request)?).await?;
            Ok((StatusCode::ACCEPTED, to_json(&deleted)?))
        }
        (&Method::POST, ["users", "me", "export"]) => {
            let (export, _) = app.exports.request(&who().await?.user.id).await?.into_parts();
            let status = if export.status == ExportState::Pending { StatusCode::ACCEPTED } else { StatusCode::OK };
            Ok((status, to_json(&export)?))
        }
        (&Method::GET, ["users", "me", "export"]) => ok(&app.exports.status(&who().await?.user.id).await?),
        (&Method::GET, ["users", "me", "sessions"]) => {
            ok(&json!({ "items": accounts.list_sessions(&who().await?).await? }))
        }
        (&Method::DELETE, ["users", "me", "sessions", session_id]) => {
            let who = who().await?;
            let session_id = SessionId::parse(session_id).map_err(|_| AppError::NotFound("session not found"))?;
            ok(&accounts.end_session(&who, &session_id).await?)
        }
        (&Method::PUT, ["users", "me", "password"]) => {
            let who = who().await?;
            ok(&accounts.change_password(&who, body::<ChangePassword>(&request)?).await?)
        }
        (&Method::GET, ["users"]) => {
            let query = UserSearch {
                search: query_text(&request, "search"),
                limit: query_number(&request, "limit")?,
                cursor: query_text(&request, "cursor"),
            };
            ok(&accounts.search(&actor().await?, query, pager).await?)
        }
        (&Method::POST, ["conversations"]) => {
            let actor = actor().await?;
            created(app.conversations.create(&actor, body::<CreateConversation>(&request)?).await?)
        }
        (&Method::GET, ["conversations"]) => {
            let query = ListQuery {
                limit: query_number(&request, "limit")?,
                cursor: query_text(&request, "cursor"),
                page: query_number(&request, "page")?,
            };
            ok(&app.conversations.list(&actor().await?, query, pager).await?)
        }
        (&Method::GET, ["conversations", id]) => {
            let (actor, id) = (actor().await?, conversation(id)?);
            ok(&app.conversations.summary(&actor, &id).await?)
        }
        (&Method::PATCH, ["conversations", id]) => {
            let (actor, id) = (actor().await?, conversation(id)?);
            ok(&app.conversations.update_group(&actor, &id, body::<UpdateConversation>(&request)?).await?)
        }
        (&Method::GET, ["conversations", id, "members"]) => {
            let (actor, id) = (actor().await?, conversation(id)?);
            let query =
                MembersQuery { limit: query_number(&request, "limit")?, cursor: query_text(&request, "cursor") };
            ok(&app.conversations.members(&actor, &id, query, pager).await?)
        }
        (&Method::POST, ["conversations", id, "members"]) => {
            let (actor, id) = (actor().await?, conversation(id)?);
            ok(&app.conversations.add_members(&actor, &id, body::<AddMembers>(&request)?).await?)
        }
        (&Method::DELETE, ["conversations", id, "members", user_id]) => {
            let (actor, id) = (actor().await?, conversation(id)?);
            let user_id = UserId::parse(user_id).map_err(|_| AppError::NotFound("member not found"))?;
            ok(&app.conversations.remove_member(&actor, &id, &user_id).await?)
        }
        (&Method::PUT, ["conversations", id, "members", user_id, "role"]) => {
            let (actor, id) = (actor().await?, conversation(id)?);
            let user_id = UserId::parse(user_id).map_err(|_| AppError::NotFound("member not found"))?;
            ok(&app.conversations.set_role(&actor, &id, &user_id, body::<SetRole>(&request)?).await?)
        }
        (&Method::PUT, ["conversations", id, "owner"]) => {
            let (actor, id) = (actor().await?, conversation(id)?);
            ok(&app.conversations.transfer_ownership(&actor, &id, body::<TransferOwnership>(&request)?).await?)
        }
        (&Method::GET, ["conversations", id, "messages"]) => {
            let (actor, id) = (actor().await?, conversation(id)?);
            ok(&app.messages.history(&actor, &id, history_query(&request)?, pager).await?)
        }
        // Seed 000's spelling of the history route.
        (&Method::GET, ["messages"]) => {
            let actor = actor().await?;
            let id = query_text(&request, "cid").ok_or_else(|| AppError::Validation("cid is required".into()))?;
            ok(&app.messages.history(&actor, &conversation(&id)?, history_query(&request)?, pager).await?)
        }
        (&Method::POST, ["conversations", id, "messages"]) => {
            let (actor, id) = (actor().await?, conversation(id)?);
            let input: SendMessage = body_with(&request, "conversationId", id.as_str())?;
            let sent = app.messages.send(&actor, input).await?;
            sent.broadcast.run().await;
            created(sent.message)
        }
        (&Method::POST, ["conversations", id, "uploads"]) => {
            let (actor, id) = (actor().await?, conversation(id)?);
            created(Created::New(app.uploads.create(&actor, &id, body::<NewUpload>(&request)?).await?))
        }
        (&Method::PUT, ["conversations", cid, "messages", mid]) => {
            let (actor, message_id) = (actor().await?, message_in(cid, mid)?);
            let input: EditMessage = body_with(&request, "messageId", &message_id.to_string())?;
            ok(&app.messages.edit(&actor, input).await?)
        }
        (&Method::GET, ["conversations", cid, "messages", mid, "reads"]) => {
            let (actor, message_id) = (actor().await?, message_in(cid, mid)?);
            ok(&app.messages.read_count(&actor, &message_id).await?)
        }
        (&Method::DELETE, ["conversations", cid, "messages", mid]) => {
            let (actor, message_id) = (actor().await?, message_in(cid, mid)?);
            ok(&app.messages.delete(&actor, &message_id).await?)
        }
        (&Method::POST, ["conversations", id, "read"]) => {
            let (actor, id) = (actor().await?, conversation(id)?);
            ok(&app.messages.mark_read(&actor, body_with::<MarkRead>(&request, "conversationId", id.as_str())?).await?)
        }
        (&Method::GET, ["users", "me", "notifications"]) => ok(&app.notifications.preferences(&actor().await?).await?),
        (&Method::PUT, ["users", "me", "notifications"]) => {
            ok(&app.notifications.set_preferences(&actor().await?, body::<NotificationPreferences>(&request)?).await?)
        }
        (&Method::PUT, ["conversations", id, "notifications"]) => {
            let (actor, id) = (actor().await?, conversation(id)?);
            let setting = body::<ConversationNotifications>(&request)?;
            ok(&app.notifications.set_for_conversation(&actor, &id, setting).await?)
        }
        (&Method::GET, ["push", "server-key"]) => ok(&push.server_key()),
        (&Method::GET, ["users", "me", "push-subscriptions"]) => {
            ok(&json!({ "items": push.list(&actor().await?).await? }))
        }
        (&Method::POST, ["users", "me", "push-subscriptions"]) => {
            created(push.register(&actor().await?, body::<NewPushSubscription>(&request)?).await?)
        }
        (&Method::DELETE, ["users", "me", "push-subscriptions", id]) => {
            push.remove(&actor().await?, id).await?;
            ok(&json!({ "id": id, "removed": true }))
        }
        (&Method::GET, ["users", "me", "privacy"]) => ok(&app.blocks.privacy(&actor().await?).await?),
        (&Method::PUT, ["users", "me", "privacy"]) => {
            ok(&app.blocks.set_privacy(&actor().await?, body::<Privacy>(&request)?).await?)
        }
        (&Method::GET, ["users", "me", "blocked"]) => {
            Ok((StatusCode::OK, json!({ "items": app.blocks.list(&actor().await?).await? })))
        }
        (&Method::POST, ["users", user_id, "block"]) => {
            ok(&app.blocks.block(&actor().await?, user_ref(user_id)?).await?)
        }
        (&Method::DELETE, ["users", user_id, "block"]) => {
            ok(&app.blocks.unblock(&actor().await?, user_ref(user_id)?).await?)
        }
        (&Method::POST, ["reports"]) => {
            let actor = actor().await?;
            created(app.reports.report(&actor, body::<NewReport>(&request)?).await?)
        }
        (&Method::GET, ["moderation", "reports"]) => {
            let who = who().await?;
            ok(&app.moderation.open_reports(&who, moderation_query(&request)?, pager).await?)
        }
        (&Method::POST, ["moderation", "reports", "resolve"]) => {
            let who = who().await?;
            ok(&app.moderation.resolve(&who, body::<Resolve>(&request)?).await?)
        }
        (&Method::DELETE, ["moderation", "messages", message_id]) => {
            let who = who().await?;
            let message_id = MessageId::parse(message_id).map_err(|_| AppError::NotFound("message not found"))?;
            ok(&app.moderation.delete_message(&who, &message_id).await?)
        }
        (&Method::PUT, ["moderation", "users", user_id, "suspension"]) => {
            let who = who().await?;
            let user_id = UserId::parse(user_id).map_err(|_| AppError::NotFound("user not found"))?;
            ok(&app.moderation.suspend(&who, &user_id, body::<Suspend>(&request)?).await?)
        }
        (&Method::DELETE, ["moderation", "users", user_id, "suspension"]) => {
            let who = who().await?;
            let user_id = UserId::parse(user_id).map_err(|_| AppError::NotFound("user not found"))?;
            ok(&app.moderation.unsuspend(&who, &user_id).await?)
        }
        (&Method::GET, ["moderation", "audit"]) => {
            let who = who().await?;
            ok(&app.moderation.audit_record(&who, moderation_query(&request)?, pager).await?)
        }
        (&Method::GET, ["friends"]) => {
            Ok((StatusCode::OK, json!({ "items": app.friends.list(&actor().await?).await? })))
        }
        (&Method::DELETE, ["friends", username]) => ok(&app.friends.unfriend(&actor().await?, named(username)).await?),
        (&Method::GET, ["friend-requests"]) => ok(&app.friends.requests(&actor().await?).await?),
        (&Method::POST, ["friend-requests"]) => {
            let outcome = app.friends.send_request(&actor().await?, body::<UsernameRef>(&request)?).await?;
            let status = if outcome.result == "requested" { StatusCode::CREATED } else { StatusCode::OK };
            Ok((status, to_json(&outcome)?))
        }
        (&Method::DELETE, ["friend-requests", username]) => {
            ok(&app.friends.cancel_request(&actor().await?, named(username)).await?)
        }
        (&Method::POST, ["friend-requests", username, "accept"]) => {
            ok(&app.friends.accept(&actor().await?, named(username)).await?)
        }
        (&Method::POST, ["friend-requests", username, "reject"]) => {
            ok(&app.friends.reject(&actor().await?, named(username)).await?)
        }
        _ => Err(AppError::NotFound("no such route")),
    }
}

fn ok(value: &impl Serialize) -> AppResult<Reply> {
    Ok((StatusCode::OK, to_json(value)?))
}

/// 201 for something new, 200 for what already existed (same private pair, same `clientMessageId`).
fn created(result: Created<impl Serialize>) -> AppResult<Reply> {
    match result {
        Created::New(value) => Ok((StatusCode::CREATED, to_json(&value)?)),
        Created::Existing(value) => ok(&value),
    }
}

/// A conversation id from the path: anything that cannot be one names nothing, so it is a 404 before it
/// reaches a key.
fn conversation(segment: &str) -> AppResult<ConversationId> {
    ConversationId::parse(segment).map_err(|_| AppError::NotFound(NO_CONVERSATION))
}

/// A message id from the path, which must belong to the conversation in the path.
fn message_in(conversation_id: &str, message_id: &str) -> AppResult<MessageId> {
    match MessageId::parse(message_id) {
        Ok(id) if id.conversation_id.as_str() == conversation_id => Ok(id),
        _ => Err(AppError::NotFound("message not found")),
    }
}

/// A user id from the path: anything that cannot be one names nobody.
fn user_ref(segment: &str) -> AppResult<UserRef> {
    Ok(UserRef { user_id: UserId::parse(segment).map_err(|_| AppError::NotFound("user not found"))? })
}

fn named(username: &str) -> UsernameRef {
    UsernameRef { username: username.to_owned() }
}

fn query_text(request: &HttpRequest, name: &str) -> Option<String> {
    request.query.first(name).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// A number parameter: absent, or given once as a non-negative integer (an empty or repeated one is refused,
/// not ignored).
fn query_number(request: &HttpRequest, name: &str) -> AppResult<Option<u64>> {
    let invalid = || AppError::Validation(format!("{name} must be given at most once, as a non-negative integer"));
    match request.query.all(name).as_deref() {
        None | Some([]) => Ok(None),
        Some([value]) => value.parse().map(Some).map_err(|_| invalid()),
        Some(_) => Err(invalid()),
    }
}

fn moderation_query(request: &HttpRequest) -> AppResult<ModerationQuery> {
    Ok(ModerationQuery {
        limit: query_number(request, "limit")?,
        cursor: query_text(request, "cursor"),
        month: query_text(request, "month"),
    })
}

/// `before` is the older name of `cursor`; both continue the page the cursor came from.
fn history_query(request: &HttpRequest) -> AppResult<HistoryQuery> {
    Ok(HistoryQuery {
        limit: query_number(request, "limit")?,
        cursor: query_text(request, "cursor").or_else(|| query_text(request, "before")),
        page: query_number(request, "page")?,
        after_seq: query_number(request, "afterSeq")?,
    })
}

/// The JSON object of the body.
fn body_object(request: &HttpRequest) -> AppResult<serde_json::Map<String, Value>> {
    let bytes = request.body.as_slice();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(AppError::PayloadTooLarge(format!("request bodies are limited to {MAX_BODY_BYTES} bytes")));
    }
    let value = strict_json::parse(bytes)
        .map_err(|refused| AppError::BadRequest(format!("request body refused: {}", refused.reason)))?;
    let Value::Object(fields) = value else {
        return Err(AppError::BadRequest("request body must be a JSON object".into()));
    };
    Ok(fields)
}

fn decode<T: DeserializeOwned>(fields: serde_json::Map<String, Value>) -> AppResult<T> {
    serde_json::from_value(Value::Object(fields)).map_err(|e| payload_error(e, "invalid request body"))
}

fn body<T: DeserializeOwned>(request: &HttpRequest) -> AppResult<T> {
    decode(body_object(request)?)
}

/// The body with a field the path provides (a path's id wins over one in the body).
fn body_with<T: DeserializeOwned>(request: &HttpRequest, field: &str, value: &str) -> AppResult<T> {
    let mut fields = body_object(request)?;
    fields.insert(field.to_owned(), Value::String(value.to_owned()));
    decode(fields)
}

fn to_json(value: &impl Serialize) -> AppResult<Value> {
    serde_json::to_value(value).map_err(AppError::internal)
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .expect("static response parts are valid")
}

fn error_response(err: &AppError) -> Response<Body> {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut error = json!({ "code": err.code(), "message": err.public_message() });
    let mut response = json_response(status, &json!({}));
    if let Some(seconds) = err.retry_after() {
        error["retryAfter"] = json!(seconds);
        response.headers_mut().insert("retry-after", seconds.into());
    }
    *response.body_mut() = Body::Text(json!({ "error": error }).to_string());
    response
}

//! WebSocket API handlers: `$connect`, `$disconnect`, and every chat action (including `$default`).
//!
//! Replies go through PostToConnection, never through the Lambda's return value: API Gateway only forwards a
//! return body when a route response is configured, and clients must see the same frames everywhere.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use serde_json::json;
use tracing::Instrument;

use crate::auth::Identity;
use crate::auth::bearer_token;
use crate::error::{AppError, AppResult};
use crate::fanout::{PostOutcome, post_with_retry};
use crate::messaging::ReadTarget;
use crate::model::Sender;
use crate::protocol::{
    ConversationIds, ConversationRef, EditMessageInput, IncomingFrame, MarkReadInput, MessageRef, ReactionInput,
    SendMessageInput, SetStatusInput, TypingInput, UsernameRef, ack_frame, error_frame, events, reply_frame,
};
use crate::service::Services;
use crate::store::Created;

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

fn connection_id(event: &ApiGatewayWebsocketProxyRequest) -> AppResult<&str> {
    event.request_context.connection_id.as_deref().ok_or_else(|| AppError::internal("event without connectionId"))
}

/// `$connect`: a valid token (query `token`, or `Authorization: Bearer`) admits the connection; anything else
/// is refused at the handshake with 401, so no unauthenticated socket ever opens.
pub async fn connect(services: &Services, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let span = request_span(&event);
    connect_inner(services, event).instrument(span).await
}

async fn connect_inner(services: &Services, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let token = event
        .query_string_parameters
        .first("token")
        .filter(|t| !t.is_empty())
        .or_else(|| bearer_token(event.headers.get("authorization").and_then(|v| v.to_str().ok())));
    let result = match connection_id(&event) {
        Ok(id) => services.open_connection(id, token).await,
        Err(e) => Err(e),
    };
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

/// `$disconnect`: best effort (API Gateway may never send it); TTL and 410 handling clean up the rest.
pub async fn disconnect(services: &Services, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let span = request_span(&event);
    disconnect_inner(services, event).instrument(span).await
}

async fn disconnect_inner(services: &Services, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let result = match connection_id(&event) {
        Ok(id) => services.close_connection(id).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(Some(c)) => {
            tracing::info!(connection_id = %c.connection_id, user_id = %c.user_id, "disconnected")
        }
        Ok(None) => tracing::info!("disconnect of an unknown connection"),
        Err(err) => err.log(),
    }
    response(200)
}

/// Every chat action. Always answers 200 to API Gateway; the client learns the outcome from an `ack` or
/// `error` frame, and the connection stays open whatever went wrong.
pub async fn message(services: &Services, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let span = request_span(&event);
    message_inner(services, event).instrument(span).await
}

async fn message_inner(services: &Services, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let Ok(connection_id) = connection_id(&event) else {
        return response(200);
    };
    let body = event.body.as_deref().unwrap_or("");
    let (request_id, action, result) = match IncomingFrame::parse(body) {
        Ok(frame) => {
            let result = dispatch(services, connection_id, &frame).await;
            (frame.request_id, frame.action, result)
        }
        Err((request_id, err)) => (request_id, String::new(), Err(err)),
    };
    match result {
        Ok(()) => tracing::info!(%action, "frame handled"),
        Err(err) => {
            err.log();
            reply(services, connection_id, &error_frame(request_id.as_deref(), &err)).await;
        }
    }
    response(200)
}

/// Posts a frame back to the connection that sent the request.
async fn reply(services: &Services, connection_id: &str, frame: &str) {
    let outcome = post_with_retry(services.fanout.as_ref(), connection_id, frame).await;
    if outcome != PostOutcome::Delivered {
        tracing::info!(%connection_id, ?outcome, "reply not delivered");
    }
}

/// Every action the WebSocket API understands (also the route keys in the template).
pub const ACTIONS: [&str; 21] = [
    "ping",
    "join_conversations",
    "join_conversation",
    "leave_conversation",
    "send_message",
    "edit_message",
    "delete_message",
    "mark_read",
    "typing",
    "add_reaction",
    "remove_reaction",
    "send_friend_request",
    "cancel_friend_request",
    "accept_friend_request",
    "reject_friend_request",
    "unfriend",
    "set_status",
    "get_friends",
    "get_friend_requests",
    "get_status",
    "get_presence",
];

async fn dispatch(services: &Services, connection_id: &str, frame: &IncomingFrame) -> AppResult<()> {
    let request_id = frame.request_id.as_deref();
    let action = frame.action.as_str();
    if action == "ping" {
        reply(services, connection_id, &reply_frame(events::PONG, request_id, json!({}))).await;
        return Ok(());
    }
    if !ACTIONS.contains(&action) {
        return Err(AppError::UnknownAction(action.chars().take(64).collect()));
    }
    let connection = services.connection(connection_id).await?;
    let me = Identity { user_id: connection.user_id.clone(), username: connection.username.clone() };
    let sender = Sender {
        id: connection.user_id.clone(),
        username: connection.username.clone(),
        avatar: connection.avatar.clone(),
    };
    let origin = Some(connection_id);

    let ack_data = match action {
        "send_message" => {
            let input: SendMessageInput = frame.payload()?;
            input.validate()?;
            // The sender needs the stored message, so this action is acknowledged even without a requestId.
            match services.send_message(sender, input).await? {
                Created::New(appended) => {
                    let ack = ack_frame(request_id, json!({ "message": appended.message }));
                    tokio::join!(reply(services, connection_id, &ack), services.broadcast_message(&appended, origin));
                }
                Created::Existing(appended) => {
                    let ack = ack_frame(request_id, json!({ "message": appended.message, "duplicate": true }));
                    reply(services, connection_id, &ack).await;
                }
            }
            return Ok(());
        }
        "join_conversations" => {
            let input: ConversationIds = frame.payload()?;
            let joined = services.join_conversations(&connection, &input.conversation_ids).await?;
            json!(joined)
        }
        "join_conversation" => {
            let input: ConversationRef = frame.payload()?;
            let joined = services.join_conversations(&connection, std::slice::from_ref(&input.conversation_id)).await?;
            if joined.joined.is_empty() {
                return Err(AppError::NotFound("conversation not found"));
            }
            json!({ "conversationId": input.conversation_id })
        }
        "leave_conversation" => {
            let input: ConversationRef = frame.payload()?;
            services.leave_conversation(connection_id, &input.conversation_id).await?;
            json!({ "conversationId": input.conversation_id })
        }
        "edit_message" => {
            let input: EditMessageInput = frame.payload()?;
            let message = services.edit_message(&me, &input.message_id, &input.new_content, origin).await?;
            json!({ "message": message })
        }
        "delete_message" => {
            let input: MessageRef = frame.payload()?;
            let message = services.delete_message(&me, &input.message_id, origin).await?;
            json!({ "messageId": message.id, "conversationId": message.conversation_id })
        }
        "mark_read" => {
            let input: MarkReadInput = frame.payload()?;
            let target = match (input.message_ids, input.last_message_id) {
                (Some(ids), None) => ReadTarget::Ids(ids),
                (None, Some(last)) => ReadTarget::UpTo(last),
                _ => return Err(AppError::Validation("give either messageIds or lastMessageId".into())),
            };
            json!(services.mark_read(&me, &input.conversation_id, target, origin).await?)
        }
        "typing" => {
            let input: TypingInput = frame.payload()?;
            let sent = services.typing(&me, &input.conversation_id, input.is_typing).await?;
            json!({ "conversationId": input.conversation_id, "broadcast": sent })
        }
        "add_reaction" | "remove_reaction" => {
            let input: ReactionInput = frame.payload()?;
            let add = action == "add_reaction";
            let changed = services.react(&me, &input.message_id, &input.emoji, add, origin).await?;
            json!({ "messageId": input.message_id, "emoji": input.emoji, "changed": changed })
        }
        "send_friend_request"
        | "cancel_friend_request"
        | "accept_friend_request"
        | "reject_friend_request"
        | "unfriend" => {
            let input: UsernameRef = frame.payload()?;
            let outcome = match action {
                "send_friend_request" => services.send_friend_request(&sender, &input.username, origin).await?,
                "cancel_friend_request" => services.cancel_friend_request(&sender, &input.username).await?,
                "accept_friend_request" => services.accept_friend_request(&sender, &input.username, origin).await?,
                "reject_friend_request" => services.reject_friend_request(&sender, &input.username).await?,
                _ => services.unfriend(&sender, &input.username, origin).await?,
            };
            json!(outcome)
        }
        "set_status" => {
            let input: SetStatusInput = frame.payload()?;
            json!({ "status": services.set_status(&sender, &input.status).await? })
        }
        "get_friends" => json!({ "friends": services.friends(&me.user_id).await? }),
        "get_friend_requests" => json!(services.friend_requests(&me.user_id).await?),
        "get_status" => {
            let (status, last_seen) = services.own_status(&me.user_id).await?;
            json!({ "status": status, "lastSeen": last_seen })
        }
        "get_presence" => json!({ "users": services.peers_presence(&me.user_id).await? }),
        _ => unreachable!("every action in ACTIONS is handled"),
    };
    if request_id.is_some() {
        reply(services, connection_id, &ack_frame(request_id, ack_data)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::RecordingFanout;
    use crate::service::{CreateConversation, Credentials};
    use crate::store::ConnectionStore;
    use serde_json::Value;
    use std::sync::Arc;

    fn ws_event(
        route: &str,
        connection_id: &str,
        body: Option<&str>,
        query: Option<Value>,
        headers: Value,
    ) -> ApiGatewayWebsocketProxyRequest {
        serde_json::from_value(json!({
            "headers": headers,
            "queryStringParameters": query,
            "requestContext": {
                "routeKey": route,
                "eventType": if route == "$connect" { "CONNECT" } else if route == "$disconnect" { "DISCONNECT" } else { "MESSAGE" },
                "connectionId": connection_id,
                "domainName": "abc.execute-api.us-east-1.amazonaws.com",
                "stage": "prod",
                "requestId": "req-1",
                "apiId": "abc",
                "connectedAt": 0,
                "requestTimeEpoch": 0
            },
            "body": body,
            "isBase64Encoded": false
        }))
        .expect("valid websocket event")
    }

    struct World {
        services: Services,
        store: Arc<crate::store::memory::InMemoryStore>,
        fanout: Arc<RecordingFanout>,
        alice: String,
        bob: String,
        conversation_id: String,
    }

    /// Alice and Bob with a private conversation; Alice connected as a1 and a2, Bob as b1, Mallory (no member) as m1.
    async fn world() -> World {
        let (services, store, fanout) = Services::in_memory();
        let mut tokens = Vec::new();
        for name in ["alice", "bob", "mallory"] {
            let session = services
                .register(Credentials { username: name.into(), password: "password123".into(), avatar: None })
                .await
                .unwrap();
            tokens.push(session);
        }
        let conversation = services
            .create_conversation(
                &tokens[0].user,
                CreateConversation::Private { participant_id: tokens[1].user.id.clone() },
            )
            .await
            .unwrap();
        let Created::New(conversation) = conversation else { panic!("first create is new") };
        for (connection, session) in [("a1", &tokens[0]), ("a2", &tokens[0]), ("b1", &tokens[1]), ("m1", &tokens[2])] {
            let query = json!({ "token": session.token });
            let res = connect(&services, ws_event("$connect", connection, None, Some(query), json!({}))).await;
            assert_eq!(res.status_code, 200);
        }
        // Bob's connect told Alice's connections he is online; tests start from a clean slate.
        assert_eq!(fanout.frames("a1")[0]["event"], "user_online");
        fanout.clear();
        World {
            alice: tokens[0].user.id.clone(),
            bob: tokens[1].user.id.clone(),
            conversation_id: conversation.id,
            services,
            store,
            fanout,
        }
    }

    async fn send(w: &World, connection_id: &str, body: Value) {
        let res =
            message(&w.services, ws_event("send_message", connection_id, Some(&body.to_string()), None, json!({})))
                .await;
        assert_eq!(res.status_code, 200, "chat actions always answer 200");
    }

    #[tokio::test]
    async fn connect_accepts_query_or_bearer_token_and_refuses_others() {
        let (services, store, _) = Services::in_memory();
        let session = services
            .register(Credentials { username: "alice".into(), password: "password123".into(), avatar: None })
            .await
            .unwrap();
        let by_header = json!({ "Authorization": format!("Bearer {}", session.token) });
        assert_eq!(connect(&services, ws_event("$connect", "c1", None, None, by_header)).await.status_code, 200);
        assert_eq!(store.connection_ids(&session.user.id), vec!["c1".to_string()]);

        for (query, headers) in [
            (None, json!({})),
            (Some(json!({ "token": "garbage" })), json!({})),
            (None, json!({ "Authorization": "Basic abc" })),
        ] {
            let res = connect(&services, ws_event("$connect", "c2", None, query, headers)).await;
            assert_eq!(res.status_code, 401);
        }
        assert!(store.get_connection("c2").await.unwrap().is_none(), "refused connections are not stored");

        assert_eq!(disconnect(&services, ws_event("$disconnect", "c1", None, None, json!({}))).await.status_code, 200);
        assert!(store.connection_ids(&session.user.id).is_empty());
    }

    #[tokio::test]
    async fn send_message_acks_the_sender_and_reaches_every_other_member_connection() {
        let w = world().await;
        send(&w, "a1", json!({"action":"send_message","requestId":"r1","conversationId":w.conversation_id,"content":"hi bob","type":"text"})).await;

        let ack = &w.fanout.frames("a1")[0];
        assert_eq!(ack["event"], "ack");
        assert_eq!(ack["requestId"], "r1");
        assert_eq!(ack["data"]["success"], true);
        assert_eq!(ack["data"]["message"]["content"], "hi bob");
        assert_eq!(ack["data"]["message"]["seq"], 1);
        assert_eq!(ack["data"]["message"]["sender"]["_id"], w.alice.as_str());
        let delivered = json!({"event":"message_status","data":{
            "conversationId": w.conversation_id, "messageId": ack["data"]["message"]["_id"],
            "status": "delivered", "userIds": [w.bob]}});
        assert_eq!(
            w.fanout.frames("a1")[1..],
            *std::slice::from_ref(&delivered),
            "the sender's connection gets no copy"
        );

        for other in ["a2", "b1"] {
            let frames = w.fanout.frames(other);
            assert_eq!(frames[0]["event"], "receive_message");
            assert_eq!(frames[0]["data"]["conversationId"], w.conversation_id.as_str());
            assert_eq!(frames[0]["data"]["message"], ack["data"]["message"]);
        }
        assert_eq!(w.fanout.frames("a2")[1..], [delivered], "all the sender's connections learn of delivery");
        assert_eq!(w.fanout.frames("b1").len(), 1);
        assert!(w.fanout.frames("m1").is_empty(), "non-members receive nothing");
    }

    #[tokio::test]
    async fn seq_increases_without_gaps() {
        let w = world().await;
        for i in 0..5 {
            let from = if i % 2 == 0 { "a1" } else { "b1" };
            send(
                &w,
                from,
                json!({"action":"send_message","conversationId":w.conversation_id,"content":format!("m{i}")}),
            )
            .await;
        }
        let seqs: Vec<u64> = w
            .fanout
            .frames("a2")
            .iter()
            .filter(|f| f["event"] == "receive_message")
            .map(|f| f["data"]["message"]["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn a_retried_client_message_id_returns_the_original_and_broadcasts_nothing() {
        let w = world().await;
        let body = json!({"action":"send_message","requestId":"r1","conversationId":w.conversation_id,"content":"once","clientMessageId":"cm-1"});
        send(&w, "a1", body.clone()).await;
        send(&w, "a1", body).await;
        let acks: Vec<Value> = w.fanout.frames("a1").into_iter().filter(|f| f["event"] == "ack").collect();
        assert_eq!(acks.len(), 2);
        assert_eq!(acks[0]["data"]["message"], acks[1]["data"]["message"]);
        assert_eq!(acks[1]["data"]["duplicate"], true);
        assert_eq!(w.fanout.frames("b1").len(), 1, "one broadcast only");
    }

    #[tokio::test]
    async fn non_members_get_not_found_and_nothing_is_stored() {
        let w = world().await;
        send(
            &w,
            "m1",
            json!({"action":"send_message","requestId":"x","conversationId":w.conversation_id,"content":"let me in"}),
        )
        .await;
        let err = &w.fanout.frames("m1")[0];
        assert_eq!(err["event"], "error");
        assert_eq!(err["requestId"], "x");
        assert_eq!(err["data"]["code"], "not_found");
        assert!(w.fanout.frames("b1").is_empty());
        assert!(w.fanout.frames("a1").is_empty());
    }

    #[tokio::test]
    async fn bad_frames_get_error_frames_and_the_connection_keeps_working() {
        let w = world().await;
        let cases = [
            ("not json", None, "bad_request"),
            (r#"{"action":"fly","requestId":"r2"}"#, Some("r2"), "unknown_action"),
            (r#"{"action":"send_message","requestId":"r3","conversationId":5}"#, Some("r3"), "bad_request"),
            (
                r#"{"action":"send_message","requestId":"r4","conversationId":"c","content":"  "}"#,
                Some("r4"),
                "validation_failed",
            ),
        ];
        for (i, (body, request_id, code)) in cases.iter().enumerate() {
            let res = message(&w.services, ws_event("$default", "b1", Some(body), None, json!({}))).await;
            assert_eq!(res.status_code, 200);
            let frame = &w.fanout.frames("b1")[i];
            assert_eq!(frame["event"], "error", "{body}");
            assert_eq!(frame["data"]["success"], false);
            assert_eq!(frame["data"]["code"], *code, "{body}");
            assert_eq!(frame["requestId"].as_str(), *request_id);
            assert!(frame["data"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        send(&w, "b1", json!({"action":"send_message","conversationId":w.conversation_id,"content":"still here"}))
            .await;
        assert_eq!(w.fanout.frames("b1")[cases.len()]["event"], "ack");
        assert_eq!(w.fanout.frames("a1").last().unwrap()["data"]["message"]["sender"]["_id"], w.bob.as_str());
    }

    #[tokio::test]
    async fn ping_answers_pong_with_the_request_id() {
        let w = world().await;
        message(&w.services, ws_event("ping", "b1", Some(r#"{"action":"ping","requestId":"p"}"#), None, json!({})))
            .await;
        assert_eq!(w.fanout.frames("b1"), vec![json!({"event":"pong","requestId":"p","data":{}})]);
    }

    #[tokio::test]
    async fn a_gone_recipient_connection_is_removed_and_others_still_receive() {
        let w = world().await;
        w.store.backdate_connections(crate::fanout::HANDSHAKE_GRACE_SECS + 1);
        w.fanout.mark_gone("a2");
        send(&w, "b1", json!({"action":"send_message","conversationId":w.conversation_id,"content":"hello"})).await;
        assert_eq!(w.fanout.frames("a1").len(), 1);
        assert_eq!(w.store.connection_ids(&w.alice), vec!["a1".to_string()]);
        assert_eq!(w.store.connection_ids(&w.bob), vec!["b1".to_string()]);
    }

    /// API Gateway answers 410 for a connection whose `$connect` has not returned yet. Members who connect
    /// together post `user_online` to each other during their handshakes; that must not unregister them.
    #[tokio::test]
    async fn a_410_during_a_handshake_does_not_unregister_the_connection() {
        let (services, store, fanout) = Services::in_memory();
        let mut sessions = Vec::new();
        for name in ["alice", "bob"] {
            let credentials = Credentials { username: name.into(), password: "password123".into(), avatar: None };
            sessions.push(services.register(credentials).await.unwrap());
        }
        let (alice, bob) = (&sessions[0], &sessions[1]);
        let private = CreateConversation::Private { participant_id: bob.user.id.clone() };
        let Created::New(conversation) = services.create_conversation(&alice.user, private).await.unwrap() else {
            panic!("first create is new")
        };
        // Bob's handshake is still running when Alice's $connect announces her.
        fanout.mark_gone("b1");
        let query = |token: &str| Some(json!({ "token": token }));
        assert_eq!(
            connect(&services, ws_event("$connect", "b1", None, query(&bob.token), json!({}))).await.status_code,
            200
        );
        assert_eq!(
            connect(&services, ws_event("$connect", "a1", None, query(&alice.token), json!({}))).await.status_code,
            200
        );
        assert_eq!(store.connection_ids(&bob.user.id), vec!["b1".to_string()], "bob is still registered");
        fanout.mark_alive("b1");
        let body = json!({"action":"send_message","conversationId":conversation.id,"content":"hi","requestId":"s"});
        message(&services, ws_event("send_message", "a1", Some(&body.to_string()), None, json!({}))).await;
        assert_eq!(fanout.frames("b1")[0]["event"], "receive_message", "and receives what is sent afterwards");
        let status = json!({"action":"get_status","requestId":"g"});
        message(&services, ws_event("get_status", "b1", Some(&status.to_string()), None, json!({}))).await;
        assert_eq!(fanout.frames("b1")[1]["event"], "ack", "and may act");
    }

    #[tokio::test]
    async fn an_unregistered_connection_is_told_to_reconnect() {
        let w = world().await;
        send(
            &w,
            "ghost",
            json!({"action":"send_message","requestId":"g","conversationId":w.conversation_id,"content":"boo"}),
        )
        .await;
        assert_eq!(w.fanout.frames("ghost")[0]["data"]["code"], "unauthorized");
    }

    async fn act(w: &World, connection_id: &str, body: Value) {
        let res =
            message(&w.services, ws_event("$default", connection_id, Some(&body.to_string()), None, json!({}))).await;
        assert_eq!(res.status_code, 200);
    }

    fn events_of(w: &World, connection_id: &str) -> Vec<String> {
        w.fanout.frames(connection_id).iter().map(|f| f["event"].as_str().unwrap().to_owned()).collect()
    }

    /// Alice sends one message and the frames it caused are forgotten; returns its id.
    async fn one_message(w: &World) -> String {
        send(w, "a1", json!({"action":"send_message","conversationId":w.conversation_id,"content":"original"})).await;
        let id = w.fanout.frames("b1")[0]["data"]["message"]["_id"].as_str().unwrap().to_owned();
        w.fanout.clear();
        id
    }

    #[tokio::test]
    async fn only_the_sender_edits_and_members_hear_of_it() {
        let w = world().await;
        let id = one_message(&w).await;
        act(&w, "b1", json!({"action":"edit_message","requestId":"e0","messageId":id,"newContent":"hacked"})).await;
        assert_eq!(w.fanout.frames("b1")[0]["data"]["code"], "forbidden");
        act(&w, "m1", json!({"action":"edit_message","requestId":"e1","messageId":id,"newContent":"x"})).await;
        assert_eq!(w.fanout.frames("m1")[0]["data"]["code"], "not_found");
        act(&w, "a1", json!({"action":"edit_message","requestId":"e2","messageId":id,"newContent":" "})).await;
        assert_eq!(w.fanout.frames("a1")[0]["data"]["code"], "validation_failed");
        w.fanout.clear();

        act(&w, "a1", json!({"action":"edit_message","requestId":"e3","messageId":id,"newContent":"fixed"})).await;
        let ack = &w.fanout.frames("a1")[0];
        assert_eq!(ack["event"], "ack");
        assert_eq!(ack["data"]["message"]["content"], "fixed");
        assert_eq!(ack["data"]["message"]["edited"], true);
        for other in ["a2", "b1"] {
            let frame = &w.fanout.frames(other)[0];
            assert_eq!(frame["event"], "message_edited");
            assert_eq!(frame["data"]["messageId"], id.as_str());
            assert_eq!(frame["data"]["newContent"], "fixed");
            assert_eq!(frame["data"]["conversationId"], w.conversation_id.as_str());
            assert_eq!(frame["data"]["editedAt"], ack["data"]["message"]["editedAt"]);
        }
        assert!(w.fanout.frames("m1").is_empty());
    }

    #[tokio::test]
    async fn soft_delete_replaces_content_and_freezes_the_message() {
        let w = world().await;
        let id = one_message(&w).await;
        act(&w, "a1", json!({"action":"delete_message","requestId":"d","messageId":id})).await;
        assert_eq!(w.fanout.frames("a1")[0]["data"]["messageId"], id.as_str());
        for other in ["a2", "b1"] {
            assert_eq!(
                w.fanout.frames(other),
                vec![json!({"event":"message_deleted","data":{"messageId":id,"conversationId":w.conversation_id}})]
            );
        }
        let (cid, seq) = crate::model::parse_message_id(&id).unwrap();
        let stored = w.services.store.get_message(cid, seq).await.unwrap().unwrap();
        assert_eq!(stored.content, "This message was deleted");
        assert!(stored.deleted && stored.deleted_at.is_some());
        w.fanout.clear();
        act(&w, "a1", json!({"action":"edit_message","requestId":"e","messageId":id,"newContent":"back"})).await;
        assert_eq!(w.fanout.frames("a1")[0]["data"]["code"], "conflict");
        act(&w, "b1", json!({"action":"add_reaction","requestId":"r","messageId":id,"emoji":"👍"})).await;
        assert_eq!(w.fanout.frames("b1")[0]["data"]["code"], "conflict");
    }

    #[tokio::test]
    async fn mark_read_moves_the_pointer_and_notifies_members_once() {
        let w = world().await;
        let first = one_message(&w).await;
        let id = one_message(&w).await;
        act(
            &w,
            "b1",
            json!({"action":"mark_read","requestId":"r","conversationId":w.conversation_id,"lastMessageId":id}),
        )
        .await;
        let ack = &w.fanout.frames("b1")[0];
        assert_eq!(ack["data"]["lastReadSeq"], 2);
        assert_eq!(ack["data"]["messageIds"], json!([first, id]));
        for alice in ["a1", "a2"] {
            let frames = w.fanout.frames(alice);
            assert_eq!(frames[0]["event"], "messages_read");
            assert_eq!(frames[0]["data"]["readBy"], w.bob.as_str());
            assert_eq!(frames[0]["data"]["messageIds"], json!([first, id]));
            assert_eq!(
                frames[1],
                json!({"event":"message_status","data":{"conversationId":w.conversation_id,"messageId":id,"status":"read","userId":w.bob}})
            );
        }
        w.fanout.clear();
        act(
            &w,
            "b1",
            json!({"action":"mark_read","requestId":"r2","conversationId":w.conversation_id,"messageIds":[first]}),
        )
        .await;
        assert_eq!(w.fanout.frames("b1")[0]["data"]["messageIds"], json!([]), "pointers never move back");
        assert!(w.fanout.frames("a1").is_empty());
        act(&w, "b1", json!({"action":"mark_read","requestId":"r3","conversationId":w.conversation_id,"messageIds":["elsewhere-1"]})).await;
        assert_eq!(w.fanout.frames("b1")[1]["data"]["code"], "not_found");
        act(
            &w,
            "m1",
            json!({"action":"mark_read","requestId":"r4","conversationId":w.conversation_id,"lastMessageId":id}),
        )
        .await;
        assert_eq!(w.fanout.frames("m1")[0]["data"]["code"], "not_found");
    }

    #[tokio::test]
    async fn reactions_broadcast_only_changes() {
        let w = world().await;
        let id = one_message(&w).await;
        let add = json!({"action":"add_reaction","requestId":"x","messageId":id,"emoji":"🎉"});
        act(&w, "b1", add.clone()).await;
        act(&w, "b1", add).await;
        let acks: Vec<Value> = w.fanout.frames("b1").iter().map(|f| f["data"]["changed"].clone()).collect();
        assert_eq!(acks, vec![json!(true), json!(false)]);
        let expected = json!({"event":"reaction_added","data":{"messageId":id,"conversationId":w.conversation_id,"emoji":"🎉","userId":w.bob}});
        assert_eq!(w.fanout.frames("a1"), vec![expected.clone()]);
        assert_eq!(w.fanout.frames("a2"), vec![expected]);
        act(&w, "b1", json!({"action":"remove_reaction","messageId":id,"emoji":"🎉"})).await;
        assert_eq!(w.fanout.frames("a1")[1]["event"], "reaction_removed");
        act(&w, "b1", json!({"action":"add_reaction","requestId":"y","messageId":id,"emoji":"ok"})).await;
        assert_eq!(w.fanout.frames("b1").last().unwrap()["data"]["code"], "validation_failed");
        assert!(w.fanout.frames("m1").is_empty());
    }

    #[tokio::test]
    async fn typing_reaches_joined_connections_of_others_and_is_throttled() {
        let w = world().await;
        act(
            &w,
            "b1",
            json!({"action":"join_conversations","requestId":"j","conversationIds":[w.conversation_id, "nope"]}),
        )
        .await;
        assert_eq!(
            w.fanout.frames("b1")[0]["data"],
            json!({"success":true,"joined":[w.conversation_id],"rejected":["nope"]})
        );
        act(&w, "a2", json!({"action":"join_conversation","conversationId":w.conversation_id})).await;
        act(&w, "m1", json!({"action":"join_conversation","requestId":"m","conversationId":w.conversation_id})).await;
        assert_eq!(w.fanout.frames("m1")[0]["data"]["code"], "not_found");
        w.fanout.clear();

        let typing = json!({"action":"typing","conversationId":w.conversation_id,"isTyping":true});
        act(&w, "a1", typing.clone()).await;
        act(&w, "a1", typing).await; // within 2 s: swallowed
        act(&w, "a1", json!({"action":"typing","conversationId":w.conversation_id,"isTyping":false})).await;
        let states: Vec<Value> = w.fanout.frames("b1").iter().map(|f| f["data"]["isTyping"].clone()).collect();
        assert_eq!(states, vec![json!(true), json!(false)]);
        assert_eq!(w.fanout.frames("b1")[0]["data"]["username"], "alice");
        assert!(w.fanout.frames("a2").is_empty(), "the typer's own connections are not told");
        assert!(w.fanout.frames("a1").is_empty(), "no requestId, no ack");

        act(&w, "b1", json!({"action":"leave_conversation","conversationId":w.conversation_id})).await;
        act(&w, "a1", json!({"action":"typing","conversationId":w.conversation_id,"isTyping":true})).await;
        assert_eq!(w.fanout.frames("b1").len(), 2, "left connections hear nothing");
    }

    #[tokio::test]
    async fn friend_requests_flow_between_the_two_users_only() {
        let w = world().await;
        let req = |action: &str, user: &str| json!({"action":action,"requestId":action,"username":user});
        act(&w, "a1", req("send_friend_request", "mallory")).await;
        assert_eq!(w.fanout.frames("a1")[0]["data"]["result"], "requested");
        let got = &w.fanout.frames("m1")[0];
        assert_eq!(got["event"], "friend_request_received");
        assert_eq!(got["data"]["from"]["username"], "alice");
        act(&w, "a1", req("send_friend_request", "mallory")).await;
        assert_eq!(w.fanout.frames("a1")[1]["data"]["code"], "conflict");
        act(&w, "a1", req("send_friend_request", "nobody")).await;
        assert_eq!(w.fanout.frames("a1")[2]["data"]["code"], "not_found");
        act(&w, "a1", req("send_friend_request", "alice")).await;
        assert_eq!(w.fanout.frames("a1")[3]["data"]["code"], "validation_failed");
        w.fanout.clear();

        act(&w, "m1", req("accept_friend_request", "alice")).await;
        assert_eq!(w.fanout.frames("m1")[0]["data"]["result"], "accepted");
        for alice in ["a1", "a2"] {
            assert_eq!(events_of(&w, alice), ["friend_request_accepted", "friendship_created"]);
            assert_eq!(w.fanout.frames(alice)[1]["data"]["friend"]["username"], "mallory");
        }
        assert!(w.fanout.frames("b1").is_empty(), "bystanders hear nothing");
        w.fanout.clear();

        act(&w, "a1", req("unfriend", "mallory")).await;
        assert_eq!(events_of(&w, "m1"), ["friendship_deleted"]);
        assert_eq!(events_of(&w, "a2"), ["friendship_deleted"]);
        act(&w, "a1", req("unfriend", "mallory")).await;
        assert_eq!(w.fanout.frames("a1")[1]["data"]["code"], "not_found");
        w.fanout.clear();

        act(&w, "b1", req("send_friend_request", "mallory")).await;
        act(&w, "b1", req("cancel_friend_request", "mallory")).await;
        assert_eq!(events_of(&w, "m1"), ["friend_request_received", "friend_request_cancelled"]);
        act(&w, "b1", req("send_friend_request", "mallory")).await;
        act(&w, "m1", req("reject_friend_request", "bob")).await;
        assert_eq!(events_of(&w, "b1")[3], "friend_request_rejected");
        act(&w, "m1", req("accept_friend_request", "bob")).await;
        assert_eq!(w.fanout.frames("m1").last().unwrap()["data"]["code"], "not_found");
    }

    #[tokio::test]
    async fn crossing_requests_become_a_friendship() {
        let w = world().await;
        act(&w, "a1", json!({"action":"send_friend_request","username":"bob"})).await;
        act(&w, "b1", json!({"action":"send_friend_request","requestId":"x","username":"alice"})).await;
        assert_eq!(w.fanout.frames("b1").last().unwrap()["data"]["result"], "accepted");
        assert_eq!(w.services.store.relation(&w.alice, &w.bob).await.unwrap(), crate::store::Relation::Friends);
    }

    #[tokio::test]
    async fn presence_follows_first_and_last_connection_and_status() {
        let w = world().await;
        disconnect(&w.services, ws_event("$disconnect", "b1", None, None, json!({}))).await;
        for alice in ["a1", "a2"] {
            let frame = &w.fanout.frames(alice)[0];
            assert_eq!(frame["event"], "user_offline");
            assert_eq!(frame["data"]["userId"], w.bob.as_str());
            assert!(frame["data"]["lastSeen"].is_string());
        }
        assert!(w.fanout.frames("m1").is_empty(), "strangers do not see presence");
        disconnect(&w.services, ws_event("$disconnect", "a2", None, None, json!({}))).await;
        assert_eq!(w.fanout.frames("a1").len(), 1, "alice still has a connection: no event");

        // Friends see status changes; invisible looks offline.
        act(&w, "a1", json!({"action":"send_friend_request","username":"mallory"})).await;
        act(&w, "m1", json!({"action":"accept_friend_request","username":"alice"})).await;
        w.fanout.clear();
        act(&w, "a1", json!({"action":"set_status","requestId":"s","status":"away"})).await;
        assert_eq!(w.fanout.frames("a1")[0]["data"]["status"], "away");
        assert_eq!(
            w.fanout.frames("m1"),
            vec![json!({"event":"status_changed","data":{"userId":w.alice,"username":"alice","status":"away"}})]
        );
        act(&w, "a1", json!({"action":"set_status","status":"invisible"})).await;
        assert_eq!(events_of(&w, "m1")[1], "user_offline");
        act(&w, "a1", json!({"action":"set_status","status":"in a meeting"})).await;
        assert_eq!(events_of(&w, "m1")[2..], ["user_online", "status_changed"]);
        act(&w, "m1", json!({"action":"get_friends","requestId":"f"})).await;
        let friends = w.fanout.frames("m1").last().unwrap()["data"]["friends"].clone();
        assert_eq!(friends[0]["username"], "alice");
        assert_eq!(friends[0]["online"], true);
        assert_eq!(friends[0]["status"], "in a meeting");
    }

    #[test]
    fn the_template_routes_exactly_the_known_actions() {
        let template = include_str!("../../../infra/template.yaml");
        let routes: std::collections::BTreeSet<&str> = template
            .lines()
            .filter_map(|l| l.trim().strip_prefix("RouteKey: "))
            .filter(|key| !key.contains(' ')) // HTTP routes are "METHOD /path"
            .collect();
        let mut expected: std::collections::BTreeSet<&str> = ACTIONS.into_iter().collect();
        expected.extend(["$connect", "$disconnect", "$default"]);
        assert_eq!(routes, expected);
    }
}

//! WebSocket API handlers: `$connect`, `$disconnect`, and every chat action (including `$default`).
//!
//! Replies go through PostToConnection, never through the Lambda's return value: API Gateway only forwards a
//! return body when a route response is configured, and clients must see the same frames everywhere.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use serde_json::json;

use crate::auth::bearer_token;
use crate::error::{AppError, AppResult};
use crate::fanout::{PostOutcome, post_with_retry};
use crate::model::Sender;
use crate::protocol::{IncomingFrame, SendMessageInput, ack_frame, error_frame, events, reply_frame};
use crate::service::Services;
use crate::store::Created;

fn response(status: u16) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response
}

fn connection_id(event: &ApiGatewayWebsocketProxyRequest) -> AppResult<&str> {
    event.request_context.connection_id.as_deref().ok_or_else(|| AppError::internal("event without connectionId"))
}

/// `$connect`: a valid token (query `token`, or `Authorization: Bearer`) admits the connection; anything else
/// is refused at the handshake with 401, so no unauthenticated socket ever opens.
pub async fn connect(services: &Services, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
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
    let Ok(connection_id) = connection_id(&event) else {
        return response(200);
    };
    let body = event.body.as_deref().unwrap_or("");
    let (request_id, result) = match IncomingFrame::parse(body) {
        Ok(frame) => {
            let result = dispatch(services, connection_id, &frame).await;
            (frame.request_id, result)
        }
        Err((request_id, err)) => (request_id, Err(err)),
    };
    if let Err(err) = result {
        err.log();
        reply(services, connection_id, &error_frame(request_id.as_deref(), &err)).await;
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

async fn dispatch(services: &Services, connection_id: &str, frame: &IncomingFrame) -> AppResult<()> {
    let request_id = frame.request_id.as_deref();
    match frame.action.as_str() {
        "ping" => {
            reply(services, connection_id, &reply_frame(events::PONG, request_id, json!({}))).await;
            Ok(())
        }
        "send_message" => {
            let input: SendMessageInput = frame.payload()?;
            input.validate()?;
            let connection = services.connection(connection_id).await?;
            let sender = Sender { id: connection.user_id, username: connection.username, avatar: connection.avatar };
            match services.send_message(sender, input).await? {
                Created::New(appended) => {
                    let ack = ack_frame(request_id, json!({ "message": appended.message }));
                    tokio::join!(
                        reply(services, connection_id, &ack),
                        services.broadcast_message(&appended, Some(connection_id))
                    );
                }
                Created::Existing(appended) => {
                    let ack = ack_frame(request_id, json!({ "message": appended.message, "duplicate": true }));
                    reply(services, connection_id, &ack).await;
                }
            }
            Ok(())
        }
        other => Err(AppError::UnknownAction(other.chars().take(64).collect())),
    }
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
        fanout: Arc<RecordingFanout>,
        alice: String,
        bob: String,
        conversation_id: String,
    }

    /// Alice and Bob with a private conversation; Alice connected as a1 and a2, Bob as b1, Mallory (no member) as m1.
    async fn world() -> World {
        let (services, _, fanout) = Services::in_memory();
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
        World {
            alice: tokens[0].user.id.clone(),
            bob: tokens[1].user.id.clone(),
            conversation_id: conversation.id,
            services,
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
        assert_eq!(store.connection_ids_of_user(&session.user.id).await.unwrap(), vec!["c1".to_string()]);

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
        assert!(store.connection_ids_of_user(&session.user.id).await.unwrap().is_empty());
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
        assert_eq!(w.fanout.frames("a1").len(), 1, "the sending connection gets the ack, not a copy");

        for other in ["a2", "b1"] {
            let frames = w.fanout.frames(other);
            assert_eq!(frames.len(), 1, "{other}");
            assert_eq!(frames[0]["event"], "receive_message");
            assert_eq!(frames[0]["data"]["conversationId"], w.conversation_id.as_str());
            assert_eq!(frames[0]["data"]["message"], ack["data"]["message"]);
        }
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
        let seqs: Vec<u64> =
            w.fanout.frames("a2").iter().map(|f| f["data"]["message"]["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn a_retried_client_message_id_returns_the_original_and_broadcasts_nothing() {
        let w = world().await;
        let body = json!({"action":"send_message","requestId":"r1","conversationId":w.conversation_id,"content":"once","clientMessageId":"cm-1"});
        send(&w, "a1", body.clone()).await;
        send(&w, "a1", body).await;
        let acks = w.fanout.frames("a1");
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
        assert_eq!(w.fanout.frames("b1").last().unwrap()["event"], "ack");
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
        w.fanout.mark_gone("a2");
        send(&w, "b1", json!({"action":"send_message","conversationId":w.conversation_id,"content":"hello"})).await;
        assert_eq!(w.fanout.frames("a1").len(), 1);
        assert_eq!(w.services.store.connection_ids_of_user(&w.alice).await.unwrap(), vec!["a1".to_string()]);
        assert_eq!(w.services.store.connection_ids_of_user(&w.bob).await.unwrap(), vec!["b1".to_string()]);
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
}

//! HTTP API handler (`lambda_http`, payload format 2.0): routes, bodies and the JSON error shape
//! `{"error":{"code":…,"message":…}}`.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::auth::bearer_token;
use crate::error::{AppError, AppResult};
use crate::model::User;
use crate::service::{CreateConversation, Credentials, Services};
use crate::store::Created;

/// Request bodies are small JSON documents; anything bigger is refused before parsing.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The parts of a request the routes use, owned so the handler future holds no borrow of the event.
struct HttpRequest {
    method: Method,
    path: String,
    authorization: Option<String>,
    body: Vec<u8>,
}

impl From<Request> for HttpRequest {
    fn from(request: Request) -> Self {
        let (parts, body) = request.into_parts();
        HttpRequest {
            path: parts.uri.path().trim_end_matches('/').to_owned(),
            authorization: parts.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned),
            method: parts.method,
            body: body.as_ref().to_vec(),
        }
    }
}

/// Handles one request. Errors become JSON error responses here; nothing propagates to the runtime.
pub async fn handle(services: &Services, request: Request) -> Response<Body> {
    let result = route(services, HttpRequest::from(request)).await;
    match result {
        Ok((status, body)) => json_response(status, &body),
        Err(err) => {
            err.log();
            error_response(&err)
        }
    }
}

type Reply = (StatusCode, serde_json::Value);

async fn route(services: &Services, request: HttpRequest) -> AppResult<Reply> {
    let segments: Vec<&str> = request.path.split('/').filter(|s| !s.is_empty()).collect();
    match (&request.method, segments.as_slice()) {
        (&Method::POST, ["auth", "register"]) => {
            let session = services.register(body::<Credentials>(&request)?).await?;
            Ok((StatusCode::CREATED, to_json(&session)?))
        }
        (&Method::POST, ["auth", "login"]) => {
            let session = services.login(body::<Credentials>(&request)?).await?;
            Ok((StatusCode::OK, to_json(&session)?))
        }
        (&Method::GET, ["users", "me"]) => {
            let me = caller(services, &request).await?;
            Ok((StatusCode::OK, to_json(&me)?))
        }
        (&Method::POST, ["conversations"]) => {
            let me = caller(services, &request).await?;
            let input = body::<CreateConversation>(&request)?;
            Ok(match services.create_conversation(&me, input).await? {
                Created::New(view) => (StatusCode::CREATED, to_json(&view)?),
                Created::Existing(view) => (StatusCode::OK, to_json(&view)?),
            })
        }
        _ => Err(AppError::NotFound("no such route")),
    }
}

async fn caller(services: &Services, request: &HttpRequest) -> AppResult<User> {
    services.authenticate(bearer_token(request.authorization.as_deref())).await
}

fn body<T: DeserializeOwned>(request: &HttpRequest) -> AppResult<T> {
    let bytes = request.body.as_slice();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(AppError::PayloadTooLarge(format!("request bodies are limited to {MAX_BODY_BYTES} bytes")));
    }
    if bytes.is_empty() {
        return Err(AppError::BadRequest("request body must be a JSON object".into()));
    }
    serde_json::from_slice(bytes).map_err(|e| AppError::BadRequest(format!("invalid request body: {e}")))
}

fn to_json(value: &impl Serialize) -> AppResult<serde_json::Value> {
    serde_json::to_value(value).map_err(AppError::internal)
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .expect("static response parts are valid")
}

fn error_response(err: &AppError) -> Response<Body> {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &json!({ "error": { "code": err.code(), "message": err.public_message() } }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    async fn call(
        services: &Services,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut builder = lambda_http::http::Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let body = body.map(|b| Body::Text(b.to_string())).unwrap_or(Body::Empty);
        let response = handle(services, builder.body(body).unwrap()).await;
        assert_eq!(response.headers()["content-type"], "application/json");
        let status = response.status().as_u16();
        let json = match response.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("unexpected body {other:?}"),
        };
        (status, json)
    }

    fn assert_error(status: u16, body: &Value, want_status: u16, code: &str) {
        assert_eq!(status, want_status, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    #[tokio::test]
    async fn register_login_and_me() {
        let (services, _, _) = Services::in_memory();
        let creds = json!({"username":"Alice","password":"password123","avatar":"https://img/a.png"});
        let (status, body) = call(&services, "POST", "/auth/register", None, Some(creds.clone())).await;
        assert_eq!(status, 201);
        assert_eq!(body["user"]["username"], "Alice");
        assert!(body["user"].get("passwordHash").is_none());
        let (status, dup) =
            call(&services, "POST", "/auth/register", None, Some(json!({"username":"alice","password":"password456"})))
                .await;
        assert_error(status, &dup, 409, "conflict");

        let (status, login) = call(&services, "POST", "/auth/login", None, Some(creds)).await;
        assert_eq!(status, 200);
        let token = login["token"].as_str().unwrap();
        let (status, me) = call(&services, "GET", "/users/me", Some(token), None).await;
        assert_eq!(status, 200);
        assert_eq!(me["_id"], body["user"]["_id"]);

        let wrong =
            call(&services, "POST", "/auth/login", None, Some(json!({"username":"alice","password":"nope-nope"})))
                .await;
        let unknown =
            call(&services, "POST", "/auth/login", None, Some(json!({"username":"nobody","password":"nope-nope"})))
                .await;
        assert_error(wrong.0, &wrong.1, 401, "unauthorized");
        assert_eq!(wrong, unknown, "same answer whether the user exists or not");
    }

    #[tokio::test]
    async fn input_errors_have_codes() {
        let (services, _, _) = Services::in_memory();
        let (s, b) =
            call(&services, "POST", "/auth/register", None, Some(json!({"username":"a b","password":"password123"})))
                .await;
        assert_error(s, &b, 422, "validation_failed");
        let (s, b) =
            call(&services, "POST", "/auth/register", None, Some(json!({"username":"alice","password":"short"}))).await;
        assert_error(s, &b, 422, "validation_failed");
        let (s, b) = call(&services, "POST", "/auth/register", None, None).await;
        assert_error(s, &b, 400, "bad_request");
        let (s, b) = call(&services, "POST", "/auth/register", None, Some(json!(["x"]))).await;
        assert_error(s, &b, 400, "bad_request");
        let (s, b) = call(&services, "GET", "/users/me", None, None).await;
        assert_error(s, &b, 401, "unauthorized");
        let (s, b) = call(&services, "GET", "/users/me", Some("forged"), None).await;
        assert_error(s, &b, 401, "unauthorized");
        let (s, b) = call(&services, "GET", "/nope", None, None).await;
        assert_error(s, &b, 404, "not_found");
        let big = json!({"username":"alice","password":"x".repeat(MAX_BODY_BYTES)});
        let (s, b) = call(&services, "POST", "/auth/register", None, Some(big)).await;
        assert_error(s, &b, 413, "payload_too_large");
    }

    #[tokio::test]
    async fn private_conversations_are_unique_per_pair() {
        let (services, _, _) = Services::in_memory();
        let mut users = Vec::new();
        for name in ["alice", "bob"] {
            let (_, s) = call(
                &services,
                "POST",
                "/auth/register",
                None,
                Some(json!({"username":name,"password":"password123"})),
            )
            .await;
            users.push(s);
        }
        let (alice_token, bob_token) = (users[0]["token"].as_str().unwrap(), users[1]["token"].as_str().unwrap());
        let bob_id = users[1]["user"]["_id"].as_str().unwrap();
        let alice_id = users[0]["user"]["_id"].as_str().unwrap();

        let (s, created) = call(
            &services,
            "POST",
            "/conversations",
            Some(alice_token),
            Some(json!({"type":"private","participantId":bob_id})),
        )
        .await;
        assert_eq!(s, 201);
        assert_eq!(created["type"], "private");
        let names: Vec<&str> =
            created["members"].as_array().unwrap().iter().map(|m| m["username"].as_str().unwrap()).collect();
        assert_eq!(names, ["alice", "bob"]);
        let (s, again) = call(
            &services,
            "POST",
            "/conversations",
            Some(bob_token),
            Some(json!({"type":"private","participantId":alice_id})),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(again["_id"], created["_id"]);

        let (s, b) = call(
            &services,
            "POST",
            "/conversations",
            Some(alice_token),
            Some(json!({"type":"private","participantId":alice_id})),
        )
        .await;
        assert_error(s, &b, 422, "validation_failed");
        let (s, b) = call(
            &services,
            "POST",
            "/conversations",
            Some(alice_token),
            Some(json!({"type":"private","participantId":"nobody"})),
        )
        .await;
        assert_error(s, &b, 404, "not_found");
        let (s, b) =
            call(&services, "POST", "/conversations", Some(alice_token), Some(json!({"type":"channel"}))).await;
        assert_error(s, &b, 400, "bad_request");
    }
}

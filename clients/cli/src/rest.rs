//! The HTTP API (docs/openapi.yaml) as the CLI uses it: JSON in, JSON out, bearer token, bounded by a timeout,
//! and every refusal turned into a `CliError::Http` carrying the server's `code` and `message`. An `https://` base
//! (a deployed stack) goes over TLS with the config of src/tls.rs.

use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{CliError, CliResult};
use crate::tls;

/// How long one HTTP request may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Rest {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Rest {
    pub fn new(base: &str, token: Option<String>) -> CliResult<Rest> {
        let builder = reqwest::Client::builder().timeout(HTTP_TIMEOUT);
        let builder = if tls::is_secure(base) {
            builder.tls_backend_preconfigured(tls::client_config()?.as_ref().clone())
        } else {
            // A plain-http base (a local stack) trusts no certificate, so it never reads the system's roots
            // (reqwest's own default would load them, and fail on a machine without any).
            builder.tls_certs_only([])
        };
        let client = builder.build().map_err(|e| CliError::Setup(format!("cannot build the HTTP client: {e}")))?;
        Ok(Rest { client, base: base.trim_end_matches('/').to_owned(), token })
    }

    pub async fn register(&self, username: &str, password: &str) -> CliResult<Value> {
        self.call("POST", "/auth/register", Some(json!({ "username": username, "password": password }))).await
    }

    pub async fn login(&self, username: &str, password: &str) -> CliResult<Value> {
        self.call("POST", "/auth/login", Some(json!({ "username": username, "password": password }))).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> CliResult<Value> {
        self.call("POST", "/auth/refresh", Some(json!({ "refreshToken": refresh_token }))).await
    }

    pub async fn logout(&self) -> CliResult<Value> {
        self.call("POST", "/auth/logout", None).await
    }

    pub async fn me(&self) -> CliResult<Value> {
        self.call("GET", "/users/me", None).await
    }

    pub async fn search_users(&self, search: &str, limit: Option<u32>) -> CliResult<Value> {
        let query = query_string(&[("search", Some(search.to_owned())), ("limit", limit.map(|n| n.to_string()))]);
        self.call("GET", &format!("/users{query}"), None).await
    }

    pub async fn conversations(&self, limit: Option<u32>) -> CliResult<Value> {
        let query = query_string(&[("limit", limit.map(|n| n.to_string()))]);
        self.call("GET", &format!("/conversations{query}"), None).await
    }

    pub async fn create_private(&self, participant_id: &str) -> CliResult<Value> {
        self.call("POST", "/conversations", Some(json!({ "type": "private", "participantId": participant_id }))).await
    }

    pub async fn create_group(&self, name: &str, participant_ids: &[String]) -> CliResult<Value> {
        let body = json!({ "type": "group", "name": name, "participantIds": participant_ids });
        self.call("POST", "/conversations", Some(body)).await
    }

    /// One page of history: newest first, or oldest first with `after_seq`.
    pub async fn history(
        &self,
        conversation_id: &str,
        limit: Option<u32>,
        after_seq: Option<u64>,
        cursor: Option<&str>,
    ) -> CliResult<Value> {
        let query = query_string(&[
            ("limit", limit.map(|n| n.to_string())),
            ("afterSeq", after_seq.map(|n| n.to_string())),
            ("cursor", cursor.map(str::to_owned)),
        ]);
        self.call("GET", &format!("/conversations/{}/messages{query}", encode(conversation_id)), None).await
    }

    /// A signed form for one file (`POST /conversations/{id}/uploads`).
    pub async fn create_upload(
        &self,
        conversation_id: &str,
        file_name: &str,
        content_type: &str,
        size: u64,
    ) -> CliResult<Value> {
        let body = json!({ "fileName": file_name, "contentType": content_type, "size": size });
        self.call("POST", &format!("/conversations/{}/uploads", encode(conversation_id)), Some(body)).await
    }

    /// Posts `bytes` with an issued form (`{url, fields}`), straight to storage; the file goes last, as S3 needs.
    pub async fn post_form(&self, form: &Value, bytes: Vec<u8>) -> CliResult<()> {
        let url = form["url"].as_str().ok_or_else(|| CliError::Connection("the upload form has no url".into()))?;
        let mut multipart = reqwest::multipart::Form::new();
        for (name, value) in form["fields"].as_object().into_iter().flatten() {
            multipart = multipart.text(name.clone(), value.as_str().unwrap_or_default().to_owned());
        }
        multipart = multipart.part("file", reqwest::multipart::Part::bytes(bytes).file_name("upload"));
        let response = self
            .client
            .post(url)
            .multipart(multipart)
            .send()
            .await
            .map_err(|e| CliError::Connection(format!("upload: cannot reach storage: {}", chain(&e))))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        // S3 answers `<Error><Code>EntityTooLarge</Code><Message>…</Message></Error>`.
        let text = response.text().await.unwrap_or_default();
        let tag = |name: &str| {
            text.split(&format!("<{name}>")).nth(1).and_then(|rest| rest.split('<').next()).unwrap_or("").to_owned()
        };
        Err(CliError::Http { operation: "POST upload form".into(), status, code: tag("Code"), message: tag("Message") })
    }

    /// One request; the parsed JSON body of a 2xx answer, else the server's error.
    pub async fn set_conversation_notifications(
        &self,
        conversation_id: &str,
        level: &str,
        until: Option<&str>,
    ) -> CliResult<Value> {
        let path = format!("/conversations/{}/notifications", encode(conversation_id));
        self.call("PUT", &path, Some(json!({ "level": level, "until": until }))).await
    }

    pub async fn notification_preferences(&self) -> CliResult<Value> {
        self.call("GET", "/users/me/notifications", None).await
    }

    pub async fn set_notification_preferences(&self, preferences: Value) -> CliResult<Value> {
        self.call("PUT", "/users/me/notifications", Some(preferences)).await
    }

    /// Asks for a copy of the user's data; the export's status (a request within the hour answers the last one).
    pub async fn request_export(&self) -> CliResult<Value> {
        self.call("POST", "/users/me/export", None).await
    }

    pub async fn export_status(&self) -> CliResult<Value> {
        self.call("GET", "/users/me/export", None).await
    }

    /// The bytes behind a link the API signed (an export's `url`): a plain `GET`, without the token.
    pub async fn download(&self, url: &str) -> CliResult<Vec<u8>> {
        let failed = |e: reqwest::Error| CliError::Connection(format!("download: {}", chain(&e)));
        let response = self.client.get(url).send().await.map_err(failed)?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let message = "the link did not give the file; ask again for a fresh one".to_owned();
            return Err(CliError::Http { operation: "GET download".into(), status, code: "download".into(), message });
        }
        Ok(response.bytes().await.map_err(failed)?.to_vec())
    }

    /// `target` is `{"type": "message", "messageId"}` or `{"type": "user", "userId"}`.
    pub async fn report(&self, target: Value, reason: &str, details: Option<&str>) -> CliResult<Value> {
        self.call("POST", "/reports", Some(json!({ "target": target, "reason": reason, "details": details }))).await
    }

    pub async fn open_reports(&self, limit: Option<u32>, cursor: Option<String>) -> CliResult<Value> {
        let query = query_string(&[("limit", limit.map(|n| n.to_string())), ("cursor", cursor)]);
        self.call("GET", &format!("/moderation/reports{query}"), None).await
    }

    pub async fn resolve_reports(&self, target: Value, outcome: &str, note: Option<&str>) -> CliResult<Value> {
        let body = json!({ "target": target, "outcome": outcome, "note": note });
        self.call("POST", "/moderation/reports/resolve", Some(body)).await
    }

    pub async fn moderate_message(&self, message_id: &str) -> CliResult<Value> {
        self.call("DELETE", &format!("/moderation/messages/{}", encode(message_id)), None).await
    }

    pub async fn suspend(&self, user_id: &str, reason: Option<&str>) -> CliResult<Value> {
        let path = format!("/moderation/users/{}/suspension", encode(user_id));
        self.call("PUT", &path, Some(json!({ "reason": reason }))).await
    }

    pub async fn unsuspend(&self, user_id: &str) -> CliResult<Value> {
        self.call("DELETE", &format!("/moderation/users/{}/suspension", encode(user_id)), None).await
    }

    pub async fn audit(&self, month: Option<&str>, limit: Option<u32>) -> CliResult<Value> {
        let query = query_string(&[("month", month.map(str::to_owned)), ("limit", limit.map(|n| n.to_string()))]);
        self.call("GET", &format!("/moderation/audit{query}"), None).await
    }

    async fn call(&self, method: &str, path_and_query: &str, body: Option<Value>) -> CliResult<Value> {
        let path = path_and_query.split('?').next().unwrap_or(path_and_query);
        let operation = format!("{method} {path}");
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| CliError::Setup(format!("{operation}: bad method: {e}")))?;
        let mut request = self.client.request(method, format!("{}{path_and_query}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            let reason =
                if e.is_timeout() { format!("no answer within {}s", HTTP_TIMEOUT.as_secs()) } else { chain(&e) };
            CliError::Connection(format!("{operation}: cannot reach {}: {reason}", self.base))
        })?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| CliError::Connection(format!("{operation}: the answer broke off: {}", chain(&e))))?;
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        if (200..300).contains(&status) {
            return parsed.ok_or_else(|| CliError::Connection(format!("{operation}: the answer is not JSON: {text}")));
        }
        let error = parsed.as_ref().map(|body| &body["error"]);
        let code = error.and_then(|e| e["code"].as_str()).unwrap_or("http_error").to_owned();
        let message = error.and_then(|e| e["message"].as_str()).map(str::to_owned).unwrap_or_else(|| {
            let snippet: String = text.trim().chars().take(200).collect();
            if snippet.is_empty() { "no details".into() } else { snippet }
        });
        Err(CliError::Http { operation, status, code, message })
    }
}

/// An error and its causes, `: `-separated (reqwest's own message is often just "error sending request").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `?a=1&b=2` from the pairs that have a value, percent-encoded; empty when none has.
pub fn query_string(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|value| format!("{name}={}", encode(value))))
        .collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

/// Percent-encoding of a path segment or query value (RFC 3986: everything but the unreserved characters).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_skip_missing_values_and_encode_the_rest() {
        assert_eq!(query_string(&[("limit", None)]), "");
        assert_eq!(
            query_string(&[("search", Some("al ice&x=é".into())), ("limit", Some("5".into()))]),
            "?search=al%20ice%26x%3D%C3%A9&limit=5"
        );
        assert_eq!(encode("c0ffee-7.x~_"), "c0ffee-7.x~_");
        assert_eq!(encode("../etc"), "..%2Fetc");
    }

    #[test]
    fn https_and_http_bases_both_build_a_client() {
        let rest = Rest::new("https://abc123.execute-api.eu-west-1.amazonaws.com/", Some("t".into())).unwrap();
        assert_eq!(rest.base, "https://abc123.execute-api.eu-west-1.amazonaws.com");
        assert!(Rest::new("http://127.0.0.1:4566/_aws/execute-api/h1", None).is_ok());
    }

    /// An `https://` request really speaks TLS: a local listener (no internet) gets a TLS ClientHello and hangs
    /// up, and the error says the connection failed rather than that the scheme is unsupported.
    #[tokio::test]
    async fn an_https_request_opens_with_a_tls_client_hello() {
        let (port, first_byte) = crate::ws::tests::hang_up_after_first_byte();
        let rest = Rest::new(&format!("https://127.0.0.1:{port}"), None).unwrap();
        let error = rest.me().await.unwrap_err();
        assert!(matches!(error, CliError::Connection(_)), "{error}");
        assert_eq!(first_byte.join().unwrap(), Some(0x16), "a TLS handshake record; error: {error}");
    }
}

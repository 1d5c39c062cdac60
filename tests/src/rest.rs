//! Harness for the REST end-to-end tests: an [`Api`] that checks every answer against `docs/openapi.yaml`, the
//! fixtures the REST tests share, and WebSocket helpers that tolerate unrelated events (presence, delivery
//! statuses) arriving between the ones a test is about.
//!
//! The spec is passed in as JSON: parsing YAML needs `serde_norway`, a dev-dependency of the test files only.

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::{Api, QUIET_PERIOD, TestUser, WsClient};

/// The OpenAPI document, for the test files to parse.
pub const OPENAPI_YAML: &str = include_str!("../../docs/openapi.yaml");
/// The SAM template, whose HTTP API routes must match the spec.
pub const TEMPLATE_YAML: &str = include_str!("../../infra/template.yaml");

/// HTTP methods an OpenAPI path item may hold.
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The parsed OpenAPI document.
pub struct Spec {
    doc: Value,
}

impl Spec {
    pub fn new(doc: Value) -> Spec {
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "not an OpenAPI 3.1 document");
        Spec { doc }
    }

    /// Every operation as `"METHOD /path/{param}"` (API Gateway's route key form), with its `x-planned` flag.
    pub fn operations(&self) -> Vec<(String, bool)> {
        let paths = self.doc["paths"].as_object().expect("spec has paths");
        let mut operations = Vec::new();
        for (path, item) in paths {
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    let planned = op.get("x-planned").and_then(Value::as_bool).unwrap_or(false);
                    operations.push((format!("{} {path}", method.to_uppercase()), planned));
                }
            }
        }
        operations
    }

    /// The route key of the documented operation a concrete request hits, e.g. `GET /conversations/{id}`.
    pub fn route_of(&self, method: &str, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or(path);
        let wanted: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let paths = self.doc["paths"].as_object()?;
        // A literal segment beats a parameter (`/users/me` over a hypothetical `/users/{id}`).
        let mut candidates: Vec<(usize, &String)> = paths
            .iter()
            .filter(|(_, item)| item.get(method.to_lowercase()).is_some())
            .filter_map(|(template, _)| {
                let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
                let fits =
                    parts.len() == wanted.len() && parts.iter().zip(&wanted).all(|(t, w)| t.starts_with('{') || t == w);
                fits.then(|| (parts.iter().filter(|t| !t.starts_with('{')).count(), template))
            })
            .collect();
        candidates.sort();
        candidates.last().map(|(_, template)| format!("{} {template}", method.to_uppercase()))
    }

    /// Checks an answer against the operation's documented response for `status`. `Err` says what is wrong.
    pub fn check(&self, route: &str, status: u16, body: &Value) -> Result<(), String> {
        let (method, template) = route.split_once(' ').expect("route key");
        let op = &self.doc["paths"][template][method.to_lowercase()];
        let response = &op["responses"][status.to_string()];
        if response.is_null() {
            return Err(format!("{route}: status {status} is not documented"));
        }
        let response = self.resolve(response);
        let schema = &response["content"]["application/json"]["schema"];
        if schema.is_null() {
            return Err(format!("{route} {status}: response has no JSON schema"));
        }
        self.conforms(schema, body, "$").map_err(|e| format!("{route} {status}: {e}\nbody: {body}"))
    }

    fn resolve<'a>(&'a self, node: &'a Value) -> &'a Value {
        match node.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.strip_prefix('#').expect("only local $refs");
                self.resolve(self.doc.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {reference}")))
            }
            None => node,
        }
    }

    /// A small JSON Schema subset: `$ref`, `allOf`, `oneOf`, `type` (incl. `null` and lists), `const`, `enum`,
    /// `required`, `properties`, `items`, `additionalProperties`. Enough for the shapes this API documents.
    fn conforms(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema);
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for part in all {
                self.conforms(part, value, at)?;
            }
        }
        if let Some(any) = schema.get("oneOf").and_then(Value::as_array) {
            let matching = any.iter().filter(|s| self.conforms(s, value, at).is_ok()).count();
            if matching != 1 {
                return Err(format!("{at}: matches {matching} of the oneOf alternatives, not exactly one"));
            }
        }
        if let Some(types) = schema.get("type") {
            let allowed: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !allowed.iter().any(|t| type_matches(t, value)) {
                return Err(format!("{at}: expected {allowed:?}, got {value}"));
            }
        }
        if let Some(constant) = schema.get("const")
            && constant != value
        {
            return Err(format!("{at}: expected {constant}, got {value}"));
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            return Err(format!("{at}: {value} is not one of {options:?}"));
        }
        if let Value::Object(fields) = value {
            for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                let name = name.as_str().expect("required names are strings");
                if !fields.contains_key(name) {
                    return Err(format!("{at}: missing required property `{name}`"));
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            for (name, field) in fields {
                let inner = format!("{at}.{name}");
                match (properties.and_then(|p| p.get(name)), schema.get("additionalProperties")) {
                    (Some(property), _) => self.conforms(property, field, &inner)?,
                    (None, Some(Value::Bool(false))) => return Err(format!("{inner}: not documented")),
                    (None, Some(extra @ Value::Object(_))) => self.conforms(extra, field, &inner)?,
                    (None, _) => {}
                }
            }
        }
        if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
            for (i, item) in items.iter().enumerate() {
                self.conforms(item_schema, item, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "null" => value.is_null(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("unknown JSON Schema type {other}"),
    }
}

/// The REST client of the tests: every answer must be documented in the spec for its route and status, in the
/// documented shape. Remembers which routes were exercised.
pub struct CheckedApi {
    pub api: Api,
    spec: Spec,
    seen: Mutex<BTreeSet<String>>,
}

impl CheckedApi {
    pub fn new(api: Api, spec: Spec) -> CheckedApi {
        CheckedApi { api, spec, seen: Mutex::new(BTreeSet::new()) }
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Route keys called so far.
    pub fn seen(&self) -> BTreeSet<String> {
        self.seen.lock().unwrap().clone()
    }

    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let (status, answer) = self.api.call(method, path, token, body).await;
        self.checked(method, path, status, answer)
    }

    /// Sends `body` as is, for bodies that are not JSON values (malformed JSON, huge payloads).
    pub async fn call_raw(&self, method: &str, path: &str, token: Option<&str>, body: String) -> (u16, Value) {
        let method_ = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.api.http.request(method_, format!("{}{path}", self.api.base)).body(body);
        request = request.header("content-type", "application/json");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{path}: request failed: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.expect("response body");
        let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
        self.checked(method, path, status, answer)
    }

    fn checked(&self, method: &str, path: &str, status: u16, answer: Value) -> (u16, Value) {
        let route = self.spec.route_of(method, path).unwrap_or_else(|| panic!("{method} {path} is not in the spec"));
        if let Err(problem) = self.spec.check(&route, status, &answer) {
            panic!("answer does not match docs/openapi.yaml: {problem}");
        }
        self.seen.lock().unwrap().insert(route);
        (status, answer)
    }

    /// Creates a group owned by `owner`; returns its id.
    pub async fn group(&self, owner: &TestUser, others: &[&TestUser], name: &str) -> String {
        let ids: Vec<&str> = others.iter().map(|u| u.id.as_str()).collect();
        let body = json!({"type": "group", "participantIds": ids, "name": name});
        let (status, created) = self.call("POST", "/conversations", Some(&owner.token), Some(body)).await;
        assert_eq!(status, 201, "create group: {created}");
        created["_id"].as_str().expect("conversation id").to_owned()
    }

    /// Sends a text message over HTTP; returns the stored message.
    pub async fn send(&self, who: &TestUser, conversation_id: &str, content: &str) -> Value {
        let path = format!("/conversations/{conversation_id}/messages");
        let (status, message) = self.call("POST", &path, Some(&who.token), Some(json!({"content": content}))).await;
        assert_eq!(status, 201, "send: {message}");
        message
    }

    /// Follows `nextCursor` from `first_path` to the last page, asking for each next page at `then` + cursor;
    /// returns every page's items.
    pub async fn walk(&self, who: &TestUser, first_path: &str, then: &str) -> Vec<Vec<Value>> {
        let mut pages = Vec::new();
        let mut path = first_path.to_owned();
        loop {
            let (status, page) = self.call("GET", &path, Some(&who.token), None).await;
            assert_eq!(status, 200, "{path}: {page}");
            pages.push(page["items"].as_array().expect("items").clone());
            assert!(pages.len() <= 100, "pagination does not end");
            match page["nextCursor"].as_str() {
                Some(cursor) => path = format!("{then}{cursor}"),
                None => return pages,
            }
        }
    }
}

/// The `data` of the next event named `name`, skipping other events (presence, delivery statuses).
pub async fn next_event(ws: &mut WsClient, name: &str) -> Value {
    loop {
        let frame = ws.next_frame().await;
        if frame["event"] == name {
            return frame["data"].clone();
        }
    }
}

/// Listens for [`QUIET_PERIOD`] and fails if an event named `name` arrives; other events are ignored.
pub async fn expect_no_event(ws: &mut WsClient, name: &str) {
    let deadline = tokio::time::Instant::now() + QUIET_PERIOD;
    // `next_frame` is cancel-safe: dropping it at the deadline loses no frame that was already read.
    while let Ok(frame) = tokio::time::timeout_at(deadline, ws.next_frame()).await {
        assert_ne!(frame["event"], name, "unexpected {name}: {frame}");
    }
}

//! The WebSocket wire protocol: client frames in, server frames out (docs/protocol.md is the reference).
//!
//! Client → server: a JSON object with `action` (also API Gateway's route key), an optional `requestId`, and the
//! payload fields at top level. Server → client: `{"event": …, "data": …}`, plus `requestId` on `ack`/`error`.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::model::MessageKind;

/// Server event names. Seed 003's names are canonical.
pub mod events {
    pub const ACK: &str = "ack";
    pub const ERROR: &str = "error";
    pub const PONG: &str = "pong";
    pub const RECEIVE_MESSAGE: &str = "receive_message";
    pub const MESSAGE_EDITED: &str = "message_edited";
    pub const MESSAGE_DELETED: &str = "message_deleted";
    pub const MESSAGES_READ: &str = "messages_read";
    pub const MESSAGE_STATUS: &str = "message_status";
    pub const TYPING_STATUS: &str = "typing_status";
    pub const REACTION_ADDED: &str = "reaction_added";
    pub const REACTION_REMOVED: &str = "reaction_removed";
    pub const USER_ONLINE: &str = "user_online";
    pub const USER_OFFLINE: &str = "user_offline";
    pub const STATUS_CHANGED: &str = "status_changed";
    pub const CONVERSATION_CREATED: &str = "conversation_created";
    pub const CONVERSATION_UPDATED: &str = "conversation_updated";
    pub const MEMBER_JOINED: &str = "member_joined";
    pub const MEMBER_LEFT: &str = "member_left";
    pub const FRIEND_REQUEST_RECEIVED: &str = "friend_request_received";
    pub const FRIEND_REQUEST_CANCELLED: &str = "friend_request_cancelled";
    pub const FRIEND_REQUEST_ACCEPTED: &str = "friend_request_accepted";
    pub const FRIEND_REQUEST_REJECTED: &str = "friend_request_rejected";
    pub const FRIENDSHIP_CREATED: &str = "friendship_created";
    pub const FRIENDSHIP_DELETED: &str = "friendship_deleted";
}

/// API Gateway rejects frames over 128 KB; anything near that is not a chat action.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Seed 003 asks to keep messages under 5 KB; 4,000 characters of UTF-8 stays within 16 KB.
pub const MAX_CONTENT_CHARS: usize = 4000;
const MAX_REQUEST_ID_LEN: usize = 128;
const MAX_CLIENT_MESSAGE_ID_LEN: usize = 64;
const MAX_FILE_URL_LEN: usize = 2048;
const MAX_FILE_NAME_LEN: usize = 255;

/// A client frame whose envelope parsed; the payload is decoded per action.
#[derive(Debug)]
pub struct IncomingFrame {
    pub action: String,
    pub request_id: Option<String>,
    payload: Value,
}

impl IncomingFrame {
    /// Parses the envelope. On failure the error still carries the `requestId` when one could be read, so the
    /// client can match the error frame to its request.
    pub fn parse(body: &str) -> Result<Self, (Option<String>, AppError)> {
        if body.len() > MAX_FRAME_BYTES {
            return Err((None, AppError::PayloadTooLarge(format!("frames are limited to {MAX_FRAME_BYTES} bytes"))));
        }
        let value: Value =
            serde_json::from_str(body).map_err(|_| (None, AppError::BadRequest("frame is not valid JSON".into())))?;
        let Value::Object(map) = value else {
            return Err((None, AppError::BadRequest("frame must be a JSON object".into())));
        };
        let request_id = match map.get("requestId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_REQUEST_ID_LEN => Some(s.clone()),
            Some(_) => {
                return Err((
                    None,
                    AppError::BadRequest(format!("requestId must be a string of 1-{MAX_REQUEST_ID_LEN} characters")),
                ));
            }
        };
        let action = match map.get("action") {
            Some(Value::String(a)) if !a.is_empty() => a.clone(),
            _ => {
                return Err((request_id, AppError::BadRequest("frame needs a string `action`".into())));
            }
        };
        Ok(IncomingFrame { action, request_id, payload: Value::Object(map) })
    }

    /// Decodes the payload of this action. Unknown extra fields are ignored so clients can evolve.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, AppError> {
        T::deserialize(&self.payload)
            .map_err(|e| AppError::BadRequest(format!("invalid `{}` payload: {e}", self.action)))
    }
}

/// `send_message` payload, also the body of `POST /conversations/:id/messages` (without `conversationId`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendMessageInput {
    pub conversation_id: String,
    #[serde(default)]
    pub content: String,
    #[serde(default, rename = "type")]
    pub kind: MessageKind,
    pub file_url: Option<String>,
    pub file_name: Option<String>,
    pub client_message_id: Option<String>,
}

impl SendMessageInput {
    /// Checks limits and shape; trims nothing the user typed except to decide emptiness.
    pub fn validate(&self) -> Result<(), AppError> {
        if self.conversation_id.trim().is_empty() {
            return Err(AppError::Validation("conversationId is required".into()));
        }
        match self.kind {
            MessageKind::Text => validate_content(&self.content)?,
            MessageKind::Image | MessageKind::File => {
                if self.content.chars().count() > MAX_CONTENT_CHARS {
                    return Err(AppError::PayloadTooLarge(format!(
                        "content is limited to {MAX_CONTENT_CHARS} characters"
                    )));
                }
                if self.file_url.is_none() {
                    return Err(AppError::Validation("image and file messages need a fileUrl".into()));
                }
            }
        }
        if let Some(url) = &self.file_url {
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            if !scheme_ok || url.len() > MAX_FILE_URL_LEN {
                return Err(AppError::Validation(format!(
                    "fileUrl must be an http(s) URL of at most {MAX_FILE_URL_LEN} characters"
                )));
            }
        }
        if self.file_name.as_ref().is_some_and(|n| n.is_empty() || n.len() > MAX_FILE_NAME_LEN) {
            return Err(AppError::Validation(format!("fileName must have 1-{MAX_FILE_NAME_LEN} characters")));
        }
        if let Some(id) = &self.client_message_id {
            let ok = !id.is_empty()
                && id.len() <= MAX_CLIENT_MESSAGE_ID_LEN
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' || b == b':');
            if !ok {
                return Err(AppError::Validation(format!(
                    "clientMessageId must have 1-{MAX_CLIENT_MESSAGE_ID_LEN} characters of [A-Za-z0-9_.:-]"
                )));
            }
        }
        Ok(())
    }
}

/// `{conversationId}`: join_conversation, leave_conversation.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationRef {
    pub conversation_id: String,
}

/// `{conversationIds: [...]}`: join_conversations.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationIds {
    pub conversation_ids: Vec<String>,
}

/// `{messageId, newContent}`: edit_message.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditMessageInput {
    pub message_id: String,
    pub new_content: String,
}

/// `{messageId}`: delete_message.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRef {
    pub message_id: String,
}

/// `{conversationId, messageIds}` or `{conversationId, lastMessageId}`: mark_read.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarkReadInput {
    pub conversation_id: String,
    pub message_ids: Option<Vec<String>>,
    pub last_message_id: Option<String>,
}

/// `{conversationId, isTyping}`: typing.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingInput {
    pub conversation_id: String,
    pub is_typing: bool,
}

/// `{messageId, emoji}`: add_reaction, remove_reaction.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionInput {
    pub message_id: String,
    pub emoji: String,
}

/// `{username}`: the friend actions.
#[derive(Clone, Debug, Deserialize)]
pub struct UsernameRef {
    pub username: String,
}

/// `{status}`: set_status.
#[derive(Clone, Debug, Deserialize)]
pub struct SetStatusInput {
    pub status: String,
}

/// Message text rules shared by sending and editing.
pub fn validate_content(content: &str) -> Result<(), AppError> {
    if content.chars().count() > MAX_CONTENT_CHARS {
        return Err(AppError::PayloadTooLarge(format!("content is limited to {MAX_CONTENT_CHARS} characters")));
    }
    if content.trim().is_empty() {
        return Err(AppError::Validation("content must not be empty".into()));
    }
    Ok(())
}

/// A reaction is one emoji (or a short emoji sequence): up to 16 characters, no spaces or key separators, and
/// not plain ASCII text.
pub fn validate_emoji(emoji: &str) -> Result<(), AppError> {
    let chars = emoji.chars().count();
    let ok = (1..=16).contains(&chars)
        && !emoji.chars().any(|c| c.is_whitespace() || c.is_control() || c == '#')
        && !emoji.is_ascii();
    if ok { Ok(()) } else { Err(AppError::Validation("emoji must be 1-16 characters of emoji".into())) }
}

/// The statuses a user can choose, or a short custom text.
pub const KNOWN_STATUSES: [&str; 4] = ["online", "away", "busy", "invisible"];

pub fn validate_status(status: &str) -> Result<String, AppError> {
    let status = status.trim();
    let chars = status.chars().count();
    if (1..=64).contains(&chars) && !status.chars().any(char::is_control) {
        Ok(status.to_owned())
    } else {
        Err(AppError::Validation("status must be online, away, busy, invisible or 1-64 characters of text".into()))
    }
}

#[derive(Serialize)]
struct Frame<'a, T: Serialize> {
    event: &'a str,
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    data: T,
}

/// `{"event": name, "data": data}`.
pub fn event_frame(event: &str, data: impl Serialize) -> String {
    reply_frame(event, None, data)
}

/// `{"event": name, "requestId": …, "data": data}`: an answer to one request (`pong`, …).
pub fn reply_frame(event: &str, request_id: Option<&str>, data: impl Serialize) -> String {
    serde_json::to_string(&Frame { event, request_id, data }).expect("frames serialise")
}

/// `{"event":"ack","requestId":…,"data":{"success":true, …fields}}`. `fields` must be a JSON object.
pub fn ack_frame(request_id: Option<&str>, fields: Value) -> String {
    let mut data = json!({ "success": true });
    if let (Value::Object(out), Value::Object(extra)) = (&mut data, fields) {
        out.extend(extra);
    }
    serde_json::to_string(&Frame { event: events::ACK, request_id, data }).expect("frames serialise")
}

/// `{"event":"error","requestId":…,"data":{"success":false,"code":…,"message":…}}`.
pub fn error_frame(request_id: Option<&str>, error: &AppError) -> String {
    let data = json!({ "success": false, "code": error.code(), "message": error.public_message() });
    serde_json::to_string(&Frame { event: events::ERROR, request_id, data }).expect("frames serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_envelope_and_payload() {
        let f = IncomingFrame::parse(
            r#"{"action":"send_message","requestId":"r1","conversationId":"c1","content":"hi","type":"text","extra":1}"#,
        )
        .unwrap();
        assert_eq!(f.action, "send_message");
        assert_eq!(f.request_id.as_deref(), Some("r1"));
        let p: SendMessageInput = f.payload().unwrap();
        assert_eq!(p.conversation_id, "c1");
        assert_eq!(p.kind, MessageKind::Text);
        p.validate().unwrap();
    }

    #[test]
    fn envelope_errors_keep_the_request_id_when_possible() {
        let (rid, err) = IncomingFrame::parse(r#"{"requestId":"r9"}"#).unwrap_err();
        assert_eq!(rid.as_deref(), Some("r9"));
        assert_eq!(err.code(), "bad_request");
        for bad in ["not json", "[1,2]", r#"{"action":5}"#, r#"{"action":"x","requestId":7}"#] {
            let (_, err) = IncomingFrame::parse(bad).unwrap_err();
            assert_eq!(err.code(), "bad_request", "{bad}");
        }
        let huge = format!(r#"{{"action":"send_message","content":"{}"}}"#, "a".repeat(MAX_FRAME_BYTES));
        assert_eq!(IncomingFrame::parse(&huge).unwrap_err().1.code(), "payload_too_large");
    }

    #[test]
    fn payload_type_errors_are_bad_requests() {
        let f = IncomingFrame::parse(r#"{"action":"send_message","conversationId":1}"#).unwrap();
        let err = f.payload::<SendMessageInput>().unwrap_err();
        assert_eq!(err.code(), "bad_request");
        let f = IncomingFrame::parse(r#"{"action":"send_message","conversationId":"c","type":"video"}"#).unwrap();
        assert!(f.payload::<SendMessageInput>().is_err());
    }

    #[test]
    fn validation_rules() {
        let base = SendMessageInput {
            conversation_id: "c1".into(),
            content: "hello".into(),
            kind: MessageKind::Text,
            file_url: None,
            file_name: None,
            client_message_id: None,
        };
        base.validate().unwrap();
        let empty = SendMessageInput { content: "  \n".into(), ..base.clone() };
        assert_eq!(empty.validate().unwrap_err().code(), "validation_failed");
        let long = SendMessageInput { content: "é".repeat(MAX_CONTENT_CHARS + 1), ..base.clone() };
        assert_eq!(long.validate().unwrap_err().code(), "payload_too_large");
        let exact = SendMessageInput { content: "é".repeat(MAX_CONTENT_CHARS), ..base.clone() };
        exact.validate().unwrap();
        let image = SendMessageInput { kind: MessageKind::Image, content: String::new(), ..base.clone() };
        assert!(image.validate().is_err());
        let image = SendMessageInput { file_url: Some("https://cdn/x.png".into()), ..image };
        image.validate().unwrap();
        let js = SendMessageInput { file_url: Some("javascript:alert(1)".into()), ..base.clone() };
        assert!(js.validate().is_err());
        let bad_cmid = SendMessageInput { client_message_id: Some("has space".into()), ..base.clone() };
        assert!(bad_cmid.validate().is_err());
        let cmid = SendMessageInput { client_message_id: Some("tab-1:42".into()), ..base };
        cmid.validate().unwrap();
    }

    #[test]
    fn emoji_and_status_rules() {
        for ok in ["👍", "❤️", "🇫🇷", "👨‍👩‍👧"] {
            validate_emoji(ok).unwrap();
        }
        for bad in ["", "lol", "👍 👍", "#👍", &"👍".repeat(17)] {
            assert!(validate_emoji(bad).is_err(), "{bad:?}");
        }
        assert_eq!(validate_status("  away ").unwrap(), "away");
        assert_eq!(validate_status("in a meeting").unwrap(), "in a meeting");
        assert!(validate_status("").is_err());
        assert!(validate_status(&"x".repeat(65)).is_err());
        assert!(validate_status("a\u{7}b").is_err());
    }

    #[test]
    fn frames_have_the_documented_shape() {
        let ack: Value = serde_json::from_str(&ack_frame(Some("r1"), json!({"message": {"_id": "m"}}))).unwrap();
        assert_eq!(ack, json!({"event":"ack","requestId":"r1","data":{"success":true,"message":{"_id":"m"}}}));
        let err: Value = serde_json::from_str(&error_frame(None, &AppError::UnknownAction("fly".into()))).unwrap();
        assert_eq!(
            err,
            json!({"event":"error","data":{"success":false,"code":"unknown_action","message":"unknown action `fly`"}})
        );
        let ev: Value = serde_json::from_str(&event_frame(events::RECEIVE_MESSAGE, json!({}))).unwrap();
        assert_eq!(ev, json!({"event":"receive_message","data":{}}));
        let pong: Value = serde_json::from_str(&reply_frame(events::PONG, Some("p1"), json!({}))).unwrap();
        assert_eq!(pong, json!({"event":"pong","requestId":"p1","data":{}}));
    }
}

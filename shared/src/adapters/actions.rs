//! Client frames as one enum: the whole WebSocket vocabulary. A frame is `{"action": …, "requestId"?: …,
//! …payload fields}`; its `action` is also API Gateway's route key, and a test checks that the template routes
//! exactly these (plus `$connect`, `$disconnect`, `$default`).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{payload_error, strict_json};
use crate::error::AppError;
use crate::usecases::blocks::UserRef;
use crate::usecases::friends::UsernameRef;
use crate::usecases::messages::{EditMessage, MarkRead, MessageRef, Reaction, SendMessage};
use crate::usecases::presence::{SetAppState, SetStatus};
use crate::usecases::rooms::{ConversationRef, JoinConversations, Typing};

/// API Gateway closes a connection that sends a WebSocket frame over 32 KB (a message of up to 128 KB must come
/// in several frames, which browsers' WebSocket never does), so every client keeps its frames within 32 KB and
/// the server refuses a bigger message the same way on every deployment, emulator included. The longest
/// `content` (4,000 characters) fits whether they are 4-byte UTF-8 or control characters escaped as `\u0001`.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
const MAX_REQUEST_ID_LEN: usize = 128;

#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ClientAction {
    Ping,
    JoinConversations(JoinConversations),
    JoinConversation(ConversationRef),
    LeaveConversation(ConversationRef),
    SendMessage(SendMessage),
    EditMessage(EditMessage),
    DeleteMessage(MessageRef),
    MarkRead(MarkRead),
    Typing(Typing),
    AddReaction(Reaction),
    RemoveReaction(Reaction),
    SendFriendRequest(UsernameRef),
    CancelFriendRequest(UsernameRef),
    AcceptFriendRequest(UsernameRef),
    RejectFriendRequest(UsernameRef),
    Unfriend(UsernameRef),
    BlockUser(UserRef),
    UnblockUser(UserRef),
    GetBlockedUsers,
    SetStatus(SetStatus),
    SetAppState(SetAppState),
    GetFriends,
    GetFriendRequests,
    GetStatus,
    GetPresence,
}

impl ClientAction {
    /// Every action's name, as clients write it and as the template routes it.
    pub const NAMES: [&'static str; 25] = [
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
        "block_user",
        "unblock_user",
        "get_blocked_users",
        "set_status",
        "set_app_state",
        "get_friends",
        "get_friend_requests",
        "get_status",
        "get_presence",
    ];
}

/// A frame whose envelope and payload parsed.
#[derive(Debug)]
pub struct Request {
    pub request_id: Option<String>,
    pub action: ClientAction,
}

impl Request {
    /// Parses a frame. On failure the error still carries the `requestId` whenever one could be read, so the
    /// client can match the `error` frame to its request.
    pub fn parse(body: &str) -> Result<Request, (Option<String>, AppError)> {
        let value = strict_json::parse(body.as_bytes()).map_err(|refused| {
            let error = if body.len() > MAX_FRAME_BYTES {
                AppError::PayloadTooLarge(format!("frames are limited to {MAX_FRAME_BYTES} bytes"))
            } else {
                AppError::BadRequest(format!("frame refused: {}", refused.reason))
            };
            (refused.request_id.filter(|id| valid_request_id(id)), error)
        })?;
        let Value::Object(fields) = value else {
            return Err((None, AppError::BadRequest("frame must be a JSON object".into())));
        };
        let request_id = request_id(&fields).map_err(|e| (None, e))?;
        let fail = |error: AppError| (request_id.clone(), error);
        if body.len() > MAX_FRAME_BYTES {
            return Err(fail(AppError::PayloadTooLarge(format!("frames are limited to {MAX_FRAME_BYTES} bytes"))));
        }
        let name = match fields.get("action") {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            _ => return Err(fail(AppError::BadRequest("frame needs a string `action`".into()))),
        };
        if !ClientAction::NAMES.contains(&name.as_str()) {
            return Err(fail(AppError::UnknownAction(name.chars().take(64).collect())));
        }
        let action = ClientAction::deserialize(Value::Object(fields))
            .map_err(|e| fail(payload_error(e, &format!("invalid `{name}` payload"))))?;
        Ok(Request { request_id, action })
    }
}

fn request_id(fields: &Map<String, Value>) -> Result<Option<String>, AppError> {
    match fields.get("requestId") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if valid_request_id(s) => Ok(Some(s.clone())),
        Some(_) => {
            Err(AppError::BadRequest(format!("requestId must be a string of 1-{MAX_REQUEST_ID_LEN} characters")))
        }
    }
}

fn valid_request_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> (Option<String>, &'static str) {
        let (request_id, error) = Request::parse(body).unwrap_err();
        (request_id, error.code())
    }

    #[test]
    fn parses_envelope_and_payload() {
        let request = Request::parse(
            r#"{"action":"send_message","requestId":"r1","conversationId":"c1","content":"hi","type":"text","extra":1}"#,
        )
        .unwrap();
        assert_eq!(request.request_id.as_deref(), Some("r1"));
        let ClientAction::SendMessage(input) = request.action else { panic!("{:?}", request.action) };
        assert_eq!(input.conversation_id.as_str(), "c1");
        input.validate().unwrap();
        assert!(matches!(Request::parse(r#"{"action":"ping","requestId":"p"}"#).unwrap().action, ClientAction::Ping));
    }

    #[test]
    fn the_largest_valid_frames_fit_in_one_api_gateway_frame() {
        use crate::usecases::messages::MAX_CONTENT_CHARS;
        for character in ["\u{1F600}", "\u{1}", "\""] {
            let frame = serde_json::json!({
                "action": "send_message",
                "requestId": "r".repeat(MAX_REQUEST_ID_LEN),
                "conversationId": "0".repeat(32),
                "content": character.repeat(MAX_CONTENT_CHARS),
                "clientMessageId": "m".repeat(64),
            })
            .to_string();
            assert!(frame.len() <= MAX_FRAME_BYTES, "{} bytes with {character:?}", frame.len());
            assert!(Request::parse(&frame).is_ok());
        }
    }

    #[test]
    fn errors_keep_the_request_id_whenever_it_can_be_read() {
        assert_eq!(code(r#"{"requestId":"r9"}"#), (Some("r9".into()), "bad_request"));
        assert_eq!(code(r#"{"action":"fly","requestId":"r9"}"#), (Some("r9".into()), "unknown_action"));
        assert_eq!(code(r#"{"action":"$disconnect"}"#), (None, "unknown_action"));
        let huge =
            format!(r#"{{"action":"send_message","requestId":"big","content":"{}"}}"#, "a".repeat(MAX_FRAME_BYTES));
        assert_eq!(code(&huge), (Some("big".into()), "payload_too_large"));
        assert_eq!(code(&format!("[{}]", "1,".repeat(MAX_FRAME_BYTES))).1, "payload_too_large");
        for bad in ["not json", "[1,2]", r#"{"action":5}"#, r#"{"action":"ping","requestId":7}"#] {
            assert_eq!(code(bad).1, "bad_request", "{bad}");
        }
    }

    #[test]
    fn malformed_ids_are_validation_errors_and_wrong_types_bad_requests() {
        let long = "c".repeat(2044);
        let cases = [
            (format!(r#"{{"action":"send_message","conversationId":"{long}","content":"x"}}"#), "validation_failed"),
            (format!(r#"{{"action":"edit_message","messageId":"{long}-1","newContent":"x"}}"#), "validation_failed"),
            (r#"{"action":"mark_read","conversationId":"c","messageIds":["c-+10"]}"#.into(), "validation_failed"),
            (r#"{"action":"join_conversations","conversationIds":["ok","no way"]}"#.into(), "validation_failed"),
            (r#"{"action":"send_message","conversationId":1}"#.into(), "bad_request"),
            (r#"{"action":"send_message","conversationId":"c","type":"video"}"#.into(), "bad_request"),
        ];
        for (body, expected) in cases {
            assert_eq!(code(&body).1, expected, "{}", &body[..body.len().min(80)]);
        }
    }

    #[test]
    fn every_action_name_is_a_variant_and_every_variant_is_named() {
        // serde lists the variants it knows in its "unknown variant" error.
        let error = serde_json::from_str::<ClientAction>(r#"{"action":"?"}"#).unwrap_err().to_string();
        let listed: Vec<&str> = error.split('`').skip(3).step_by(2).collect();
        assert_eq!(listed, ClientAction::NAMES, "{error}");
    }
}

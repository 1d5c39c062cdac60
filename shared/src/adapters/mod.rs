//! The transports: API Gateway events in, use-case calls, frames and HTTP responses out. Both adapters check
//! the ids a client sends before anything else sees them (see [`check_ids`]).

pub mod actions;
pub mod http;
pub mod queue;
pub mod ws;

use serde_json::{Map, Value};

use crate::error::AppResult;
use crate::model::{ConversationId, MessageId, UserId};

/// Checks every id field a client may send, in WebSocket frames and HTTP bodies alike, so a malformed id is a
/// `validation_failed` naming the field rather than a decoding error or a key DynamoDB refuses. Values of the
/// wrong JSON type are left to the payload decoding (`bad_request`).
pub(crate) fn check_ids(fields: &Map<String, Value>) -> AppResult<()> {
    fn each<'a>(value: &'a Value) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        match value {
            Value::String(s) => Box::new(std::iter::once(s.as_str())),
            Value::Array(items) => Box::new(items.iter().filter_map(Value::as_str)),
            _ => Box::new(std::iter::empty()),
        }
    }
    for (field, value) in fields {
        for id in each(value) {
            let parsed = match field.as_str() {
                "conversationId" | "conversationIds" => ConversationId::parse(id).map(drop),
                "messageId" | "lastMessageId" | "messageIds" => MessageId::parse(id).map(drop),
                "participantId" | "participantIds" | "userIds" => UserId::parse(id).map(drop),
                _ => Ok(()),
            };
            parsed.map_err(|e| crate::error::AppError::Validation(format!("{field}: {}", e.public_message())))?;
        }
    }
    Ok(())
}

//! Every frame the server sends, as one enum: `{"event": <name>, "data": {…}}`, plus `requestId` on the answers
//! to a request (`ack`, `error`, `pong`). Use cases decide which event goes to whom; this module only knows how
//! each looks on the wire (docs/protocol.md, docs/asyncapi.yaml).

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::AppError;
use crate::model::{
    Attachment, ConversationId, ConversationNotifications, ConversationView, MemberLeft, Message, MessageId,
    MessageStatus, NotificationPreferences, Role, Sender, User, UserId,
};

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum Event {
    ReceiveMessage {
        message: Message,
        conversation_id: ConversationId,
    },
    MessageEdited {
        message_id: MessageId,
        new_content: String,
        edited_at: Option<String>,
        conversation_id: ConversationId,
    },
    MessageDeleted {
        message_id: MessageId,
        conversation_id: ConversationId,
    },
    /// An image attachment was processed after its message was sent: now `ready` (with URLs, a thumbnail and
    /// its size) or `rejected`.
    AttachmentProcessed {
        conversation_id: ConversationId,
        message_id: MessageId,
        attachment: Attachment,
    },
    MessagesRead {
        conversation_id: ConversationId,
        message_ids: Vec<MessageId>,
        read_by: UserId,
        read_at: String,
        up_to_seq: u64,
    },
    /// `delivered` lists every member reached (`userIds`); `read` names the reader (`userId`).
    MessageStatus {
        conversation_id: ConversationId,
        message_id: MessageId,
        status: MessageStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<UserId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_ids: Option<Vec<UserId>>,
    },
    TypingStatus {
        user_id: UserId,
        username: String,
        conversation_id: ConversationId,
        is_typing: bool,
    },
    ReactionAdded {
        message_id: MessageId,
        conversation_id: ConversationId,
        emoji: String,
        user_id: UserId,
    },
    ReactionRemoved {
        message_id: MessageId,
        conversation_id: ConversationId,
        emoji: String,
        user_id: UserId,
    },
    UserOnline {
        user_id: UserId,
        username: String,
    },
    UserOffline {
        user_id: UserId,
        username: String,
        last_seen: Option<String>,
    },
    StatusChanged {
        user_id: UserId,
        username: String,
        status: String,
    },
    ConversationCreated {
        conversation: ConversationView,
    },
    ConversationUpdated {
        conversation: ConversationView,
    },
    MemberJoined {
        conversation_id: ConversationId,
        members: Vec<User>,
        added_by: UserId,
    },
    MemberLeft(MemberLeft),
    /// A member became owner, admin or member again; `changedBy` is who did it (for a new owner after the owner
    /// left, the one who left).
    MemberRoleChanged {
        conversation_id: ConversationId,
        user_id: UserId,
        role: Role,
        changed_by: UserId,
    },
    FriendRequestReceived {
        from: Sender,
        created_at: String,
    },
    FriendRequestCancelled {
        from: Sender,
    },
    FriendRequestAccepted {
        by: Sender,
    },
    FriendRequestRejected {
        by: Sender,
    },
    FriendshipCreated {
        friend: Sender,
    },
    FriendshipDeleted {
        user_id: UserId,
        username: String,
    },
    /// To the blocker's other connections, so every device hides the same people.
    UserBlocked {
        user: Sender,
    },
    UserUnblocked {
        user: Sender,
    },
    /// To the member's other connections, so every device shows the same mute state.
    ConversationNotificationsChanged {
        conversation_id: ConversationId,
        #[serde(flatten)]
        notifications: ConversationNotifications,
    },
    /// To the user's other connections.
    NotificationPreferencesChanged {
        #[serde(flatten)]
        preferences: NotificationPreferences,
    },
    /// The answer to `ping`.
    Pong {},
    /// The answer to a successful request: `{"success": true, …}`.
    Ack(Value),
    /// The answer to a failed request, or an error without one: `{"success": false, "code", "message"}`.
    Error(Value),
}

impl Event {
    /// `message_status: delivered` for the members a message reached.
    pub fn delivered(message: &Message, user_ids: Vec<UserId>) -> Event {
        Event::MessageStatus {
            conversation_id: message.conversation_id.clone(),
            message_id: message.id.clone(),
            status: MessageStatus::Delivered,
            user_id: None,
            user_ids: Some(user_ids),
        }
    }

    /// `message_status: read` up to `message_id`, by `reader`.
    pub fn read(message_id: MessageId, reader: UserId) -> Event {
        Event::MessageStatus {
            conversation_id: message_id.conversation_id.clone(),
            message_id,
            status: MessageStatus::Read,
            user_id: Some(reader),
            user_ids: None,
        }
    }

    /// `user_online` or `user_offline`.
    pub fn presence(user_id: &UserId, username: &str, online: bool, last_seen: Option<&str>) -> Event {
        let (user_id, username) = (user_id.clone(), username.to_owned());
        if online {
            Event::UserOnline { user_id, username }
        } else {
            Event::UserOffline { user_id, username, last_seen: last_seen.map(str::to_owned) }
        }
    }

    /// `ack` with `success: true` and the fields of `data` (a JSON object).
    pub fn ack(data: impl Serialize) -> Event {
        let mut fields = json!({ "success": true });
        if let (Value::Object(out), Ok(Value::Object(extra))) = (&mut fields, serde_json::to_value(data)) {
            out.extend(extra);
        }
        Event::Ack(fields)
    }

    /// `error` with the code and the public message of `error` (never an internal cause), and `retryAfter`
    /// (seconds) when waiting helps.
    pub fn error(error: &AppError) -> Event {
        let mut data = json!({ "success": false, "code": error.code(), "message": error.public_message() });
        if let Some(seconds) = error.retry_after() {
            data["retryAfter"] = json!(seconds);
        }
        Event::Error(data)
    }

    /// The frame as sent to every recipient.
    pub fn frame(&self) -> String {
        self.reply(None)
    }

    /// The frame as an answer to the request `request_id`.
    pub fn reply(&self, request_id: Option<&str>) -> String {
        #[derive(Serialize)]
        struct Frame<'a> {
            #[serde(flatten)]
            event: &'a Event,
            #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
            request_id: Option<&'a str>,
        }
        serde_json::to_string(&Frame { event: self, request_id }).expect("events serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(frame: String) -> Value {
        serde_json::from_str(&frame).unwrap()
    }

    #[test]
    fn frames_have_the_documented_shape() {
        let ack = Event::ack(json!({"message": {"_id": "m"}})).reply(Some("r1"));
        assert_eq!(value(ack), json!({"event":"ack","requestId":"r1","data":{"success":true,"message":{"_id":"m"}}}));
        let error = Event::error(&AppError::UnknownAction("fly".into())).frame();
        assert_eq!(
            value(error),
            json!({"event":"error","data":{"success":false,"code":"unknown_action","message":"unknown action `fly`"}})
        );
        assert_eq!(value(Event::Pong {}.reply(Some("p1"))), json!({"event":"pong","requestId":"p1","data":{}}));
        let user = UserId::parse("u1").unwrap();
        assert_eq!(
            value(Event::presence(&user, "alice", false, Some("t")).frame()),
            json!({"event":"user_offline","data":{"userId":"u1","username":"alice","lastSeen":"t"}})
        );
        let id = MessageId::parse("c1-3").unwrap();
        assert_eq!(
            value(Event::read(id, user.clone()).frame()),
            json!({"event":"message_status","data":{"conversationId":"c1","messageId":"c1-3","status":"read","userId":"u1"}})
        );
        let typing = Event::TypingStatus {
            user_id: user,
            username: "alice".into(),
            conversation_id: ConversationId::parse("c1").unwrap(),
            is_typing: true,
        };
        assert_eq!(
            value(typing.frame()),
            json!({"event":"typing_status","data":{"userId":"u1","username":"alice","conversationId":"c1","isTyping":true}})
        );
    }
}

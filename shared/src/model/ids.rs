//! Typed identifiers. A `UserId` can never be passed where a `ConversationId` is expected, and every id that
//! comes from a client is parsed once, at the edge of its transport: a value that cannot be one of our ids is
//! refused there (a malformed id in a path is `not_found`, in a body `validation_failed`) and never reaches a
//! key, a log line or a 5xx.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::AppError;

/// Ids we mint are 32 hex digits; accepting up to 64 characters of a URL- and key-safe alphabet leaves room
/// without letting a client grow a key.
pub const MAX_ID_LEN: usize = 64;

fn is_id(value: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Starts the message of a decoding error that is a malformed id: the transports answer it as
/// `validation_failed` with the id's own reason, where any other decoding error is a malformed payload.
pub const INVALID_ID: &str = "invalid id: ";

/// A malformed id as a decoding error (see [`INVALID_ID`]).
fn decoding_error<E: serde::de::Error>(err: AppError) -> E {
    E::custom(format!("{INVALID_ID}{}", err.public_message()))
}

/// Why a string is not an id, for the client.
fn invalid(what: &str) -> AppError {
    AppError::Validation(format!("{what} must be 1-{MAX_ID_LEN} characters of [A-Za-z0-9_-]"))
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// A new random id: 32 lowercase hex digits.
            pub fn random() -> Self {
                $name(uuid::Uuid::new_v4().simple().to_string())
            }

            pub fn parse(value: &str) -> Result<Self, AppError> {
                if is_id(value) { Ok($name(value.to_owned())) } else { Err(invalid($what)) }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = AppError;
            fn from_str(value: &str) -> Result<Self, AppError> {
                Self::parse(value)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::parse(&value).map_err(decoding_error)
            }
        }
    };
}

string_id!(
    /// A user, as in `_id` of a user and `sender._id`.
    UserId,
    "a user id"
);
string_id!(
    /// A conversation (private chat or group).
    ConversationId,
    "a conversation id"
);
string_id!(
    /// An uploaded file, from `POST /conversations/{id}/uploads` until a message attaches it.
    UploadId,
    "an upload id"
);

string_id!(
    /// A login: the refresh tokens of one device, rotated together, ended together.
    SessionId,
    "a session id"
);

string_id!(
    /// One export of a user's data: names its document (`exports/<userId>/<exportId>.json`).
    ExportId,
    "an export id"
);

/// A message: its conversation and its position there, written `<conversationId>-<seq>`, so the message is found
/// with one key lookup and an id from one conversation can never alias a message of another.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId {
    pub conversation_id: ConversationId,
    pub seq: u64,
}

impl MessageId {
    pub fn new(conversation_id: ConversationId, seq: u64) -> Self {
        MessageId { conversation_id, seq }
    }

    pub fn parse(value: &str) -> Result<Self, AppError> {
        let invalid = || AppError::Validation("a message id is `<conversationId>-<seq>`".into());
        let (conversation, seq) = value.rsplit_once('-').ok_or_else(invalid)?;
        // Canonical digits only (no sign, no leading zero), so an id has exactly one spelling.
        let canonical = !seq.is_empty() && !seq.starts_with('0') && seq.bytes().all(|b| b.is_ascii_digit());
        let seq = canonical.then(|| seq.parse::<u64>().ok()).flatten().ok_or_else(invalid)?;
        let conversation_id = ConversationId::parse(conversation).map_err(|_| invalid())?;
        Ok(MessageId { conversation_id, seq })
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.conversation_id, self.seq)
    }
}

impl FromStr for MessageId {
    type Err = AppError;
    fn from_str(value: &str) -> Result<Self, AppError> {
        Self::parse(value)
    }
}

impl Serialize for MessageId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Self::parse(&value).map_err(decoding_error)
    }
}

/// An API Gateway connection id. API Gateway makes them (base64 with padding, e.g. `L0SM9cOFvHcCIhw=`); they
/// arrive in the event's request context, never from a client's payload.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionId(String);

impl ConnectionId {
    pub fn new(value: impl Into<String>) -> Self {
        ConnectionId(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_our_own_and_refuse_what_could_not_be_one() {
        let id = ConversationId::random();
        assert_eq!(id.as_str().len(), 32);
        assert_eq!(ConversationId::parse(id.as_str()).unwrap(), id);
        for bad in ["", "a b", "x".repeat(65).as_str(), "é", "a#b", "../etc"] {
            let err = UserId::parse(bad).unwrap_err();
            assert_eq!(err.code(), "validation_failed", "{bad:?}");
        }
        assert!(UserId::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn message_ids_round_trip_and_name_their_conversation() {
        let id = MessageId::new(ConversationId::parse("abc123").unwrap(), 42);
        assert_eq!(id.to_string(), "abc123-42");
        assert_eq!(MessageId::parse("abc123-42").unwrap(), id);
        assert_eq!(MessageId::parse("with-dash-7").unwrap().conversation_id.as_str(), "with-dash");
        for bad in ["abc123-0", "abc123", "-5", "abc-x", "abc-+1", "abc-05", "abc-99999999999999999999999", "a b-1"] {
            assert!(MessageId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_plain_strings_on_the_wire() {
        let id = MessageId::new(ConversationId::parse("c1").unwrap(), 7);
        assert_eq!(serde_json::to_value(&id).unwrap(), serde_json::json!("c1-7"));
        let back: MessageId = serde_json::from_value(serde_json::json!("c1-7")).unwrap();
        assert_eq!(back, id);
        let err = serde_json::from_value::<UserId>(serde_json::json!("x".repeat(2044))).unwrap_err();
        assert!(err.to_string().starts_with(INVALID_ID), "{err}");
    }
}

//! Opaque, tamper-proof pagination cursors.
//!
//! A cursor is a signed token binding a position to a scope (e.g. `messages:<conversationId>:<userId>`), so a
//! client can neither forge a position nor replay a cursor from another list or another user: both are a 400.
//! It is signed with the deployment's key under its own audience, so it can never pass as an access token.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{AppError, AppResult};

const AUDIENCE: &str = "cursor";

#[derive(Serialize, Deserialize)]
struct CursorClaims {
    aud: String,
    scope: String,
    pos: Value,
}

#[derive(Clone)]
pub struct CursorCodec {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec")
    }
}

impl CursorCodec {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["aud"]);
        validation.set_audience(&[AUDIENCE]);
        CursorCodec {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn encode(&self, scope: &str, position: Value) -> String {
        let claims = CursorClaims { aud: AUDIENCE.into(), scope: scope.into(), pos: position };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).expect("HS256 signing cannot fail")
    }

    /// The position, if the cursor is genuine and was issued for `scope`; otherwise a 400.
    pub fn decode(&self, scope: &str, cursor: &str) -> AppResult<Value> {
        let claims = decode::<CursorClaims>(cursor, &self.decoding, &self.validation)
            .map_err(|_| AppError::BadRequest("invalid cursor".into()))?
            .claims;
        if claims.scope != scope {
            return Err(AppError::BadRequest("invalid cursor".into()));
        }
        Ok(claims.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Identity, TokenKeys};
    use serde_json::json;
    use std::time::Duration;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";

    #[test]
    fn round_trips_within_its_scope_only() {
        let codec = CursorCodec::new(SECRET);
        let cursor = codec.encode("messages:c1:u1", json!({"seq": 42}));
        assert_eq!(codec.decode("messages:c1:u1", &cursor).unwrap(), json!({"seq": 42}));
        assert_eq!(codec.decode("messages:c2:u1", &cursor).unwrap_err().code(), "bad_request");
        assert_eq!(codec.decode("messages:c1:u2", &cursor).unwrap_err().code(), "bad_request");
    }

    #[test]
    fn forged_and_foreign_tokens_are_rejected() {
        let codec = CursorCodec::new(SECRET);
        let other = CursorCodec::new(b"another-secret-another-secret-another");
        assert!(codec.decode("s", &other.encode("s", json!(1))).is_err());
        assert!(codec.decode("s", "eyJzZXEiOjQyfQ").is_err());
        let keys = TokenKeys::new(SECRET, Duration::from_secs(60)).unwrap();
        let access =
            keys.issue(&Identity { user_id: "u".into(), username: "n".into(), session_id: "s".into() }).unwrap();
        assert!(codec.decode("s", &access).is_err(), "an access token is not a cursor");
        assert!(keys.verify(&codec.encode("s", json!(1))).is_err(), "a cursor is not an access token");
    }
}

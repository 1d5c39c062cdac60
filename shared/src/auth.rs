//! Access tokens and password hashes.
//!
//! Tokens are HS256 JWTs. The algorithm is pinned when verifying, so a token that names another algorithm
//! (`none`, RS256 with the HMAC key as "public key"…) is rejected rather than trusted.

use std::time::Duration;

use argon2::Argon2;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};

/// What a verified token says about its bearer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub username: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    username: String,
    iat: u64,
    exp: u64,
}

/// Signs and verifies access tokens with one HMAC key.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

/// Shorter keys make HS256 brute-forceable; the deployed secret is 64 characters.
const MIN_SECRET_LEN: usize = 32;

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> AppResult<Self> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(AppError::internal(format!("JWT secret must be at least {MIN_SECRET_LEN} bytes")));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        })
    }

    pub fn issue(&self, identity: &Identity) -> AppResult<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: identity.user_id.clone(),
            username: identity.username.clone(),
            iat: now,
            exp: now + self.ttl.as_secs(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(AppError::internal)
    }

    pub fn verify(&self, token: &str) -> AppResult<Identity> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            // The reason helps operators; the token itself is never logged.
            tracing::info!(reason = %e, "token rejected");
            AppError::Unauthorized("invalid or expired token")
        })?;
        Ok(Identity { user_id: data.claims.sub, username: data.claims.username })
    }
}

/// Extracts the token from `Authorization: Bearer <token>`.
pub fn bearer_token(header_value: Option<&str>) -> Option<&str> {
    let value = header_value?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

pub fn hash_password(password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(e.to_string()))
}

pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// A hash of a random password, checked when a login names an unknown user so that the answer takes as long
/// as for a known user with a wrong password (no username enumeration by timing).
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&uuid::Uuid::new_v4().to_string()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

    fn alice() -> Identity {
        Identity { user_id: "u1".into(), username: "alice".into() }
    }

    #[test]
    fn issued_tokens_verify() {
        let keys = TokenKeys::new(SECRET, Duration::from_secs(60)).unwrap();
        let token = keys.issue(&alice()).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), alice());
    }

    #[test]
    fn rejects_other_keys_tampering_and_garbage() {
        let keys = TokenKeys::new(SECRET, Duration::from_secs(60)).unwrap();
        let other = TokenKeys::new(b"another-secret-that-is-long-enough-000", Duration::from_secs(60)).unwrap();
        let token = other.issue(&alice()).unwrap();
        assert!(matches!(keys.verify(&token), Err(AppError::Unauthorized(_))));
        let mut tampered = keys.issue(&alice()).unwrap();
        tampered.insert(tampered.len() - 3, 'x');
        assert!(keys.verify(&tampered).is_err());
        assert!(keys.verify("not-a-jwt").is_err());
        assert!(keys.verify("").is_err());
    }

    #[test]
    fn rejects_expired_tokens() {
        let keys = TokenKeys::new(SECRET, Duration::from_secs(60)).unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims { sub: "u1".into(), username: "alice".into(), iat: now - 7200, exp: now - 3600 };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        assert!(keys.verify(&token).is_err());
    }

    #[test]
    fn rejects_unsigned_and_other_algorithms() {
        let keys = TokenKeys::new(SECRET, Duration::from_secs(60)).unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims { sub: "u1".into(), username: "alice".into(), iat: now, exp: now + 60 };
        let hs512 = encode(&Header::new(Algorithm::HS512), &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        assert!(keys.verify(&hs512).is_err());
        // alg=none: header {"alg":"none","typ":"JWT"} and no signature.
        let body = hs512.split('.').nth(1).unwrap();
        assert!(keys.verify(&format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{body}.")).is_err());
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(TokenKeys::new(b"short", Duration::from_secs(60)).is_err());
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("Basic abc")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not-a-hash"));
        assert!(!verify_password("anything", decoy_hash()));
    }
}

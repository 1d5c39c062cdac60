//! Access and refresh tokens, and password hashes.
//!
//! Tokens are HS256 JWTs. The algorithm is pinned when verifying, so a token that names another algorithm
//! (`none`, RS256 with the HMAC key as "public key"…) is rejected rather than trusted. Both kinds name their
//! session; an access token lives minutes, a refresh token carries its session's generation (which rotates with
//! every refresh, so a used one is recognised if it comes back) and is never accepted as an access token or the
//! other way round.

use std::time::Duration;

use argon2::Argon2;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use password_hash::{PasswordHash, SaltString, rand_core::OsRng};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};

/// What a verified access token says about its bearer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub username: String,
    pub session_id: String,
}

/// What a verified refresh token names: the session and the generation it was issued at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshGrant {
    pub user_id: String,
    pub session_id: String,
    pub generation: u64,
}

/// How long a refresh token (and so a session nobody uses) lasts.
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
const REFRESH: &str = "refresh";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    username: String,
    sid: String,
    iat: u64,
    exp: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct RefreshClaims {
    sub: String,
    sid: String,
    generation: u64,
    typ: String,
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

    /// Seconds an access token lives.
    pub fn access_ttl(&self) -> u64 {
        self.ttl.as_secs()
    }

    pub fn issue(&self, identity: &Identity) -> AppResult<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: identity.user_id.clone(),
            username: identity.username.clone(),
            sid: identity.session_id.clone(),
            iat: now,
            exp: now + self.ttl.as_secs(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(AppError::internal)
    }

    /// An access token's identity (its session is checked by the caller, against the store).
    pub fn verify(&self, token: &str) -> AppResult<Identity> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(refused)?;
        Ok(Identity { user_id: data.claims.sub, username: data.claims.username, session_id: data.claims.sid })
    }

    pub fn issue_refresh(&self, grant: &RefreshGrant) -> AppResult<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = RefreshClaims {
            sub: grant.user_id.clone(),
            sid: grant.session_id.clone(),
            generation: grant.generation,
            typ: REFRESH.into(),
            iat: now,
            exp: now + REFRESH_TOKEN_TTL.as_secs(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(AppError::internal)
    }

    pub fn verify_refresh(&self, token: &str) -> AppResult<RefreshGrant> {
        let data = decode::<RefreshClaims>(token, &self.decoding, &self.validation).map_err(refused)?;
        if data.claims.typ != REFRESH {
            return Err(AppError::Unauthorized("invalid or expired token"));
        }
        let RefreshClaims { sub, sid, generation, .. } = data.claims;
        Ok(RefreshGrant { user_id: sub, session_id: sid, generation })
    }
}

fn refused(e: jsonwebtoken::errors::Error) -> AppError {
    // The reason helps operators; the token itself is never logged.
    tracing::info!(reason = %e, "token rejected");
    AppError::Unauthorized("invalid or expired token")
}

/// Extracts the token from `Authorization: Bearer <token>`.
pub fn bearer_token(header_value: Option<&str>) -> Option<&str> {
    let value = header_value?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// Argon2id with OWASP's 9 MiB, 4 passes, 1 lane profile: as strong as its 19 MiB, 2 pass one, in half the
/// memory, which keeps the REST function small (docs/performance.md).
const MEMORY_KIB: u32 = 9 * 1024;
const PASSES: u32 = 4;
const LANES: u32 = 1;
const SALT_BYTES: usize = 16;

/// Argon2's work memory, allocated once per process and reused: a Lambda handles one request at a time, and a
/// fresh allocation per hash would stay behind in the allocator of each thread that hashed.
static WORK_MEMORY: std::sync::Mutex<Vec<argon2::Block>> = std::sync::Mutex::new(Vec::new());

fn argon2_into(
    params: &argon2::Params,
    algorithm: argon2::Algorithm,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> AppResult<()> {
    let argon = Argon2::new(algorithm, argon2::Version::V0x13, params.clone());
    let mut memory = WORK_MEMORY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), argon2::Block::default());
    }
    argon
        .hash_password_into_with_memory(password, salt, out, &mut memory[..params.block_count()])
        .map_err(|e| AppError::internal(e.to_string()))
}

fn hash_password_blocking(password: &str) -> AppResult<String> {
    let params = argon2::Params::new(MEMORY_KIB, PASSES, LANES, Some(argon2::Params::DEFAULT_OUTPUT_LEN))
        .map_err(|e| AppError::internal(e.to_string()))?;
    let mut salt = [0u8; SALT_BYTES];
    password_hash::rand_core::RngCore::fill_bytes(&mut OsRng, &mut salt);
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    argon2_into(&params, argon2::Algorithm::Argon2id, password.as_bytes(), &salt, &mut out)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AppError::internal(e.to_string()))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(argon2::Version::V0x13.into()),
        params: password_hash::ParamsString::try_from(&params).map_err(|e| AppError::internal(e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(password_hash::Output::new(&out).map_err(|e| AppError::internal(e.to_string()))?),
    };
    Ok(phc.to_string())
}

fn verify_password_blocking(password: &str, stored_hash: &str) -> bool {
    let check = || -> Option<bool> {
        let parsed = PasswordHash::new(stored_hash).ok()?;
        let algorithm = argon2::Algorithm::try_from(parsed.algorithm).ok()?;
        let params = argon2::Params::try_from(&parsed).ok()?;
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
        let expected = parsed.hash?;
        let mut out = vec![0u8; expected.len()];
        argon2_into(&params, algorithm, password.as_bytes(), salt, &mut out).ok()?;
        // `Output` compares in constant time.
        Some(password_hash::Output::new(&out).ok()? == expected)
    };
    check().unwrap_or(false)
}

/// Hashes a password on the blocking pool: Argon2 is tens of milliseconds of CPU by design.
pub async fn hash_password(password: &str) -> AppResult<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password_blocking(&password)).await.map_err(AppError::internal)?
}

/// Checks a password against a stored hash (any Argon2 variant and parameters) on the blocking pool.
pub async fn verify_password(password: &str, stored_hash: &str) -> bool {
    let (password, stored_hash) = (password.to_owned(), stored_hash.to_owned());
    tokio::task::spawn_blocking(move || verify_password_blocking(&password, &stored_hash)).await.unwrap_or(false)
}

/// A hash of a random password, checked when a login names an unknown user so that the answer takes as long
/// as for a known user with a wrong password (no username enumeration by timing). Constant per process, computed
/// on first use.
pub async fn decoy_hash() -> String {
    static DECOY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DECOY
        .get_or_init(|| async { hash_password(&uuid::Uuid::new_v4().to_string()).await.unwrap_or_default() })
        .await
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

    fn alice() -> Identity {
        Identity { user_id: "u1".into(), username: "alice".into(), session_id: "s1".into() }
    }

    #[test]
    fn issued_tokens_verify() {
        let keys = TokenKeys::new(SECRET, Duration::from_secs(60)).unwrap();
        let token = keys.issue(&alice()).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), alice());
    }

    #[test]
    fn refresh_and_access_tokens_are_not_interchangeable() {
        let keys = TokenKeys::new(SECRET, Duration::from_secs(60)).unwrap();
        let grant = RefreshGrant { user_id: "u1".into(), session_id: "s1".into(), generation: 3 };
        let refresh = keys.issue_refresh(&grant).unwrap();
        assert_eq!(keys.verify_refresh(&refresh).unwrap(), grant);
        assert!(keys.verify(&refresh).is_err(), "a refresh token is no access token");
        assert!(keys.verify_refresh(&keys.issue(&alice()).unwrap()).is_err(), "nor the other way round");
        let other = TokenKeys::new(b"another-secret-that-is-long-enough-000", Duration::from_secs(60)).unwrap();
        assert!(keys.verify_refresh(&other.issue_refresh(&grant).unwrap()).is_err());
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
        let claims =
            Claims { sub: "u1".into(), username: "alice".into(), sid: "s1".into(), iat: now - 7200, exp: now - 3600 };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        assert!(keys.verify(&token).is_err());
    }

    #[test]
    fn rejects_unsigned_and_other_algorithms() {
        let keys = TokenKeys::new(SECRET, Duration::from_secs(60)).unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims { sub: "u1".into(), username: "alice".into(), sid: "s1".into(), iat: now, exp: now + 60 };
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

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=9216,t=4,p=1$"), "{hash}");
        assert!(verify_password("correct horse", &hash).await);
        assert!(!verify_password("wrong horse", &hash).await);
        assert!(!verify_password("correct horse", "not-a-hash").await);
        assert!(!verify_password("anything", &decoy_hash().await).await);
        assert_eq!(decoy_hash().await, decoy_hash().await, "one decoy per process");
    }

    #[tokio::test]
    async fn hashes_made_with_the_previous_parameters_still_verify() {
        use password_hash::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let old = Argon2::default().hash_password(b"correct horse", &salt).unwrap().to_string();
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
        assert!(verify_password("correct horse", &old).await);
        assert!(!verify_password("wrong horse", &old).await);
    }
}

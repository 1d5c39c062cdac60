//! Accounts: registering, logging in, proving who a token belongs to, and finding other users by name. Every
//! login is a session ([`sessions`]): the access token names it, and the session must still exist for the token
//! to be accepted.

mod deletion;
mod sessions;

pub use deletion::{AccountDeleted, DeleteAccount};
pub(crate) use sessions::SessionCloser;
pub use sessions::{ChangePassword, RefreshRequest, SessionsEnded};

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::paging::{Page, Pager, page_size};
use crate::auth::{self, TokenKeys};
use crate::delivery::Delivery;
use crate::error::{AppError, AppResult};
use crate::model::{Actor, SessionId, Standing, User, UserId, UserRecord, now_iso};
use crate::ports::{AccountQueue, ErasureStore, SessionStore, Store, UserKey, UserStore, username_key};

/// Page sizes of the user search: (default, maximum).
const USER_PAGE: (u64, u64) = (20, 50);
/// Usernames have at most 32 characters, so a longer prefix can match nothing.
const MAX_SEARCH_CHARS: usize = 32;
pub(crate) const MAX_URL_LEN: usize = 2048;

/// Username/password, as sent to register and login.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub avatar: Option<String>,
}

impl Credentials {
    pub fn validate(&self) -> AppResult<()> {
        if !is_username(&self.username) {
            return Err(AppError::Validation("username must have 3-32 characters of [a-zA-Z0-9_.-]".into()));
        }
        // The upper bound keeps argon2's work per request bounded.
        if !(8..=128).contains(&self.password.chars().count()) {
            return Err(AppError::Validation("password must have 8-128 characters".into()));
        }
        Ok(())
    }
}

/// Whether a string can be a username at all (3-32 characters of `[a-zA-Z0-9_.-]`).
pub fn is_username(name: &str) -> bool {
    (3..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// What register, login and refresh return: a short-lived access token, the refresh token that gets the next
/// one (once), and the user.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub token: String,
    pub refresh_token: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
    pub user: User,
}

/// Who an accepted access token belongs to, and which of their sessions it was issued to.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub user: User,
    pub session_id: SessionId,
    /// An operator (moderation routes); read with the session, so it costs nothing.
    pub operator: bool,
}

/// A suspended user's token, wherever it is shown.
pub(crate) const SUSPENDED_TOKEN: AppError = AppError::Unauthorized("this account is suspended");

/// `GET /users` query.
#[derive(Clone, Debug, Default)]
pub struct UserSearch {
    pub search: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

pub struct Accounts {
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    closer: SessionCloser,
    erasure: Arc<dyn ErasureStore>,
    erasures: Arc<dyn AccountQueue>,
    tokens: TokenKeys,
}

impl Accounts {
    pub fn new(store: &Arc<dyn Store>, delivery: Delivery, erasures: Arc<dyn AccountQueue>, tokens: TokenKeys) -> Self {
        Accounts {
            users: store.clone(),
            sessions: store.clone(),
            closer: SessionCloser::new(store, delivery),
            erasure: store.clone(),
            erasures,
            tokens,
        }
    }

    pub async fn register(&self, input: Credentials) -> AppResult<Session> {
        input.validate()?;
        let avatar = input.avatar.map(|url| validate_url("avatar", url)).transpose()?;
        let user = User { id: UserId::random(), username: input.username, avatar, created_at: now_iso() };
        let password_hash = auth::hash_password(&input.password).await?;
        self.users
            .create_user(&UserRecord { user: user.clone(), password_hash, standing: Standing::default() })
            .await?;
        self.open_session(user).await
    }

    pub async fn login(&self, input: Credentials) -> AppResult<Session> {
        const REFUSAL: AppError = AppError::Unauthorized("invalid username or password");
        if input.validate().is_err() {
            return Err(REFUSAL);
        }
        match self.users.find_by_username(&input.username).await? {
            Some(record) if auth::verify_password(&input.password, &record.password_hash).await => {
                if record.standing.suspended {
                    return Err(AppError::Forbidden("this account is suspended"));
                }
                self.open_session(record.user).await
            }
            Some(_) => Err(REFUSAL),
            None => {
                // Same work as a wrong password, so response time does not reveal which usernames exist.
                auth::verify_password(&input.password, &auth::decoy_hash().await).await;
                Err(REFUSAL)
            }
        }
    }

    /// Verifies a bearer token, and that its session and its user still exist (one read).
    pub async fn authenticate(&self, token: Option<&str>) -> AppResult<Authenticated> {
        const ENDED: AppError = AppError::Unauthorized("session ended or account no longer exists");
        let token = token.ok_or(AppError::Unauthorized("missing access token"))?;
        let identity = self.tokens.verify(token)?;
        let user_id = UserId::parse(&identity.user_id).map_err(|_| ENDED)?;
        let session_id = SessionId::parse(&identity.session_id).map_err(|_| ENDED)?;
        let (user, standing) = self.sessions.session_user(&user_id, &session_id).await?.ok_or(ENDED)?;
        if standing.deleted {
            return Err(ENDED);
        }
        if standing.suspended {
            return Err(SUSPENDED_TOKEN);
        }
        Ok(Authenticated { user, session_id, operator: standing.operator })
    }

    /// Username prefix search, case-insensitive, in username order.
    pub async fn search(&self, actor: &Actor, query: UserSearch, pager: &Pager) -> AppResult<Page<User>> {
        let search = query.search.as_deref().map(str::trim).unwrap_or_default();
        if search.is_empty() || search.chars().count() > MAX_SEARCH_CHARS {
            return Err(AppError::Validation(format!("search must have 1-{MAX_SEARCH_CHARS} characters")));
        }
        let prefix = username_key(search);
        let limit = page_size(query.limit, USER_PAGE)?;
        let scope = format!("users:{prefix}:{}", actor.id());
        let after: Option<UserKey> = query.cursor.as_deref().map(|c| pager.position(&scope, c)).transpose()?;
        let mut users = self.users.search_users(&prefix, after.as_ref(), limit + 1).await?;
        let next_cursor = pager
            .next_cursor(&scope, &mut users, limit, |u| UserKey { name: username_key(&u.username), id: u.id.clone() });
        Ok(Page { items: users, next_cursor })
    }
}

pub(crate) fn validate_url(field: &str, url: String) -> AppResult<String> {
    if (url.starts_with("https://") || url.starts_with("http://")) && url.len() <= MAX_URL_LEN {
        Ok(url)
    } else {
        Err(AppError::Validation(format!("{field} must be an http(s) URL of at most {MAX_URL_LEN} characters")))
    }
}

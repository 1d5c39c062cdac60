//! Accounts: registering, logging in, proving who a token belongs to, and finding other users by name.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::paging::{Page, Pager, page_size};
use crate::auth::{self, Identity, TokenKeys};
use crate::error::{AppError, AppResult};
use crate::model::{Actor, User, UserId, UserRecord, now_iso};
use crate::ports::{UserKey, UserStore, username_key};

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

/// What register and login return.
#[derive(Debug, Serialize)]
pub struct Session {
    pub token: String,
    pub user: User,
}

/// `GET /users` query.
#[derive(Clone, Debug, Default)]
pub struct UserSearch {
    pub search: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

pub struct Accounts {
    users: Arc<dyn UserStore>,
    tokens: TokenKeys,
}

impl Accounts {
    pub fn new(users: Arc<dyn UserStore>, tokens: TokenKeys) -> Self {
        Accounts { users, tokens }
    }

    pub async fn register(&self, input: Credentials) -> AppResult<Session> {
        input.validate()?;
        let avatar = input.avatar.map(|url| validate_url("avatar", url)).transpose()?;
        let user = User { id: UserId::random(), username: input.username, avatar, created_at: now_iso() };
        let password_hash = auth::hash_password(&input.password).await?;
        self.users.create_user(&UserRecord { user: user.clone(), password_hash }).await?;
        self.session(user)
    }

    pub async fn login(&self, input: Credentials) -> AppResult<Session> {
        const REFUSAL: AppError = AppError::Unauthorized("invalid username or password");
        if input.validate().is_err() {
            return Err(REFUSAL);
        }
        match self.users.find_by_username(&input.username).await? {
            Some(record) if auth::verify_password(&input.password, &record.password_hash).await => {
                self.session(record.user)
            }
            Some(_) => Err(REFUSAL),
            None => {
                // Same work as a wrong password, so response time does not reveal which usernames exist.
                auth::verify_password(&input.password, &auth::decoy_hash().await).await;
                Err(REFUSAL)
            }
        }
    }

    fn session(&self, user: User) -> AppResult<Session> {
        let identity = Identity { user_id: user.id.to_string(), username: user.username.clone() };
        Ok(Session { token: self.tokens.issue(&identity)?, user })
    }

    /// Verifies a bearer token and that its user still exists.
    pub async fn authenticate(&self, token: Option<&str>) -> AppResult<User> {
        const GONE: AppError = AppError::Unauthorized("account no longer exists");
        let token = token.ok_or(AppError::Unauthorized("missing access token"))?;
        let identity = self.tokens.verify(token)?;
        let user_id = UserId::parse(&identity.user_id).map_err(|_| GONE)?;
        self.users.get_user(&user_id).await?.ok_or(GONE)
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

//! Sessions: a login on one device, whose refresh tokens rotate. Each refresh moves the session to the next
//! generation and hands out the next refresh token; a refresh token of an older generation coming back means it
//! was copied, so the whole session ends (the thief's and the owner's tokens alike). Ending a session, by logout,
//! logout everywhere, a password change or reuse, deletes it, so its access tokens are refused on their next
//! request, and closes its open WebSocket connections at once.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Accounts, Authenticated, Credentials, SUSPENDED_TOKEN, Session};
use crate::auth::{self, Identity, REFRESH_TOKEN_TTL, RefreshGrant};
use crate::delivery::Delivery;
use crate::error::{AppError, AppResult};
use crate::model::{ConnectionId, SessionId, SessionRecord, SessionView, User, UserId, now_epoch_seconds, now_iso};
use crate::ports::{ConnectionStore, SessionStore, Store};

/// `POST /auth/refresh` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// `PUT /users/me/password` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

/// What ending sessions did.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SessionsEnded {
    pub ended_sessions: usize,
    pub closed_connections: usize,
}

const REFRESH_REFUSED: AppError = AppError::Unauthorized("refresh token expired, already used, or its session ended");

impl Accounts {
    /// A new session for `user`, with its first tokens.
    pub(super) async fn open_session(&self, user: User) -> AppResult<Session> {
        let now = now_epoch_seconds();
        let session = SessionRecord {
            id: SessionId::random(),
            user_id: user.id.clone(),
            generation: 0,
            created_at: now_iso(),
            refreshed_at: now_iso(),
            expires_at: now + REFRESH_TOKEN_TTL.as_secs(),
        };
        self.sessions.create_session(&session).await?;
        self.tokens_for(user, &session.id, session.generation)
    }

    fn tokens_for(&self, user: User, session_id: &SessionId, generation: u64) -> AppResult<Session> {
        let identity = Identity {
            user_id: user.id.to_string(),
            username: user.username.clone(),
            session_id: session_id.to_string(),
        };
        let grant = RefreshGrant { user_id: user.id.to_string(), session_id: session_id.to_string(), generation };
        Ok(Session {
            token: self.tokens.issue(&identity)?,
            refresh_token: self.tokens.issue_refresh(&grant)?,
            expires_in: self.tokens.access_ttl(),
            user,
        })
    }

    /// The next access and refresh tokens for a refresh token of the session's current generation. Any other
    /// refresh token of a session that still exists is a reuse: the session ends.
    pub async fn refresh(&self, input: RefreshRequest) -> AppResult<Session> {
        let grant = self.tokens.verify_refresh(&input.refresh_token)?;
        let user_id = UserId::parse(&grant.user_id).map_err(|_| REFRESH_REFUSED)?;
        let session_id = SessionId::parse(&grant.session_id).map_err(|_| REFRESH_REFUSED)?;
        let expires_at = now_epoch_seconds() + REFRESH_TOKEN_TTL.as_secs();
        if !self.sessions.rotate_session(&user_id, &session_id, grant.generation, &now_iso(), expires_at).await? {
            let ended = self.closer.end(&user_id, &[session_id]).await?;
            if ended.ended_sessions > 0 {
                tracing::warn!(%user_id, "a used refresh token came back: its session ended");
            }
            return Err(REFRESH_REFUSED);
        }
        match self.sessions.session_user(&user_id, &session_id).await? {
            Some((_, standing)) if standing.deleted => Err(REFRESH_REFUSED),
            Some((_, standing)) if standing.suspended => Err(SUSPENDED_TOKEN),
            Some((user, _)) => self.tokens_for(user, &session_id, grant.generation + 1),
            None => Err(REFRESH_REFUSED),
        }
    }

    /// Ends the session of this token.
    pub async fn logout(&self, who: &Authenticated) -> AppResult<SessionsEnded> {
        self.closer.end(&who.user.id, std::slice::from_ref(&who.session_id)).await
    }

    /// Ends every session of the user, this one included.
    pub async fn logout_everywhere(&self, who: &Authenticated) -> AppResult<SessionsEnded> {
        self.closer.end_all(&who.user.id).await
    }

    /// The user's sessions, newest first.
    pub async fn list_sessions(&self, who: &Authenticated) -> AppResult<Vec<SessionView>> {
        let mut sessions = self.sessions.sessions(&who.user.id).await?;
        sessions.sort_by(|a, b| (&b.created_at, &b.id).cmp(&(&a.created_at, &a.id)));
        Ok(sessions
            .into_iter()
            .map(|s| SessionView {
                current: s.id == who.session_id,
                session_id: s.id,
                created_at: s.created_at,
                refreshed_at: s.refreshed_at,
            })
            .collect())
    }

    /// Ends one of the user's sessions (a lost device, from another one).
    pub async fn end_session(&self, who: &Authenticated, session_id: &SessionId) -> AppResult<SessionsEnded> {
        let ended = self.closer.end(&who.user.id, std::slice::from_ref(session_id)).await?;
        if ended.ended_sessions == 0 {
            return Err(AppError::NotFound("session not found"));
        }
        Ok(ended)
    }

    /// Changes the password (the current one proves it is the owner, not a stolen token) and ends every other
    /// session; this one stays.
    pub async fn change_password(&self, who: &Authenticated, input: ChangePassword) -> AppResult<SessionsEnded> {
        let record =
            self.users.user_record(&who.user.id).await?.ok_or(AppError::Unauthorized("account no longer exists"))?;
        if !auth::verify_password(&input.current_password, &record.password_hash).await {
            return Err(AppError::Forbidden("the current password is wrong"));
        }
        let candidate = Credentials { username: who.user.username.clone(), password: input.new_password, avatar: None };
        candidate.validate()?;
        let hash = auth::hash_password(&candidate.password).await?;
        self.users.set_password_hash(&who.user.id, &hash).await?;
        let others: Vec<SessionId> = self
            .sessions
            .sessions(&who.user.id)
            .await?
            .into_iter()
            .map(|s| s.id)
            .filter(|id| *id != who.session_id)
            .collect();
        self.closer.end(&who.user.id, &others).await
    }
}

/// Ends sessions: what logout, a password change, a reused refresh token and an operator's suspension share.
#[derive(Clone)]
pub(crate) struct SessionCloser {
    sessions: Arc<dyn SessionStore>,
    connections: Arc<dyn ConnectionStore>,
    delivery: Delivery,
}

impl SessionCloser {
    pub(crate) fn new(store: &Arc<dyn Store>, delivery: Delivery) -> Self {
        SessionCloser { sessions: store.clone(), connections: store.clone(), delivery }
    }

    /// Ends every session of the user.
    pub(crate) async fn end_all(&self, user_id: &UserId) -> AppResult<SessionsEnded> {
        let all: Vec<SessionId> = self.sessions.sessions(user_id).await?.into_iter().map(|s| s.id).collect();
        self.end(user_id, &all).await
    }

    /// Deletes the sessions (so their tokens are refused from now on) and then closes the user's connections
    /// that they opened. In that order: a `$connect` racing with this either stored its connection before the
    /// connections are read here (and is closed) or checks its session again after storing it (and finds it
    /// gone).
    pub(crate) async fn end(&self, user_id: &UserId, session_ids: &[SessionId]) -> AppResult<SessionsEnded> {
        let mut ended_sessions = 0;
        for session_id in session_ids {
            ended_sessions += usize::from(self.sessions.delete_session(user_id, session_id).await?);
        }
        if ended_sessions == 0 {
            // Sessions already gone were closed by whoever ended them.
            return Ok(SessionsEnded { ended_sessions, closed_connections: 0 });
        }
        let doomed: Vec<ConnectionId> = self
            .connections
            .user_connections(user_id)
            .await?
            .into_iter()
            .filter(|c| c.session_id.as_ref().is_some_and(|id| session_ids.contains(id)))
            .map(|c| c.connection_id)
            .collect();
        self.delivery.close(&doomed).await?;
        Ok(SessionsEnded { ended_sessions, closed_connections: doomed.len() })
    }
}

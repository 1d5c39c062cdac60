//! What every command needs, resolved once from the flags and the environment: the endpoints, the token (only
//! when a command asks for it) and clients for both APIs.

use crate::args::Globals;
use crate::endpoints::{Endpoints, Env};
use crate::error::CliResult;
use crate::rest::Rest;
use crate::session;
use crate::ws::Connection;

pub struct Context<'a> {
    pub globals: &'a Globals,
    pub env: Env<'a>,
    pub endpoints: Endpoints,
}

impl<'a> Context<'a> {
    pub fn new(globals: &'a Globals, env: Env<'a>) -> CliResult<Context<'a>> {
        Ok(Context { globals, env, endpoints: Endpoints::resolve(globals, env)? })
    }

    /// The HTTP API without a token (register, login).
    pub fn anonymous_rest(&self) -> CliResult<Rest> {
        Rest::new(self.endpoints.http()?, None)
    }

    /// The HTTP API as the logged-in user.
    pub async fn rest(&self) -> CliResult<Rest> {
        Rest::new(self.endpoints.http()?, Some(self.token().await?))
    }

    /// A WebSocket connection as the logged-in user.
    pub async fn connect(&self) -> CliResult<Connection> {
        let ws = self.endpoints.ws()?;
        Connection::open(ws, &self.token().await?).await
    }

    /// `--token` or `CHAT_TOKEN` as given; else the token file's, renewed first (and stored again) when it
    /// expires within a minute. Access tokens live minutes; the refresh token keeps a login for 30 days.
    async fn token(&self) -> CliResult<String> {
        if let Some(token) = session::given_token(self.globals, self.env) {
            return Ok(token);
        }
        let path = session::token_file(self.globals, self.env)?;
        let stored = session::read_stored(&path)?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let Some(refresh_token) = stored.refresh_token.as_deref().filter(|_| stored.needs_refresh(now)) else {
            return Ok(stored.token);
        };
        let renewed = session::Stored::from_session(&self.anonymous_rest()?.refresh(refresh_token).await?, now)?;
        session::store_session(&path, &renewed)?;
        Ok(renewed.token)
    }
}

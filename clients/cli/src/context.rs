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
    pub fn rest(&self) -> CliResult<Rest> {
        let http = self.endpoints.http()?;
        Rest::new(http, Some(session::token(self.globals, self.env)?))
    }

    /// A WebSocket connection as the logged-in user.
    pub async fn connect(&self) -> CliResult<Connection> {
        let ws = self.endpoints.ws()?;
        let token = session::token(self.globals, self.env)?;
        Connection::open(ws, &token).await
    }
}

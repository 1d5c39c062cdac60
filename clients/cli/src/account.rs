//! `register`, `login`, `logout`, `whoami`: getting a token, keeping it in the token file (or printing it), and
//! forgetting it; `export`: a copy of the account's data.

use std::io::{BufRead, IsTerminal};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::json_line;
use crate::session;

/// `register` and `login`: the session's user, and where the token went.
pub async fn sign_in(
    context: &Context<'_>,
    registering: bool,
    username: &str,
    password: Option<&str>,
    print_token: bool,
) -> CliResult<()> {
    let password = password_from(password, context)?;
    let rest = context.anonymous_rest()?;
    let session =
        if registering { rest.register(username, &password).await? } else { rest.login(username, &password).await? };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let stored = session::Stored::from_session(&session, now)?;
    if print_token {
        return json_line(
            &json!({ "token": stored.token, "refreshToken": stored.refresh_token, "user": session["user"] }),
        );
    }
    let path = session::token_file(context.globals, context.env)?;
    session::store_session(&path, &stored)?;
    eprintln!("logged in as {username}; token stored in {}", path.display());
    json_line(&json!({ "user": session["user"], "tokenFile": path.display().to_string() }))
}

/// Ends the session on the server (its connections close, its tokens stop working), then forgets the token
/// file. A session the server no longer knows is forgotten all the same.
pub async fn logout(context: &Context<'_>) -> CliResult<()> {
    let ended = match context.rest().await {
        Ok(rest) => rest.logout().await.is_ok(),
        Err(_) => false,
    };
    let path = session::token_file(context.globals, context.env)?;
    let deleted = session::forget_token(&path)?;
    json_line(&json!({ "tokenFile": path.display().to_string(), "deleted": deleted, "sessionEnded": ended }))
}

pub async fn whoami(context: &Context<'_>) -> CliResult<()> {
    json_line(&context.rest().await?.me().await?)
}

/// How long `export` waits for the document when `--timeout` does not say.
const EXPORT_WAIT: Duration = Duration::from_secs(300);
/// How often `export` asks whether the document is made.
const EXPORT_POLL: Duration = Duration::from_secs(1);

/// Asks for a copy of the user's data, waits until the server has made it, and saves it to `out`. Asking again
/// within the hour answers the same export, so a wait that ran out can simply be run again.
pub async fn export(context: &Context<'_>, out: &str, timeout: Option<Duration>) -> CliResult<()> {
    let rest = context.rest().await?;
    let deadline = Instant::now() + timeout.unwrap_or(EXPORT_WAIT);
    let mut export = rest.request_export().await?;
    while export["status"] == "pending" {
        if Instant::now() >= deadline {
            return Err(CliError::Timeout(
                "the export is not made yet; run `export` again later for the same one".into(),
            ));
        }
        tokio::time::sleep(EXPORT_POLL).await;
        export = rest.export_status().await?;
    }
    let Some(url) = export["url"].as_str().filter(|_| export["status"] == "ready") else {
        return Err(CliError::Connection(format!("the export cannot be downloaded: {export}")));
    };
    let bytes = rest.download(url).await?;
    std::fs::write(out, &bytes).map_err(|e| CliError::Setup(format!("cannot write {out}: {e}")))?;
    json_line(&json!({
        "exportId": export["exportId"],
        "readyAt": export["readyAt"],
        "file": out,
        "size": bytes.len(),
    }))
}

/// `--password`, else `CHAT_PASSWORD`, else one line of stdin (with a prompt when it is a terminal).
fn password_from(flag: Option<&str>, context: &Context<'_>) -> CliResult<String> {
    if let Some(password) = flag.map(str::to_owned).or_else(|| (context.env)("CHAT_PASSWORD")) {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password (shown as you type): ");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(|e| CliError::Setup(format!("cannot read the password: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(CliError::Usage("no password: pass --password, set CHAT_PASSWORD, or type it on stdin".into()));
    }
    Ok(password)
}

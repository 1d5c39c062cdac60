//! `chat-cli`: a terminal client of the chat backend. Accounts and conversations over the HTTP API, `send` and
//! `listen` over the WebSocket API; results as JSON lines on stdout, messages on stderr, and an exit status
//! scripts can test (0 ok, 1 failed, 2 bad command line, 3 timed out). `chat-cli help` lists the commands.

mod account;
mod args;
mod context;
mod conversations;
mod endpoints;
mod error;
mod files;
mod live;
mod moderation;
mod output;
mod rest;
mod session;
mod tls;
mod ws;

use std::process::ExitCode;

use args::{Command, Invocation};
use context::Context;
use error::CliResult;

fn main() -> ExitCode {
    let invocation = match args::parse(std::env::args().skip(1)) {
        Ok(invocation) => invocation,
        Err(error) => return fail(&error),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let env = |name: &str| std::env::var(name).ok();
    match runtime.block_on(run(&invocation, &env)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

fn fail(error: &error::CliError) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(error.exit_code())
}

async fn run(invocation: &Invocation, env: endpoints::Env<'_>) -> CliResult<()> {
    if invocation.command == Command::Help {
        println!("{}", args::USAGE);
        return Ok(());
    }
    let context = Context::new(&invocation.globals, env)?;
    match &invocation.command {
        Command::Help => Ok(()),
        Command::Register { username, password, print_token } => {
            account::sign_in(&context, true, username, password.as_deref(), *print_token).await
        }
        Command::Login { username, password, print_token } => {
            account::sign_in(&context, false, username, password.as_deref(), *print_token).await
        }
        Command::Logout => account::logout(&context).await,
        Command::Whoami => account::whoami(&context).await,
        Command::Export { out, timeout } => account::export(&context, out, *timeout).await,
        Command::Users { search, limit } => conversations::users(&context, search, *limit).await,
        Command::Conversations { limit } => conversations::list(&context, *limit).await,
        Command::CreatePrivate { user } => conversations::create_private(&context, user).await,
        Command::CreateGroup { name, members } => conversations::create_group(&context, name, members).await,
        Command::History { conversation_id, limit, after_seq } => {
            conversations::history(&context, conversation_id, *limit, *after_seq).await
        }
        Command::Send { conversation_id, text, file, client_message_id, timeout, mentions } => {
            let attachment = match file {
                Some(path) => Some(files::upload(&context, conversation_id, path).await?),
                None => None,
            };
            let mut mentioned = Vec::with_capacity(mentions.len());
            if !mentions.is_empty() {
                let rest = context.rest().await?;
                for user in mentions {
                    mentioned.push(conversations::user_id_of(&rest, user).await?);
                }
            }
            let id = client_message_id.as_deref();
            live::send(&context, conversation_id, text, attachment, id, *timeout, &mentioned).await
        }
        Command::Notify { conversation_id, level, until } => {
            conversations::notify(&context, conversation_id, level, until.as_deref()).await
        }
        Command::Notifications { dnd_until, previews } => {
            conversations::notifications(&context, dnd_until.as_ref().map(Option::as_deref), *previews).await
        }
        Command::Listen { count, timeout, events, join } => {
            live::listen(&context, live::ListenUntil { count: *count, timeout: *timeout }, events, join).await
        }
        Command::Report { target, reason, details } => {
            moderation::report(&context, target, reason, details.as_deref()).await
        }
        Command::Moderate(command) => moderation::moderate(&context, command).await,
    }
}

//! What can go wrong, worded so a person (or a script reading stderr) knows what to do, and the exit code of
//! each kind: 2 for a command line that makes no sense, 3 for a wait that ran out, 1 for everything else.

use thiserror::Error;

pub type CliResult<T> = Result<T, CliError>;

#[derive(Debug, Error)]
pub enum CliError {
    /// The command line is wrong (unknown command or flag, missing argument, bad number).
    #[error("{0}\nRun `chat-cli help` for usage.")]
    Usage(String),
    /// Something the CLI needs is missing or unreadable: endpoints, token, a file.
    #[error("{0}")]
    Setup(String),
    /// The HTTP API refused a request; `code` and `message` come from its `{"error": {...}}` body.
    #[error("{operation}: {code}: {message} (HTTP {status})")]
    Http { operation: String, status: u16, code: String, message: String },
    /// The WebSocket API answered a request with an `error` frame.
    #[error("{action}: {code}: {message}")]
    Server { action: String, code: String, message: String },
    /// The network or the WebSocket connection failed.
    #[error("{0}")]
    Connection(String),
    /// A bounded wait ended before what it waited for.
    #[error("{0}")]
    Timeout(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Timeout(_) => 3,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_tell_usage_timeouts_and_failures_apart() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CliError::Timeout("x".into()).exit_code(), 3);
        let refused = CliError::Server { action: "send_message".into(), code: "not_found".into(), message: "m".into() };
        assert_eq!(refused.exit_code(), 1);
        assert_eq!(refused.to_string(), "send_message: not_found: m");
    }
}

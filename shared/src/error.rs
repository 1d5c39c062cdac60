//! The one error type of the backend.
//!
//! Every variant knows the HTTP status and the machine-readable code a client sees, so the REST and WebSocket
//! layers render errors the same way. Internal causes are kept for the logs and never reach a client.

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::operation::BuildError;

pub type BoxError = Box<dyn StdError + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request could not be parsed (malformed JSON, wrong field types).
    #[error("{0}")]
    BadRequest(String),
    /// The request parsed but a value is not acceptable (empty content, bad username…).
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    /// Also used for resources the caller may not see, so their existence is not revealed.
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too many requests of one kind from one user, or a write that kept losing races: try again after
    /// `retry_after` seconds.
    #[error("too many requests, retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    /// Anything the client cannot fix. The cause is logged; the client only sees a generic message.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl AppError {
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        AppError::Internal(cause.into())
    }

    /// A write that kept losing races to concurrent ones: worth trying again in a moment.
    pub const BUSY: AppError = AppError::RateLimited { retry_after: 1 };

    /// Seconds after which a retry may succeed, for the errors that have one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            AppError::BadRequest(_) | AppError::UnknownAction(_) => 400,
            AppError::Unauthorized(_) => 401,
            AppError::Forbidden(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::Conflict(_) => 409,
            AppError::PayloadTooLarge(_) => 413,
            AppError::Validation(_) => 422,
            AppError::RateLimited { .. } => 429,
            AppError::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Validation(_) => "validation_failed",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::UnknownAction(_) => "unknown_action",
            AppError::Internal(_) => "internal",
        }
    }

    /// The text a client may see. For internal errors this never includes the cause.
    pub fn public_message(&self) -> String {
        self.to_string()
    }

    /// Logs the error once, at a level matching who is at fault.
    pub fn log(&self) {
        match self {
            AppError::Internal(cause) => {
                tracing::error!(code = self.code(), error = %cause, source = ?cause.source(), "request failed")
            }
            _ => tracing::info!(code = self.code(), message = %self, "request rejected"),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// Any AWS SDK failure (DynamoDB, SQS, Secrets Manager: every SDK crate re-exports this one type) that reaches
/// the use cases is ours to fix, not the client's: the store and the fan-out handle the outcomes that mean
/// something (a failed condition, a gone connection) before converting.
impl<E, R> From<SdkError<E, R>> for AppError
where
    E: StdError + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn from(err: SdkError<E, R>) -> Self {
        AppError::Internal(Box::new(err))
    }
}

/// A request the SDK could not even build (a missing required field): a bug in our code.
impl From<BuildError> for AppError {
    fn from(err: BuildError) -> Self {
        AppError::Internal(Box::new(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = AppError::internal("connection reset by DynamoDB at 10.0.0.1");
        assert_eq!(err.status(), 500);
        assert_eq!(err.code(), "internal");
        assert_eq!(err.public_message(), "internal error");
    }

    #[test]
    fn every_variant_has_a_distinct_code() {
        let all = [
            AppError::BadRequest("x".into()),
            AppError::Validation("x".into()),
            AppError::Unauthorized("x"),
            AppError::Forbidden("x"),
            AppError::NotFound("x"),
            AppError::Conflict("x"),
            AppError::PayloadTooLarge("x".into()),
            AppError::RateLimited { retry_after: 1 },
            AppError::UnknownAction("x".into()),
            AppError::internal("x"),
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(AppError::code).collect();
        assert_eq!(codes.len(), all.len());
        assert!(all.iter().all(|e| (400..600).contains(&e.status())));
    }
}

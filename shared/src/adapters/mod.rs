//! The transports: API Gateway events in, use-case calls, frames and HTTP responses out. Both decode payloads
//! into typed values the same way (see [`payload_error`]).

pub mod actions;
pub mod bucket;
pub mod http;
pub mod queue;
pub mod stream;
pub mod strict_json;
pub mod ws;

use crate::error::AppError;
use crate::model::INVALID_ID;

/// A payload that did not decode: a malformed id is `validation_failed` with the id's reason (ids are checked
/// once, by their own parsing, in WebSocket frames and HTTP bodies alike); anything else is a malformed payload,
/// `bad_request` with `what` and serde's reason.
pub(crate) fn payload_error(err: serde_json::Error, what: &str) -> AppError {
    let reason = err.to_string();
    match reason.strip_prefix(INVALID_ID) {
        Some(id_reason) => AppError::Validation(id_reason.to_owned()),
        None => AppError::BadRequest(format!("{what}: {reason}")),
    }
}

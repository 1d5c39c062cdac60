//! The chat backend's logic, shared by every Lambda function and every test.
//!
//! Dependencies point one way:
//!
//! ```text
//! functions/* ─► app (composition root) ─► adapters (ws, http) ─► usecases ─► delivery, events ─► ports ─► model
//!                         └─► aws (DynamoDB store, API Gateway fan-out) ──────────────────────────┘
//! ```
//!
//! - [`model`]: domain types and typed ids, as clients see them.
//! - [`ports`]: the store traits (one per resource) and the one-connection [`ports::Fanout`].
//! - [`delivery`]: the fan-out policy (who gets a frame, in batches, with the handshake rule for 410s).
//! - [`events`]: every server frame as one enum.
//! - [`usecases`]: one module per resource, each deciding what is stored and what goes to whom.
//! - [`adapters`]: the WebSocket and HTTP transports; they translate and decide nothing.
//! - [`aws`]: the ports over DynamoDB and the API Gateway Management API.
//! - [`webpush`]: Web Push encryption (RFC 8291), VAPID (RFC 8292) and the HTTP push service.
//! - [`app`]: builds configuration, clients and (where needed) the signing key once per cold start.
//! - `testing` (feature `test-util`): the in-memory store and the recording fan-out.

pub mod adapters;
pub mod app;
pub mod auth;
pub mod aws;
pub mod config;
pub mod cursor;
pub mod delivery;
pub mod error;
pub mod events;
pub mod images;
pub mod model;
pub mod ports;
pub mod retry;
pub mod telemetry;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod usecases;
pub mod webpush;

pub use error::AppError;

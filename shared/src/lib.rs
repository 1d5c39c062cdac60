//! The chat backend's logic, shared by every Lambda function and every test.
//!
//! Each function binary only wires configuration and AWS clients into a handler from [`handlers`]; everything
//! that decides something lives here, behind the [`store`] and [`fanout`] traits so handlers run against
//! DynamoDB and API Gateway in the cloud and against in-memory fakes in unit tests.

pub mod auth;
pub mod config;
pub mod conversations;
pub mod cursor;
pub mod error;
pub mod fanout;
pub mod handlers;
pub mod messaging;
pub mod model;
pub mod presence;
pub mod protocol;
pub mod service;
pub mod social;
pub mod store;
pub mod telemetry;

pub use error::AppError;
pub use service::Services;

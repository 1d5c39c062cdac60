//! Transport adapters: turn API Gateway events into [`crate::Services`] calls and results into frames or HTTP
//! responses. One module per API.

pub mod rest;
mod rest_actions;
pub mod ws;

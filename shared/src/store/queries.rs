//! Read models for the REST API (conversation lists, history pages, user search) and the conversation
//! management writes that go with them. Kept apart from the write paths in [`super`] so each can evolve alone.

use async_trait::async_trait;

#[async_trait]
pub trait QueryStore: Send + Sync {}

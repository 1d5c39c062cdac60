//! [`QueryStore`](super::QueryStore) in memory, for handler tests.

use async_trait::async_trait;

use super::QueryStore;
use super::memory::InMemoryStore;

#[async_trait]
impl QueryStore for InMemoryStore {}

//! Test doubles: every store port in memory, a fan-out that records instead of posting, and a whole app over
//! them. Compiled for this crate's tests and, with the `test-util` feature, for other crates' tests; never into
//! the Lambda binaries.

mod memory;
mod recording;

use std::sync::Arc;
use std::time::Duration;

pub use memory::InMemoryStore;
pub use recording::RecordingFanout;

use crate::adapters::http::Rest;
use crate::auth::TokenKeys;
use crate::cursor::CursorCodec;
use crate::usecases::{Accounts, App, Pager};

/// The signing key of test apps.
pub const TEST_SECRET: &[u8] = b"in-memory-test-secret-with-enough-bytes";

/// An app over the in-memory store and the recording fan-out, with both kept for inspection.
pub struct TestApp {
    pub app: App,
    pub accounts: Accounts,
    pub pager: Pager,
    pub store: Arc<InMemoryStore>,
    pub fanout: Arc<RecordingFanout>,
}

impl TestApp {
    pub fn new() -> TestApp {
        let store = Arc::new(InMemoryStore::new());
        let fanout = Arc::new(RecordingFanout::new());
        let tokens = TokenKeys::new(TEST_SECRET, Duration::from_secs(3600)).expect("test secret is long enough");
        TestApp {
            app: App::new(store.clone(), fanout.clone(), Duration::from_secs(7800)),
            accounts: Accounts::new(store.clone(), tokens),
            pager: Pager::new(CursorCodec::new(TEST_SECRET)),
            store,
            fanout,
        }
    }

    /// The REST API over this app.
    pub fn rest(&self) -> Rest<'_> {
        Rest { app: &self.app, accounts: &self.accounts, pager: &self.pager }
    }
}

impl Default for TestApp {
    fn default() -> Self {
        Self::new()
    }
}

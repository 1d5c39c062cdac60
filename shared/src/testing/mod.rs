//! Test doubles: every store port in memory, a fan-out that records instead of posting, and a whole app over
//! them. Compiled for this crate's tests and, with the `test-util` feature, for other crates' tests; never into
//! the Lambda binaries.

mod memory;
mod recording;

use std::sync::Arc;
use std::time::Duration;

pub use memory::InMemoryStore;
pub use recording::{RecordingFanout, RecordingQueue};

use crate::adapters::http::Rest;
use crate::auth::TokenKeys;
use crate::config::DEFAULT_FANOUT_INLINE_MAX;
use crate::cursor::CursorCodec;
use crate::delivery::Delivery;
use crate::usecases::{Accounts, App, Limits, Pager};

/// The signing key of test apps.
pub const TEST_SECRET: &[u8] = b"in-memory-test-secret-with-enough-bytes";

/// An app over the in-memory store, the recording fan-out and the recording queue, all kept for inspection.
pub struct TestApp {
    pub app: App,
    pub accounts: Accounts,
    pub pager: Pager,
    pub store: Arc<InMemoryStore>,
    pub fanout: Arc<RecordingFanout>,
    pub queue: Arc<RecordingQueue>,
}

impl TestApp {
    pub fn new() -> TestApp {
        Self::with_limits(DEFAULT_FANOUT_INLINE_MAX, Limits::default())
    }

    /// A test app whose deliveries above `inline_max` connections go to the queue.
    pub fn with_limits(inline_max: usize, limits: Limits) -> TestApp {
        let store = Arc::new(InMemoryStore::new());
        let fanout = Arc::new(RecordingFanout::new());
        let queue = Arc::new(RecordingQueue::new());
        let delivery = Delivery::new(store.clone(), fanout.clone(), queue.clone(), inline_max);
        let tokens = TokenKeys::new(TEST_SECRET, Duration::from_secs(3600)).expect("test secret is long enough");
        TestApp {
            app: App::new(store.clone(), delivery, limits),
            accounts: Accounts::new(store.clone(), tokens),
            pager: Pager::new(CursorCodec::new(TEST_SECRET)),
            store,
            fanout,
            queue,
        }
    }

    /// Runs the queued jobs as the workers would (ignoring their delays), including the retries they enqueue,
    /// until none is left or `rounds` passes are done. Returns how many jobs failed for good (the ones SQS would
    /// retry and finally move to the dead-letter queue).
    pub async fn run_queued(&self, rounds: usize) -> usize {
        let mut failed = 0;
        for _ in 0..rounds {
            let jobs = self.queue.take();
            if jobs.is_empty() {
                break;
            }
            for (job, _) in jobs {
                if self.app.delivery.run_job(job).await.is_err() {
                    failed += 1;
                }
            }
        }
        failed
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

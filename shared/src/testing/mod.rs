//! Test doubles: every store port in memory, a fan-out that records instead of posting, and a whole app over
//! them. Compiled for this crate's tests and, with the `test-util` feature, for other crates' tests; never into
//! the Lambda binaries.

mod files;
pub mod images;
mod memory;
mod recording;

use std::sync::Arc;
use std::time::Duration;

pub use files::InMemoryFiles;
pub use images::png_bomb;
pub use memory::InMemoryStore;
pub use recording::{RecordingFanout, RecordingMobilePush, RecordingQueue};

use crate::adapters::http::Rest;
use crate::auth::TokenKeys;
use crate::cursor::CursorCodec;
use crate::ports::{AccountJob, Store};
use crate::usecases::push::PushSubscriptions;
use crate::usecases::{Accounts, App, Limits, Pager, Wiring};

/// The signing key of test apps.
pub const TEST_SECRET: &[u8] = b"in-memory-test-secret-with-enough-bytes";

/// The VAPID public key test apps answer (any base64url text: nothing is signed with it).
pub const TEST_SERVER_KEY: &str = "BTestServerKey";

/// An app over the in-memory store, the recording fan-out and the recording queue, all kept for inspection.
pub struct TestApp {
    pub app: App,
    pub accounts: Accounts,
    pub pager: Pager,
    pub store: Arc<InMemoryStore>,
    pub files: Arc<InMemoryFiles>,
    pub fanout: Arc<RecordingFanout>,
    pub queue: Arc<RecordingQueue>,
    pub push: PushSubscriptions,
    /// Phones' push, recorded.
    pub mobile: Arc<RecordingMobilePush>,
}

impl TestApp {
    pub fn new() -> TestApp {
        Self::with_limits(Limits::default())
    }

    /// A test app with these limits (e.g. a low `fanout_inline_max`, so deliveries go to the queue).
    pub fn with_limits(limits: Limits) -> TestApp {
        let store = Arc::new(InMemoryStore::new());
        let fanout = Arc::new(RecordingFanout::new());
        let queue = Arc::new(RecordingQueue::new());
        let files = Arc::new(InMemoryFiles::new());
        let wiring = Wiring::new(store.clone(), files.clone(), fanout.clone(), queue.clone(), queue.clone(), limits);
        let mobile = Arc::new(RecordingMobilePush::default());
        let push =
            PushSubscriptions::new(&(store.clone() as Arc<dyn Store>), mobile.clone(), TEST_SERVER_KEY.into(), true);
        let tokens = TokenKeys::new(TEST_SECRET, Duration::from_secs(3600)).expect("test secret is long enough");
        TestApp {
            app: wiring.app(),
            accounts: wiring.accounts(tokens),
            pager: Pager::new(CursorCodec::new(TEST_SECRET)),
            store,
            files,
            fanout,
            queue,
            push,
            mobile,
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

    /// Runs the account jobs waiting (erasures and exports), step by step as `account-worker` would
    /// (continuations included), until none is left or `rounds` passes are done. Returns the steps that failed.
    pub async fn run_account_jobs(&self, rounds: usize) -> usize {
        let mut failed = 0;
        for _ in 0..rounds {
            let jobs = self.queue.take_account_jobs();
            if jobs.is_empty() {
                break;
            }
            for job in jobs {
                let outcome = match job {
                    AccountJob::Erasure(job) => self.app.erasure.run(job, Duration::ZERO).await,
                    AccountJob::Export(job) => self.app.exports.run(job, Duration::ZERO).await,
                };
                failed += usize::from(outcome.is_err());
            }
        }
        failed
    }

    /// The REST API over this app.
    pub fn rest(&self) -> Rest<'_> {
        Rest { app: &self.app, accounts: &self.accounts, pager: &self.pager, push: &self.push }
    }
}

impl Default for TestApp {
    fn default() -> Self {
        Self::new()
    }
}

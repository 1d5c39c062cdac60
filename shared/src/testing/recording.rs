//! A [`Fanout`] that records frames per connection instead of posting them (connections can be marked gone, API
//! Gateway's 410, or made to throttle a number of times first), and a [`FanoutQueue`] that keeps the jobs for a
//! test to run.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{AppError, AppResult};
use crate::model::ConnectionId;
use crate::ports::{AccountJob, AccountQueue, Fanout, FanoutJob, FanoutQueue, PostOutcome, PushJob, PushQueue};

#[derive(Default)]
pub struct RecordingFanout {
    sent: Mutex<Vec<(String, String)>>,
    gone: Mutex<HashSet<String>>,
    closed: Mutex<Vec<String>>,
    throttles: Mutex<HashMap<String, u32>>,
}

impl RecordingFanout {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn mark_gone(&self, connection_id: &str) {
        self.gone.lock().unwrap().insert(connection_id.to_owned());
    }

    /// The connection accepts frames again (its handshake completed).
    pub fn mark_alive(&self, connection_id: &str) {
        self.gone.lock().unwrap().remove(connection_id);
    }

    pub fn throttle(&self, connection_id: &str, times: u32) {
        self.throttles.lock().unwrap().insert(connection_id.to_owned(), times);
    }

    /// Frames delivered to a connection, parsed, in order.
    pub fn frames(&self, connection_id: &str) -> Vec<serde_json::Value> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| c == connection_id)
            .map(|(_, f)| serde_json::from_str(f).expect("frames are JSON"))
            .collect()
    }

    /// Forgets what was sent so far (after a test's setup).
    pub fn clear(&self) {
        self.sent.lock().unwrap().clear();
    }

    /// Connections closed with [`Fanout::disconnect`], in order; they are gone from then on.
    pub fn closed(&self) -> Vec<String> {
        self.closed.lock().unwrap().clone()
    }

    pub fn total_posts(&self) -> usize {
        self.sent.lock().unwrap().len()
    }
}

#[async_trait]
impl Fanout for RecordingFanout {
    async fn post(&self, connection_id: &ConnectionId, frame: &str) -> PostOutcome {
        let connection_id = connection_id.as_str();
        if self.gone.lock().unwrap().contains(connection_id) {
            return PostOutcome::Gone;
        }
        if let Some(left) = self.throttles.lock().unwrap().get_mut(connection_id).filter(|n| **n > 0) {
            *left -= 1;
            return PostOutcome::Throttled;
        }
        self.sent.lock().unwrap().push((connection_id.to_owned(), frame.to_owned()));
        PostOutcome::Delivered
    }

    async fn disconnect(&self, connection_id: &ConnectionId) -> AppResult<()> {
        self.closed.lock().unwrap().push(connection_id.to_string());
        self.mark_gone(connection_id.as_str());
        Ok(())
    }
}

/// Keeps enqueued jobs (with their delay) until a test takes them; can be made to refuse them. Serves as both the
/// fan-out queue and the account queue.
#[derive(Default)]
pub struct RecordingQueue {
    jobs: Mutex<Vec<(FanoutJob, u32)>>,
    account_jobs: Mutex<Vec<AccountJob>>,
    push_jobs: Mutex<Vec<(PushJob, u32)>>,
    refusing: std::sync::atomic::AtomicBool,
    enqueued: std::sync::atomic::AtomicUsize,
}

impl RecordingQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// The jobs waiting, with their delays, oldest first; they are no longer waiting afterwards.
    pub fn take(&self) -> Vec<(FanoutJob, u32)> {
        std::mem::take(&mut *self.jobs.lock().unwrap())
    }

    /// The erasure jobs waiting, oldest first; they are no longer waiting afterwards.
    pub fn take_account_jobs(&self) -> Vec<AccountJob> {
        std::mem::take(&mut *self.account_jobs.lock().unwrap())
    }

    /// The push jobs waiting, with their delays, oldest first; they are no longer waiting afterwards.
    pub fn take_push_jobs(&self) -> Vec<(PushJob, u32)> {
        std::mem::take(&mut *self.push_jobs.lock().unwrap())
    }

    /// Jobs enqueued since the start.
    pub fn enqueued(&self) -> usize {
        self.enqueued.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Makes every later `enqueue` fail (as SQS would when unreachable).
    pub fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl FanoutQueue for RecordingQueue {
    async fn enqueue(&self, jobs: &[FanoutJob], delay_secs: u32) -> AppResult<()> {
        if self.refusing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AppError::internal("the test queue refuses jobs"));
        }
        self.enqueued.fetch_add(jobs.len(), std::sync::atomic::Ordering::SeqCst);
        self.jobs.lock().unwrap().extend(jobs.iter().cloned().map(|job| (job, delay_secs)));
        Ok(())
    }
}

#[async_trait]
impl AccountQueue for RecordingQueue {
    async fn enqueue(&self, job: &AccountJob, _delay_secs: u32) -> AppResult<()> {
        if self.refusing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AppError::internal("the test queue refuses jobs"));
        }
        self.account_jobs.lock().unwrap().push(job.clone());
        Ok(())
    }
}

#[async_trait]
impl PushQueue for RecordingQueue {
    async fn enqueue(&self, jobs: &[PushJob], delay_secs: u32) -> AppResult<()> {
        if self.refusing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AppError::internal("the test queue refuses jobs"));
        }
        self.push_jobs.lock().unwrap().extend(jobs.iter().cloned().map(|job| (job, delay_secs)));
        Ok(())
    }
}

/// Phones' push in memory: every registration and publish recorded; publishes answered from a script (accepted
/// once it runs out).
#[derive(Default)]
pub struct RecordingMobilePush {
    pub published: Mutex<Vec<(String, crate::model::PushNotification)>>,
    pub forgotten: Mutex<Vec<String>>,
    pub answers: Mutex<std::collections::VecDeque<crate::ports::PushResponse>>,
}

#[async_trait]
impl crate::ports::MobilePush for RecordingMobilePush {
    async fn register(&self, platform: crate::model::PushPlatform, token: &str) -> AppResult<String> {
        Ok(format!("arn:aws:sns:us-east-1:000000000000:endpoint/{}/test/{token}", platform.as_str()))
    }

    async fn send(
        &self,
        endpoint_arn: &str,
        notification: &crate::model::PushNotification,
    ) -> crate::ports::PushResponse {
        self.published.lock().unwrap().push((endpoint_arn.to_owned(), notification.clone()));
        self.answers.lock().unwrap().pop_front().unwrap_or(crate::ports::PushResponse::Accepted)
    }

    async fn forget(&self, endpoint_arn: &str) {
        self.forgotten.lock().unwrap().push(endpoint_arn.to_owned());
    }
}

//! [`FanoutQueue`], [`PushQueue`] and [`AccountQueue`] over SQS: jobs as JSON messages; fan-out and push jobs are sent
//! in batches of at most 10 messages and 256 KB (SQS's limits for one `SendMessageBatch`).

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use crate::error::{AppError, AppResult};
use crate::ports::{AccountJob, AccountQueue, FanoutJob, FanoutQueue, PushJob, PushQueue};

const MAX_BATCH_ENTRIES: usize = 10;
/// SQS's payload limit for one batch (and one message), with room for the request's own overhead.
const MAX_BATCH_BYTES: usize = 250 * 1024;

pub struct SqsFanoutQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsFanoutQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        SqsFanoutQueue { client, queue_url }
    }
}

#[async_trait]
impl FanoutQueue for SqsFanoutQueue {
    /// A room of 10,000 connections is 40 jobs, 4 batches.
    async fn enqueue(&self, jobs: &[FanoutJob], delay_secs: u32) -> AppResult<()> {
        send_in_batches(&self.client, &self.queue_url, jobs, delay_secs).await
    }
}

/// The push queue: one job per notification to one browser.
pub struct SqsPushQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsPushQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        SqsPushQueue { client, queue_url }
    }
}

#[async_trait]
impl PushQueue for SqsPushQueue {
    async fn enqueue(&self, jobs: &[PushJob], delay_secs: u32) -> AppResult<()> {
        send_in_batches(&self.client, &self.queue_url, jobs, delay_secs).await
    }
}

/// Sends `jobs` as JSON messages, in batches sent concurrently.
async fn send_in_batches<T: serde::Serialize>(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    jobs: &[T],
    delay_secs: u32,
) -> AppResult<()> {
    let mut batches: Vec<Vec<String>> = Vec::new();
    let mut bytes = 0;
    for job in jobs {
        let body = serde_json::to_string(job).map_err(AppError::internal)?;
        if body.len() > MAX_BATCH_BYTES {
            return Err(AppError::internal(format!("a job of {} bytes exceeds SQS's limit", body.len())));
        }
        match batches.last_mut() {
            Some(batch) if batch.len() < MAX_BATCH_ENTRIES && bytes + body.len() <= MAX_BATCH_BYTES => {
                bytes += body.len();
                batch.push(body);
            }
            _ => {
                bytes = body.len();
                batches.push(vec![body]);
            }
        }
    }
    futures_util::future::try_join_all(
        batches.into_iter().map(|batch| send_batch(client, queue_url, batch, delay_secs)),
    )
    .await?;
    Ok(())
}

async fn send_batch(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    bodies: Vec<String>,
    delay_secs: u32,
) -> AppResult<()> {
    let entries = bodies
        .into_iter()
        .enumerate()
        .map(|(index, body)| {
            SendMessageBatchRequestEntry::builder()
                .id(index.to_string())
                .message_body(body)
                .delay_seconds(delay_secs.min(900) as i32)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sent = client.send_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await?;
    match sent.failed.first() {
        None => Ok(()),
        Some(failed) => Err(AppError::internal(format!(
            "SQS refused {} of the batch: {} {}",
            sent.failed.len(),
            failed.code,
            failed.message.as_deref().unwrap_or("")
        ))),
    }
}

/// The account queue: one erasure or export job per message.
pub struct SqsAccountQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsAccountQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        SqsAccountQueue { client, queue_url }
    }
}

#[async_trait]
impl AccountQueue for SqsAccountQueue {
    async fn enqueue(&self, job: &AccountJob, delay_secs: u32) -> AppResult<()> {
        let body = serde_json::to_string(job).map_err(AppError::internal)?;
        let delay = delay_secs.min(900) as i32;
        self.client.send_message().queue_url(&self.queue_url).message_body(body).delay_seconds(delay).send().await?;
        Ok(())
    }
}

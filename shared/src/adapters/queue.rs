//! The queues' consumers: SQS records in, [`Delivery::run_job`] (fan-out), [`PushSender::send`] (push) or an
//! erasure's or export's `run` (accounts) per record, a partial batch response out (only the records that must be tried again are reported;
//! SQS deletes the rest and moves a record that keeps failing to its dead-letter queue).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures_util::future::join_all;

use crate::delivery::Delivery;
use crate::error::{AppError, AppResult};
use crate::ports::{AccountJob, FanoutJob, PushJob};
use crate::usecases::App;
use crate::usecases::push::PushSender;

/// Runs every job of the batch concurrently.
pub async fn handle(delivery: &Delivery, event: SqsEvent) -> SqsBatchResponse {
    let outcomes = join_all(event.records.into_iter().map(|record| async move {
        let id = record.message_id.unwrap_or_default();
        let job = record.body.as_deref().map(serde_json::from_str::<FanoutJob>);
        let outcome = match job {
            Some(Ok(job)) => delivery.run_job(job).await.map(|report| report.delivered),
            Some(Err(e)) => Err(AppError::internal(format!("unreadable fan-out job: {e}"))),
            None => Err(AppError::internal("fan-out job without a body")),
        };
        (id, outcome)
    }))
    .await;
    batch_response("fan-out", outcomes)
}

/// Sends every push job of the batch concurrently (a push service that does not answer holds only its own).
pub async fn handle_push_jobs(sender: &PushSender, event: SqsEvent) -> SqsBatchResponse {
    let outcomes = join_all(event.records.into_iter().map(|record| async move {
        let id = record.message_id.unwrap_or_default();
        let outcome = match record.body.as_deref().map(serde_json::from_str::<PushJob>) {
            Some(Ok(job)) => sender.send(job).await,
            Some(Err(e)) => Err(AppError::internal(format!("unreadable push job: {e}"))),
            None => Err(AppError::internal("push job without a body")),
        };
        (id, outcome)
    }))
    .await;
    batch_response("push", outcomes)
}

/// Runs each account job (an erasure or an export) for at most `budget` (the rest goes back on the queue as a
/// new job).
pub async fn handle_account_jobs(app: &App, event: SqsEvent, budget: std::time::Duration) -> SqsBatchResponse {
    let outcomes = join_all(event.records.into_iter().map(|record| async move {
        let id = record.message_id.unwrap_or_default();
        let outcome = match record.body.as_deref().map(serde_json::from_str::<AccountJob>) {
            Some(Ok(AccountJob::Erasure(job))) => app.erasure.run(job, budget).await,
            Some(Ok(AccountJob::Export(job))) => app.exports.run(job, budget).await,
            Some(Err(e)) => Err(AppError::internal(format!("unreadable account job: {e}"))),
            None => Err(AppError::internal("account job without a body")),
        };
        (id, outcome)
    }))
    .await;
    batch_response("account", outcomes)
}

/// The records to try again: the failed ones.
fn batch_response<T: std::fmt::Debug>(kind: &str, outcomes: Vec<(String, AppResult<T>)>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for (id, outcome) in outcomes {
        match outcome {
            Ok(done) => tracing::debug!(message_id = %id, ?done, kind, "job done"),
            Err(e) => {
                tracing::warn!(message_id = %id, error = ?e, kind, "job failed; SQS will retry it");
                response.add_failure(id);
            }
        }
    }
    response
}

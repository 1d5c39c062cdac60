//! The fan-out queue's consumer: SQS records in, [`Delivery::run_job`] per record, a partial batch response out
//! (only the records that must be tried again are reported; SQS deletes the rest and moves a record that keeps
//! failing to the dead-letter queue).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures_util::future::join_all;

use crate::delivery::Delivery;
use crate::ports::FanoutJob;

/// Runs every job of the batch concurrently.
pub async fn handle(delivery: &Delivery, event: SqsEvent) -> SqsBatchResponse {
    let outcomes = join_all(event.records.into_iter().map(|record| async move {
        let id = record.message_id.unwrap_or_default();
        let job = record.body.as_deref().map(serde_json::from_str::<FanoutJob>);
        let outcome = match job {
            Some(Ok(job)) => delivery.run_job(job).await.map(|report| report.delivered),
            Some(Err(e)) => Err(crate::error::AppError::internal(format!("unreadable fan-out job: {e}"))),
            None => Err(crate::error::AppError::internal("fan-out job without a body")),
        };
        (id, outcome)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (id, outcome) in outcomes {
        match outcome {
            Ok(delivered) => tracing::debug!(message_id = %id, delivered, "fan-out job done"),
            Err(e) => {
                tracing::warn!(message_id = %id, error = ?e, "fan-out job failed; SQS will retry it");
                response.add_failure(id);
            }
        }
    }
    response
}

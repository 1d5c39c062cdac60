//! The attachments bucket's notifications (S3 `ObjectCreated`, invoked asynchronously): each created object's
//! key in, [`Uploads::process`] per key. A failure is returned so Lambda retries the event (twice, then it is
//! dropped with a log line); processing is idempotent, so a retry redoes only what is missing.

use futures_util::future::join_all;
use serde::Deserialize;

use crate::error::{AppError, AppResult};
use crate::usecases::Uploads;

/// The part of an S3 event notification the processor reads (`Records[].s3.object.key`).
#[derive(Debug, Deserialize)]
pub struct BucketEvent {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
}

#[derive(Debug, Deserialize)]
struct Record {
    s3: Entity,
}

#[derive(Debug, Deserialize)]
struct Entity {
    object: Object,
}

#[derive(Debug, Deserialize)]
struct Object {
    /// URL-encoded in the event; the keys uploads are given hold only `[A-Za-z0-9_/.-]`, which encode to
    /// themselves, so any other key is no upload and is skipped as such.
    key: String,
}

pub async fn handle(uploads: &Uploads, event: BucketEvent) -> AppResult<()> {
    let outcomes = join_all(event.records.iter().map(|record| uploads.process(&record.s3.object.key))).await;
    let failed = outcomes.iter().filter(|outcome| outcome.is_err()).count();
    for (record, outcome) in event.records.iter().zip(&outcomes) {
        if let Err(e) = outcome {
            tracing::error!(key = %record.s3.object.key, error = ?e, "could not process an upload");
        }
    }
    if failed > 0 {
        return Err(AppError::internal(format!("{failed} of {} uploads failed", outcomes.len())));
    }
    Ok(())
}

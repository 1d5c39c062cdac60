//! [`EventBus`] over Amazon EventBridge: `PutEvents` in chunks of ten (its limit), one chunk after another so
//! a conversation's events reach the bus in the order they happened. Entries the bus refuses are sent again a
//! few times; what still fails fails the batch, which the stream then delivers again.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::error::{AppError, AppResult};
use crate::ports::{EventBus, Published};
use crate::retry;

/// `source` of every event the stack publishes: what integrators' rules match on.
pub const SOURCE: &str = "chat";
/// Entries one `PutEvents` takes.
const CHUNK: usize = 10;
const ATTEMPTS: u32 = 4;

pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: String) -> Self {
        EventBridgeBus { client, bus_name }
    }

    fn entry(&self, event: &Published) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(SOURCE)
            .detail_type(event.detail_type)
            .detail(event.detail.to_string())
            .build()
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, events: &[Published]) -> AppResult<()> {
        for chunk in events.chunks(CHUNK) {
            let mut pending: Vec<PutEventsRequestEntry> = chunk.iter().map(|event| self.entry(event)).collect();
            for attempt in 1..=ATTEMPTS {
                let out = self
                    .client
                    .put_events()
                    .set_entries(Some(pending.clone()))
                    .send()
                    .await
                    .map_err(|e| AppError::internal(format!("PutEvents: {e}")))?;
                if out.failed_entry_count() == 0 {
                    pending.clear();
                    break;
                }
                // Entries answer in request order; the failed ones carry an error code.
                pending = pending
                    .into_iter()
                    .zip(out.entries())
                    .filter(|(_, result)| result.error_code().is_some())
                    .map(|(entry, _)| entry)
                    .collect();
                if attempt < ATTEMPTS {
                    retry::pause(attempt).await;
                }
            }
            if !pending.is_empty() {
                return Err(AppError::internal(format!("EventBridge refused {} events", pending.len())));
            }
        }
        Ok(())
    }
}

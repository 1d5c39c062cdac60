//! The table's stream in: integrators' events out (each batch of changes becomes the events it stands for,
//! [`crate::aws::dynamo::table_stream`], published in order), and push notifications planned for the messages it
//! sends. A failure fails the batch, which the stream delivers again: every event reaches the bus at least once,
//! and every push job its queue.

pub use crate::aws::dynamo::table_stream::StreamEvent;
use crate::aws::dynamo::table_stream::{published, sent_messages};
use crate::error::AppResult;
use crate::ports::EventBus;
use crate::usecases::push::PushPlanner;

/// Publishes the batch's events; how many.
pub async fn handle(bus: &dyn EventBus, event: StreamEvent) -> AppResult<usize> {
    let events = published(&event);
    if !events.is_empty() {
        bus.publish(&events).await?;
    }
    tracing::info!(records = event.records.len(), published = events.len(), "stream batch published");
    Ok(events.len())
}

/// Plans the pushes of the batch's new messages, in order; how many jobs were enqueued.
pub async fn handle_pushes(planner: &PushPlanner, event: StreamEvent) -> AppResult<usize> {
    let mut planned = 0;
    for message in sent_messages(&event) {
        planned += planner.plan(&message).await?;
    }
    tracing::info!(records = event.records.len(), planned, "stream batch planned");
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::error::AppError;
    use crate::ports::Published;

    /// Records what it is given; refuses everything while `refusing`.
    #[derive(Default)]
    struct Bus {
        published: Mutex<Vec<Published>>,
        refusing: bool,
    }

    #[async_trait]
    impl EventBus for Bus {
        async fn publish(&self, events: &[Published]) -> AppResult<()> {
            if self.refusing {
                return Err(AppError::internal("the bus refused"));
            }
            self.published.lock().unwrap().extend_from_slice(events);
            Ok(())
        }
    }

    fn batch() -> StreamEvent {
        let sent = |seq: u64| {
            json!({"eventName": "INSERT", "dynamodb": {
                "Keys": {"pk": {"S": "CONV#c1"}, "sk": {"S": format!("MSG#{seq:020}")}},
                "NewImage": {"conversationId": {"S": "c1"}, "messageId": {"S": format!("c1-{seq}")}, "seq": {"N": seq.to_string()}},
                "SequenceNumber": seq.to_string()}})
        };
        let presence = json!({"eventName": "MODIFY", "dynamodb": {
            "Keys": {"pk": {"S": "USER#u1"}, "sk": {"S": "PRESENCE"}}, "NewImage": {}, "OldImage": {}, "SequenceNumber": "9"}});
        serde_json::from_value(json!({"Records": [sent(1), presence, sent(2)]})).unwrap()
    }

    #[tokio::test]
    async fn a_batch_is_published_in_order_and_a_refusal_fails_it_to_be_delivered_again() {
        let bus = Bus::default();
        assert_eq!(handle(&bus, batch()).await.unwrap(), 2, "presence is not an event");
        let seqs: Vec<_> = bus.published.lock().unwrap().iter().map(|p| p.detail["seq"].clone()).collect();
        assert_eq!(seqs, [json!(1), json!(2)]);
        let refusing = Bus { refusing: true, ..Bus::default() };
        assert!(handle(&refusing, batch()).await.is_err(), "the stream retries the batch");
    }
}

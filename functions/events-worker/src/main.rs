//! `events-worker`: reads the table's stream and publishes what happened (messages, reactions, memberships,
//! accounts) to the stack's EventBridge bus for integrators (docs/events.md). Off every request path: a sender
//! never waits for it, and a slow bus delays nothing but these events.

use chat_shared::adapters::stream;
use chat_shared::aws::eventbridge::EventBridgeBus;
use chat_shared::config::required_env;
use chat_shared::telemetry;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let bus_name = required_env("EVENT_BUS_NAME")?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let bus = EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), bus_name);
    run(service_fn(|event: LambdaEvent<stream::StreamEvent>| {
        let bus = &bus;
        async move { stream::handle(bus, event.payload).await.map_err(Error::from) }
    }))
    .await
}

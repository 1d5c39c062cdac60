//! `push-sender`: encrypts and posts the push jobs of the push queue to the browsers' push services (SQS event
//! source, partial batch responses). A push service that is slow or down holds only its own jobs.

use chat_shared::adapters::queue;
use chat_shared::app::{Root, SigningKey};
use chat_shared::telemetry;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sender = Root::from_env(SigningKey::NotNeeded).await?.push_sender().await?;
    run(service_fn(|event: LambdaEvent<_>| {
        let sender = &sender;
        async move { Ok::<_, Error>(queue::handle_push_jobs(sender, event.payload).await) }
    }))
    .await
}

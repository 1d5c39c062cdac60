//! `fanout-worker`: runs the delivery jobs other functions put on the fan-out queue (SQS event source, partial
//! batch responses). Posts frames only; needs no signing key.

use chat_shared::adapters::queue;
use chat_shared::app::{Root, SigningKey};
use chat_shared::telemetry;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let delivery = Root::from_env(SigningKey::NotNeeded).await?.delivery();
    run(service_fn(|event: LambdaEvent<_>| {
        let delivery = &delivery;
        async move { Ok::<_, Error>(queue::handle(delivery, event.payload).await) }
    }))
    .await
}

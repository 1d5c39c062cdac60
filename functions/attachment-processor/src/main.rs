//! `attachment-processor`: the attachments bucket notifies it of every upload. For images it writes a thumbnail
//! and a copy without location metadata, records the outcome, and tells the conversation when a message was
//! waiting for it. Needs no signing key.

use chat_shared::adapters::bucket::{self, BucketEvent};
use chat_shared::app::{Root, SigningKey};
use chat_shared::telemetry;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let uploads = Root::from_env(SigningKey::NotNeeded).await?.app().uploads;
    run(service_fn(|event: LambdaEvent<BucketEvent>| {
        let uploads = &uploads;
        async move { bucket::handle(uploads, event.payload).await.map_err(Error::from) }
    }))
    .await
}

//! `$disconnect` of the WebSocket API: forgets the connection and announces the user offline if it was their
//! last. Needs no signing key.

use chat_shared::adapters::ws;
use chat_shared::app::{Root, SigningKey};
use chat_shared::telemetry;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = Root::from_env(SigningKey::NotNeeded).await?.app();
    run(service_fn(|event: LambdaEvent<_>| {
        let app = &app;
        async move { Ok::<_, Error>(ws::disconnect(app, event.payload).await) }
    }))
    .await
}

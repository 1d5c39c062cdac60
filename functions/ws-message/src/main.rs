//! Chat actions of the WebSocket API (every route but `$connect`/`$disconnect`, including `$default`). Needs no
//! signing key: a frame is authorised by its connection's record.

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
        async move { Ok::<_, Error>(ws::message(app, event.payload).await) }
    }))
    .await
}

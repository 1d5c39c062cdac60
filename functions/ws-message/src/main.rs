//! Chat actions of the WebSocket API (every route but `$connect`/`$disconnect`, including `$default`).

use chat_shared::{Services, handlers::ws, telemetry};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let services = Services::from_env().await?;
    run(service_fn(|event: LambdaEvent<_>| {
        let services = &services;
        async move { Ok::<_, Error>(ws::message(services, event.payload).await) }
    }))
    .await
}

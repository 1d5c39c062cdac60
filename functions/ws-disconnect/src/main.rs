//! `$disconnect` of the WebSocket API: forgets the connection.

use chat_shared::{Services, handlers::ws, telemetry};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let services = Services::from_env().await?;
    run(service_fn(|event: LambdaEvent<_>| {
        let services = &services;
        async move { Ok::<_, Error>(ws::disconnect(services, event.payload).await) }
    }))
    .await
}

//! The HTTP API: accounts, conversations and history, through `lambda_http`.

use chat_shared::{Services, handlers::rest, telemetry};
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let services = Services::from_env().await?;
    run(service_fn(|request: Request| {
        let services = &services;
        async move { Ok::<_, Error>(rest::handle(services, request).await) }
    }))
    .await
}

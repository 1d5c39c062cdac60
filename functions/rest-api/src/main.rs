//! The HTTP API: accounts, conversations and history, through `lambda_http`.

use std::sync::Arc;

use chat_shared::{Services, handlers::rest, telemetry};
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let services = Arc::new(Services::from_env().await?);
    run(service_fn(move |request: Request| {
        // Each request future owns a cheap handle to the services built once at cold start.
        let services = Arc::clone(&services);
        async move { Ok::<_, Error>(rest::handle(&services, request).await) }
    }))
    .await
}

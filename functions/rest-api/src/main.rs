//! The HTTP API: accounts, conversations and history, through `lambda_http`.

use std::sync::Arc;

use chat_shared::adapters::http::{self, Rest};
use chat_shared::app::{Root, SigningKey};
use chat_shared::telemetry;
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let root = Root::from_env(SigningKey::Load).await?;
    let api = Arc::new((root.app(), root.accounts()?, root.pager()?, root.push_subscriptions().await?));
    run(service_fn(move |request: Request| {
        // Each request future owns a cheap handle to what was built once at cold start.
        let api = Arc::clone(&api);
        async move {
            let (app, accounts, pager, push) = &*api;
            Ok::<_, Error>(http::handle(&Rest { app, accounts, pager, push }, request).await)
        }
    }))
    .await
}

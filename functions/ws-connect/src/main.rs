//! `$connect` of the WebSocket API: authenticates the JWT, records the connection, announces the user.

use chat_shared::adapters::ws;
use chat_shared::app::{Root, SigningKey};
use chat_shared::telemetry;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let root = Root::from_env(SigningKey::Load).await?;
    let (app, accounts) = (root.app(), root.accounts()?);
    run(service_fn(|event: LambdaEvent<_>| {
        let (app, accounts) = (&app, &accounts);
        async move { Ok::<_, Error>(ws::connect(app, accounts, event.payload).await) }
    }))
    .await
}

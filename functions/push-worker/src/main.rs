//! `push-worker`: reads the messages the table's stream sends and puts one push job per browser of each member
//! who should hear of it on the push queue (`usecases::push::PushPlanner`). Off the send path: a sender never
//! waits for it.

use chat_shared::adapters::stream;
use chat_shared::app::{Root, SigningKey};
use chat_shared::telemetry;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let planner = Root::from_env(SigningKey::NotNeeded).await?.push_planner()?;
    run(service_fn(|event: LambdaEvent<stream::StreamEvent>| {
        let planner = &planner;
        async move { stream::handle_pushes(planner, event.payload).await.map_err(Error::from) }
    }))
    .await
}

//! `account-worker`: erases deleted accounts and exports users' data, one job of the account queue at a time
//! (SQS event source, partial batch responses). Each invocation works for at most `JOB_BUDGET`, then puts what is
//! left back on the queue; needs no signing key.

use std::time::Duration;

use chat_shared::adapters::queue;
use chat_shared::app::{Root, SigningKey};
use chat_shared::telemetry;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

/// Well inside the function's 60-second timeout: a step started just before the budget ends still finishes.
const JOB_BUDGET: Duration = Duration::from_secs(40);

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = Root::from_env(SigningKey::NotNeeded).await?.app();
    run(service_fn(|event: LambdaEvent<_>| {
        let app = &app;
        async move { Ok::<_, Error>(queue::handle_account_jobs(app, event.payload, JOB_BUDGET).await) }
    }))
    .await
}

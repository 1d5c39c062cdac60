//! In-process handlers over the deployed table with every DynamoDB request counted: the request-count test and
//! the benchmark measure requests per action this way (counted by the SDK, retries included, never estimated).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use chat_shared::adapters::http::Rest;
use chat_shared::auth::TokenKeys;
use chat_shared::aws::dynamo::DynamoDbStore;
use chat_shared::cursor::CursorCodec;
use chat_shared::ports::Store;
use chat_shared::testing::{RecordingFanout, RecordingQueue};
use chat_shared::usecases::push::PushSubscriptions;
use chat_shared::usecases::{Accounts, App, Limits, Pager, Wiring};
use serde_json::json;

use crate::Stack;

/// Counts the DynamoDB requests the SDK transmits, by operation.
#[derive(Debug, Default, Clone)]
pub struct DynamoCounter(Arc<Mutex<BTreeMap<String, usize>>>);

impl Intercept for DynamoCounter {
    fn name(&self) -> &'static str {
        "DynamoCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or("unknown");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        *self.0.lock().unwrap().entry(operation).or_default() += 1;
        Ok(())
    }
}

impl DynamoCounter {
    /// The counts since the last call, by operation.
    pub fn take(&self) -> BTreeMap<String, usize> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The use cases over the deployed table, with a counting DynamoDB client and a recording fan-out (every
/// PostToConnection the code makes is counted, none is sent).
pub struct Counting {
    pub app: App,
    pub accounts: Accounts,
    pub pager: Pager,
    pub counter: DynamoCounter,
    /// The counted store itself, for setting up data without going through the use cases.
    pub store: Arc<DynamoDbStore>,
    pub fanout: Arc<RecordingFanout>,
    /// Jobs a delivery above `inline_max` connections enqueued (counted, not run).
    pub queue: Arc<RecordingQueue>,
    /// Push subscriptions, accepting `http` endpoints.
    pub push: PushSubscriptions,
}

impl Counting {
    /// Deliveries above `inline_max` connections are enqueued (and counted) instead of posted.
    pub async fn new(stack: &Stack, inline_max: usize) -> Counting {
        let config = stack.aws_config().await;
        let counter = DynamoCounter::default();
        let dynamo_config = aws_sdk_dynamodb::config::Builder::from(&config).interceptor(counter.clone()).build();
        let store =
            Arc::new(DynamoDbStore::new(aws_sdk_dynamodb::Client::from_conf(dynamo_config), stack.table_name.clone()));
        let fanout = Arc::new(RecordingFanout::new());
        let queue = Arc::new(RecordingQueue::new());
        let secret = b"request-count-harness-secret-of-enough-length";
        let limits =
            Limits { connection_ttl: Duration::from_secs(600), fanout_inline_max: inline_max, ..Limits::default() };
        // Attachments are not what this counts: their bucket stays in memory.
        let files = Arc::new(chat_shared::testing::InMemoryFiles::new());
        let wiring = Wiring::new(store.clone(), files, fanout.clone(), queue.clone(), queue.clone(), limits);
        let mobile = Arc::new(chat_shared::testing::RecordingMobilePush::default());
        let push =
            PushSubscriptions::new(&(store.clone() as Arc<dyn Store>), mobile, "counting-server-key".into(), true);
        Counting {
            app: wiring.app(),
            push,
            queue,
            accounts: wiring.accounts(TokenKeys::new(secret, Duration::from_secs(600)).unwrap()),
            store,
            pager: Pager::new(CursorCodec::new(secret)),
            counter,
            fanout,
        }
    }

    pub fn rest(&self) -> Rest<'_> {
        Rest { app: &self.app, accounts: &self.accounts, pager: &self.pager, push: &self.push }
    }
}

/// A WebSocket event as API Gateway sends it to a function.
pub fn ws_event(
    route: &str,
    connection_id: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> lambda_http::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(json!({
        "headers": {},
        "queryStringParameters": token.map(|t| json!({ "token": t })),
        "requestContext": {
            "routeKey": route, "connectionId": connection_id, "requestId": "count", "stage": "prod",
            "eventType": match route { "$connect" => "CONNECT", "$disconnect" => "DISCONNECT", _ => "MESSAGE" },
            "domainName": "local", "apiId": "local", "connectedAt": 0, "requestTimeEpoch": 0
        },
        "body": body,
        "isBase64Encoded": false
    }))
    .expect("valid websocket event")
}

//! In-process handlers over the deployed table with every DynamoDB request counted: the request-count test and
//! the benchmark measure requests per action this way (counted by the SDK, retries included, never estimated).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use chat_shared::Services;
use chat_shared::auth::TokenKeys;
use chat_shared::cursor::CursorCodec;
use chat_shared::fanout::RecordingFanout;
use chat_shared::store::dynamo::DynamoDbStore;
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

/// The handlers' services over the deployed table, with a counting DynamoDB client and a recording fan-out
/// (every PostToConnection the code makes is counted, none is sent).
pub struct CountingServices {
    pub services: Services,
    pub counter: DynamoCounter,
    pub fanout: Arc<RecordingFanout>,
}

impl CountingServices {
    pub async fn new(stack: &Stack) -> CountingServices {
        let config = stack.aws_config().await;
        let counter = DynamoCounter::default();
        let dynamo_config = aws_sdk_dynamodb::config::Builder::from(&config).interceptor(counter.clone()).build();
        let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::from_conf(dynamo_config), stack.table_name.clone());
        let fanout = Arc::new(RecordingFanout::new());
        let secret = b"request-count-harness-secret-of-enough-length";
        let services = Services {
            store: Arc::new(store),
            fanout: fanout.clone(),
            tokens: TokenKeys::new(secret, Duration::from_secs(600)).unwrap(),
            cursors: CursorCodec::new(secret),
            connection_ttl: Duration::from_secs(600),
        };
        CountingServices { services, counter, fanout }
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
            "domainName": "local", "apiId": "local", "connectedAt": 0, "requestTimeEpoch": 0
        },
        "body": body,
        "isBase64Encoded": false
    }))
    .expect("valid websocket event")
}

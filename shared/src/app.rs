//! The composition root: what a Lambda function is built from, once per cold start. Configuration is read and
//! checked, the AWS clients are built, and, only for the functions that issue or verify tokens or sign cursors
//! (`ws-connect`, `rest-api`), the signing key is fetched from Secrets Manager; the VAPID key only where push
//! subscriptions are made (`rest-api`) or pushes are sent (`push-sender`).

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;

use crate::auth::TokenKeys;
use crate::aws::apigateway::ApiGatewayFanout;
use crate::aws::dynamo::DynamoDbStore;
use crate::aws::s3::S3Files;
use crate::aws::sns::SnsMobilePush;
use crate::aws::sqs::{SqsAccountQueue, SqsFanoutQueue, SqsPushQueue};
use crate::config::{Config, required_env};
use crate::cursor::CursorCodec;
use crate::delivery::Delivery;
use crate::error::{AppError, AppResult};
use crate::usecases::push::{PushPlanner, PushSender, PushSubscriptions};
use crate::usecases::{Accounts, App, Limits, Pager, Wiring};
use crate::webpush::{HttpPushService, VapidKey};

/// The longest one PostToConnection may take, retries included.
pub const POST_TIMEOUT: Duration = Duration::from_secs(6);

/// The Management API client. A hung PostToConnection must not hold the whole invocation (nor its 29 s API
/// Gateway budget): every call is bounded.
pub fn management_client(sdk: &aws_config::SdkConfig, endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(POST_TIMEOUT)
        .build();
    let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
        .endpoint_url(endpoint)
        .timeout_config(timeouts)
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

/// The longest one push request may take: a push service that does not answer in time is tried again later.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a function needs the deployment's signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningKey {
    Load,
    NotNeeded,
}

/// Configuration and clients of one function.
pub struct Root {
    sdk: aws_config::SdkConfig,
    wiring: Wiring,
    keys: Option<(TokenKeys, CursorCodec)>,
}

/// A secret's text, trimmed.
async fn secret_string(sdk: &aws_config::SdkConfig, arn: &str) -> AppResult<String> {
    let secret = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await?
        .secret_string
        .ok_or_else(|| AppError::internal(format!("secret {arn} has no string value")))?;
    Ok(secret.trim().to_owned())
}

impl Root {
    pub async fn from_env(signing_key: SigningKey) -> AppResult<Root> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
        let keys = match signing_key {
            SigningKey::NotNeeded => None,
            SigningKey::Load => {
                let arn = config
                    .jwt_secret_arn
                    .as_deref()
                    .ok_or_else(|| AppError::internal("missing configuration JWT_SECRET_ARN"))?;
                let secret = secret_string(&sdk, arn).await?;
                let secret = secret.as_bytes();
                Some((TokenKeys::new(secret, config.token_ttl)?, CursorCodec::new(secret)))
            }
        };
        let limits = Limits {
            connection_ttl: config.connection_ttl,
            max_group_members: config.max_group_members,
            fanout_inline_max: config.fanout_inline_max,
            uploads: config.uploads,
        };
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let wiring = Wiring::new(
            Arc::new(DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name)),
            Arc::new(S3Files::new(&sdk, config.attachments_bucket).await?),
            Arc::new(ApiGatewayFanout::new(
                management_client(&sdk, &config.management_endpoint),
                config.posts_in_flight,
            )),
            Arc::new(SqsFanoutQueue::new(sqs.clone(), config.fanout_queue_url)),
            Arc::new(SqsAccountQueue::new(sqs, config.account_queue_url)),
            limits,
        );
        Ok(Root { sdk, wiring, keys })
    }

    /// Delivery of frames: posted here, or through the fan-out queue when a delivery is big.
    pub fn delivery(&self) -> Delivery {
        self.wiring.delivery()
    }

    pub fn app(&self) -> App {
        self.wiring.app()
    }

    /// The deployment's VAPID key (`VAPID_SECRET_ARN`, contact `VAPID_CONTACT`).
    async fn vapid_key(&self) -> AppResult<VapidKey> {
        let secret = secret_string(&self.sdk, &required_env("VAPID_SECRET_ARN")?).await?;
        VapidKey::from_secret(&secret, &required_env("VAPID_CONTACT")?)
    }

    /// Phones' push through SNS: the platform applications `FCM_PLATFORM_APPLICATION_ARN` and
    /// `APNS_PLATFORM_APPLICATION_ARN` (empty: that platform is not offered).
    fn mobile_push(&self) -> Arc<SnsMobilePush> {
        let application = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Arc::new(SnsMobilePush::new(
            aws_sdk_sns::Client::new(&self.sdk),
            application("FCM_PLATFORM_APPLICATION_ARN"),
            application("APNS_PLATFORM_APPLICATION_ARN"),
        ))
    }

    fn push_queue(&self) -> AppResult<Arc<SqsPushQueue>> {
        Ok(Arc::new(SqsPushQueue::new(aws_sdk_sqs::Client::new(&self.sdk), required_env("PUSH_QUEUE_URL")?)))
    }

    /// Push subscriptions (`rest-api`): `PUSH_ALLOW_HTTP` (`true`/`false`) says whether `http` endpoints are
    /// accepted.
    pub async fn push_subscriptions(&self) -> AppResult<PushSubscriptions> {
        let allow_http = match std::env::var("PUSH_ALLOW_HTTP").unwrap_or_default().trim() {
            "" | "false" => false,
            "true" => true,
            other => return Err(AppError::internal(format!("PUSH_ALLOW_HTTP must be true or false, got {other:?}"))),
        };
        let server_key = self.vapid_key().await?.public_key().to_owned();
        Ok(PushSubscriptions::new(&self.wiring.store(), self.mobile_push(), server_key, allow_http))
    }

    /// Who hears of a new message by push (`push-worker`).
    pub fn push_planner(&self) -> AppResult<PushPlanner> {
        Ok(PushPlanner::new(&self.wiring.store(), self.push_queue()?))
    }

    /// Sends push jobs (`push-sender`), each request bounded by [`PUSH_TIMEOUT`].
    pub async fn push_sender(&self) -> AppResult<PushSender> {
        let service = Arc::new(HttpPushService::new(PUSH_TIMEOUT)?);
        let vapid = self.vapid_key().await?;
        Ok(PushSender::new(&self.wiring.store(), service, self.mobile_push(), self.push_queue()?, vapid))
    }

    fn keys(&self) -> AppResult<&(TokenKeys, CursorCodec)> {
        self.keys.as_ref().ok_or_else(|| AppError::internal("this function was built without the signing key"))
    }

    /// Accounts (issuing and verifying tokens); only where the signing key was loaded.
    pub fn accounts(&self) -> AppResult<Accounts> {
        Ok(self.wiring.accounts(self.keys()?.0.clone()))
    }

    /// Page cursors; only where the signing key was loaded.
    pub fn pager(&self) -> AppResult<Pager> {
        Ok(Pager::new(self.keys()?.1.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::model::ConnectionId;
    use crate::ports::{Fanout, PostOutcome};

    /// A management endpoint that accepts connections and never answers: the post gives up within its bound.
    #[tokio::test]
    async fn a_hung_post_to_connection_gives_up_within_its_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new("a", "b", None, None, "test"))
            .load()
            .await;
        let fanout = ApiGatewayFanout::new(management_client(&sdk, &format!("http://{address}")), 1);
        let started = Instant::now();
        let outcome = fanout.post(&ConnectionId::new("hung"), "{}").await;
        let took = started.elapsed();
        server.abort();
        assert_eq!(outcome, PostOutcome::Failed);
        assert!(took >= Duration::from_secs(2) && took <= POST_TIMEOUT + Duration::from_secs(1), "{took:?}");
    }
}
